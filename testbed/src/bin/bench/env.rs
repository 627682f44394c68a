//! The servers and the work directory of one run ([`Env`]), started once and
//! shared by every phase, and the client tools run as the instance's role.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use numikube_testbed::{ident, CallbackReceiver, Postgres, S3};
use tokio::runtime::Runtime;

use crate::args::Args;
use crate::names::{BUCKET, ROLE, ROLE_PW};
use crate::probes::Machine;
use crate::util::Log;

/// Everything a phase of the run needs (fields drop in this order: the work
/// directory first, PostgreSQL and the runtime last).
pub struct Env {
    /// Removes the work directory on drop, unless `--keep`.
    _work_guard: Option<tempfile::TempDir>,
    /// The work directory: backups, unpacked zip, baselines' filestores, sidecars.
    pub work: PathBuf,
    /// Receives the callbacks of the timed copies.
    pub receiver: CallbackReceiver,
    /// Receives the callbacks of the latency test's jobs.
    pub receiver_lat: CallbackReceiver,
    /// moto's S3 server, holding the bucket of backups.
    pub s3: S3,
    /// The one PostgreSQL cluster of every contender.
    pub pg: Postgres,
    /// The cluster's settings that matter for speed, for the report.
    pub pg_settings: String,
    /// The CPU and disk probes.
    pub machine: Machine,
    /// Cores of the machine.
    pub cores: usize,
    /// The sidecar binary.
    pub bin: PathBuf,
    /// Runs the JSON-RPC clients.
    pub rt: Runtime,
    /// Progress on stderr.
    pub log: Log,
}

impl Env {
    /// Starts the runtime, PostgreSQL, moto and the callback receivers, and makes the work directory.
    pub fn start(args: &Args, log: Log, bin: PathBuf) -> Result<Env> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(cores.max(2)).enable_all().build()?;
        log.say("starting PostgreSQL, moto S3 and the callback receiver");
        let pg = Postgres::start().context("PostgreSQL (run scripts/install-deps)")?;
        pg.create_db_user(ROLE, ROLE_PW)?;
        pg.create_work_role(ROLE)?;
        let s3 = S3::start().context("moto_server (run scripts/install-deps)")?;
        s3.create_bucket(BUCKET)?;
        let receiver = CallbackReceiver::start()?;
        let receiver_lat = CallbackReceiver::start()?;
        let pg_settings = pg.psql(
            "postgres",
            "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
             WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_wal_size','server_version')",
        )?;
        let machine = Machine::new(&pg, cores)?;
        let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&parent)?;
        let work_tmp = tempfile::Builder::new().prefix("numikube-bench-").tempdir_in(&parent)?;
        let work = work_tmp.path().to_path_buf();
        let _work_guard = if args.keep {
            log.say(format!("work dir kept: {}", work.display()));
            std::mem::forget(work_tmp);
            None
        } else {
            Some(work_tmp)
        };
        Ok(Env { _work_guard, work, receiver, receiver_lat, s3, pg, pg_settings, machine, cores, bin, rt, log })
    }

    /// A PostgreSQL client program with the libpq environment of the instance's role (what the sidecar uses).
    pub fn role_cmd(&self, program: &str) -> Command {
        let mut c = Command::new(self.pg.bin_dir.join(program));
        c.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.pg.port.to_string())
            .env("PGUSER", ROLE)
            .env("PGPASSWORD", ROLE_PW)
            .env("PGDATABASE", "postgres")
            .env_remove("PGSERVICE");
        c
    }

    /// Drops `db` as the superuser, connections and all.
    pub fn drop_db(&self, db: &str) -> Result<()> {
        self.pg.psql("postgres", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", ident(db)))?;
        Ok(())
    }

    /// After every timed run: the same clean state for the next contender.
    pub fn settle(&self) -> Result<()> {
        self.pg.psql("postgres", "CHECKPOINT;")?;
        Ok(())
    }
}
