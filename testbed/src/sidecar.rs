//! The real `numikube-staging serve` process, configured through an
//! `odoo.conf` that points at the testbed's servers.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{fixture, Postgres, S3};

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
    /// `smtp_port` on 127.0.0.1 and `email_from`, if any.
    pub smtp: Option<(u16, String)>,
    /// More `key = value` lines.
    pub extra: String,
}

impl SidecarConf {
    /// Settings for the testbed's `pg` (as role `db_user`) and `s3`, with `addons_path`
    /// the fixture's addons and a callback window of 3 seconds.
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
        line("numikube_staging_callback_timeout", &3);
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
    child: Option<Child>,
    /// Its JSON-RPC port on 127.0.0.1.
    pub port: u16,
    /// Where its log goes.
    pub log: PathBuf,
}

impl Sidecar {
    /// Starts `binary serve -c conf` and waits until it listens on `port`.
    pub fn start(binary: &Path, conf: &Path, port: u16, log: &Path) -> Result<Sidecar> {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let child = Command::new(binary)
            .args(["serve", "-c"])
            .arg(conf)
            .env("NUMIKUBE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut sidecar = Sidecar { child: Some(child), port, log: log.into() };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = sidecar.child.as_mut().unwrap().try_wait()? {
                bail!("the sidecar exited with {status}; its log:\n{}", sidecar.log_text());
            }
            if Instant::now() > deadline {
                bail!("the sidecar did not listen on {port} within 20 s; its log:\n{}", sidecar.log_text());
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
