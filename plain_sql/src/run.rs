//! Runs the steps of a plan over several connections: in-order steps on the first,
//! parallel steps on all of them, never two jobs whose locks conflict at once (so
//! that side-by-side `ALTER TABLE`s cannot deadlock).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;

use bytes::Bytes;
use futures::SinkExt;
use tokio::sync::Notify;

use crate::conn::{Conn, SessionStmt};
use crate::error::{head, pg_message, LoadError};
use crate::plan::{Job, Source, Step};
use crate::read::PIECE;
use crate::report::Tally;
use crate::spool::Spool;

/// What every job needs besides its connection.
pub(crate) struct Ctx<'a> {
    pub spool: &'a Spool,
    pub log: &'a [SessionStmt],
    pub tally: &'a Tally,
}

/// Runs `steps` over `conns` (at least one).
pub(crate) async fn run(steps: Vec<Step>, conns: &mut [Conn], ctx: &Ctx<'_>) -> Result<(), LoadError> {
    for step in steps {
        let start = std::time::Instant::now();
        if step.parallel {
            parallel(step.jobs, conns, ctx).await?;
        } else {
            for job in &step.jobs {
                run_job(&mut conns[0], job, ctx).await?;
            }
        }
        ctx.tally.phase(step.name, start.elapsed());
    }
    Ok(())
}

/// Jobs waiting and the locks of the running ones.
struct Board {
    pending: Vec<Job>,
    running: Vec<(String, bool)>,
    failed: bool,
}

impl Board {
    /// Takes the first pending job whose locks fit beside the running ones.
    fn take(&mut self) -> Option<Job> {
        let fits = |job: &Job| job.locks.iter().all(|(t, excl)| self.running.iter().all(|(u, other)| t != u || (!excl && !other)));
        let i = self.pending.iter().position(fits)?;
        let job = self.pending.remove(i);
        self.running.extend(job.locks.iter().cloned());
        Some(job)
    }

    fn release(&mut self, job: &Job) {
        for lock in &job.locks {
            if let Some(i) = self.running.iter().position(|l| l == lock) {
                self.running.swap_remove(i);
            }
        }
    }
}

/// Runs `jobs` side by side over `conns`.
async fn parallel(jobs: Vec<Job>, conns: &mut [Conn], ctx: &Ctx<'_>) -> Result<(), LoadError> {
    let board = Mutex::new(Board { pending: jobs, running: Vec::new(), failed: false });
    let notify = Notify::new();
    let workers = conns.iter_mut().map(|conn| {
        let (board, notify) = (&board, &notify);
        async move {
            loop {
                let job = loop {
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    {
                        let mut b = board.lock().unwrap();
                        if b.failed || b.pending.is_empty() {
                            return Ok(());
                        }
                        if let Some(job) = b.take() {
                            break job;
                        }
                    }
                    notified.await;
                };
                let result = run_job(conn, &job, ctx).await;
                {
                    let mut b = board.lock().unwrap();
                    b.release(&job);
                    b.failed |= result.is_err();
                }
                notify.notify_waiters();
                result?;
            }
        }
    });
    futures::future::try_join_all(workers).await.map(drop)
}

/// Runs one job on `conn`.
pub(crate) async fn run_job(conn: &mut Conn, job: &Job, ctx: &Ctx<'_>) -> Result<(), LoadError> {
    conn.sync(ctx.log, job.session, ctx.tally).await?;
    match &job.source {
        Source::Dump(r) => {
            let text = ctx.spool.text(r.start, (r.end - r.start) as usize).await?;
            conn.exec(job.line, &text, job.tolerance, ctx.tally).await
        }
        Source::NotValid(r, tables) => {
            let text = ctx.spool.text(r.start, (r.end - r.start) as usize).await?;
            // PostgreSQL does not validate the per-partition copies of a foreign key
            // added NOT VALID when the parent's is validated: such keys are added as
            // the dump says.
            let fast = if conn.plain_tables(tables).await { format!("{text}\nNOT VALID") } else { text.clone() };
            conn.exec(job.line, &fast, job.tolerance, ctx.tally).await
        }
        Source::Text(text) => conn.exec(job.line, text, job.tolerance, ctx.tally).await,
        Source::Copy(stmt, data) => {
            let text = ctx.spool.text(stmt.start, (stmt.end - stmt.start) as usize).await?;
            ctx.tally.sent(text.len());
            let fail_stmt = |e| LoadError::Statement { line: job.line, head: head(&text), message: pg_message(&e) };
            let sink = conn.client().copy_in(text.as_str()).await.map_err(fail_stmt)?;
            let fail = |e| LoadError::Copy { line: job.line, head: head(&text), message: pg_message(&e) };
            futures::pin_mut!(sink);
            let mut at = data.start;
            while at < data.end {
                let n = (data.end - at).min(4 * PIECE as u64) as usize;
                let bytes = ctx.spool.read(at, n).await?;
                ctx.tally.sent(n);
                sink.send(Bytes::from(bytes)).await.map_err(fail)?;
                at += n as u64;
            }
            let rows = sink.finish().await.map_err(fail)?;
            ctx.tally.rows.fetch_add(rows, Relaxed);
            Ok(())
        }
    }
}
