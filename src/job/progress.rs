//! A job's progress over the whole job, as `staging_status` gives it out:
//! the download by the bytes of the backup read, the restore by what the
//! restore reports (TOC entries of a custom dump, bytes of SQL fed; by the
//! bytes read when it cannot tell), then one step per phase, 1 only when
//! done, and never lower than a value already given out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use numikube_staging_rpc::{JobState, Phase};

use crate::copy::Fraction;

/// Share of the whole job that download and restore cover.
const RESTORED: f64 = 0.85;
/// Of that, the download's share when the restore reports its own progress.
const DOWNLOADED: f64 = 0.3;
/// Where neutralization starts.
const NEUTRALIZING: f64 = 0.9;
/// Where the last step (marker, filestore, rename, publication) starts.
const FINISHING: f64 = 0.95;

/// The counters behind a job's progress, and the highest value given out.
#[derive(Default)]
pub struct Progress {
    bytes_read: Arc<AtomicU64>,
    size: AtomicU64,
    restored: Arc<Fraction>,
    shown: Mutex<Option<f64>>,
}

impl Progress {
    /// The counter of backup bytes read, which the restore advances.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
    }

    /// How far the restore itself is, which the restore advances.
    pub fn restored(&self) -> Arc<Fraction> {
        self.restored.clone()
    }

    /// The size of the backup being restored.
    pub fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }

    /// The progress to give out now for a job in `state` at `phase`, never
    /// below what was given before; `None` while nothing has started.
    pub fn now(&self, state: JobState, phase: Phase) -> Option<f64> {
        let size = self.size.load(Ordering::Relaxed);
        let read = match size {
            0 => 0.0,
            size => (self.bytes_read.load(Ordering::Relaxed) as f64 / size as f64).min(1.0),
        };
        // A download that comes before the restore is only its first part;
        // one streamed into the restore (no restored fraction) is the whole of it.
        let read = match (phase, self.restored.ratio()) {
            (Phase::Downloading, _) => DOWNLOADED * read,
            (_, Some(restored)) => DOWNLOADED * read + (1.0 - DOWNLOADED) * restored,
            (_, None) => read,
        };
        let mut shown = self.shown.lock().unwrap();
        if let Some(now) = weighted(state, phase, read) {
            *shown = Some(shown.map_or(now, |before| before.max(now)));
        }
        *shown
    }
}

/// The progress of a job in `state` at `phase` with `read` (0..1) of its
/// backup read and restored; `None` when it says nothing new (queued, or failed).
fn weighted(state: JobState, phase: Phase, read: f64) -> Option<f64> {
    match (state, phase) {
        (JobState::Done, _) => Some(1.0),
        (JobState::Error, _) | (_, Phase::Queued) => None,
        (_, Phase::Downloading | Phase::Restoring) => Some(RESTORED * read),
        (_, Phase::Neutralizing) => Some(NEUTRALIZING),
        // A running job never reads 1, whatever its phase says.
        (_, Phase::Finishing | Phase::Done | Phase::Error) => Some(FINISHING),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_covers_the_whole_job_and_never_goes_back() {
        let p = Progress::default();
        assert_eq!(p.now(JobState::Running, Phase::Queued), None);
        p.set_size(1000);
        assert_eq!(p.now(JobState::Running, Phase::Downloading), Some(0.0));
        p.bytes_read().store(500, Ordering::Relaxed);
        assert_eq!(p.now(JobState::Running, Phase::Restoring), Some(0.425));
        p.bytes_read().store(5000, Ordering::Relaxed);
        assert_eq!(p.now(JobState::Running, Phase::Restoring), Some(0.85));
        assert_eq!(p.now(JobState::Running, Phase::Neutralizing), Some(0.9));
        // The restore's own progress, once known, weighs more than the download.
        let q = Progress::default();
        q.set_size(1000);
        q.bytes_read().store(1000, Ordering::Relaxed);
        q.restored().total.store(10, Ordering::Relaxed);
        let after_download = q.now(JobState::Running, Phase::Restoring).unwrap();
        q.restored().done.store(5, Ordering::Relaxed);
        let halfway = q.now(JobState::Running, Phase::Restoring).unwrap();
        assert!(after_download < halfway && halfway < 0.85, "{after_download} {halfway}");
        // A counter that starts over (a template copy after all) does not move it back.
        p.bytes_read().store(0, Ordering::Relaxed);
        assert_eq!(p.now(JobState::Running, Phase::Restoring), Some(0.9));
        assert_eq!(p.now(JobState::Running, Phase::Finishing), Some(0.95));
        assert_eq!(p.now(JobState::Error, Phase::Error), Some(0.95));
        assert_eq!(p.now(JobState::Done, Phase::Done), Some(1.0));
    }
}
