//! The real `numikube-staging serve` process, configured through an
//! `odoo.conf` that points at the testbed's servers, what it is sent
//! ([`prod2x`]) and how its log reads ([`strip_ansi`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use numikube_staging_rpc::RunPayload;

use crate::{fixture, util, Postgres, S3};

/// The settings of a staging `odoo.conf` for the testbed.
#[derive(Clone, Debug)]
pub struct SidecarConf {
    /// `numikube_staging_token`.
    pub token: String,
    /// Port of `numikube_staging_sidecar` (on 127.0.0.1).
    pub port: u16,
    /// `db_port` (db_host is 127.0.0.1).
    pub db_port: u16,
    /// `db_user` / `db_password`.
    pub db_user: (String, String),
    /// `pg_path`.
    pub pg_bin: PathBuf,
    /// `minio_endpoint`, access key, secret key.
    pub s3: (String, String, String),
    /// `backups_minio_bucket`.
    pub bucket: String,
    /// `data_dir`.
    pub data_dir: PathBuf,
    /// `numikube_staging_database_limit`.
    pub limit: usize,
    /// `numikube_staging_callback_timeout`, in seconds.
    pub callback_timeout: u64,
    /// `smtp_port` on 127.0.0.1 and `email_from`, if any.
    pub smtp: Option<(u16, String)>,
    /// More `key = value` lines.
    pub extra: String,
}

impl SidecarConf {
    /// Settings for the testbed's `pg` (as role `db_user`) and `s3`, with `addons_path`
    /// the fixture's addons, a limit of 10 databases and a callback window of 3 seconds.
    pub fn new(token: &str, pg: &Postgres, db_user: (&str, &str), s3: &S3, bucket: &str, data_dir: &Path) -> SidecarConf {
        SidecarConf {
            token: token.into(),
            port: crate::free_port(),
            db_port: pg.port,
            db_user: (db_user.0.into(), db_user.1.into()),
            pg_bin: pg.bin_dir.clone(),
            s3: (s3.endpoint(), s3.access_key.clone(), s3.secret_key.clone()),
            bucket: bucket.into(),
            data_dir: data_dir.into(),
            limit: 10,
            callback_timeout: 3,
            smtp: None,
            extra: String::new(),
        }
    }

    /// The `odoo.conf` text.
    pub fn render(&self) -> String {
        let mut conf = String::from("[options]\n");
        let mut line = |k: &str, v: &dyn std::fmt::Display| writeln!(conf, "{k} = {v}").unwrap();
        line("numikube_staging_token", &self.token);
        line("numikube_staging_sidecar", &format!("127.0.0.1:{}", self.port));
        line("numikube_staging_database_limit", &self.limit);
        line("numikube_staging_callback_timeout", &self.callback_timeout);
        line("backups_minio_bucket", &self.bucket);
        line("minio_endpoint", &self.s3.0);
        line("minio_access_key", &self.s3.1);
        line("minio_secret_key", &self.s3.2);
        line("db_host", &"127.0.0.1");
        line("db_port", &self.db_port);
        line("db_user", &self.db_user.0);
        line("db_password", &self.db_user.1);
        line("pg_path", &self.pg_bin.display());
        line("data_dir", &self.data_dir.display());
        line("addons_path", &fixture::fixture_addons_dir().display());
        // Odoo's own tree (release.py, odoo/addons with base), as Odoo adds it.
        line("numikube_staging_odoo_path", &fixture::fixture_odoo_dir().display());
        // Installed in the fixture, and on no path: allowed to be missing.
        line("numikube_staging_neutralize_skip", &fixture::MODULES_MISSING_FROM_ADDONS.join(","));
        match &self.smtp {
            Some((port, from)) => {
                line("smtp_server", &"127.0.0.1");
                line("smtp_port", port);
                line("email_from", from);
            }
            None => {
                line("smtp_server", &"127.0.0.1");
                line("smtp_port", &1);
            }
        }
        conf.push_str(&self.extra);
        conf.push('\n');
        conf
    }

    /// Writes the `odoo.conf` to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.render()).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// A running `numikube-staging serve`; killed on drop.
pub struct Sidecar {
    /// The process, until it is killed or signalled and reaped.
    child: Option<Child>,
    /// Its JSON-RPC port on 127.0.0.1.
    pub port: u16,
    /// Where its log goes.
    pub log: PathBuf,
}

/// How [`Sidecar::start_with`] starts the process; the default is what
/// [`Sidecar::start`] does.
#[derive(Clone, Debug)]
pub struct Launch {
    /// How long to wait for the port to accept connections.
    pub listen_timeout: Duration,
    /// Empty the log first instead of appending to it (a restart then shows only its own lines).
    pub fresh_log: bool,
    /// Start without the `MINIO_*` variables, which would override the `odoo.conf`'s S3 settings.
    pub clear_minio_env: bool,
}

impl Default for Launch {
    fn default() -> Self {
        Launch { listen_timeout: Duration::from_secs(20), fresh_log: false, clear_minio_env: false }
    }
}

impl Sidecar {
    /// Starts `binary serve -c conf` and waits until it listens on `port`.
    pub fn start(binary: &Path, conf: &Path, port: u16, log: &Path) -> Result<Sidecar> {
        Sidecar::start_with(binary, conf, port, log, &Launch::default())
    }

    /// [`Sidecar::start`], the way `launch` says.
    pub fn start_with(binary: &Path, conf: &Path, port: u16, log: &Path, launch: &Launch) -> Result<Sidecar> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!launch.fresh_log)
            .truncate(launch.fresh_log)
            .open(log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut command = Command::new(binary);
        // NUMIKUBE_LOG of the caller (e.g. `info,numikube_staging::copy=debug`) wins over `info`.
        let level = std::env::var("NUMIKUBE_LOG").unwrap_or_else(|_| "info".into());
        command.args(["serve", "-c"]).arg(conf).env("NUMIKUBE_LOG", level);
        if launch.clear_minio_env {
            command.env_remove("MINIO_ENDPOINT").env_remove("MINIO_ACCESS_KEY").env_remove("MINIO_SECRET_KEY");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut sidecar = Sidecar { child: Some(child), port, log: log.into() };
        let timeout = launch.listen_timeout;
        let deadline = Instant::now() + timeout;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = sidecar.child.as_mut().unwrap().try_wait()? {
                bail!("the sidecar exited with {status}; its log:\n{}", sidecar.log_text());
            }
            if Instant::now() > deadline {
                bail!("the sidecar did not listen on {port} within {timeout:?}; its log:\n{}", sidecar.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sidecar)
    }

    /// Its URL for JSON-RPC clients.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `max` bytes of its log, for error messages.
    pub fn log_tail(&self, max: usize) -> String {
        util::tail(&self.log, max)
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) and waits at most `timeout` for the
    /// exit; `None` if it did not exit in time (it is then killed).
    pub fn signal_and_wait_for(&mut self, signal: i32, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: i32) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
        }
    }

    /// Kills it (SIGKILL, as a crash would) and waits.
    pub fn kill(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A prod2x request as production sends it: level `lab`, a copy named
/// `<client>-lab_<suffix>`, the result posted to `callback`.
pub fn prod2x(token: &str, client: &str, suffix: &str, timestamp: bool, callback: String) -> RunPayload {
    RunPayload {
        token: Some(token.into()),
        client: Some(client.into()),
        kind: Some("prod2x".into()),
        timestamp: Some(timestamp),
        callback: Some(callback),
        level: Some("lab".into()),
        suffix: Some(suffix.into()),
        ..Default::default()
    }
}

/// A log without its terminal colour codes (`ESC [ … letter`).
pub fn strip_ansi(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
