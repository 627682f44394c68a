//! How far a copy is: the counters a restore advances and the tracker the
//! job implements to hear of each step.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use numikube_staging_rpc::{NeutralizeReport, Phase};

use crate::storage::Backup;

/// Hears of a copy's progress: the job implements it.
pub trait Tracker: Sync {
    /// The copy reached `phase`.
    fn phase(&self, phase: Phase);
    /// The backup to restore was chosen.
    fn backup_chosen(&self, backup: &Backup);
    /// The counter of backup bytes read.
    fn bytes_read(&self) -> Arc<AtomicU64>;
    /// How far the restore itself is (TOC entries restored, bytes of SQL fed).
    fn restored(&self) -> Arc<Fraction>;
    /// The neutralization ran.
    fn neutralized(&self, report: &NeutralizeReport);
    /// The copy's filestore is known: where it came from, what it lacks.
    fn filestore(&self, report: &super::FilestoreReport);
    /// Where the copy's steps are recorded.
    fn timeline(&self) -> &super::Timeline;
}

/// How far a step is: `done` of `total` (`total` 0 while unknown). Only grows.
#[derive(Debug, Default)]
pub struct Fraction {
    /// Units done (shared: the plain SQL loader advances it directly).
    pub done: Arc<AtomicU64>,
    /// Units in all, 0 while unknown.
    pub total: AtomicU64,
}

impl Fraction {
    /// `done / total`, or `None` while the total is unknown.
    pub fn ratio(&self) -> Option<f64> {
        let total = self.total.load(std::sync::atomic::Ordering::Relaxed);
        (total > 0).then(|| (self.done.load(std::sync::atomic::Ordering::Relaxed) as f64 / total as f64).min(1.0))
    }
}

/// The counters a restore advances: the backup's bytes read, and the restore itself.
#[derive(Default)]
pub struct Counters {
    /// Bytes of the backup read from the bucket.
    pub bytes_read: Arc<AtomicU64>,
    /// TOC entries restored (custom dumps) or bytes of SQL fed (plain SQL).
    pub restored: Arc<Fraction>,
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
