"""End-to-end test of numikube-staging with two real Odoo 18.0 servers.

Run it through tests/e2e_odoo/run (which finds the tools). On loopback only:

1. a throw-away PostgreSQL cluster (as user nobody when run as root), with one
   role for production and one for staging, so that each Odoo sees only its
   own databases;
2. moto's S3 server with a bucket, an aiosmtpd SMTP server writing a Maildir;
3. production: database ``prod`` with numikube_staging installed, plus an
   empty second database so that the callback must name its database (?db=);
   two custom-format dumps of it are uploaded as the client's backups: an
   older small one and a newer one of about E2E_BACKUP_MB (500) MB;
4. staging: an Odoo with no database at all, numikube_staging server-wide,
   and the real sidecar beside it, all reading the same odoo.conf;
5. through production's external API (JSON-RPC), as the admin user, the
   steps of STEPS below, each reported PASS or FAIL on its own (a step that
   fails does not stop the next ones, unless it made something they need).

With BROWSER=1 the servers stay up after the steps for tests/e2e_odoo/
browser.mjs (Chromium driven by playwright-core), which walks the web client
as a Run Staging user and takes the addon's screenshots. HOLD=1 keeps them up
until the file it names is removed (to run browser.mjs by hand).

E2E_STEPS=name,name runs only those steps (the others are SKIP; E2E_STEPS=-
with BROWSER=1: the browser walk alone).

Prints 'e2e_odoo: N passed, N failed' at the end; exits non-zero on failure.
"""

import base64
import email
import email.policy
import hashlib
import itertools
import json
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
import urllib.error
import urllib.request

ODOO_BIN = os.environ["ODOO_BIN"]
ODOO_PYTHON = os.environ["ODOO_PYTHON"]
ODOO_ADDONS_PATH = os.environ["ODOO_ADDONS_PATH"]
SIDECAR_BIN = os.environ["SIDECAR_BIN"]
PG_BIN = os.environ["PG_BIN"]
ADDON_DIR = os.environ["ADDON_DIR"]
KEEP = os.environ.get("KEEP") == "1"
BROWSER = os.environ.get("BROWSER") == "1"
HOLD = os.environ.get("HOLD") == "1"
BACKUP_MB = int(os.environ.get("E2E_BACKUP_MB", "500"))
ONLY = {s.strip() for s in os.environ.get("E2E_STEPS", "").split(",") if s.strip()}
HERE = os.path.dirname(os.path.abspath(__file__))

TOKEN = "e2e-staging-token"
BUCKET = "cosmos-backups"
CLIENT = "cosmos"
S3_KEY, S3_SECRET = "e2e-access", "e2e-secret-key"
OLDER_KEY = f"{CLIENT}_20261124_0300.dump"
NEWEST_KEY = f"{CLIENT}_20261125_0300.dump"
# The older backup's companion archive of production's filestore (docs/contract.md
# *Restore -> Filestore*), and the same dump again without one (for
# numikube_staging_filestore_source).
COMPANION_KEY = f"{CLIENT}_20261124_0300.filestore.tar.gz"
BARE_KEY = f"{CLIENT}_20261124_0900.dump"
# The people planted in production before its backups are made (the anonymize
# step looks for every one of these values in the anonymized copy).
PEOPLE = [
    {"name": "Zoe Plantee-Vasquez", "email": "zoe.plantee@customers-e2e.example",
     "phone": "+1 514 555 0199", "street": "17 rue des Plantes-Cachees", "vat": "FR88776655443"},
    {"name": "Bruno Testeur-Marchand", "email": "bruno.testeur@customers-e2e.example",
     "phone": "+1 438 555 0177", "street": "42 avenue Planquee-Secrete", "vat": "CA55443322101"},
]
PORTAL = {"name": "Paula Portail-Discret", "login": "paula.portail@customers-e2e.example",
          "password": "portal-pw-e2e"}
ATTACHMENT_NAME = "e2e-production-scan.bin"
ADMIN_EMAIL = "admin@prod.example.com"
STAGING_EMAIL = "staging@example.com"
RUNNER = ("runner", "runner-pw", "runner@prod.example.com")  # a Run Staging user
EXPIRE_AFTER, EXPIRE_WARNING = 60, 30  # seconds, for the expiry step
NO_TEMPLATES = "numikube_staging_template_cache = False\n"
# The fields of staging.job that the seed had; newer ones are read if present.
JOB_FIELDS = ["state", "database_name", "error", "traceback", "dropdb_report"]
NEW_JOB_FIELDS = ["phase", "progress", "backup_key", "staging_job_id"]
DATABASE_FIELDS = ["name", "size_bytes", "created_at", "expires_at", "backup", "requested_by"]


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


class RpcError(Exception):
    """An Odoo error answered through JSON-RPC: its exception name and message."""

    def __init__(self, error):
        data = error.get("data") or {}
        self.name = data.get("name") or ""
        self.message = data.get("message") or error.get("message") or str(error)
        self.debug = data.get("debug") or ""
        super().__init__(f"{self.name}: {self.message}")


class Odoo:
    """Odoo's external API (JSON-RPC /jsonrpc, which, unlike XML-RPC, carries a
    method's None) as one user of one database."""

    _ids = itertools.count(1)

    def __init__(self, url, db, login, password):
        self.url, self.db, self.password = url, db, password
        self.uid = self.rpc("common", "authenticate", db, login, password, {})
        if not self.uid:
            raise AssertionError(f"{login} cannot log in to {url} ({db})")

    def rpc(self, service, method, *args):
        body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                           "params": {"service": service, "method": method,
                                      "args": list(args)}}).encode()
        request = urllib.request.Request(f"{self.url}/jsonrpc", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=180) as response:
            answer = json.load(response)
        if answer.get("error"):
            raise RpcError(answer["error"])
        return answer.get("result")

    def call(self, model, method, *args, **kw):
        return self.rpc("object", "execute_kw", self.db, self.uid, self.password,
                        model, method, list(args), kw)

    def fields(self, model):
        return set(self.call(model, "fields_get", attributes=["type"]))


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

    def stop_child(self, name):
        for child_name, child in self.children:
            if child_name == name and child.poll() is None:
                child.terminate()
                try:
                    child.wait(15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()

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
            self.psql("postgres", f"CREATE ROLE {role} LOGIN CREATEDB CREATEROLE PASSWORD 'odoo-pw'")
        # docs/contract.md *Hidden*: copies being restored belong to the NOLOGIN work
        # role (default <db_user>_staging) of which db_user is a member. The
        # staging's db_user may not create roles (no CREATEROLE), so the
        # superuser runs once the two statements the sidecar asks for.
        self.psql("postgres", "CREATE ROLE odoo_stage_staging NOLOGIN; "
                              "GRANT odoo_stage_staging TO odoo_stage")

    def psql(self, db, sql):
        out = subprocess.run(
            [f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres",
             "-d", db, "-XAtqc", sql],
            check=False, capture_output=True, text=True,
        )
        if out.returncode:
            raise AssertionError(f"psql -d {db}: {out.stderr.strip()}")
        return out.stdout.strip()

    def databases(self):
        """Every database of the cluster, hidden (work, template) ones too."""
        return set(self.psql("postgres", "SELECT datname FROM pg_database").split())

    def db_exists(self, name):
        return name in self.databases()

    def pg_dump(self, db, path, *args):
        subprocess.run([f"{PG_BIN}/pg_dump", "-h", "127.0.0.1", "-p", str(self.pg_port),
                        "-U", "postgres", "-Fc", *args, "-f", path, db], check=True)

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
        for _name, child in reversed(self.children):
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


class Blocked(AttributeError):
    """A step cannot run: an earlier one did not make what it needs (an
    AttributeError, so that getattr(ctx, name, default) still works)."""


class Checks:
    """Checks counted one by one, grouped in steps reported PASS/FAIL/SKIP."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.steps = []  # [name, title, status, note]
        self.current = None

    def check(self, what, condition, detail=""):
        if condition:
            self.passed += 1
            say(f"ok   {what}")
        else:
            self.failed += 1
            say(f"FAIL {what} {detail}")
            if self.current:
                self.current[2] = "FAIL"
                if not self.current[3]:
                    self.current[3] = f"first failed check: {what}"
        return condition

    def step(self, name, title, body, ctx, always=False):
        entry = [name, title, "PASS", ""]
        self.steps.append(entry)
        if ONLY and name not in ONLY and not always:
            entry[2] = "SKIP"
            return
        say(f"=== step {name}: {title}")
        self.current = entry
        started = time.monotonic()
        try:
            body(ctx)
        except Blocked as err:
            self.failed += 1
            entry[2], entry[3] = "FAIL", f"{entry[3]}; blocked: {err}".strip("; ")
            say(f"FAIL {name}: blocked: {err}")
        except RpcError as err:
            self.failed += 1
            entry[2], entry[3] = "FAIL", f"{entry[3]}; Odoo: {err.name}: {err.message}".strip("; ")[:300]
            say(f"FAIL {name}: Odoo answered {err.name}: {err.message}")
        except Exception as err:  # the report must say what broke, then go on
            self.failed += 1
            entry[2], entry[3] = "FAIL", f"{entry[3]}; {type(err).__name__}: {err}".strip("; ")[:300]
            traceback.print_exc()
        finally:
            self.current = None
            entry[3] = (entry[3] + f" ({time.monotonic() - started:.0f}s)").strip()
            say(f"=== step {name}: {entry[2]} {entry[3]}")

    def summary(self):
        say("steps:")
        for name, title, status, note in self.steps:
            say(f"  {status:<4} {name:<14} {title}{'  -- ' + note if note else ''}")


class Ctx:
    """What the steps share: the servers, the API and what earlier steps made."""

    def __getattr__(self, name):  # only for attributes never set
        raise Blocked(f"no {name!r}: the step that makes it failed or did not run")


# ----------------------------------------------------------------------- setup

def make_backups(world, ctx):
    """The client's two backups in S3: an older small one, marked 'older', and a
    newer one of about BACKUP_MB MB (uncompressed custom format, ballast tables
    of 1 kB rows), marked 'newest'. Both are custom dumps of production."""
    world.psql("prod", "CREATE TABLE e2e_backup_marker (name text); "
                       "INSERT INTO e2e_backup_marker VALUES ('older')")
    older = world.path("older.dump")
    world.pg_dump("prod", older)
    world.s3.upload_file(older, BUCKET, OLDER_KEY)
    say(f"backup {OLDER_KEY} uploaded ({os.path.getsize(older)} bytes)")
    ctx.older_dump = older
    # Its companion: production's filestore as it is now (Odoo's xx/<sha1>
    # tree at the archive's root), made right after the dump.
    companion = ctx.companion = world.path("older.filestore.tar.gz")
    with tarfile.open(companion, "w:gz") as tar:
        for entry in sorted(os.listdir(ctx.prod_filestore)):
            tar.add(os.path.join(ctx.prod_filestore, entry), arcname=entry)
    world.s3.upload_file(companion, BUCKET, COMPANION_KEY)
    say(f"companion {COMPANION_KEY} uploaded ({os.path.getsize(companion)} bytes)")
    # The same dump again, with no companion: its copy's files can only come
    # from numikube_staging_filestore_source.
    time.sleep(1.1)
    world.s3.upload_file(older, BUCKET, BARE_KEY)
    say(f"backup {BARE_KEY} uploaded (the older dump, no companion)")

    tables = max(1, BACKUP_MB // 25)
    rows = BACKUP_MB * 1024 * 1024 // 1040 // tables
    t = time.monotonic()
    world.psql("prod", "UPDATE e2e_backup_marker SET name = 'newest'; " + " ".join(
        f"CREATE TABLE e2e_ballast_{i} AS SELECT g AS id, repeat(md5((g + {i * rows})::text), 32)"
        f" AS filler FROM generate_series(1, {rows}) g;" for i in range(tables)))
    newest = world.path("newest.dump")
    world.pg_dump("prod", newest, "-Z0")
    time.sleep(1.1)  # a later last-modified than the older one's
    world.s3.upload_file(newest, BUCKET, NEWEST_KEY)
    # Its companion too (the filestore has not changed since the older one's):
    # every copy of the newest backup gets production's files.
    world.s3.upload_file(ctx.companion, BUCKET, NEWEST_KEY.replace(".dump", ".filestore.tar.gz"))
    ctx.newest_size = os.path.getsize(newest)
    say(f"backup {NEWEST_KEY} uploaded ({ctx.newest_size / 1e6:.0f} MB, {tables} ballast "
        f"tables, {time.monotonic() - t:.0f}s)")
    os.unlink(newest)
    world.psql("prod", " ".join(f"DROP TABLE e2e_ballast_{i};" for i in range(tables))
               + " UPDATE e2e_backup_marker SET name = 'production'")


def plant(ctx, odoo):
    """Production's people (partners with e-mail, phone, street and VAT, a
    chatter note quoting one of them, a portal user whose login is an e-mail)
    and an attachment with real content in its filestore."""
    ids = [odoo.call("res.partner", "create", dict(person)) for person in PEOPLE]
    other = PEOPLE[1]
    odoo.call("res.partner", "message_post", [ids[0]],
              body=f"Spoke with {other['name']} ({other['email']}, {other['phone']}): "
                   "she wants the invoice at her home address.",
              message_type="comment", subtype_xmlid="mail.mt_note")
    portal = odoo.call("ir.model.data", "check_object_reference", "base", "group_portal")[1]
    odoo.call("res.users", "create", {
        "name": PORTAL["name"], "login": PORTAL["login"], "email": PORTAL["login"],
        "password": PORTAL["password"], "groups_id": [(6, 0, [portal])],
    })
    # 64 kB that no other file has: a download from a copy must give these bytes.
    content = b"".join(hashlib.sha256(f"e2e-{i}".encode()).digest() for i in range(2048))
    ctx.attachment_bytes = content
    ctx.attachment_id = odoo.call("ir.attachment", "create", {
        "name": ATTACHMENT_NAME, "datas": base64.b64encode(content).decode(),
        "res_model": "res.partner", "res_id": ids[0],
    })
    fname = odoo.call("ir.attachment", "read", [ctx.attachment_id], ["store_fname"])[0][
        "store_fname"]
    say(f"planted {len(PEOPLE)} partners, a chatter note, portal user {PORTAL['login']}, "
        f"attachment {ctx.attachment_id} ({fname})")
    if not fname or not os.path.isfile(os.path.join(ctx.prod_filestore, fname)):
        raise AssertionError(f"the attachment's file {fname} is not in {ctx.prod_filestore}")


def staging_extra(sidecar_port, more=""):
    return (
        f"numikube_staging_token = {TOKEN}\n"
        f"numikube_staging_sidecar = 127.0.0.1:{sidecar_port}\n"
        f"backups_minio_bucket = {BUCKET}\n"
        f"minio_endpoint = 127.0.0.1:{WORLD.s3_port}\n"
        f"minio_access_key = {S3_KEY}\nminio_secret_key = {S3_SECRET}\n"
        "minio_secure = False\nminio_region = us-east-1\n"
        f"email_from = {STAGING_EMAIL}\n" + more
    )


def setup(world, ctx):
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
    ctx.prod_uuid = world.psql(
        "prod", "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")
    ctx.prod_filestore = os.path.join(world.path("production-data"), "filestore", "prod")

    # Production runs before its backups are made: the people and the
    # attachment the anonymize and filestore steps look for are made through
    # its API, as a user would, so that every backup holds them.
    world.odoo(prod_conf, name="production")
    wait_for(f"production on port {prod_port}", lambda: port_open(prod_port), 120)
    ctx.prod_url = f"http://127.0.0.1:{prod_port}"
    plant(ctx, Odoo(ctx.prod_url, "prod", "admin", "admin"))
    make_backups(world, ctx)
    # -- staging: no database at all, the sidecar beside it -----------------
    stage_port, sidecar_port = free_port(), free_port()
    ctx.stage_conf = world.odoo_conf("staging", "odoo_stage", stage_port,
                                     staging_extra(sidecar_port))
    ctx.sidecar_port = sidecar_port
    with open(ctx.stage_conf, encoding="utf-8") as f:
        ctx.stage_conf_text = f.read()
    world.odoo(ctx.stage_conf, name="staging")
    world.spawn("sidecar", [SIDECAR_BIN, "serve", "-c", ctx.stage_conf],
                env={**os.environ, "NUMIKUBE_LOG": "info"})
    for name, port in (("production", prod_port), ("staging", stage_port),
                       ("sidecar", sidecar_port)):
        wait_for(f"{name} on port {port}", lambda p=port: port_open(p), 120)
    say(f"production :{prod_port}, staging :{stage_port}, sidecar :{sidecar_port}")

    # -- production's external API, the environment, a Run Staging user ------
    ctx.stage_url = f"http://127.0.0.1:{stage_port}"
    odoo = ctx.odoo = Odoo(ctx.prod_url, "prod", "admin", "admin")
    odoo.call("ir.config_parameter", "set_param", "web.base.url", ctx.prod_url)
    odoo.call("res.users", "write", [odoo.uid], {"email": ADMIN_EMAIL})
    ctx.env_id = odoo.call("staging.environment", "create", {
        "name": "Lab", "url": ctx.stage_url, "client": CLIENT, "level": "lab", "token": TOKEN,
    })
    group = odoo.call("ir.model.data", "check_object_reference",
                      "numikube_staging", "group_run_staging")[1]
    ctx.runner_id = odoo.call("res.users", "create", {
        "name": "Marc Runner", "login": RUNNER[0], "password": RUNNER[1], "email": RUNNER[2],
        "groups_id": [(6, 0, [group])],
    })
    ctx.job_fields = odoo.fields("staging.job")
    missing = [f for f in NEW_JOB_FIELDS if f not in ctx.job_fields]
    if missing:
        say(f"note: staging.job has no field {', '.join(missing)} yet")


# ----------------------------------------------------------------------- helpers

def restart_sidecar(ctx, extra=""):
    """The sidecar again, its odoo.conf (the staging's) plus ``extra`` keys."""
    world = WORLD
    world.stop_child("sidecar")
    with open(ctx.stage_conf, "w", encoding="utf-8") as f:
        f.write(ctx.stage_conf_text + extra)
    world.spawn("sidecar", [SIDECAR_BIN, "serve", "-c", ctx.stage_conf],
                env={**os.environ, "NUMIKUBE_LOG": "info"})
    wait_for("the sidecar again", lambda: port_open(ctx.sidecar_port), 60)
    time.sleep(3)  # its start-up cleanup
    say("sidecar restarted" + (" with " + ", ".join(extra.strip().splitlines()) if extra else ""))


def read_job(ctx, job_id):
    fields = JOB_FIELDS + [f for f in NEW_JOB_FIELDS if f in ctx.job_fields]
    return ctx.odoo.call("staging.job", "read", [job_id], fields)[0]


def refresh(ctx, job_id):
    """refresh_status() then read; remembers (once) that it failed."""
    if getattr(ctx, "refresh_error", None) is None:
        try:
            ctx.odoo.call("staging.job", "refresh_status", [job_id])
        except RpcError as err:
            ctx.refresh_error = err
            say(f"refresh_status() failed: {err.name}: {err.message}")
    return read_job(ctx, job_id)


def new_job(ctx, suffix, **values):
    return ctx.odoo.call("staging.job", "create", {
        "environment_id": ctx.env_id, "type_": "prod2x", "suffix": suffix, "timestamp": True,
        **values,
    })


def wait_finished(ctx, job_id, timeout=600, samples=None, every=2.0):
    """Polls the job (through refresh_status() when samples are wanted) until it
    is Done or in Error; samples gets (seconds, state, phase, progress)."""
    start = time.monotonic()

    def finished():
        job = refresh(ctx, job_id) if samples is not None else read_job(ctx, job_id)
        if samples is not None:
            samples.append((time.monotonic() - start, job["state"], job.get("phase"),
                            job.get("progress")))
        return job if job["state"] in ("done", "error") else None

    return wait_for(f"job {job_id} to be Done or in Error", finished, timeout,
                    every=0.5 if samples is not None else every)


def make_copy(ctx, checks, suffix, **values):
    """A prod2x job run to Done: its database name."""
    job_id = new_job(ctx, suffix, **values)
    ctx.odoo.call("staging.job", "run", [job_id])
    job = wait_finished(ctx, job_id)
    if not checks.check(f"job {suffix} is Done", job["state"] == "done",
                        f"{job['error']}\n{job['traceback']}"):
        raise AssertionError(f"job {suffix} is {job['state']}: {job['error']}")
    return job_id, job["database_name"]


def copies(ctx):
    """action_refresh_databases(), then the environment's staging.database records."""
    odoo = ctx.odoo
    odoo.call("staging.environment", "action_refresh_databases", [ctx.env_id])
    ids = odoo.call("staging.environment", "read", [ctx.env_id], ["database_ids"])[0][
        "database_ids"]
    return {r["name"]: r for r in odoo.call("staging.database", "read", ids,
                                            DATABASE_FIELDS)} if ids else {}


def offers_backups(ctx):
    """The environment offers a choice of backup (its staging answers
    /web/staging/backups)."""
    if "offers_backups" not in ctx.odoo.fields("staging.environment"):
        return False
    return ctx.odoo.call("staging.environment", "read", [ctx.env_id],
                         ["offers_backups"])[0]["offers_backups"]


def mails_about(world, db_name, sender=None):
    found = []
    for message in world.mails():
        body = message.get_body(("html", "plain"))
        text = f"{message['subject']}\n{body.get_content() if body else ''}"
        if db_name in text and (sender is None or sender in str(message["from"])):
            found.append((message, text))
    return found


# ----------------------------------------------------------------------- steps

def step_seed(ctx, checks):
    """The seed's flow on the newest (≈500 MB) backup, sampling progress."""
    world, odoo = WORLD, ctx.odoo
    job_id = new_job(ctx, "e2e")
    odoo.call("staging.job", "run", [job_id])
    job = read_job(ctx, job_id)
    say(f"after Run: {job['state']} {job['database_name']} {job['error'] or ''}")
    checks.check("Run answers at once with Running and the future name",
                 job["state"] in ("running", "done") and job["database_name"], job)
    db_name = job["database_name"]
    checks.check("name is <client>-<level>_<timestamp>_<suffix>",
                 bool(db_name) and db_name.startswith("cosmos-lab_") and db_name.endswith("_e2e"),
                 db_name)
    ctx.progress_samples = []
    job = wait_finished(ctx, job_id, samples=ctx.progress_samples)
    checks.check("the job is Done after the callback", job["state"] == "done",
                 f"{job['error']}\n{job['traceback']}")
    exists = world.db_exists(db_name)
    checks.check("the staging database exists", exists)
    if exists:
        ctx.copy_a = db_name
        # docs/contract.md "Done means open": Odoo can open the copy once it is Done.
        is_open = world.psql("postgres", "SELECT datallowconn FROM pg_database "
                                         f"WHERE datname = '{db_name}'")
        checks.check("it accepts connections as soon as the job is Done", is_open == "t",
                     f"datallowconn={is_open}")
        wait_for(f"{db_name} to accept connections", lambda: world.psql(
            "postgres", f"SELECT datallowconn FROM pg_database WHERE datname = '{db_name}'")
            == "t", 60, 1)
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
        checks.check("it has a new database.uuid", uuid and uuid != ctx.prod_uuid, uuid)
        owner = world.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                                       f"WHERE datname = '{db_name}'")
        checks.check("it belongs to the staging's db_user", owner == "odoo_stage", owner)

    selector = f"{ctx.stage_url}/web/database/selector"

    def done_mail():
        for message, text in mails_about(world, db_name):
            if db_name in str(message["subject"]) and selector in text:
                return message
        return None

    mail = wait_for("the done mail on the SMTP server", done_mail, 180, every=2)
    checks.check("the SMTP server received the done mail with the selector link",
                 bool(mail) and ADMIN_EMAIL in str(mail["to"]), mail and mail["to"])


def step_progress(ctx, checks):
    """progress read through refresh_status() takes >= 3 increasing values before Done."""
    samples = ctx.progress_samples
    checks.check(f"the newest backup is about {BACKUP_MB} MB",
                 ctx.newest_size >= BACKUP_MB * 0.9e6, ctx.newest_size)
    err = getattr(ctx, "refresh_error", None)
    checks.check("staging.job.refresh_status() answers", err is None,
                 err and f"{err.name}: {err.message}")
    checks.check("staging.job has phase and progress",
                 {"phase", "progress"} <= ctx.job_fields)
    if err is not None or "progress" not in ctx.job_fields:
        return
    shown, last = [], None
    for seconds, state, phase, progress in samples:
        if (state, phase, progress) != last:
            shown.append(f"{seconds:.1f}s {state}/{phase or '-'}/{progress}")
            last = (state, phase, progress)
    say("progress: " + " -> ".join(shown))
    values = [p for _s, _st, _ph, p in samples if p not in (None, False)]
    running = []
    for _s, state, _ph, progress in samples:
        if state == "running" and progress not in (None, False) and progress not in running:
            running.append(progress)
    checks.check("progress takes at least three increasing values while Running",
                 len(running) >= 3 and running == sorted(running), running)
    checks.check("progress never goes back", values == sorted(values), values)
    checks.check("progress is below 100 while Running", all(p < 100 for p in running), running)
    final = samples[-1]
    checks.check("progress is 100 when Done", final[1] == "done" and final[3] == 100, final)
    phases = [ph for _s, st, ph, _p in samples if st == "running" and ph]
    checks.check("a phase is shown while Running", bool(phases), phases[:3])


def step_list(ctx, checks):
    """The environment lists the copy with its size (action_refresh_databases)."""
    db_name = ctx.copy_a
    listed = copies(ctx)
    say(f"database_ids: {sorted(listed)}")
    record = listed.get(db_name)
    checks.check("the environment lists the copy", bool(record), sorted(listed))
    if not record:
        return
    size = record["size_bytes"] or 0
    actual = int(WORLD.psql("postgres", f"SELECT pg_database_size('{db_name}')"))
    say(f"listed: {record}")
    checks.check("with its size (about the database's)", 0.8 * actual <= size <= 1.2 * actual,
                 f"size_bytes={size}, pg_database_size={actual}")
    checks.check("made from the newest backup", record["backup"] == NEWEST_KEY, record["backup"])
    checks.check("requested by the user who ran the job", record["requested_by"] == ADMIN_EMAIL,
                 record["requested_by"])
    checks.check("with its creation time", bool(record["created_at"]), record["created_at"])
    action = ctx.odoo.call("staging.database", "action_open", [record["id"]])
    url = (action or {}).get("url", "")
    checks.check("Open goes to the staging's /web/login?db=<name> in a new tab",
                 url == f"{ctx.stage_url}/web/login?db={db_name}"
                 and (action or {}).get("target") == "new", action)


def step_drop_from_list(ctx, checks):
    """action_drop on the listed copy makes a Drop job and removes the copy."""
    db_name = ctx.copy_a
    record = copies(ctx).get(db_name)
    if not record:
        raise Blocked(f"{db_name} is not in database_ids")
    ctx.odoo.call("staging.database", "action_drop", [record["id"]])
    gone = wait_for(f"{db_name} to be dropped", lambda: not WORLD.db_exists(db_name), 120, 1)
    checks.check("the copy is gone from the staging", gone)
    jobs = ctx.odoo.call("staging.job", "search_read",
                         [("type_", "=", "dropdb"), ("dropdb_database_names", "ilike", db_name)],
                         ["state", "dropdb_report"])
    checks.check("through a Drop job that is Done, visible in Jobs",
                 any(j["state"] == "done" for j in jobs), jobs)
    checks.check("and no longer listed", db_name not in copies(ctx))


def step_older_backup(ctx, checks):
    """A job with backup_key = the older of two backups restores that one."""
    if "backup_key" not in ctx.job_fields:
        raise Blocked("staging.job has no field backup_key")
    backups = sorted(ctx.odoo.call("staging.job", "fields_get", ["backup_key"],
                                   attributes=["type", "selection"])["backup_key"].items())
    say(f"backup_key field: {dict(backups)}")
    job_id, db_name = make_copy(ctx, checks, "older", backup_key=OLDER_KEY)
    ctx.copy_b = db_name
    checks.check("the job keeps its backup_key",
                 read_job(ctx, job_id)["backup_key"] == OLDER_KEY)
    marker = WORLD.psql(db_name, "SELECT name FROM e2e_backup_marker")
    checks.check("the copy is the older backup's", marker == "older", marker)
    ballast = WORLD.psql(db_name, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'e2e_ballast_%'")
    checks.check("it has none of the newest backup's tables", ballast == "0", ballast)
    record = copies(ctx).get(db_name)
    checks.check("the environment lists it as made from the older backup",
                 bool(record) and record["backup"] == OLDER_KEY, record)


def step_dropjob(ctx, checks):
    """The seed's Drop Databases job: one copy and a missing name."""
    db_name = getattr(ctx, "copy_b", None) or getattr(ctx, "copy_a", None)
    if not db_name or not WORLD.db_exists(db_name):
        say("no copy left by the earlier steps: making one")
        _job, db_name = make_copy(ctx, checks, "e2e-drop")
    drop_id = ctx.odoo.call("staging.job", "create", {
        "environment_id": ctx.env_id, "type_": "dropdb",
        "dropdb_database_names": f"{db_name}\ncosmos-lab_missing",
    })
    ctx.odoo.call("staging.job", "run", [drop_id])
    drop = read_job(ctx, drop_id)
    say(f"drop job: {drop['state']} {drop['error'] or ''} {drop['dropdb_report'] or ''}")
    checks.check("the drop job is Done", drop["state"] == "done", drop)
    checks.check("its report names the dropped and the missing database",
                 f"Dropped: {db_name}" in (drop["dropdb_report"] or "")
                 and "Not found: cosmos-lab_missing" in (drop["dropdb_report"] or ""),
                 drop["dropdb_report"])
    checks.check("the staging database is gone", not WORLD.db_exists(db_name))


def step_wrong_token(ctx, checks):
    """The staging route refuses a wrong token with the sidecar's sentence."""
    request = urllib.request.Request(
        f"{ctx.stage_url}/web/staging/run",
        data=json.dumps({"token": "wrong", "client": CLIENT, "type": "prod2x",
                         "timestamp": True, "level": "lab",
                         "callback": f"{ctx.prod_url}/web/staging/callback/1?db=prod"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    error = answer.get("error", {}).get("data", {})
    checks.check("a wrong token is an AccessError from the staging route",
                 error.get("name") == "odoo.exceptions.AccessError", answer)


def step_cancel(ctx, checks):
    """action_cancel() during the restore of the big backup leaves no database."""
    # The seed's copy left a template of the newest backup: without the cache
    # the job restores the ≈500 MB dump again, long enough to be cancelled.
    restart_sidecar(ctx, NO_TEMPLATES)
    before = WORLD.databases()
    job_id = new_job(ctx, "cancel")
    ctx.odoo.call("staging.job", "run", [job_id])
    job = read_job(ctx, job_id)
    db_name = job["database_name"]
    checks.check("the job is Running", job["state"] == "running", job)
    # Cancel once the restore itself runs (the phase says so), or after 60 s.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = refresh(ctx, job_id)
        if job["state"] != "running" or "restor" in str(job.get("phase") or "").lower():
            break
        time.sleep(0.5)
    say(f"cancelling at {job['state']}/{job.get('phase')}/{job.get('progress')}")
    if not checks.check("the job is still Running when cancelled", job["state"] == "running", job):
        return
    ctx.odoo.call("staging.job", "action_cancel", [job_id])
    job = wait_finished(ctx, job_id, timeout=120)
    checks.check("the job is in Error, cancelled", job["state"] == "error"
                 and "cancel" in (job["error"] or "").lower(), f"{job['state']}: {job['error']}")

    def nothing_left():
        return WORLD.databases() - before == set()

    left = wait_for_or_false(nothing_left, 90)
    checks.check("no database is left on the staging (nor a hidden one)", left,
                 WORLD.databases() - before)
    checks.check("the copy's name never appeared", not WORLD.db_exists(db_name), db_name)
    time.sleep(5)  # a late callback of the cancelled run must not make it Done
    job = read_job(ctx, job_id)
    checks.check("the job stays in Error", job["state"] == "error", job["state"])


def wait_for_or_false(check, timeout, every=1.0):
    try:
        return wait_for("it", check, timeout, every)
    except AssertionError:
        return False


def step_expiry(ctx, checks):
    """A copy on a staging with numikube_staging_expire_after = 60s is mailed, then dropped."""
    world = WORLD
    restart_sidecar(ctx, NO_TEMPLATES + f"numikube_staging_expire_after = {EXPIRE_AFTER}s\n"
                         f"numikube_staging_expire_warning = {EXPIRE_WARNING}s\n")
    # The small older backup when the staging offers the choice; else the newest.
    values = {"backup_key": OLDER_KEY} if offers_backups(ctx) else {}
    _job, db_name = make_copy(ctx, checks, "expiry", **values)
    done_at = time.monotonic()
    deadline = EXPIRE_AFTER + 90  # the sweep runs every 10 s
    try:
        record = copies(ctx).get(db_name)
        checks.check("the listed copy has an expiry", bool(record and record["expires_at"]),
                     record)
    except RpcError as err:
        checks.check("the environment lists the copy", False, f"{err.name}: {err.message}")
    warning = wait_for_or_false(lambda: mails_about(world, db_name, sender=STAGING_EMAIL),
                                deadline, 2)
    if checks.check("the requester gets the expiry warning from the staging",
                    bool(warning) and any(ADMIN_EMAIL in str(m["to"]) for m, _t in warning),
                    [str(m["to"]) for m, _t in warning or []]):
        say(f"expiry warning: {warning[0][0]['subject']!r} "
            f"at {time.monotonic() - done_at:.0f}s after Done")
        checks.check("before the copy is dropped", world.db_exists(db_name))
    dropped = wait_for_or_false(lambda: not world.db_exists(db_name),
                                max(5, deadline - (time.monotonic() - done_at)), 2)
    checks.check("the expired copy is dropped", dropped)
    if dropped:
        say(f"dropped {time.monotonic() - done_at:.0f}s after Done")
        checks.check("and no longer listed", db_name not in copies(ctx))


def step_runner_rights(ctx, checks):
    """What the staging owns is the system's, also through the API; the
    callback route checks the token before it tells whether a job exists."""
    runner = Odoo(ctx.prod_url, "prod", RUNNER[0], RUNNER[1])
    job_id = runner.call("staging.job", "create", {
        "environment_id": ctx.env_id, "type_": "prod2x", "suffix": "rights", "timestamp": True,
    })
    for values in ({"state": "running"}, {"staging_job_id": "someone-elses-job"}):
        try:
            runner.call("staging.job", "write", [job_id], values)
            refused = None
        except RpcError as err:
            refused = err
        checks.check(f"the runner's write of {sorted(values)} is refused",
                     refused is not None and refused.name == "odoo.exceptions.AccessError",
                     refused)
    job = read_job(ctx, job_id)
    checks.check("the job is unchanged", job["state"] == "pending", job["state"])

    def callback(target):
        request = urllib.request.Request(
            f"{ctx.prod_url}/web/staging/callback/{target}?db=prod",
            data=json.dumps({"state": "done", "token": "a-guess"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response).get("error", {}).get("data", {})
        return data.get("name"), data.get("message")

    existing, unknown = callback(job_id), callback(job_id + 100000)
    checks.check("a wrong token gets one refusal for an existing and an unknown job",
                 existing == unknown == ("odoo.exceptions.AccessError",
                                         "Wrong given staging token"),
                 (existing, unknown))


def planted_values():
    """Every planted value that must not survive anonymization."""
    values = [PORTAL["login"], PORTAL["name"]]
    for person in PEOPLE:
        values += [person["name"], person["email"], person["phone"], person["street"],
                   person["vat"]]
    return values


def data_dump(db_name):
    """A plain pg_dump --data-only of a database (as the superuser), as text."""
    out = subprocess.run([f"{PG_BIN}/pg_dump", "-h", "127.0.0.1", "-p", str(WORLD.pg_port),
                          "-U", "postgres", "--data-only", db_name],
                         check=True, capture_output=True)
    return out.stdout.decode(errors="replace")


ANON_TABLES = ["res_partner", "res_users", "mail_message", "mail_mail", "mail_tracking_value",
               "mail_notification", "mail_followers", "res_partner_bank", "ir_attachment"]


def row_counts(db_name):
    return {t: WORLD.psql(db_name, f"SELECT count(*) FROM {t}") for t in ANON_TABLES}


def read_report(ctx, job_id):
    fields = [f for f in ("anonymize", "anonymize_report", "filestore", "missing_attachments")
              if f in ctx.job_fields]
    return ctx.odoo.call("staging.job", "read", [job_id], fields)[0]


def step_anonymize(ctx, checks):
    """The environment's anonymize: a masked copy of the older backup, where the
    admin (an internal user, the requester) still logs in."""
    world, odoo = WORLD, ctx.odoo
    if "anonymize" not in odoo.fields("staging.environment"):
        raise Blocked("staging.environment has no field anonymize")
    restart_sidecar(ctx, NO_TEMPLATES)
    # What the backup holds: the older dump restored as it is, for the counts
    # and to be sure the planted values are there to be masked.
    world.psql("postgres", "DROP DATABASE IF EXISTS e2e_reference")
    world.psql("postgres", "CREATE DATABASE e2e_reference")
    subprocess.run([f"{PG_BIN}/pg_restore", "-h", "127.0.0.1", "-p", str(world.pg_port),
                    "-U", "postgres", "--no-owner", "--no-acl", "-d", "e2e_reference",
                    ctx.older_dump], check=False, capture_output=True)
    reference = data_dump("e2e_reference").lower()
    absent = [v for v in planted_values() if v.lower() not in reference]
    checks.check("the backup holds every planted value", not absent, absent)
    odoo.call("staging.environment", "write", [ctx.env_id], {"anonymize": True})
    try:
        job_id, db_name = make_copy(ctx, checks, "anon", backup_key=OLDER_KEY)
    finally:
        odoo.call("staging.environment", "write", [ctx.env_id], {"anonymize": False})
    ctx.copy_anon = db_name
    job = read_report(ctx, job_id)
    say(f"anonymized job: {job}")
    checks.check("the job shows anonymize", job.get("anonymize") is True, job.get("anonymize"))
    report = job.get("anonymize_report") or ""
    checks.check("the job has the anonymization report, naming res_partner",
                 "res_partner" in report and "values masked" in report, report)
    copy = data_dump(db_name).lower()
    left = [v for v in planted_values() if v.lower() in copy]
    checks.check("no planted value is left in pg_dump --data-only of the copy", not left, left)
    for value in left[:3]:
        at = copy.find(value.lower())
        say(f"survivor {value!r}: ...{copy[max(0, at - 300):at + 100]!r}...")
    counts, ref_counts = row_counts(db_name), row_counts("e2e_reference")
    checks.check("the masked tables keep their row counts", counts == ref_counts,
                 {t: (ref_counts[t], counts[t]) for t in counts if counts[t] != ref_counts[t]})
    admin_login = world.psql(db_name, "SELECT login FROM res_users WHERE id = 2")
    checks.check("the admin (an internal user) keeps his login", admin_login == "admin",
                 admin_login)
    try:
        staged = Odoo(ctx.stage_url, db_name, "admin", "admin")
        logged = staged.uid
        name = staged.call("res.users", "read", [staged.uid], ["login"])[0]["login"]
    except (AssertionError, RpcError, urllib.error.URLError) as err:
        logged, name = False, str(err)
    checks.check("the requester (admin) logs in to the copy on the staging Odoo",
                 bool(logged) and name == "admin", name)
    try:
        Odoo(ctx.stage_url, db_name, PORTAL["login"], PORTAL["password"])
        portal_in = True
    except (AssertionError, RpcError):
        portal_in = False
    checks.check("the portal user's production login does not open the copy", not portal_in)
    world.psql("postgres", "DROP DATABASE IF EXISTS e2e_reference")


def source_folder(ctx):
    """numikube_staging_filestore_source for this test: production's filestore
    parent with {client}; <parent>/cosmos is a link to production's folder of
    database prod (its sha1 tree), so that {client} names it."""
    parent = os.path.dirname(ctx.prod_filestore)
    link = os.path.join(parent, CLIENT)
    if not os.path.lexists(link):
        os.symlink(os.path.basename(ctx.prod_filestore), link)
    return os.path.join(parent, "{client}"), link


def download(url, db_name, attachment_id):
    """Logs in to db_name as admin, then GET /web/content/<id>?download=true
    with the session cookie: (HTTP status, bytes)."""
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "db": db_name, "login": "admin", "password": "admin"}}).encode()
    request = urllib.request.Request(f"{url}/web/session/authenticate", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=180) as response:
        answer = json.load(response)
        cookies = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or []
                   if c.startswith("session_id=")]
    if answer.get("error") or not cookies:
        raise AssertionError(f"admin cannot log in to {db_name}: {answer.get('error')}")
    request = urllib.request.Request(f"{url}/web/content/{attachment_id}?download=true",
                                     headers={"Cookie": cookies[-1]})
    try:
        with urllib.request.urlopen(request, timeout=180) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def files_of(folder):
    """path -> (size, mtime_ns) of every file under folder."""
    found = {}
    for root, _dirs, names in os.walk(folder):
        for name in names:
            st = os.stat(os.path.join(root, name))
            found[os.path.join(root, name)] = (st.st_size, st.st_mtime_ns)
    return found


def check_download(ctx, checks, db_name, how):
    status, content = download(ctx.stage_url, db_name, ctx.attachment_id)
    checks.check(f"the attachment downloads from the copy ({how}): HTTP 200", status == 200,
                 f"HTTP {status}: {content[:200]!r}")
    checks.check(f"with production's bytes ({how})", content == ctx.attachment_bytes,
                 f"{len(content)} bytes, expected {len(ctx.attachment_bytes)}")


def step_filestore(ctx, checks):
    """Production's attachments in a copy of a custom dump: from its companion
    archive, then from numikube_staging_filestore_source."""
    world = WORLD
    if "filestore" not in ctx.job_fields:
        raise Blocked("staging.job has no field filestore")
    restart_sidecar(ctx, NO_TEMPLATES)
    job_id, db_name = make_copy(ctx, checks, "files", backup_key=OLDER_KEY)
    job = read_report(ctx, job_id)
    say(f"companion job: filestore={job['filestore']!r} missing={job['missing_attachments']}")
    checks.check("the job says its files came from the companion",
                 job["filestore"] == f"companion {COMPANION_KEY}", job["filestore"])
    checks.check("no attachment is missing its file", job["missing_attachments"] == 0,
                 job["missing_attachments"])
    check_download(ctx, checks, db_name, "companion")
    world.psql("postgres", f'DROP DATABASE "{db_name}" WITH (FORCE)')

    template, folder = source_folder(ctx)
    before = files_of(ctx.prod_filestore)
    restart_sidecar(ctx, NO_TEMPLATES + f"numikube_staging_filestore_source = {template}\n")
    job_id, db_name = make_copy(ctx, checks, "source", backup_key=BARE_KEY)
    job = read_report(ctx, job_id)
    say(f"source job: filestore={job['filestore']!r} missing={job['missing_attachments']}")
    checks.check("the job says its files came from production's folder",
                 job["filestore"] == f"source {folder}", job["filestore"])
    checks.check("no attachment is missing its file (source)", job["missing_attachments"] == 0,
                 job["missing_attachments"])
    check_download(ctx, checks, db_name, "source")
    after = files_of(ctx.prod_filestore)
    changed = [p for p, st in before.items() if after.get(p) != st]
    checks.check(f"production's {len(before)} files are unchanged (size, mtime)", not changed,
                 changed[:5])
    world.psql("postgres", f'DROP DATABASE "{db_name}" WITH (FORCE)')


STEPS = [
    ("seed", "Run -> Running -> Done on the newest backup, neutralized copy, done mail",
     step_seed),
    ("progress", f"progress through refresh_status() on the ≈{BACKUP_MB} MB backup",
     step_progress),
    ("list", "the environment lists the copy with its size; Open", step_list),
    ("drop_from_list", "action_drop from database_ids removes the copy", step_drop_from_list),
    ("older_backup", "backup_key = the older of two backups restores that one",
     step_older_backup),
    ("dropjob", "a Drop Databases job (a copy and a missing name)", step_dropjob),
    ("wrong_token", "the staging route refuses a wrong token", step_wrong_token),
    ("runner_rights", "a runner cannot write what the staging owns; callback token first",
     step_runner_rights),
    ("cancel", "action_cancel() during a restore leaves no database", step_cancel),
    ("expiry", f"expire_after = {EXPIRE_AFTER}s: warning mail, then dropped", step_expiry),
    ("anonymize", "environment anonymize: nothing planted left, same rows, admin logs in",
     step_anonymize),
    ("filestore", "an attachment downloads from copies: companion archive, source folder",
     step_filestore),
]


def browser_env(ctx):
    return {
        "PROD_URL": ctx.prod_url, "PROD_DB": "prod", "STAGE_URL": ctx.stage_url,
        "RUNNER_LOGIN": RUNNER[0], "RUNNER_PASSWORD": RUNNER[1],
        "ADMIN_LOGIN": "admin", "ADMIN_PASSWORD": "admin",
        "ENV_ID": str(ctx.env_id), "ERROR_JOB_ID": str(make_error_job(ctx)),
        "SHOTS": os.environ.get("SHOTS", os.path.join(ADDON_DIR, "numikube_staging",
                                                      "static", "description")),
    }


def browser_walk(ctx, checks):
    """tests/e2e_odoo/browser.mjs against these servers (BROWSER=1), the sidecar
    without templates (a real restore, whose progress shows) and with copies
    that expire in 14 days (docs/contract.md *Copies' life*: the environment's copies
    then show their expiry, as a staging with numikube_staging_expire_after does).
    The newest backup has its companion: the job forms say the files came from it."""
    restart_sidecar(ctx, NO_TEMPLATES + "numikube_staging_expire_after = 14d\n")
    out = subprocess.run(["node", os.path.join(HERE, "browser.mjs")],
                         env={**os.environ, **browser_env(ctx)}, timeout=900, check=False)
    checks.check("the browser walk passes", out.returncode == 0, f"exit {out.returncode}")


def make_error_job(ctx):
    """A job of the Run Staging user that the staging refused (for the screenshot
    of a job in Error): an environment whose token is wrong."""
    env_id = ctx.odoo.call("staging.environment", "create", {
        "name": "Test (old token)", "url": ctx.stage_url, "client": CLIENT, "level": "test",
        "token": "an-old-token",
    })
    runner = Odoo(ctx.prod_url, "prod", RUNNER[0], RUNNER[1])
    job_id = runner.call("staging.job", "create", {
        "environment_id": env_id, "type_": "prod2x", "suffix": "release-check",
        "timestamp": True,
    })
    runner.call("staging.job", "run", [job_id])
    return job_id


def hold(ctx):
    """HOLD=1: keep the servers up (for browser.mjs by hand) until <dir>/hold is removed."""
    flag = WORLD.path("hold")
    with open(flag, "w", encoding="utf-8") as f:
        f.write("".join(f"export {k}={v!r}\n" for k, v in browser_env(ctx).items()))
    say(f"HOLD=1: servers up; `. {flag}` sets browser.mjs's environment; rm {flag} to stop")
    while os.path.exists(flag):
        time.sleep(2)


WORLD = None


def main():
    global WORLD
    world = WORLD = World()
    checks = Checks()
    ctx = Ctx()
    try:
        setup(world, ctx)
    except Exception:  # the report must say what broke, then clean up
        traceback.print_exc()
        checks.failed += 1
        checks.steps.append(["setup", "the servers, the backups, the environment", "FAIL", ""])
    else:
        for name, title, body in STEPS:
            checks.step(name, title, lambda c, b=body: b(c, checks), ctx)
        if BROWSER:
            checks.step("browser", "the web client walk and screenshots (browser.mjs)",
                        lambda c: browser_walk(c, checks), ctx, always=True)
        if HOLD:
            hold(ctx)
    if any(status == "FAIL" for _n, _t, status, _note in checks.steps):
        for name in ("sidecar", "staging", "production"):
            say(f"--- tail of {name}.log\n{world.log_tail(name)}")
    world.stop()
    checks.summary()
    print(f"e2e_odoo: {checks.passed} passed, {checks.failed} failed", flush=True)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
