//! Job states as the metrics see them, and a guard that keeps the in-flight gauge honest.
//!
//! `numikube_staging_jobs_total{state}` counts every entry into a state, and
//! `numikube_staging_jobs_in_flight{state}` holds the jobs queued or running right now. A gauge
//! moved by hand drifts the first time a code path forgets its `dec()` (an early `?`, a panic, a
//! cancelled task), so the normal way to record a job is a [`JobTracker`]: dropping it without an
//! outcome counts the job as an error, which is also what the callback reports for such a job.

use std::sync::Arc;

use super::labels::JobState;
use super::series::Metrics;

/// An admitted job's entry in the metrics; dropping it unfinished records an error.
#[derive(Debug)]
pub struct JobTracker {
    metrics: Arc<Metrics>,
    /// `None` once an outcome was recorded: then `Drop` has nothing left to do.
    state: Option<JobState>,
}

impl Metrics {
    /// Records a newly admitted (queued) job and returns the guard that follows it.
    pub fn track_job(self: &Arc<Self>) -> JobTracker {
        self.job_state(None, JobState::Queued);
        JobTracker { metrics: Arc::clone(self), state: Some(JobState::Queued) }
    }
}

impl JobTracker {
    /// Records that the job left the queue and started restoring (no-op if already running).
    pub fn running(&mut self) {
        if self.state == Some(JobState::Queued) {
            self.metrics.job_state(Some(JobState::Queued), JobState::Running);
            self.state = Some(JobState::Running);
        }
    }

    /// Records the job's outcome: `Done` when `ok`, else `Error`.
    pub fn finished(mut self, ok: bool) {
        self.finish(if ok { JobState::Done } else { JobState::Error });
    }

    fn finish(&mut self, to: JobState) {
        if let Some(from) = self.state.take() {
            self.metrics.job_state(Some(from), to);
        }
    }
}

impl Drop for JobTracker {
    fn drop(&mut self) {
        self.finish(JobState::Error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or("")
    }

    #[test]
    fn a_dropped_tracker_counts_as_an_error_and_leaves_the_flight() {
        let m = Arc::new(Metrics::new("t"));
        let mut job = m.track_job();
        job.running();
        let text = m.encode();
        assert!(line(&text, "numikube_staging_jobs_in_flight{state=\"running\"}").ends_with(" 1"));
        drop(job);
        m.track_job().finished(true);
        let text = m.encode();
        assert!(line(&text, "numikube_staging_jobs_in_flight{state=\"running\"}").ends_with(" 0"));
        assert!(line(&text, "numikube_staging_jobs_in_flight{state=\"queued\"}").ends_with(" 0"));
        assert!(line(&text, "numikube_staging_jobs_total{state=\"queued\"}").ends_with(" 2"));
        assert!(line(&text, "numikube_staging_jobs_total{state=\"error\"}").ends_with(" 1"));
        assert!(line(&text, "numikube_staging_jobs_total{state=\"done\"}").ends_with(" 1"));
    }
}
