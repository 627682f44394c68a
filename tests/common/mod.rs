//! A whole staging host for one test: a throw-away PostgreSQL cluster, moto's
//! S3 server, an SMTP server, production's callback receiver, and the real
//! `numikube-staging serve` process configured against them through an
//! `odoo.conf`, plus a typed JSON-RPC client; and the helpers several test
//! files share ([`code_of`], [`make_marked`], [`make_unmarked`], [`mark`],
//! [`ident`], [`literal`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use numikube_staging_rpc::{JobState, JobStatus, RunPayload, RunStarted, StagingApiClient};
use numikube_testbed::sidecar::{self, Launch, Sidecar, SidecarConf};
use numikube_testbed::{fixture, free_port, CallbackReceiver, Postgres, Smtp, S3};

pub use numikube_testbed::{ident, literal};

/// The token the staging and "production" share in tests.
pub const TOKEN: &str = "s3cret-token";
/// The role that owns the staging instance's databases.
pub const ROLE: &str = "odoo";
/// The NOLOGIN role that owns databases while they are hidden
/// (`numikube_staging_work_role`'s default, `<db_user>_staging`).
pub const WORK_ROLE: &str = "odoo_staging";
/// Bucket of production backups.
pub const BUCKET: &str = "prod-backups";

/// What a test wants besides the defaults.
#[derive(Clone)]
pub struct Options {
    /// `numikube_staging_database_limit`.
    pub limit: usize,
    /// Extra `odoo.conf` lines.
    pub extra_conf: String,
    /// Start an SMTP server.
    pub smtp: bool,
    /// Mount a tmpfs of this size (`mount -o size=`, e.g. `64m`) on `data_dir`
    /// before the sidecar starts; unmounted when the stage drops (needs root).
    pub data_tmpfs: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options { limit: 10, extra_conf: String::new(), smtp: false, data_tmpfs: None }
    }
}

/// The staging host of one test; everything stops on drop.
pub struct Stage {
    pub pg: Postgres,
    pub s3: S3,
    pub receiver: CallbackReceiver,
    pub smtp: Option<Smtp>,
    pub dir: tempfile::TempDir,
    pub sidecar: Option<Sidecar>,
    pub port: u16,
    pub client: HttpClient,
    pub options: Options,
    /// The tmpfs on `data_dir` ([`Options::data_tmpfs`]).
    pub tmpfs: Option<Tmpfs>,
}

impl Stage {
    /// Starts every server and the sidecar.
    pub fn start(options: Options) -> Stage {
        let pg = Postgres::start().expect("PostgreSQL starts (run scripts/install-deps)");
        pg.create_db_user(ROLE, "odoo-pw").expect("role created");
        // What a superuser runs once (docs/contract.md, *Hidden*): db_user may not create roles.
        pg.psql("postgres", &format!("CREATE ROLE {WORK_ROLE} NOLOGIN; GRANT {WORK_ROLE} TO {ROLE};")).expect("work role created");
        let s3 = S3::start().expect("moto_server starts (run scripts/install-deps)");
        s3.create_bucket(BUCKET).expect("bucket created");
        let receiver = CallbackReceiver::start().expect("callback receiver starts");
        let smtp = options.smtp.then(|| Smtp::start().expect("aiosmtpd starts (run scripts/install-deps)"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let tmpfs = options.data_tmpfs.as_deref().map(|size| Tmpfs::mount(&dir.path().join("data"), size).expect("tmpfs on data_dir"));
        let port = free_port();
        let client = HttpClientBuilder::default().build(format!("http://127.0.0.1:{port}")).unwrap();
        let mut stage = Stage { pg, s3, receiver, smtp, dir, sidecar: None, port, client, options, tmpfs };
        stage.write_conf();
        stage.start_sidecar();
        stage
    }

    /// The sidecar's `odoo.conf`.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("odoo.conf")
    }

    /// `data_dir` of the staging.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_conf(&self) {
        let mut conf = SidecarConf::new(TOKEN, &self.pg, (ROLE, "odoo-pw"), &self.s3, BUCKET, &self.data_dir());
        conf.port = self.port;
        conf.limit = self.options.limit;
        conf.smtp = self.smtp.as_ref().map(|s| (s.port, "staging@example.com".to_string()));
        conf.extra = self.options.extra_conf.clone();
        conf.write(&self.conf()).unwrap();
    }

    /// Starts `numikube-staging serve` and waits until it answers; its log
    /// starts afresh, so that it shows only this process's lines.
    pub fn start_sidecar(&mut self) {
        let launch = Launch { fresh_log: true, ..Launch::default() };
        let bin = Path::new(env!("CARGO_BIN_EXE_numikube-staging"));
        let log = self.dir.path().join("sidecar.log");
        let started = Sidecar::start_with(bin, &self.conf(), self.port, &log, &launch);
        self.sidecar = Some(started.unwrap_or_else(|e| panic!("sidecar starts: {e:#}")));
    }

    /// Kills the sidecar (SIGKILL, as a crash would).
    pub fn kill_sidecar(&mut self) {
        self.sidecar.take(); // its drop kills and reaps it
    }

    /// What the sidecar logged.
    pub fn sidecar_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sidecar.log")).unwrap_or_default()
    }

    /// The running sidecar's process id.
    pub fn sidecar_pid(&self) -> u32 {
        self.sidecar.as_ref().and_then(Sidecar::pid).expect("the sidecar runs")
    }

    /// Builds a tiny production database `prod_<client>` (owned by the superuser,
    /// like the staging's own production-like databases) and returns its dir of backups.
    pub fn make_backups(&self, client: &str) -> (PathBuf, fixture::Built) {
        self.make_backups_of(client, &fixture::Spec::tiny())
    }

    /// As [`Stage::make_backups`], of a production database built to `spec`.
    pub fn make_backups_of(&self, client: &str, spec: &fixture::Spec) -> (PathBuf, fixture::Built) {
        let work = self.dir.path().join(format!("backups-{client}"));
        std::fs::create_dir_all(&work).unwrap();
        let built = fixture::build_all(&self.pg.bin_dir, &self.pg.url("postgres"), &format!("prod_{client}"), spec, &work)
            .expect("fixture backups");
        (work, built)
    }

    /// Builds `prod_<client>` with [`Stage::make_backups`] and puts its `ext`
    /// backup (`dump`, `zip`, `sql`, `sql.gz`) in the bucket under `key`.
    pub fn put_backup(&self, client: &str, key: &str, ext: &str) {
        let (work, _) = self.make_backups(client);
        self.s3.put_file(BUCKET, key, &Self::backup_path(&work, client, ext)).unwrap();
    }

    /// Path of one backup kind made by [`Stage::make_backups`].
    pub fn backup_path(work: &Path, client: &str, ext: &str) -> PathBuf {
        work.join(format!("prod_{client}.{ext}"))
    }

    /// A prod2x payload as production sends it.
    pub fn prod2x(&self, client: &str, suffix: &str, timestamp: bool) -> RunPayload {
        sidecar::prod2x(TOKEN, client, suffix, timestamp, self.receiver.url("/web/staging/callback/42?db=prod"))
    }

    /// Runs a payload through `staging_run` and expects an accepted prod2x.
    pub async fn run(&self, payload: RunPayload) -> Result<RunStarted, jsonrpsee::core::ClientError> {
        match self.client.run(payload).await? {
            numikube_staging_rpc::RunResult::Started(s) => Ok(s),
            other => panic!("expected a started job, got {other:?}"),
        }
    }

    /// Waits until a job is no longer running.
    pub async fn wait_job(&self, job_id: &str) -> JobStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.client.status(TOKEN.into(), job_id.into()).await.expect("status answers");
            if s.state != JobState::Running {
                return s;
            }
            assert!(Instant::now() < deadline, "job {job_id} still running: {s:?}\n{}", self.sidecar_log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every database name of the cluster.
    pub fn databases(&self) -> Vec<String> {
        self.pg
            .psql("postgres", "SELECT datname FROM pg_database ORDER BY 1")
            .unwrap()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Names of hidden or half-made databases the sidecar may have left.
    pub fn leftovers(&self) -> Vec<String> {
        self.databases().into_iter().filter(|d| d.starts_with("numikube_") && !d.starts_with("numikube_tpl_")).collect()
    }

    /// One value from a database of the cluster.
    pub fn query(&self, db: &str, sql: &str) -> String {
        self.pg.psql(db, sql).unwrap().trim().to_string()
    }
}

/// Helpers of the trust and atomicity tests: tweaked productions, other roles.
impl Stage {
    /// Builds production database `db` of `spec`, runs `tweak` (SQL, may be
    /// empty) in it as the superuser, and puts its custom dump under `key`.
    pub fn put_custom_dump(&self, db: &str, key: &str, spec: &fixture::Spec, tweak: &str) {
        let server = self.pg.url("postgres");
        fixture::create_production_db(&self.pg.bin_dir, &server, db, spec).expect("production database");
        if !tweak.is_empty() {
            self.pg.psql(db, tweak).expect("production tweaked");
        }
        let dump = self.dir.path().join(format!("{db}.dump"));
        fixture::dump_custom(&self.pg.bin_dir, &server, db, &dump).expect("custom dump");
        self.s3.put_file(BUCKET, key, &dump).unwrap();
    }

    /// A session in `db` as login role `user` (trust authentication), its
    /// connection driven in the background until the client is dropped.
    pub async fn connect_as(&self, user: &str, db: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(self.pg.host())
            .port(self.pg.port)
            .user(user)
            .dbname(db)
            .application_name("another role's session")
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// `pg_database.oid` of `db`, empty when there is none.
    pub fn oid(&self, db: &str) -> String {
        self.query("postgres", &format!("SELECT oid FROM pg_database WHERE datname = {}", literal(db)))
    }
}

/// Helpers of the fault tests: slow and large backups, SIGTERM, phases.
impl Stage {
    /// Puts a plain SQL backup of `client` that makes its restore last at
    /// least `seconds` (a `pg_sleep` before the tiny fixture's SQL), under `key`.
    pub fn put_slow_backup(&self, client: &str, key: &str, seconds: u32) {
        let (work, _) = self.make_backups(client);
        let sql = String::from_utf8(std::fs::read(Self::backup_path(&work, client, "sql")).unwrap()).unwrap();
        // After pg_dump's leading `\restrict` line (15.14 and later), which must stay first.
        let at = sql.find("\n\\restrict ").and_then(|r| sql[r + 1..].find('\n').map(|n| r + 1 + n + 1)).unwrap_or(0);
        let sleep = format!("--\n-- PostgreSQL database dump\n--\nSELECT pg_sleep({seconds});\n");
        let slow = format!("{}{sleep}{}", &sql[..at], &sql[at..]);
        self.s3.put_bytes(BUCKET, key, slow.into_bytes()).unwrap();
    }

    /// Builds a production database of about `bytes` and puts its custom dump
    /// under `key` (its `pg_restore` lasts seconds, not milliseconds).
    pub fn put_large_dump(&self, client: &str, key: &str, bytes: u64) {
        let spec = fixture::Spec { rows_scale: bytes, ..fixture::Spec::tiny() };
        let server = self.pg.url("postgres");
        let db = format!("prod_{client}");
        fixture::create_production_db(&self.pg.bin_dir, &server, &db, &spec).expect("large production database");
        let dump = self.dir.path().join(format!("{client}-large.dump"));
        fixture::dump_custom(&self.pg.bin_dir, &server, &db, &dump).expect("custom dump");
        self.s3.put_file(BUCKET, key, &dump).unwrap();
    }

    /// Sends SIGTERM to the sidecar and waits (at most `timeout`) for it to exit.
    pub fn sigterm_sidecar(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut sidecar = self.sidecar.take().expect("the sidecar runs");
        sidecar
            .signal_and_wait_for(libc::SIGTERM, timeout)
            .unwrap_or_else(|| panic!("the sidecar did not exit within {timeout:?} of SIGTERM; log:\n{}", self.sidecar_log()))
    }

    /// Waits until a job reaches `phase` (or fails if it ends first).
    pub async fn wait_phase(&self, job_id: &str, phase: numikube_staging_rpc::Phase) -> JobStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.client.status(TOKEN.into(), job_id.into()).await.expect("status answers");
            if s.phase == phase {
                return s;
            }
            assert!(s.state == JobState::Running, "job {job_id} ended before {phase:?}: {s:?}\n{}", self.sidecar_log());
            assert!(Instant::now() < deadline, "job {job_id} never reached {phase:?}: {s:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hidden working directories left in `<data_dir>/filestore`.
    pub fn filestore_leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.data_dir().join("filestore"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("numikube_"))
            .collect()
    }

    /// Hidden databases of unfinished work (`numikube_tmp_…`, `numikube_old_…`;
    /// kept templates do not count).
    pub fn working_leftovers(&self) -> Vec<String> {
        let mut left = self.leftovers();
        left.extend(self.filestore_leftovers());
        left.retain(|n| n.starts_with("numikube_tmp_") || n.starts_with("numikube_old_"));
        left
    }

    /// Waits until neither `pg_database` nor the filestore holds unfinished work.
    pub fn wait_no_leftovers(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.working_leftovers().is_empty() {
            assert!(Instant::now() < deadline, "left behind: {:?}\n{}", self.working_leftovers(), self.sidecar_log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.kill_sidecar();
        self.tmpfs.take(); // unmounted once nothing writes there
    }
}

/// A tmpfs mounted on a directory, unmounted on drop (also when a test panics).
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// `mount -t tmpfs -o size=<size> tmpfs <path>`; an error when refused (not root, no CAP_SYS_ADMIN).
    pub fn mount(path: &Path, size: &str) -> anyhow::Result<Tmpfs> {
        let out = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).output()?;
        anyhow::ensure!(out.status.success(), "mount -t tmpfs refused: {}", String::from_utf8_lossy(&out.stderr).trim());
        Ok(Tmpfs { path: path.to_path_buf() })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            // Still busy: detach it, so that nothing stays mounted after the test.
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// The JSON-RPC error code and message of a refused call.
pub fn code_of(e: jsonrpsee::core::ClientError) -> (i32, String) {
    match e {
        jsonrpsee::core::ClientError::Call(e) => (e.code(), e.message().to_string()),
        other => panic!("expected a JSON-RPC error, got {other}"),
    }
}

/// A database owned by `db_user` carrying the sidecar's marker, as a finished job leaves it.
pub fn make_marked(stage: &Stage, name: &str) {
    make_unmarked(stage, name);
    mark(stage, name);
}

/// A database owned by `db_user` without a marker (made by hand, or by Odoo).
pub fn make_unmarked(stage: &Stage, name: &str) {
    stage.pg.psql("postgres", &format!("CREATE DATABASE {} OWNER {ROLE}", ident(name))).unwrap();
}

/// Puts the sidecar's marker on any database.
pub fn mark(stage: &Stage, name: &str) {
    let marker = serde_json::json!({
        "numikube_staging": 1, "state": "done", "job_id": format!("job-of-{name}"), "db_name": name,
        "backup": "x-1.dump", "etag": "e", "created_at": "2026-11-24T10:00:00Z",
    });
    stage.pg.psql("postgres", &format!("COMMENT ON DATABASE {} IS {}", ident(name), literal(&marker.to_string()))).unwrap();
}
