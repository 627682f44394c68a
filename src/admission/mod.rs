//! Admission: a request is checked ([`checks`], [`names`]), then admitted
//! under the database limit ([`room`]) and registered in the cross-process
//! registry of jobs in flight ([`crate::pg::registry`]), in rounds ([`rounds`])
//! that concurrent requests, of this process or another, cannot interleave;
//! then its job starts in the background.

pub mod checks;
mod error;
mod limit;
pub mod names;
mod rounds;
pub mod tenant;

use std::sync::{Arc, Mutex};

use numikube_staging_rpc::RunStarted;
use tokio::sync::{mpsc, oneshot, Notify, OwnedSemaphorePermit, Semaphore};

use crate::job::{JobRequest, Jobs};
use crate::pg::registry::{Registry, Round};
use crate::pg::DbError;
use crate::report::Reporter;
use crate::services::Services;
pub use error::AdmissionError;

/// The admission of jobs: the rounds, the restore slots and the jobs they admit.
pub struct Admission {
    shared: Arc<rounds::Shared>,
    queue: mpsc::UnboundedSender<rounds::Waiting>,
    /// The queue's other end, until the first request starts the rounds.
    idle: Mutex<Option<mpsc::UnboundedReceiver<rounds::Waiting>>>,
}

impl Admission {
    /// The admission of jobs into `jobs`, with `numikube_staging_max_restores` slots.
    pub fn new(services: Arc<Services>, jobs: Arc<Jobs>, reporter: Arc<Reporter>) -> Admission {
        let slots = Arc::new(Semaphore::new(services.config.max_restores));
        let registry = Registry::new(&services.db);
        let (queue, idle) = mpsc::unbounded_channel();
        let shared = rounds::Shared { services, jobs, reporter, registry, slots, user_arrived: Notify::new() };
        Admission { shared: Arc::new(shared), queue, idle: Mutex::new(Some(idle)) }
    }

    /// The admission lock of every process of this `db_user`, with the jobs in
    /// flight: held, no job is admitted. A drop holds it so that it never
    /// interleaves with the admission of a restore of the same name.
    pub async fn lock(&self) -> Result<Round, DbError> {
        self.shared.registry.begin().await
    }

    /// A free restore slot now, if there is one (pre-warm takes only free ones).
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.shared.slots.clone().try_acquire_owned().ok()
    }

    /// Resolves when a user's job is admitted (pre-warm gives way).
    pub async fn user_arrived(&self) {
        self.shared.user_arrived.notified().await
    }

    /// Admits a checked request under the limit, then starts its job in the background.
    ///
    /// The limit counts this instance's databases plus every process's jobs in
    /// flight, read under the cross-process admission lock, so concurrent
    /// requests never exceed it. Requests that arrive while a round runs wait
    /// for the next, which reads PostgreSQL once for all of them.
    pub async fn accept(&self, request: JobRequest) -> Result<RunStarted, AdmissionError> {
        if self.shared.services.is_stopping() {
            return Err(AdmissionError::Stopping);
        }
        if let Some(idle) = self.idle.lock().unwrap().take() {
            tokio::spawn(rounds::serve(self.shared.clone(), idle));
        }
        let (reply, answer) = oneshot::channel();
        self.queue.send(rounds::Waiting { request, reply }).map_err(|_| AdmissionError::Stopping)?;
        answer.await.unwrap_or(Err(AdmissionError::Stopping))
    }
}
