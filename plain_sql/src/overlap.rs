//! The part of a parallel load that runs while the stream is still coming in:
//! statements in order on one connection as soon as they are spooled, COPY
//! chunks side by side over every connection as soon as they are spooled. The
//! post-data is held back for [`crate::plan::post`], which needs all of it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::conn::{Conn, SessionStmt};
use crate::error::LoadError;
use crate::index::{Spooled, Stmt};
use crate::plan::{is_post, job, Job, Source};
use crate::report::Tally;
use crate::run::{run_job, Ctx};
use crate::spool::Spool;

/// What is left once the stream has ended and its data is loaded.
pub(crate) struct Held {
    /// The post-data, from the first post-data statement after the last COPY on.
    pub post: Vec<Stmt>,
    /// Every session statement of the dump, in order.
    pub log: Vec<SessionStmt>,
}

/// A COPY chunk running on a connection, which it gives back.
type Running<'a> = FuturesUnordered<BoxFuture<'a, (Conn, Result<(), LoadError>)>>;

/// The connections and the chunks queued and running on them.
struct Workers<'a> {
    idle: Vec<Conn>,
    queue: VecDeque<Job>,
    running: Running<'a>,
    spool: &'a Spool,
    tally: &'a Tally,
}

impl<'a> Workers<'a> {
    /// Starts queued chunks on the idle connections.
    fn dispatch(&mut self, log: &Arc<Vec<SessionStmt>>) {
        while !self.idle.is_empty() && !self.queue.is_empty() {
            let (mut conn, job) = (self.idle.pop().expect("not empty"), self.queue.pop_front().expect("not empty"));
            let (log, spool, tally) = (log.clone(), self.spool, self.tally);
            self.running.push(Box::pin(async move {
                let ctx = Ctx { spool, log: &log[..], tally };
                let result = run_job(&mut conn, &job, &ctx).await;
                (conn, result)
            }));
        }
    }

    /// Waits for one running chunk; `false` when none runs.
    async fn one_done(&mut self) -> Result<bool, LoadError> {
        match self.running.next().await {
            Some((conn, result)) => {
                self.idle.push(conn);
                result.map(|()| true)
            }
            None => Ok(false),
        }
    }

    /// Runs every queued chunk to its end.
    async fn settle(&mut self, log: &Arc<Vec<SessionStmt>>) -> Result<(), LoadError> {
        loop {
            self.dispatch(log);
            if !self.one_done().await? {
                return Ok(());
            }
        }
    }

    /// Runs `stmts` in order on one connection, once every chunk has ended.
    async fn in_order(&mut self, stmts: &[Stmt], log: &Arc<Vec<SessionStmt>>) -> Result<(), LoadError> {
        self.settle(log).await?;
        let ctx = Ctx { spool: self.spool, log: &log[..], tally: self.tally };
        for s in stmts {
            run_job(&mut self.idle[0], &job(s, Source::Dump(s.range()), vec![]), &ctx).await?;
        }
        Ok(())
    }
}

/// Runs what `rx` hands on over `conns` (at least one) until the stream ends;
/// what must wait for the end is returned. The connections are given back.
pub(crate) async fn run(
    mut rx: UnboundedReceiver<Spooled>,
    conns: &mut Vec<Conn>,
    spool: &Spool,
    tally: &Tally,
) -> Result<Held, LoadError> {
    let mut w = Workers { idle: std::mem::take(conns), queue: VecDeque::new(), running: FuturesUnordered::new(), spool, tally };
    let result = feed(&mut rx, &mut w).await;
    // Whatever happened, the connections that are not running a chunk go back.
    drop(w.running);
    *conns = w.idle;
    result
}

async fn feed(rx: &mut UnboundedReceiver<Spooled>, w: &mut Workers<'_>) -> Result<Held, LoadError> {
    let began = Instant::now();
    let mut data_began: Option<Instant> = None;
    let mut log: Arc<Vec<SessionStmt>> = Arc::default();
    let mut post: Vec<Stmt> = Vec::new();
    loop {
        w.dispatch(&log);
        let next = tokio::select! {
            done = w.one_done(), if !w.running.is_empty() => {
                done?;
                continue;
            }
            next = rx.recv() => next,
        };
        let Some(next) = next else { break };
        match next {
            Spooled::Session(s) => {
                // Never changed under a running chunk: it replays the log up to its place.
                w.settle(&log).await?;
                Arc::make_mut(&mut log).push(s);
                w.tally.statements.fetch_add(1, Relaxed);
            }
            Spooled::Stmt(s) => {
                w.tally.statements.fetch_add(1, Relaxed);
                if !post.is_empty() || (data_began.is_some() && is_post(&s.class.kind)) {
                    post.push(s);
                } else {
                    w.in_order(std::slice::from_ref(&s), &log).await?;
                }
            }
            Spooled::Chunk(stmt, data) => {
                if !post.is_empty() {
                    // More data after what looked like post-data: it all runs in order, as written.
                    w.in_order(&std::mem::take(&mut post), &log).await?;
                }
                if data_began.is_none() {
                    w.tally.phase("statements", began.elapsed());
                    data_began = Some(Instant::now());
                }
                w.tally.copy_chunks.fetch_add(1, Relaxed);
                w.queue.push_back(job(&stmt, Source::Copy(stmt.range(), data), vec![]));
            }
            Spooled::CopyEnd => {
                w.tally.statements.fetch_add(1, Relaxed);
                w.tally.copy_blocks.fetch_add(1, Relaxed);
            }
        }
    }
    w.settle(&log).await?;
    match data_began {
        Some(at) => w.tally.phase("COPY data", at.elapsed()),
        None => w.tally.phase("statements", began.elapsed()),
    }
    let log = Arc::try_unwrap(log).unwrap_or_else(|shared| (*shared).clone());
    Ok(Held { post, log })
}
