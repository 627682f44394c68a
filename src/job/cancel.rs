//! `staging_cancel`: a queued or restoring job stops, its hidden database is
//! dropped, and it is reported like any failed job (see [`super::run`]).

use numikube_staging_rpc::{JobState, JobStatus};

use super::state::Jobs;

/// Why a job cannot be cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such job in this process.
    #[error("No job \"{0}\" is known to the staging service since it started.")]
    Unknown(String),
    /// The job ended before.
    #[error("The job {job_id} has already ended ({state}); there is nothing to cancel.")]
    Ended {
        /// The job.
        job_id: String,
        /// `done` or `error`.
        state: &'static str,
    },
    /// The job was at its last step, which is never cut short, and finished.
    #[error("The job {job_id} was at its last step and finished: the copy {db_name} exists. Drop it if it is not wanted.")]
    Finished {
        /// The job.
        job_id: String,
        /// Its copy.
        db_name: String,
    },
}

impl Jobs {
    /// Stops the job `job_id` and waits until it has ended, its hidden database
    /// dropped; answers its final status. A job at its last step completes.
    pub async fn cancel(&self, job_id: &str) -> Result<JobStatus, CancelError> {
        let job = self.find(job_id).ok_or_else(|| CancelError::Unknown(job_id.into()))?;
        let ended = |state| CancelError::Ended { job_id: job.id(), state: if state == JobState::Done { "done" } else { "error" } };
        if !job.is_running() {
            return Err(ended(job.status().state));
        }
        tracing::info!(job = %job.id(), db = %job.request.db_name, phase = ?job.phase(), "cancelling the job");
        job.cancel();
        job.ended().await;
        let status = job.status();
        if status.state == JobState::Done {
            return Err(CancelError::Finished { job_id: job.id(), db_name: job.request.db_name.clone() });
        }
        Ok(status)
    }
}
