//! A job's state: the request, its status and progress, its cancel signal,
//! its place in line and its reservation; and the registry of this process's jobs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use numikube_staging_rpc::{JobState, JobStatus, NeutralizeReport, Phase};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::copy::{FilestoreReport, Fraction, Timeline, Tracker};
use crate::pg::registry::Reservation;
use crate::report::journal::JournalEntry;
use crate::storage::Backup;

use super::progress::Progress;
use super::turn::Turn;

/// A checked prod2x request.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// Client technical name.
    pub client: String,
    /// Final database name.
    pub db_name: String,
    /// Where to tell production how it ended (none from the command line).
    pub callback: Option<String>,
    /// Requester's address for the fallback mail.
    pub email: Option<String>,
    /// The backup asked for (a key of the client's); `None`: the newest.
    pub backup: Option<String>,
    /// Whether the name carries a timestamp: such a run never replaces a copy.
    pub timestamped: bool,
    /// Production's id of this run (`request_id`), so that a repeat gets the first answer.
    pub request_id: Option<String>,
    /// Whether the copy is anonymized: asked by the payload, or `numikube_staging_anonymize = always`.
    pub anonymize: bool,
}

impl JobRequest {
    /// The journal entry of this request admitted as job `job_id`: running, owned by this process.
    pub fn journal_entry(&self, job_id: &str) -> JournalEntry {
        JournalEntry {
            client: Some(self.client.clone()),
            request_id: self.request_id.clone(),
            anonymize: self.anonymize,
            ..JournalEntry::new(job_id, &self.db_name, self.callback.clone(), self.email.clone())
        }
    }

    /// The request a journal entry was made from, as far as the entry keeps
    /// it (the backup asked for and the timestamp are not kept: an adopted job
    /// is only reported, never run again).
    pub fn from_journal(entry: &JournalEntry) -> JobRequest {
        JobRequest {
            client: entry.client.clone().unwrap_or_default(),
            db_name: entry.db_name.clone(),
            callback: entry.callback.clone(),
            email: entry.email.clone(),
            backup: None,
            timestamped: false,
            request_id: entry.request_id.clone(),
            anonymize: entry.anonymize,
        }
    }
}

/// One accepted job.
pub struct Job {
    /// The request.
    pub request: JobRequest,
    status: Mutex<JobStatus>,
    progress: Progress,
    /// Cancelled by `staging_cancel`: a queued or restoring job stops.
    cancel: CancellationToken,
    /// Cancelled once the job has ended (done or error).
    ended: CancellationToken,
    /// Its place in line for a restore slot, taken at admission.
    turn: Mutex<Option<Turn>>,
    /// Its place in the registry of jobs in flight, given back when it ends.
    reservation: Mutex<Option<Reservation>>,
    /// Where its steps' times are recorded.
    timeline: Timeline,
}

impl Job {
    /// A job in `status`, waiting for `turn` (none for a job only to be reported).
    pub fn new(request: JobRequest, status: JobStatus, turn: Option<Turn>) -> Job {
        let ended = CancellationToken::new();
        if status.state != JobState::Running {
            ended.cancel();
        }
        Job {
            request,
            status: Mutex::new(status),
            progress: Progress::default(),
            cancel: CancellationToken::new(),
            ended,
            turn: Mutex::new(turn),
            reservation: Mutex::new(None),
            timeline: Timeline::default(),
        }
    }

    /// A snapshot of the job's status, with progress over the whole job computed now.
    pub fn status(&self) -> JobStatus {
        let mut status = self.status.lock().unwrap().clone();
        status.progress = self.progress.now(status.state, status.phase).or(status.progress);
        status
    }

    /// Asks the job to stop (`staging_cancel`); one in `finishing` completes.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Resolves once the job was asked to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The step it is at.
    pub fn phase(&self) -> Phase {
        self.status.lock().unwrap().phase
    }

    /// Changes the status in place; a job that ends gives back its reservation
    /// and wakes whoever waits for its end.
    pub fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        let mut status = self.status.lock().unwrap();
        f(&mut status);
        if status.state != JobState::Running {
            self.reservation.lock().unwrap().take();
            self.ended.cancel();
        }
    }

    /// Resolves once the job has ended (at once for a job that already has).
    pub async fn ended(&self) {
        self.ended.cancelled().await
    }

    /// Keeps the job's reservation until the job ends (see [`Job::update`]).
    pub fn hold(&self, reservation: Reservation) {
        *self.reservation.lock().unwrap() = Some(reservation);
    }

    /// The job's id.
    pub fn id(&self) -> String {
        self.status.lock().unwrap().job_id.clone()
    }

    /// Whether it has not ended.
    pub fn is_running(&self) -> bool {
        self.status.lock().unwrap().state == JobState::Running
    }

    /// Waits, in admission order, for a restore slot (`numikube_staging_max_restores`).
    pub async fn wait_turn(&self) -> OwnedSemaphorePermit {
        let turn = self.turn.lock().unwrap().take().expect("a job waits for its turn once");
        turn.await.expect("the semaphore is never closed")
    }
}

impl Tracker for Job {
    fn phase(&self, phase: Phase) {
        tracing::info!(job = %self.id(), db = %self.request.db_name, ?phase, "job phase");
        self.status.lock().unwrap().phase = phase;
    }

    fn backup_chosen(&self, backup: &Backup) {
        self.progress.set_size(backup.size);
        self.update(|s| s.backup = Some(backup.key.clone()));
    }

    fn bytes_read(&self) -> Arc<AtomicU64> {
        self.progress.bytes_read()
    }

    fn restored(&self) -> Arc<Fraction> {
        self.progress.restored()
    }

    fn neutralized(&self, report: &NeutralizeReport) {
        self.update(|s| s.neutralized = Some(report.clone()));
    }

    fn filestore(&self, report: &FilestoreReport) {
        self.update(|s| {
            s.filestore = report.origin.clone();
            s.missing_attachments = report.missing_attachments;
        });
    }

    fn timeline(&self) -> &Timeline {
        &self.timeline
    }
}

/// This process's jobs, by id.
#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl Jobs {
    /// A job by id or by final database name (the newest one of that name).
    pub fn find(&self, job_or_db: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap();
        if let Some(job) = jobs.get(job_or_db) {
            return Some(job.clone());
        }
        jobs.values().filter(|j| j.request.db_name == job_or_db).max_by_key(|j| j.status.lock().unwrap().started_at).cloned()
    }

    /// Registers a job under its id.
    pub fn insert(&self, job: Arc<Job>) {
        self.jobs.lock().unwrap().insert(job.id(), job);
    }

    /// Forgets a job (one whose admission failed after all).
    pub fn remove(&self, job_id: &str) {
        self.jobs.lock().unwrap().remove(job_id);
    }

    /// Final names of this process's restores still in flight (every
    /// process's are in the registry: [`crate::pg::registry::Round`]).
    pub fn in_flight(&self) -> HashSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().filter(|j| j.is_running()).map(|j| j.request.db_name.clone()).collect()
    }

    /// Ids (without dashes, as in working names) of this process's running jobs.
    pub fn busy_ids(&self) -> HashSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().filter(|j| j.is_running()).map(|j| j.id().replace('-', "")).collect()
    }
}
