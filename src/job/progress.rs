//! A job's progress over the whole job, as `staging_status` gives it out:
//! download and restore weighted by the bytes of the backup read, then one
//! step per phase, 1 only when done, and never lower than a value already
//! given out (a template copy or a phase change must not make it go back).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use numikube_staging_rpc::{JobState, Phase};

/// Share of the whole job that download and restore cover, by bytes read.
const RESTORED: f64 = 0.85;
/// Where neutralization starts.
const NEUTRALIZING: f64 = 0.9;
/// Where the last step (marker, filestore, rename, publication) starts.
const FINISHING: f64 = 0.95;

/// The counters behind a job's progress, and the highest value given out.
#[derive(Default)]
pub struct Progress {
    bytes_read: Arc<AtomicU64>,
    size: AtomicU64,
    shown: Mutex<Option<f64>>,
}

impl Progress {
    /// The counter of backup bytes read, which the restore advances.
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes_read.clone()
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
        let mut shown = self.shown.lock().unwrap();
        if let Some(now) = weighted(state, phase, read) {
            *shown = Some(shown.map_or(now, |before| before.max(now)));
        }
        *shown
    }
}

/// The progress of a job in `state` at `phase` with `read` (0..1) of its
/// backup read; `None` when it says nothing new (queued, or failed).
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
        // A counter that starts over (a template copy after all) does not move it back.
        p.bytes_read().store(0, Ordering::Relaxed);
        assert_eq!(p.now(JobState::Running, Phase::Restoring), Some(0.9));
        assert_eq!(p.now(JobState::Running, Phase::Finishing), Some(0.95));
        assert_eq!(p.now(JobState::Error, Phase::Error), Some(0.95));
        assert_eq!(p.now(JobState::Done, Phase::Done), Some(1.0));
    }
}
