//! Admission: a request is checked ([`checks`], [`names`]), then admitted
//! under the database limit ([`room`]) and registered, in one step that
//! concurrent requests cannot interleave; then its job starts in the background.

pub mod checks;
pub mod names;
mod room;

use std::path::PathBuf;
use std::sync::Arc;

use numikube_staging_rpc::RunStarted;
use tokio::sync::{MutexGuard, Notify, OwnedSemaphorePermit, Semaphore};

use crate::job::run::{self, JobContext};
use crate::job::{take_turn, Job, JobRequest, Jobs};
use crate::pg::DbError;
use crate::report::journal::JournalEntry;
use crate::report::Reporter;
use crate::services::Services;

/// Why a request was not admitted; each is a sentence for the Odoo user.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The token is missing or wrong.
    #[error("The staging token is wrong: the environment's token on production must equal numikube_staging_token of the staging server.")]
    BadToken,
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The sidecar is stopping.
    #[error("The staging service is restarting; run the job again in a minute.")]
    Stopping,
    /// PostgreSQL cannot be read.
    #[error("The staging server cannot check its databases: {0}.")]
    Unavailable(DbError),
    /// A database the sidecar did not make has the name.
    #[error("A database named \"{0}\" already exists on the staging server and was not made by the staging service; it is never replaced. Choose another suffix.")]
    Foreign(String),
    /// A job is making that name already.
    #[error("The database \"{0}\" is already being created; wait for that job to end.")]
    InFlight(String),
    /// No room under the limit.
    #[error("The staging server already holds {count} databases (its limit is {limit}); drop one with a Drop Databases job first.")]
    LimitReached {
        /// Databases and jobs counted.
        count: usize,
        /// `numikube_staging_database_limit`.
        limit: usize,
    },
    /// The journal cannot be written, so no promise to report can be made.
    #[error("The staging server cannot write its job journal in {}: {source}. Free some disk space or fix the permissions, then run the job again.", dir.display())]
    Journal {
        /// The journal's directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The admission lock, the restore slots and the jobs they admit.
pub struct Admission {
    services: Arc<Services>,
    jobs: Arc<Jobs>,
    reporter: Arc<Reporter>,
    lock: tokio::sync::Mutex<()>,
    slots: Arc<Semaphore>,
    user_arrived: Notify,
}

impl Admission {
    /// The admission of jobs into `jobs`, with `numikube_staging_max_restores` slots.
    pub fn new(services: Arc<Services>, jobs: Arc<Jobs>, reporter: Arc<Reporter>) -> Admission {
        let slots = Arc::new(Semaphore::new(services.config.max_restores));
        Admission { services, jobs, reporter, lock: tokio::sync::Mutex::new(()), slots, user_arrived: Notify::new() }
    }

    /// The admission lock: held, no job is admitted. A drop holds it so that
    /// it never interleaves with the admission of a restore of the same name.
    pub async fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }

    /// A free restore slot now, if there is one (pre-warm takes only free ones).
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Resolves when a user's job is admitted (pre-warm gives way).
    pub async fn user_arrived(&self) {
        self.user_arrived.notified().await
    }

    /// Admits a checked request under the limit, then starts its job in the background.
    ///
    /// The limit counts this instance's databases plus the restores in flight,
    /// both read under the admission lock, so concurrent requests never exceed it.
    pub async fn accept(&self, request: JobRequest) -> Result<RunStarted, AdmissionError> {
        if self.services.is_stopping() {
            return Err(AdmissionError::Stopping);
        }
        // A request that cannot fit is refused without waiting for the lock, so
        // that refusals are answered in parallel; one that may fit is checked
        // again under the lock, where checking and registering are one step.
        room::check_room(&self.services, &self.jobs, &request).await?;
        let admission = self.lock.lock().await;
        if self.services.is_stopping() {
            return Err(AdmissionError::Stopping);
        }
        room::check_room(&self.services, &self.jobs, &request).await?;

        let job_id = uuid::Uuid::new_v4().to_string();
        let entry = JournalEntry {
            client: Some(request.client.clone()),
            ..JournalEntry::new(&job_id, &request.db_name, request.callback.clone(), request.email.clone())
        };
        // Registered, the job counts against the limit: the lock can go before
        // the (slow, fsync'ed) journal write.
        let job = Arc::new(Job::new(request.clone(), entry.status(), Some(take_turn(&self.slots).await)));
        self.jobs.insert(job.clone());
        drop(admission);

        // No promise to report without a record of it.
        let reporter = self.reporter.clone();
        let written = tokio::task::spawn_blocking(move || reporter.journal().write(&entry)).await.expect("the journal write does not panic");
        if let Err(source) = written {
            self.jobs.remove(&job_id);
            return Err(AdmissionError::Journal { dir: self.reporter.journal().dir().to_path_buf(), source });
        }
        self.user_arrived.notify_waiters();
        tracing::info!(job = %job_id, db = %request.db_name, client = %request.client, "job accepted");
        let ctx = JobContext { services: self.services.clone(), reporter: self.reporter.clone() };
        tokio::spawn(run::run(ctx, job));
        Ok(RunStarted { db_name: request.db_name, job_id })
    }
}
