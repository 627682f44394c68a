//! Loading a backup into a (hidden) database, streamed, never held in memory.
//!
//! A custom dump goes to PostgreSQL's own `pg_restore` (spooled to a file
//! first and restored with `-j` when there are several cores); plain SQL
//! (alone or gzip'ed) to the plain SQL loader (`plain_sql`), which never runs
//! a psql command from a backup; an Odoo zip is handled by [`zip`].

pub mod entry_path;
mod error;
pub mod format;
pub mod pg_restore;
pub mod size_watch;
pub mod spool;
mod zip;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub use error::{io, RestoreError};
use format::{Format, Sniffed};
use pg_restore::{pipe_into, toc_entries, Followed, PgTools};
use spool::spool_to_file;
pub use zip::MAX_TOTAL_RATIO;

use super::progress::Fraction;
use super::timeline::Timeline;

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
    /// Where the restore's steps are recorded (download, spool, schema, data, indexes).
    pub timeline: &'a Timeline,
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

impl RestoreReport {
    /// What the plain SQL loader did, which began at `started`; its steps go
    /// to `timeline` one after the other (a streamed load is one `load` step).
    fn new(report: plain_sql::LoadReport, timeline: &Timeline, started: std::time::SystemTime) -> Self {
        tracing::info!("plain SQL loaded: {report}");
        let mut at = started;
        for &(step, took) in &report.phases {
            let name = match step {
                "spool and index" => "spool",
                "statements" => "schema",
                "COPY data" => "data",
                _ => "indexes",
            };
            timeline.record(name, at, took);
            at += took;
        }
        if report.phases.is_empty() {
            timeline.record("load", started, started.elapsed().unwrap_or_default());
        }
        let tolerated: Vec<String> = report.tolerated.iter().map(|t| format!("line {}: {}: {}", t.line, t.head, t.message)).collect();
        for t in &tolerated {
            tracing::warn!("a statement of the backup failed harmlessly: {t}");
        }
        RestoreReport { tolerated }
    }
}

/// Restores `backup` into the existing empty database `r.db`.
pub async fn restore(tools: &PgTools, r: &Restore<'_>, backup: Sniffed) -> Result<RestoreReport, RestoreError> {
    match backup.format {
        Format::Custom if r.parallel() => {
            // Measured (README, Benchmark): on a multi-core host a parallel
            // restore from a file beats streaming into a single pg_restore by
            // far more than the download costs.
            let mut reader = backup.reader;
            let spool = r.timeline.time("download", spool_to_file(&mut reader, r.size, r.spool_dir, ".dump")).await?;
            // The restore reports its own progress from here on: none done yet
            // (1 stands for the total until the TOC is counted).
            r.restored.total.store(1, Ordering::Relaxed);
            (r.restoring)();
            if let Some(entries) = toc_entries(tools, spool.path()).await {
                r.restored.total.store(entries, Ordering::Relaxed);
            }
            let followed = Followed::new(r.restored.done.clone());
            pipe_into(tools.pg_restore(r.db, Some(spool.path())), "pg_restore", tokio::io::empty(), Some(followed.clone())).await?;
            for (name, start, took) in followed.sections() {
                r.timeline.record(name, start, took);
            }
            Ok(RestoreReport::default())
        }
        Format::Custom => {
            (r.restoring)();
            let loading = pipe_into(tools.pg_restore(r.db, None), "pg_restore", backup.reader, None);
            r.timeline.time("stream", loading).await?;
            Ok(RestoreReport::default())
        }
        Format::PlainSql => {
            // The SQL's size is the object's unless it is gzip'ed (then unknown: progress follows the download).
            r.restored.total.store(if backup.gzip { 0 } else { r.size }, Ordering::Relaxed);
            (r.restoring)();
            if r.parallel() {
                // The loader spools the (decompressed) SQL to index it.
                std::fs::create_dir_all(r.spool_dir).map_err(io(format!("cannot create {}", r.spool_dir.display())))?;
                spool::check_room(r.spool_dir, r.size.saturating_mul(if backup.gzip { 8 } else { 1 }), "the plain SQL backup")?;
            }
            let started = std::time::SystemTime::now();
            let report = plain_sql::load(backup.reader, &loader(r)).await.map_err(RestoreError::Sql)?;
            Ok(RestoreReport::new(report, r.timeline, started))
        }
        Format::OdooZip => zip::restore_zip(r, &loader(r), backup).await,
    }
}

/// The plain SQL loader's options for `r`; it advances the restored fraction.
fn loader(r: &Restore<'_>) -> plain_sql::LoadOptions {
    plain_sql::LoadOptions {
        target: r.target.clone(),
        jobs: r.jobs,
        spool_dir: r.parallel().then(|| r.spool_dir.to_path_buf()),
        // A gzip'ed backup may expand to anything: never past the head room.
        spool_limit: spool::free_bytes(r.spool_dir).map(spool::room_for),
        progress: r.restored.done.clone(),
    }
}
