//! What a restore is given and gives back: its target and counters, its
//! report, its errors; shared by the restore paths (`pg_restore`, plain SQL, zip).

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::progress::Fraction;

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
    /// Connections for the load (`numikube_staging_restore_jobs`).
    pub jobs: usize,
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
    /// How far the restore is: TOC entries (custom dumps) or bytes of SQL fed (plain SQL).
    pub restored: Arc<Fraction>,
    /// Called when the download ends and loading begins.
    pub restoring: &'a (dyn Fn() + Sync),
}

impl Restore<'_> {
    /// Whether loads run in parallel (spooled and indexed first).
    pub fn parallel(&self) -> bool {
        self.jobs > 1
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

/// Human-readable bytes for messages: `1.5 GiB`, `300 MiB`.
pub fn human(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if size < 1024.0 {
            return format!("{size:.1} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.1} TiB")
}
