//! Admission in rounds: the requests that arrive while a round runs wait for
//! the next one, which takes the cross-process admission lock once, reads the
//! registry and `pg_database` once, and admits them in arrival order as long
//! as they fit. A request waits for at most the round under way and its own,
//! not for every request ahead of it.

use std::sync::Arc;

use numikube_staging_rpc::RunStarted;
use tokio::sync::{mpsc, oneshot};

use super::error::AdmissionError;
use super::limit::Room;
use crate::job::run::{self, JobContext};
use crate::job::{take_turn, Job, JobRequest, Jobs};
use crate::pg::registry::Registry;
use crate::pg::DbError;
use crate::report::journal::JournalEntry;
use crate::report::Reporter;
use crate::services::Services;
use tokio::sync::{Notify, Semaphore};

/// What the rounds and the admitted jobs share.
pub(super) struct Shared {
    pub(super) services: Arc<Services>,
    pub(super) jobs: Arc<Jobs>,
    pub(super) reporter: Arc<Reporter>,
    pub(super) registry: Registry,
    pub(super) slots: Arc<Semaphore>,
    pub(super) user_arrived: Notify,
}

/// A request waiting for its round, and where its answer goes.
pub struct Waiting {
    /// The checked request.
    pub request: JobRequest,
    /// The answer of `Admission::accept`.
    pub reply: oneshot::Sender<Result<RunStarted, AdmissionError>>,
}

/// Runs rounds for as long as the admission exists.
pub async fn serve(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Waiting>) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while let Ok(next) = queue.try_recv() {
            group.push(next);
        }
        // Whoever stopped waiting (a client gone) takes no room.
        group.retain(|w| !w.reply.is_closed());
        if group.is_empty() {
            continue;
        }
        if shared.services.is_stopping() {
            group.into_iter().for_each(|w| refuse(w, AdmissionError::Stopping));
            continue;
        }
        round(&shared, group).await;
    }
}

/// One round: the registry and `pg_database` (one trip), each request in
/// order, then the reservations and the end of the round (one more trip).
async fn round(shared: &Arc<Shared>, group: Vec<Waiting>) {
    let registry = match shared.registry.begin().await {
        Ok(round) => round,
        Err(e) => return unavailable(group, &e),
    };
    // The database server is back: drop what a failed cleanup left.
    shared.services.database_answered();
    let mut room = Room::new(&shared.services, registry.databases(), registry.in_flight().clone());
    let mut fit = Vec::with_capacity(group.len());
    for waiting in group {
        match room.admit(&waiting.request) {
            Ok(()) => fit.push(waiting),
            Err(e) => refuse(waiting, e),
        }
    }
    drop(room);
    if fit.is_empty() {
        let _ = registry.end().await;
        return;
    }
    let names: Vec<String> = fit.iter().map(|w| w.request.db_name.clone()).collect();
    let reservations = match registry.reserve_and_end(&names).await {
        Ok(r) => r,
        Err(e) => return unavailable(fit, &e),
    };
    // Reserved, the jobs count against the limit in every process; this
    // process's next round starts only once they are registered here too.
    for (waiting, reservation) in fit.into_iter().zip(reservations) {
        let Some(reservation) = reservation else {
            let refusal = AdmissionError::in_flight(&waiting.request);
            refuse(waiting, refusal);
            continue;
        };
        let job_id = uuid::Uuid::new_v4().to_string();
        let request = &waiting.request;
        let entry = request.journal_entry(&job_id);
        // Turns are taken here, in admission order (see `take_turn`).
        let job = Arc::new(Job::new(request.clone(), entry.status(), Some(take_turn(&shared.slots).await)));
        job.hold(reservation);
        shared.jobs.insert(job.clone());
        // The (slow, fsync'ed) journal writes run side by side, out of the round.
        shared.services.work.spawn(start(shared.clone(), waiting.reply, job, entry));
    }
}

/// Records an admitted job in the journal, answers, and starts the job; in a
/// task of its own, so that a client gone meanwhile leaves no job half-started.
async fn start(shared: Arc<Shared>, reply: oneshot::Sender<Result<RunStarted, AdmissionError>>, job: Arc<Job>, entry: JournalEntry) {
    let reporter = shared.reporter.clone();
    let written = tokio::task::spawn_blocking(move || reporter.journal().write(&entry)).await.expect("the journal write does not panic");
    // No promise to report without a record of it.
    if let Err(source) = written {
        shared.jobs.remove(&job.id());
        let _ = reply.send(Err(AdmissionError::Journal { dir: shared.reporter.journal().dir().to_path_buf(), source }));
        return;
    }
    shared.user_arrived.notify_waiters();
    let request = &job.request;
    let started =
        RunStarted { db_name: request.db_name.clone(), job_id: job.id(), backup: request.backup.clone(), anonymize: request.anonymize };
    tracing::info!(job = %started.job_id, db = %request.db_name, client = %request.client, "job accepted");
    let ctx = JobContext { services: shared.services.clone(), reporter: shared.reporter.clone() };
    shared.services.work.spawn(run::run(ctx, job));
    let _ = reply.send(Ok(started));
}

fn refuse(waiting: Waiting, error: AdmissionError) {
    let _ = waiting.reply.send(Err(error));
}

fn unavailable(group: Vec<Waiting>, error: &DbError) {
    tracing::warn!("{} request(s) not admitted: {error}", group.len());
    group.into_iter().for_each(|w| refuse(w, AdmissionError::Unavailable(copy_of(error))));
}

fn copy_of(error: &DbError) -> DbError {
    DbError { where_: error.where_.clone(), detail: error.detail.clone() }
}
