//! The life of one job after its admission: wait for a restore slot, make
//! the copy (see [`crate::copy`]), record how it ended, publish the copy,
//! report. A job never stays *running*: a panic, a stop or a failure all
//! end it in *error*, with its hidden database dropped.

use std::sync::Arc;

use chrono::Utc;
use numikube_staging_rpc::{JobState, Phase, Reach};

use super::state::Job;
use crate::copy::{self, CopyError, CopyRequest, Finished, Hidden, Tracker};
use crate::pg::{WorkKind, WorkingName};
use crate::report::journal::JournalEntry;
use crate::report::Reporter;
use crate::services::Services;

/// The error of a job cut short by a stop or a crash of the sidecar.
pub const INTERRUPTED: &str = "The copy was interrupted by a restart of the staging service; run the job again.";

/// The error of a job stopped by `staging_cancel`.
pub const CANCELLED: &str = "Cancelled by the staging service at the request of production.";

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The copy failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A bug: the pipeline panicked.
    #[error("The copy failed because of an internal error of the staging service.")]
    Panic,
    /// SIGTERM before the last step.
    #[error("{INTERRUPTED}")]
    Interrupted(Phase),
    /// `staging_cancel` before the last step.
    #[error("{CANCELLED}")]
    Cancelled(Phase),
}

impl JobError {
    /// The detail for the job's traceback.
    pub fn detail(&self) -> String {
        match self {
            JobError::Copy(e) => e.detail(),
            JobError::Panic => "panic in the job pipeline (see the staging service's log)".into(),
            JobError::Interrupted(phase) => format!("numikube-staging was stopped (SIGTERM) while the job was in phase {phase:?}"),
            JobError::Cancelled(phase) => {
                format!("staging_cancel was called while the job was in phase {phase:?}; its hidden database was dropped")
            }
        }
    }
}

/// What a running job needs from the rest of the sidecar.
#[derive(Clone)]
pub struct JobContext {
    /// Configuration, PostgreSQL, the bucket.
    pub services: Arc<Services>,
    /// The journal and the reports.
    pub reporter: Arc<Reporter>,
}

/// Runs one job to its end and reports it; never leaves it *running*.
pub async fn run(ctx: JobContext, job: Arc<Job>) {
    let services = &ctx.services;
    let id = job.id();
    let hidden = Hidden::new(services.clone(), WorkingName::for_job(WorkKind::Temp, &id));
    let mut counted = services.metrics.track_job(); // spawned at admission: queued
    let steps = async {
        let queued = std::time::Instant::now();
        let _slot = job.wait_turn().await;
        job.timeline().since("queue", queued);
        counted.running();
        let request = CopyRequest {
            job_id: &id,
            client: &job.request.client,
            db_name: &job.request.db_name,
            backup: job.request.backup.as_deref(),
            refresh: !job.request.timestamped,
            requested_by: job.request.email.as_deref(),
            life: services.config.expire_after,
            anonymize: job.request.anonymize,
        };
        copy::make(services, &request, hidden.name(), job.as_ref()).await.map_err(JobError::from)
    };
    let outcome: Result<Finished, JobError> = tokio::select! {
        // A bug must not leave the job running for ever: a panic is a failure like any other.
        outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(steps)) => outcome.unwrap_or(Err(JobError::Panic)),
        () = before_finishing(&job, services.stopped()) => Err(JobError::Interrupted(job.phase())),
        () = before_finishing(&job, job.cancelled()) => Err(JobError::Cancelled(job.phase())),
    };
    let (state, message, detail) = match &outcome {
        Ok(_) => {
            hidden.placed();
            (JobState::Done, None, None)
        }
        Err(e) => {
            let (message, detail) = blame_the_database_server(services, e).await;
            tracing::error!(job = %id, "job failed: {message}: {detail}");
            hidden.discard().await;
            (JobState::Error, Some(message), Some(detail))
        }
    };
    let finished_at = Utc::now();
    let anonymized = outcome.as_ref().ok().and_then(|f| f.anonymized.clone());
    let end = |job: &Job| {
        job.update(|s| {
            s.state = state;
            s.phase = state.last_phase().unwrap_or(s.phase);
            s.error = message.clone();
            s.finished_at = Some(finished_at);
            if state == JobState::Done {
                s.progress = Some(1.0);
                s.anonymized = anonymized.clone();
            }
        })
    };
    if state != JobState::Done {
        end(&job);
    }
    let entry = JournalEntry {
        state,
        error: message.clone(),
        detail,
        started_at: Some(job.status().started_at),
        finished_at: Some(finished_at),
        filestore: outcome.as_ref().ok().and_then(|f| f.filestore.origin.clone()),
        missing_attachments: outcome.as_ref().ok().and_then(|f| f.filestore.missing_attachments),
        anonymized: anonymized.clone(),
        ..job.request.journal_entry(&id)
    };
    // fsync'ed: on a blocking thread, not on the async core that answers requests.
    let (reporter, written) = (ctx.reporter.clone(), entry.clone());
    let _ = tokio::task::spawn_blocking(move || reporter.journal().write_or_log(&written)).await;
    // "Done" means open: production hears of the copy, and the job is done
    // (for staging_status, the limit and drops), only once Odoo can open it.
    if let Ok(finished) = &outcome {
        copy::publish(services, finished, job.timeline()).await;
        end(&job);
    }
    tracing::info!(job = %id, db = %job.request.db_name, ?state, steps = %job.timeline(), "job timings");
    counted.finished(state == JobState::Done);
    services.refresh_copies().await;
    ctx.reporter.tell(&services.config, &entry).await;
}

/// Resolves once `signal` has (a stop, a cancel), unless the job has reached
/// its last step: `finishing` renames databases and must not be cut in half.
async fn before_finishing(job: &Job, signal: impl std::future::Future<Output = ()>) {
    signal.await;
    if job.phase() == Phase::Finishing {
        std::future::pending::<()>().await;
    }
}

/// When PostgreSQL itself is gone, says so instead of what the tool saw of it.
async fn blame_the_database_server(services: &Services, error: &JobError) -> (String, String) {
    let as_is = (error.to_string(), error.detail());
    if matches!(error, JobError::Copy(e) if e.is_database_server()) {
        return as_is;
    }
    let Reach::Down(why) = services.db.health().await else {
        return as_is;
    };
    (format!("The copy failed because {why}; run the job again once the database server is back."), format!("{}\n{}", as_is.0, as_is.1))
}
