//! Loading a backup into a (hidden) database, streamed, never held in memory.
//!
//! A custom dump goes to PostgreSQL's own `pg_restore` (spooled to a file
//! first and restored with `-j` when there are several cores); plain SQL
//! (alone or gzip'ed) to the plain SQL loader (`plain_sql`), which never runs
//! a psql command from a backup; an Odoo zip is handled by [`super::zip`].

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::process::Command;

use super::format::{Format, Sniffed};
use super::spool::{human, spool_to_file};

/// Why loading a backup failed; each says what failed and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A client program could not be started.
    #[error("cannot start {tool}: {source}; is the PostgreSQL client installed (pg_path)?")]
    Spawn {
        /// `pg_restore`.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A client program failed; `detail` is the end of what it printed.
    #[error("{tool} failed{status}: {detail}")]
    Tool {
        /// `pg_restore`.
        tool: &'static str,
        /// ` (exit status: 1)`, or empty when it stopped reading.
        status: String,
        /// The last lines of its error output.
        detail: String,
    },
    /// The plain SQL could not be loaded (or holds a psql command).
    #[error("{0}")]
    Sql(plain_sql::LoadError),
    /// Reading, spooling or extracting failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `reading the backup failed`.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not enough free disk.
    #[error("not enough free disk for {what} in {}: {} needed (with head room), {} free; free some space or restore elsewhere", dir.display(), human(*needed), human(*free))]
    NoRoom {
        /// What was to be written.
        what: String,
        /// Where.
        dir: PathBuf,
        /// Bytes needed, head room included.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// The Odoo zip cannot be used.
    #[error("{0}")]
    Zip(String),
    /// The zip expands to absurd sizes.
    #[error("the backup zip is refused because {0}: it may be a zip bomb")]
    Bomb(String),
    /// The zip's manifest names another Odoo version.
    #[error("the backup is from Odoo {backup}; this staging server runs Odoo {staging}")]
    Version {
        /// The manifest's version.
        backup: String,
        /// The staging's.
        staging: String,
    },
}

/// Wraps an I/O error with what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::Io { what, source }
}

/// Where a restore goes and with what.
pub struct Restore<'a> {
    /// `pg_restore` and its environment.
    pub tools: &'a PgTools,
    /// The target database, for the plain SQL loader.
    pub target: tokio_postgres::Config,
    /// The target database's name.
    pub db: &'a str,
    /// Where an Odoo zip's filestore goes.
    pub filestore_dir: &'a Path,
    /// Where downloads that need a file are spooled (removed afterwards, also on error).
    pub spool_dir: &'a Path,
    /// The backup's size in the bucket, for the disk check before spooling.
    pub size: u64,
    /// The staging's Odoo major version, checked against a zip's manifest.
    pub staging_version: Option<String>,
    /// Bytes of SQL fed to the server, for progress.
    pub fed: Arc<AtomicU64>,
    /// Called when the download ends and loading begins.
    pub restoring: &'a (dyn Fn() + Sync),
}

impl Restore<'_> {
    /// Whether loads run in parallel (spooled and indexed first).
    pub fn parallel(&self) -> bool {
        self.tools.jobs > 1
    }

    /// The plain SQL loader's options.
    pub fn loader(&self) -> plain_sql::LoadOptions {
        plain_sql::LoadOptions {
            target: self.target.clone(),
            jobs: self.tools.jobs,
            spool_dir: self.parallel().then(|| self.spool_dir.to_path_buf()),
            progress: self.fed.clone(),
        }
    }
}

/// What a restore did that the job's report shows.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Statements of a plain SQL backup that failed harmlessly (head and message).
    pub tolerated: Vec<String>,
}

impl From<plain_sql::LoadReport> for RestoreReport {
    fn from(report: plain_sql::LoadReport) -> Self {
        tracing::info!("plain SQL loaded: {report}");
        let tolerated: Vec<String> = report.tolerated.iter().map(|t| format!("line {}: {}: {}", t.line, t.head, t.message)).collect();
        for t in &tolerated {
            tracing::warn!("a statement of the backup failed harmlessly: {t}");
        }
        RestoreReport { tolerated }
    }
}

/// Counts the bytes read through it, for the job's progress.
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    /// Wraps `inner`, adding every byte read to `count`.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Counting { inner, count }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        poll
    }
}

/// How to run PostgreSQL's client programs against the target server.
#[derive(Clone)]
pub struct PgTools {
    /// `pg_restore` program.
    pub pg_restore: PathBuf,
    /// libpq environment (`PGHOST`, `PGUSER`, …).
    pub env: Vec<(&'static str, String)>,
    /// Parallel jobs for `pg_restore` (1 = stream straight into it).
    pub jobs: usize,
    /// Run the client programs niced (pre-warm work gives way to users').
    pub low_priority: bool,
}

impl PgTools {
    /// As [`PgTools::std_command`], for tokio; killed when dropped.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::from(self.std_command(program));
        cmd.kill_on_drop(true);
        cmd
    }

    /// `program` with the libpq environment, piped stdin and stderr, dying with the sidecar.
    fn std_command(&self, program: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd, self.low_priority);
        cmd
    }

    /// `pg_restore` reading a custom dump from `file`, or standard input when `None`.
    fn pg_restore(&self, db: &str, file: Option<&Path>) -> Command {
        let mut cmd = self.command(&self.pg_restore);
        cmd.args(["--no-owner", "--no-privileges", "--exit-on-error", "--dbname", db]);
        if let Some(file) = file {
            cmd.arg(format!("--jobs={}", self.jobs)).arg(file).stdin(Stdio::null());
        }
        cmd
    }
}

/// A child started by the sidecar is killed when the sidecar dies (even by
/// SIGKILL), so that it cannot keep a half-restored database busy.
fn die_with_parent(cmd: &mut std::process::Command, low_priority: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and setpriority are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if low_priority {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            Ok(())
        });
    }
}

/// The last lines of a tool's error output, for the job's error detail.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Feeds `reader` into `cmd`'s standard input and waits for it.
async fn pipe_into(mut cmd: Command, what: &'static str, mut reader: impl AsyncRead + Unpin) -> Result<(), RestoreError> {
    let mut child = cmd.spawn().map_err(|source| RestoreError::Spawn { tool: what, source })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    // A tool reading a file instead has no standard input to feed.
    let copied = match child.stdin.take() {
        Some(mut stdin) => {
            let copied = tokio::io::copy(&mut reader, &mut stdin).await;
            let _ = stdin.shutdown().await;
            copied
        }
        None => Ok(0),
    };
    if let Err(e) = copied {
        // The tool stopped reading (it failed) or the backup stream broke.
        let status = child.wait().await;
        let detail = tail(&errors.await.unwrap_or_default());
        if status.map(|s| s.success()).unwrap_or(false) || detail.is_empty() {
            return Err(io("reading the backup failed")(e));
        }
        return Err(RestoreError::Tool { tool: what, status: String::new(), detail });
    }
    let status = child.wait().await.map_err(io(format!("{what} could not be waited for")))?;
    let detail = tail(&errors.await.unwrap_or_default());
    if !status.success() {
        return Err(RestoreError::Tool { tool: what, status: format!(" ({status})"), detail });
    }
    Ok(())
}

/// Restores `backup` into the existing empty database `r.db`.
pub async fn restore(r: &Restore<'_>, backup: Sniffed) -> Result<RestoreReport, RestoreError> {
    let tools = r.tools;
    match backup.format {
        Format::Custom if r.parallel() => {
            // Measured (README, Benchmark): on a multi-core host a parallel
            // restore from a file beats streaming into a single pg_restore by
            // far more than the download costs.
            let mut reader = backup.reader;
            let spool = spool_to_file(&mut reader, r.size, r.spool_dir, ".dump").await?;
            (r.restoring)();
            pipe_into(tools.pg_restore(r.db, Some(spool.path())), "pg_restore", tokio::io::empty()).await?;
            Ok(RestoreReport::default())
        }
        Format::Custom => {
            (r.restoring)();
            pipe_into(tools.pg_restore(r.db, None), "pg_restore", backup.reader).await?;
            Ok(RestoreReport::default())
        }
        Format::PlainSql => {
            (r.restoring)();
            if r.parallel() {
                // The loader spools the (decompressed) SQL to index it.
                std::fs::create_dir_all(r.spool_dir).map_err(io(format!("cannot create {}", r.spool_dir.display())))?;
                super::spool::check_room(r.spool_dir, r.size.saturating_mul(if backup.gzip { 8 } else { 1 }), "the plain SQL backup")?;
            }
            Ok(plain_sql::load(backup.reader, &r.loader()).await.map_err(RestoreError::Sql)?.into())
        }
        Format::OdooZip => super::zip::restore_zip(r, backup).await,
    }
}
