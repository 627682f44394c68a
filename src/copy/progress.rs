//! How far a copy is: the counters a restore advances and the tracker the
//! job implements to hear of each step.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

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
