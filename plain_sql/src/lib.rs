//! Loads pg_dump's plain SQL format (an Odoo backup zip's `dump.sql`, a plain or
//! gzip'ed SQL backup, already decompressed by the caller) into an existing, empty
//! PostgreSQL database, without psql.
//!
//! Plain SQL is data, never commands: the stream is refused at the first psql
//! meta-command (`\!`, `\o`, `\copy`, `\connect`, any `\x`) outside COPY data, with
//! the line number, before anything of that line runs (what came before may have
//! run: the caller discards the database). The one exception is the pair pg_dump 15.14 and later
//! writes: one leading `\restrict <key>` and the matching trailing
//! `\unrestrict <key>`, which are skipped. `COPY … PROGRAM` and `COPY` from or to a
//! server file are refused too.
//!
//! A failing statement fails the load, except the few listed in [`tolerate`] that
//! pg_dump writes and a non-superuser restore fails harmlessly; those are reported
//! in [`LoadReport::tolerated`]. Every statement runs in autocommit, so a tolerated
//! failure aborts nothing. Connect as a non-superuser: what a superuser could do
//! from SQL (untrusted languages, server-side files) is not all refused here.
//!
//! Two modes: *streaming* (no spool directory: one connection, statements run as
//! they are read) and *parallel* (like `pg_restore -j N`: the stream is spooled
//! and, as it comes in, pre-data runs in order and the COPY data over N
//! connections, cut into chunks of whole lines as soon as they are spooled, so
//! that one big table loads side by side too; once it has all come, indexes and
//! primary/unique constraints side by side, foreign keys added `NOT VALID` and
//! validated side by side, and the rest in order). pg_dump's own session settings
//! (`SET …`, `set_config`) are applied on every connection, up to where each
//! statement stands in the dump.
//!
//! # Layout
//! - `read`: cuts the stream into lines (long ones in pieces).
//! - `scan`: tells statements from COPY data; `split`: where statements end
//!   (PostgreSQL's scanner); `meta`: psql meta-commands and the `\restrict` pair.
//! - `classify`: sorts statements with PostgreSQL's parser; [`tolerate`]: the
//!   harmless failures.
//! - `stream`: streaming mode. `index` + `spool`: the spool-and-index pass, handing
//!   on what it spooled; `overlap`: runs it meanwhile; `plan`: the post-data's
//!   steps; `run`: runs them; `conn`: one connection.
//! - `error`: [`LoadError`]; `report`: [`LoadReport`].

#![warn(missing_docs)]

mod classify;
mod conn;
mod error;
mod index;
mod meta;
mod overlap;
mod plan;
mod read;
mod report;
mod run;
mod scan;
mod split;
mod spool;
mod stream;
pub mod tolerate;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub use error::LoadError;
pub use report::{LoadReport, Mode, Tolerated};

/// How and where to load a plain SQL backup.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The target database: existing and empty.
    pub target: tokio_postgres::Config,
    /// Connections of a parallel load (at least 1).
    pub jobs: usize,
    /// Directory for the spool file of a parallel load; `None` streams on one connection.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool file may take (a gzip'ed backup may expand to anything); `None`: no bound.
    pub spool_limit: Option<u64>,
    /// Bytes sent to the server so far, for progress: only ever grows.
    pub progress: Arc<AtomicU64>,
}

impl LoadOptions {
    /// Streaming load into `target` (no spool, one connection), with a fresh progress counter.
    pub fn new(target: tokio_postgres::Config) -> Self {
        LoadOptions { target, jobs: 1, spool_dir: None, spool_limit: None, progress: Arc::default() }
    }
}

/// Loads the plain SQL read from `reader` into `opts.target`.
pub async fn load<R: tokio::io::AsyncRead + Unpin + Send>(reader: R, opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    let Some(dir) = &opts.spool_dir else {
        return stream::load(reader, opts).await;
    };
    let jobs = opts.jobs.max(1);
    let start = opts.progress.load(Relaxed);
    let tally = report::Tally::new(opts.progress.clone());
    let (writer, spool) = index::spool(dir, opts.spool_limit.unwrap_or(u64::MAX))?;
    let mut conns = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        conns.push(conn::Conn::open(&opts.target).await?);
    }
    // The stream is spooled and loaded at once: schema, then COPY chunks as they come.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let ((), held) = tokio::try_join!(index::index(reader, writer, tx), overlap::run(rx, &mut conns, &spool, &tally))?;
    let ctx = run::Ctx { spool: &spool, log: &held.log, tally: &tally };
    run::run(plan::post(&held.post), &mut conns, &ctx).await?;
    Ok(tally.report(Mode::Parallel { jobs }, start))
}
