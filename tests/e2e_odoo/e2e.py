"""End-to-end test of numikube-staging with two real Odoo 18.0 servers.

Run it through tests/e2e_odoo/run (which finds the tools). On loopback only:

1. a throw-away PostgreSQL cluster (as user nobody when run as root), with one
   role for production and one for staging, so that each Odoo sees only its
   own databases;
2. moto's S3 server with a bucket, an aiosmtpd SMTP server writing a Maildir;
3. production: database ``prod`` with numikube_staging installed, plus an
   empty second database so that the callback must name its database (?db=);
   its custom-format dump is uploaded as the client's newest backup;
4. staging: an Odoo with no database at all, numikube_staging server-wide,
   and the real sidecar beside it, all reading the same odoo.conf;
5. through production's external API (XML-RPC): create an environment and a
   New Database job, click Run, wait for Done; check that the staging
   database exists, is neutralized, and that the SMTP server received the
   done mail with the database selector link; then a Drop Databases job
   removes it.

Prints 'e2e_odoo: N passed, N failed' at the end; exits non-zero on failure.
"""

import email
import email.policy
import json
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import xmlrpc.client

ODOO_BIN = os.environ["ODOO_BIN"]
ODOO_PYTHON = os.environ["ODOO_PYTHON"]
ODOO_ADDONS_PATH = os.environ["ODOO_ADDONS_PATH"]
SIDECAR_BIN = os.environ["SIDECAR_BIN"]
PG_BIN = os.environ["PG_BIN"]
ADDON_DIR = os.environ["ADDON_DIR"]
KEEP = os.environ.get("KEEP") == "1"

TOKEN = "e2e-staging-token"
BUCKET = "cosmos-backups"
CLIENT = "cosmos"
S3_KEY, S3_SECRET = "e2e-access", "e2e-secret-key"


def say(message):
    print(f"[e2e_odoo] {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(what, check, timeout, every=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class World:
    """Every process of the test, and how to stop them."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="numikube-e2e-odoo.")
        os.chmod(self.dir, 0o755)
        self.children = []
        self.as_nobody = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
            self.as_nobody = [
                "setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                "--clear-groups",
            ]
        self.pgdata = os.path.join(self.dir, "pgdata")
        self.pg_port = free_port()

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, name, args, **kwargs):
        log = open(self.path(f"{name}.log"), "ab")
        child = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **kwargs
        )
        self.children.append((name, child))
        return child

    def log_tail(self, name, size=3000):
        try:
            with open(self.path(f"{name}.log"), "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except OSError:
            return ""

    # -- PostgreSQL --------------------------------------------------------
    def start_postgres(self):
        subprocess.run(
            self.as_nobody + [f"{PG_BIN}/initdb", "-D", self.pgdata, "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            self.as_nobody + [f"{PG_BIN}/pg_ctl", "-D", self.pgdata, "-w", "-l",
                              self.path("postgres.log"), "-o",
                              f"-p {self.pg_port} -k {self.dir} "
                              "-c listen_addresses=127.0.0.1 -c fsync=off", "start"],
            check=True, stdout=subprocess.DEVNULL,
        )
        for role in ("odoo_prod", "odoo_stage"):
            self.psql("postgres", f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD 'odoo-pw'")

    def psql(self, db, sql):
        out = subprocess.run(
            [f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
             "-d", db, "-XAtqc", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    # -- S3 and SMTP -------------------------------------------------------
    def start_s3(self):
        self.s3_port = free_port()
        venv_bin = os.path.dirname(sys.executable)
        moto = shutil.which("moto_server", path=venv_bin + os.pathsep + os.environ["PATH"])
        self.spawn("moto", [moto, "-H", "127.0.0.1", "-p", str(self.s3_port)])
        wait_for("moto_server", lambda: port_open(self.s3_port), 60)
        import boto3  # noqa: PLC0415 (from the test venv, only here)

        self.s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
            region_name="us-east-1",
        )
        self.s3.create_bucket(Bucket=BUCKET)

    def start_smtp(self):
        self.smtp_port = free_port()
        self.maildir = self.path("maildir")
        self.spawn("aiosmtpd", [sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                f"127.0.0.1:{self.smtp_port}",
                                "-c", "aiosmtpd.handlers.Mailbox", self.maildir])
        wait_for("aiosmtpd", lambda: port_open(self.smtp_port), 30)

    def mails(self):
        if not os.path.isdir(os.path.join(self.maildir, "new")):
            return []
        return [
            email.message_from_bytes(bytes(m), policy=email.policy.default)
            for m in mailbox.Maildir(self.maildir, factory=None)
        ]

    # -- Odoo ---------------------------------------------------------------
    def odoo_conf(self, name, role, http_port, extra=""):
        data_dir = self.path(f"{name}-data")
        os.makedirs(data_dir, exist_ok=True)
        conf = self.path(f"{name}.conf")
        with open(conf, "w") as f:
            f.write(
                "[options]\n"
                f"db_host = 127.0.0.1\ndb_port = {self.pg_port}\n"
                f"db_user = {role}\ndb_password = odoo-pw\n"
                f"data_dir = {data_dir}\n"
                f"addons_path = {ODOO_ADDONS_PATH},{ADDON_DIR}\n"
                f"http_interface = 127.0.0.1\nhttp_port = {http_port}\n"
                f"gevent_port = {free_port()}\n"
                "server_wide_modules = base,web,numikube_staging\n"
                f"smtp_server = 127.0.0.1\nsmtp_port = {self.smtp_port}\n"
                "max_cron_threads = 1\n"
                f"pg_path = {PG_BIN}\n"
                + extra
            )
        return conf

    def odoo(self, conf, *args, name=None):
        cmd = [ODOO_PYTHON, ODOO_BIN, "-c", conf, *args]
        if name:
            return self.spawn(name, cmd)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return None

    def stop(self):
        for name, child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
        subprocess.run(self.as_nobody + [f"{PG_BIN}/pg_ctl", "-D", self.pgdata, "-m",
                                         "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if KEEP:
            say(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, what, condition, detail=""):
        if condition:
            self.passed += 1
            say(f"ok   {what}")
        else:
            self.failed += 1
            say(f"FAIL {what} {detail}")
        return condition


def main():
    world = World()
    checks = Checks()
    try:
        run(world, checks)
    except Exception:  # the report must say what broke, then clean up
        traceback.print_exc()
        for name in ("sidecar", "staging", "production"):
            say(f"--- tail of {name}.log\n{world.log_tail(name)}")
        checks.failed += 1
    finally:
        world.stop()
    print(f"e2e_odoo: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


def run(world, checks):
    world.start_postgres()
    world.start_s3()
    world.start_smtp()
    say(f"PostgreSQL :{world.pg_port}, S3 :{world.s3_port}, SMTP :{world.smtp_port}")

    # -- production ---------------------------------------------------------
    prod_port = free_port()
    prod_conf = world.odoo_conf("production", "odoo_prod", prod_port)
    say("production: installing numikube_staging in database prod")
    world.odoo(prod_conf, "-d", "prod", "-i", "numikube_staging", "--without-demo=all",
               "--stop-after-init")
    # A second database of production: requests without a session choose no
    # database, so the callback must open the one its URL names.
    world.psql("postgres", "CREATE DATABASE prod_other OWNER odoo_prod")
    dump = world.path("cosmos.dump")
    subprocess.run([f"{PG_BIN}/pg_dump", "-h", "127.0.0.1", "-p", str(world.pg_port),
                    "-U", "postgres", "-Fc", "-f", dump, "prod"], check=True)
    world.s3.upload_file(dump, BUCKET, f"{CLIENT}-prod_20261124_0300.dump")
    say(f"backup {CLIENT}-prod_20261124_0300.dump uploaded ({os.path.getsize(dump)} bytes)")
    prod_uuid = world.psql("prod", "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")

    world.odoo(prod_conf, name="production")
    # -- staging: no database at all, the sidecar beside it -----------------
    stage_port, sidecar_port = free_port(), free_port()
    stage_conf = world.odoo_conf(
        "staging", "odoo_stage", stage_port,
        f"numikube_staging_token = {TOKEN}\n"
        f"numikube_staging_sidecar = 127.0.0.1:{sidecar_port}\n"
        f"backups_minio_bucket = {BUCKET}\n"
        f"minio_endpoint = 127.0.0.1:{world.s3_port}\n"
        f"minio_access_key = {S3_KEY}\nminio_secret_key = {S3_SECRET}\n"
        "minio_secure = False\nminio_region = us-east-1\n"
        "email_from = staging@example.com\n",
    )
    world.odoo(stage_conf, name="staging")
    world.spawn("sidecar", [SIDECAR_BIN, "serve", "-c", stage_conf],
                env={**os.environ, "NUMIKUBE_LOG": "info"})
    for name, port in (("production", prod_port), ("staging", stage_port),
                       ("sidecar", sidecar_port)):
        wait_for(f"{name} on port {port}", lambda p=port: port_open(p), 120)
    say(f"production :{prod_port}, staging :{stage_port}, sidecar :{sidecar_port}")

    # -- production's external API --------------------------------------------
    prod_url = f"http://127.0.0.1:{prod_port}"
    common = xmlrpc.client.ServerProxy(f"{prod_url}/xmlrpc/2/common")
    uid = common.authenticate("prod", "admin", "admin", {})
    models = xmlrpc.client.ServerProxy(f"{prod_url}/xmlrpc/2/object", allow_none=True)

    def call(model, method, *args, **kw):
        return models.execute_kw("prod", uid, "admin", model, method, list(args), kw)

    call("ir.config_parameter", "set_param", "web.base.url", prod_url)
    call("res.users", "write", [uid], {"email": "admin@prod.example.com"})
    env_id = call("staging.environment", "create", {
        "name": "Lab", "url": f"http://127.0.0.1:{stage_port}", "client": CLIENT,
        "level": "lab", "token": TOKEN,
    })
    job_id = call("staging.job", "create", {
        "environment_id": env_id, "type_": "prod2x", "suffix": "e2e", "timestamp": True,
    })
    call("staging.job", "run", [job_id])
    fields = ["state", "database_name", "error", "traceback", "dropdb_report"]
    job = call("staging.job", "read", [job_id], fields)[0]
    say(f"after Run: {job['state']} {job['database_name']} {job['error'] or ''}")
    checks.check("Run answers at once with Running and the future name",
                 job["state"] in ("running", "done") and job["database_name"], job)
    db_name = job["database_name"]
    checks.check("name is <client>-<level>_<timestamp>_<suffix>",
                 bool(db_name) and db_name.startswith("cosmos-lab_") and db_name.endswith("_e2e"),
                 db_name)

    def finished():
        state = call("staging.job", "read", [job_id], fields)[0]
        return state if state["state"] in ("done", "error") else None

    job = wait_for("the job to be Done", finished, 300, every=2)
    checks.check("the job is Done after the callback", job["state"] == "done",
                 f"{job['error']}\n{job['traceback']}")
    exists = world.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{db_name}'")
    checks.check("the staging database exists", exists == "1")
    if exists == "1":
        neutralized = world.psql(db_name, "SELECT value FROM ir_config_parameter "
                                          "WHERE key = 'database.is_neutralized'")
        checks.check("it is neutralized", neutralized.lower() in ("true", "1"), neutralized)
        # Odoo's own neutralize.sql keeps base.autovacuum_job running.
        crons = world.psql(db_name, "SELECT count(*) FROM ir_cron WHERE active AND id NOT IN "
                                    "(SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' "
                                    "AND module = 'base' AND name = 'autovacuum_job')")
        checks.check("its crons are off (but autovacuum)", crons == "0", crons)
        servers = world.psql(db_name, "SELECT string_agg(smtp_host, ',') FROM ir_mail_server "
                                      "WHERE active")
        checks.check("its only active mail server goes nowhere", servers == "invalid", servers)
        uuid = world.psql(db_name, "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
        checks.check("it has a new database.uuid", uuid and uuid != prod_uuid, uuid)
        owner = world.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                       f"WHERE datname = '{db_name}'")
        checks.check("it belongs to the staging's db_user", owner == "odoo_stage", owner)

    selector = f"http://127.0.0.1:{stage_port}/web/database/selector"

    def done_mail():
        for message in world.mails():
            body = message.get_body(("html", "plain"))
            text = body.get_content() if body else ""
            if db_name in str(message["subject"]) and selector in text:
                return message
        return None

    mail = wait_for("the done mail on the SMTP server", done_mail, 180, every=2)
    checks.check("the SMTP server received the done mail with the selector link",
                 bool(mail) and "admin@prod.example.com" in str(mail["to"]), mail and mail["to"])

    # -- a Drop Databases job removes it -------------------------------------
    drop_id = call("staging.job", "create", {
        "environment_id": env_id, "type_": "dropdb",
        "dropdb_database_names": f"{db_name}\ncosmos-lab_missing",
    })
    call("staging.job", "run", [drop_id])
    drop = call("staging.job", "read", [drop_id], fields)[0]
    say(f"drop job: {drop['state']} {drop['error'] or ''} {drop['dropdb_report'] or ''}")
    checks.check("the drop job is Done", drop["state"] == "done", drop)
    checks.check("its report names the dropped and the missing database",
                 f"Dropped: {db_name}" in (drop["dropdb_report"] or "")
                 and "Not found: cosmos-lab_missing" in (drop["dropdb_report"] or ""),
                 drop["dropdb_report"])
    gone = world.psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{db_name}'")
    checks.check("the staging database is gone", gone == "0")

    # -- the staging route refuses a wrong token with the sidecar's sentence ----
    request = urllib.request.Request(
        f"http://127.0.0.1:{stage_port}/web/staging/run",
        data=json.dumps({"token": "wrong", "client": CLIENT, "type": "prod2x",
                         "timestamp": True, "level": "lab",
                         "callback": f"{prod_url}/web/staging/callback/1?db=prod"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    error = answer.get("error", {}).get("data", {})
    checks.check("a wrong token is an AccessError from the staging route",
                 error.get("name") == "odoo.exceptions.AccessError", answer)


if __name__ == "__main__":
    sys.exit(main())
