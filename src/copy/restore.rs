//! Loading a backup into a (hidden) database, streamed, never held in memory.
//!
//! A custom dump goes to PostgreSQL's own `pg_restore` (spooled to a file
//! first and restored with `-j` when there are several cores); plain SQL
//! (alone or gzip'ed) to the plain SQL loader (`plain_sql`), which never runs
//! a psql command from a backup; an Odoo zip is handled by [`super::zip`].

use std::sync::atomic::Ordering;

use super::format::{Format, Sniffed};
use super::loading::{io, Restore, RestoreError, RestoreReport};
use super::pg_restore::{pipe_into, toc_entries, PgTools};
use super::spool::{self, spool_to_file};
use super::zip;

/// Restores `backup` into the existing empty database `r.db`.
pub async fn restore(tools: &PgTools, r: &Restore<'_>, backup: Sniffed) -> Result<RestoreReport, RestoreError> {
    match backup.format {
        Format::Custom if r.parallel() => {
            // Measured (README, Benchmark): on a multi-core host a parallel
            // restore from a file beats streaming into a single pg_restore by
            // far more than the download costs.
            let mut reader = backup.reader;
            let spool = spool_to_file(&mut reader, r.size, r.spool_dir, ".dump").await?;
            // The restore reports its own progress from here on: none done yet
            // (1 stands for the total until the TOC is counted).
            r.restored.total.store(1, Ordering::Relaxed);
            (r.restoring)();
            if let Some(entries) = toc_entries(tools, spool.path()).await {
                r.restored.total.store(entries, Ordering::Relaxed);
            }
            let done = Some(r.restored.done.clone());
            pipe_into(tools.pg_restore(r.db, Some(spool.path())), "pg_restore", tokio::io::empty(), done).await?;
            Ok(RestoreReport::default())
        }
        Format::Custom => {
            (r.restoring)();
            pipe_into(tools.pg_restore(r.db, None), "pg_restore", backup.reader, None).await?;
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
            Ok(plain_sql::load(backup.reader, &loader(r)).await.map_err(RestoreError::Sql)?.into())
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
