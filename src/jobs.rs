//! Staging jobs: the checks and the admission under the database limit, the
//! registry of accepted jobs, and the life of one job — its copy (see
//! [`crate::copy`]), its report to production, its publication, its shutdown.
//!
//! A job goes `queued → downloading → restoring → neutralizing → finishing →
//! done`, or to `error` from any step. The database with the final name
//! appears only in `finishing`, once the copy is complete and neutralized;
//! until then it lives as a hidden (template) database named
//! `numikube_tmp_<job>`, dropped on any failure. Each job has an entry in the
//! [`crate::journal`] until it has been reported.


use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, error, JobState, JobStatus, Phase, RunPayload, RunStarted};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::copy::{discard, pipeline, Failure, Finished};
use crate::journal::{Journal, JournalEntry};
use crate::recovery::recover;
use crate::callback::{self, Told};
use crate::config::Config;
use crate::{names, templates};

/// Prefix of a refreshed copy's previous version while the new one takes its name.
pub(crate) const OLD_PREFIX: &str = "numikube_old_";

/// The error of a job cut short by a stop or a crash of the sidecar.
pub const INTERRUPTED: &str = "The copy was interrupted by a restart of the staging service; run the job again.";

/// A checked prod2x request, ready to be admitted.
#[derive(Debug, Clone)]
pub struct Prod2x {
    /// Client technical name.
    pub client: String,
    /// Final database name.
    pub db_name: String,
    /// Where to tell production how it ended (none from the command line).
    pub callback: Option<String>,
    /// Requester's address for the fallback mail.
    pub email: Option<String>,
}

/// One accepted job.
pub struct Job {
    /// The request.
    pub request: Prod2x,
    pub(crate) status: Mutex<JobStatus>,
    pub(crate) bytes_read: Arc<AtomicU64>,
    pub(crate) size: AtomicU64,
    /// Its place in the line for a restore slot, taken at admission.
    pub(crate) turn: Mutex<Option<Turn>>,
}

impl Job {
    pub(crate) fn new(request: Prod2x, status: JobStatus, turn: Option<Turn>) -> Job {
        Job {
            request,
            status: Mutex::new(status),
            bytes_read: Arc::new(AtomicU64::new(0)),
            size: AtomicU64::new(0),
            turn: Mutex::new(turn),
        }
    }

    /// A snapshot of the job's status, with progress computed now.
    pub fn status(&self) -> JobStatus {
        let mut status = self.status.lock().unwrap().clone();
        let size = self.size.load(Ordering::Relaxed);
        if status.state == JobState::Running && size > 0 && status.phase != Phase::Queued {
            let read = self.bytes_read.load(Ordering::Relaxed) as f64;
            status.progress = Some((read / size as f64).min(1.0));
        }
        status
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        tracing::info!(job = %self.id(), db = %self.request.db_name, ?phase, "job phase");
        self.status.lock().unwrap().phase = phase;
    }

    pub(crate) fn phase(&self) -> Phase {
        self.status.lock().unwrap().phase
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.status.lock().unwrap());
    }

    /// The job's id.
    pub fn id(&self) -> String {
        self.status.lock().unwrap().job_id.clone()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.status.lock().unwrap().state == JobState::Running
    }

    /// Waits, in admission order, for a restore slot (`numikube_staging_max_restores`).
    pub(crate) async fn wait_turn(&self) -> OwnedSemaphorePermit {
        let turn = self.turn.lock().unwrap().take().expect("a job waits for its turn once");
        turn.await.expect("the semaphore is never closed")
    }
}

/// A job's place in line for a restore slot (`numikube_staging_max_restores`).
type Turn = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// Takes a place in line for a slot now. tokio's semaphore serves waiters
/// first come, first served, but a waiter is queued only when first polled:
/// polling once here, under the admission lock, makes the line the order of
/// admission rather than the order in which spawned tasks happen to run.
async fn take_turn(slots: &Arc<Semaphore>) -> Turn {
    let mut turn: Turn = Box::pin(slots.clone().acquire_owned());
    match futures::poll!(turn.as_mut()) {
        Poll::Ready(permit) => Box::pin(std::future::ready(permit)),
        Poll::Pending => turn,
    }
}

/// The accepted jobs and the admission lock that keeps the limit exact.
pub struct Jobs {
    pub(crate) jobs: Mutex<HashMap<String, Arc<Job>>>,
    pub(crate) admission: tokio::sync::Mutex<()>,
    pub(crate) slots: Arc<Semaphore>,
    /// Entries of jobs still to be reported.
    pub journal: Journal,
    /// Woken when a user's job is admitted, so that pre-warm gives way.
    pub(crate) user_arrived: tokio::sync::Notify,
    /// Cancelled on SIGTERM: no more admissions; queued and restoring jobs stop.
    pub(crate) stopping: CancellationToken,
    /// Reports (callback, then mail) under way, waited for at shutdown.
    pub(crate) reporting: AtomicUsize,
    /// A cleanup failed (PostgreSQL down?): the next admission starts a sweep.
    pub(crate) cleanup_failed: AtomicBool,
    /// One sweep at a time, so an entry is never adopted twice.
    pub(crate) sweeping: tokio::sync::Mutex<()>,
}

impl Jobs {
    /// Prepares the registry; the journal lives in the sidecar's state directory.
    pub fn new(config: &Config) -> anyhow::Result<Jobs> {
        Ok(Jobs {
            jobs: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            slots: Arc::new(Semaphore::new(config.max_restores)),
            journal: Journal::new(config.state_dir().join("jobs")),
            user_arrived: tokio::sync::Notify::new(),
            stopping: CancellationToken::new(),
            reporting: AtomicUsize::new(0),
            cleanup_failed: AtomicBool::new(false),
            sweeping: tokio::sync::Mutex::new(()),
        })
    }

    /// A job by id or by final database name (the newest one of that name).
    pub fn find(&self, job_or_db: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap();
        if let Some(job) = jobs.get(job_or_db) {
            return Some(job.clone());
        }
        jobs.values()
            .filter(|j| j.request.db_name == job_or_db)
            .max_by_key(|j| j.status.lock().unwrap().started_at.clone())
            .cloned()
    }

    /// The admission lock: held, no job is admitted. A drop holds it so that
    /// it never interleaves with the admission of a restore of the same name.
    pub async fn admission(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admission.lock().await
    }

    /// Final names of the restores still in flight.
    pub fn in_flight(&self) -> HashSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().filter(|j| j.is_running()).map(|j| j.request.db_name.clone()).collect()
    }

    /// Ids (without dashes, as in temporary names) of this process's running jobs.
    pub(crate) fn busy_ids(&self) -> HashSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().filter(|j| j.is_running()).map(|j| j.id().replace('-', "")).collect()
    }

    /// Whether the sidecar is stopping (SIGTERM).
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(codes::INVALID_INPUT, message, None)
}

/// Checks a prod2x payload (token already checked) and builds the request.
pub fn check_prod2x(config: &Config, payload: &RunPayload) -> Result<Prod2x, ErrorObjectOwned> {
    let client = payload.client.as_deref().ok_or_else(|| invalid("The request has no \"client\"."))?;
    let level = payload.level.as_deref().ok_or_else(|| invalid("The request has no \"level\" (lab, test, …)."))?;
    let callback = match payload.callback.as_deref() {
        None | Some("") => None,
        Some(url) => Some(callback::check_url(url).map_err(invalid)?),
    };
    let at = payload.timestamp.unwrap_or(true).then(|| names::now_in(config.timezone));
    let db_name = names::staging_name(client, level, payload.suffix.as_deref(), at).map_err(invalid)?;
    Ok(Prod2x { client: client.into(), db_name, callback, email: payload.email.clone().filter(|e| !e.is_empty()) })
}

/// Refuses a request for a name that is taken or that the limit has no room for.
async fn check_room(app: &Arc<App>, request: &Prod2x) -> Result<(), ErrorObjectOwned> {
    // Read before the listing: a job that ends in between has renamed its
    // copy into place before it stops counting as in flight, so it is seen
    // one way or the other (read the other way round, it could be missed).
    let in_flight = app.jobs.in_flight();
    let rows = app
        .db
        .all(false)
        .await
        .map_err(|e| error(codes::UNAVAILABLE, format!("The staging server cannot check its databases: {e}."), None))?;
    if app.jobs.cleanup_failed.swap(false, Ordering::Relaxed) {
        // The database server is back: drop what a failed cleanup left.
        let app = app.clone();
        tokio::spawn(async move { recover(&app).await });
    }
    if let Some(existing) = rows.iter().find(|r| r.name == request.db_name) {
        if existing.marker.is_none() {
            return Err(error(
                codes::CONFLICT,
                format!(
                    "A database named \"{}\" already exists on the staging server and was not made by the staging service; it is never replaced. Choose another suffix.",
                    request.db_name
                ),
                None,
            ));
        }
    }
    if in_flight.contains(&request.db_name) {
        return Err(error(
            codes::CONFLICT,
            format!("The database \"{}\" is already being created; wait for that job to end.", request.db_name),
            None,
        ));
    }
    let mut counted: HashSet<String> = rows.iter().filter(|r| app.db.in_instance_list(r)).map(|r| r.name.clone()).collect();
    counted.extend(in_flight);
    // A finished copy stays hidden until its template is kept (see `publish`),
    // after its job has ended: it counts already, or the limit has a gap.
    counted.extend(
        rows.iter()
            .filter(|r| r.is_being_published())
            .map(|r| r.name.clone()),
    );
    let limit = app.config.database_limit;
    if !counted.contains(&request.db_name) && counted.len() >= limit {
        return Err(error(
            codes::LIMIT_REACHED,
            format!(
                "The staging server already holds {} databases (its limit is {limit}); drop one with a Drop Databases job first.",
                counted.len()
            ),
            None,
        ));
    }

    Ok(())
}

/// Admits a checked request under the limit, then starts its restore in the background.
///
/// The limit counts this instance's databases plus the restores in flight,
/// both read under the admission lock, so concurrent requests never exceed it.
pub async fn accept(app: &Arc<App>, request: Prod2x) -> Result<RunStarted, ErrorObjectOwned> {
    let jobs = &app.jobs;
    let stopping = || error(codes::UNAVAILABLE, "The staging service is restarting; run the job again in a minute.", None);
    if jobs.is_stopping() {
        return Err(stopping());
    }
    // A request that cannot fit is refused without waiting for the lock, so
    // that refusals are answered in parallel; one that may fit is checked
    // again under the lock, where checking and registering are one step.
    check_room(app, &request).await?;
    let _admission = jobs.admission.lock().await;
    if jobs.is_stopping() {
        return Err(stopping());
    }
    check_room(app, &request).await?;

    let job_id = uuid::Uuid::new_v4().to_string();
    let entry = JournalEntry {
        client: Some(request.client.clone()),
        ..JournalEntry::new(&job_id, &request.db_name, request.callback.clone(), request.email.clone())
    };
    let status = entry.status();
    // Registered, the job counts against the limit: the lock can go before
    // the (slow, fsync'ed) journal write.
    let job = Arc::new(Job::new(request.clone(), status, Some(take_turn(&jobs.slots).await)));
    jobs.jobs.lock().unwrap().insert(job_id.clone(), job.clone());
    drop(_admission);

    // No promise to report without a record of it.
    let app2 = app.clone();
    let written = tokio::task::spawn_blocking(move || app2.jobs.journal.write(&entry)).await.expect("the journal write does not panic");
    if let Err(e) = written {
        jobs.jobs.lock().unwrap().remove(&job_id);
        return Err(error(
            codes::INTERNAL,
            format!(
                "The staging server cannot write its job journal in {}: {e}. Free some disk space or fix the permissions, then run the job again.",
                jobs.journal.dir().display()
            ),
            None,
        ));
    }
    jobs.user_arrived.notify_waiters();
    tracing::info!(job = %job_id, db = %request.db_name, client = %request.client, "job accepted");
    let app = app.clone();
    tokio::spawn(async move { run(app, job).await });
    Ok(RunStarted { db_name: request.db_name, job_id })
}

/// Runs one job to its end and reports it; never leaves it *running*.
async fn run(app: Arc<App>, job: Arc<Job>) {
    let id = job.id();
    let temp = names::temp_name(&id);
    let outcome = tokio::select! {
        // A bug must not leave the job running for ever: a panic is a failure like any other.
        outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(pipeline(&app, &job, &temp))) => {
            outcome.unwrap_or_else(|_| Err(Failure::new("The copy failed because of an internal error of the staging service.", "panic in the job pipeline (see the staging service's log)")))
        }
        () = stopped_before_finishing(&app.jobs, &job) => {
            Err(Failure::new(INTERRUPTED, format!("numikube-staging was stopped (SIGTERM) while the job was in phase {:?}", job.phase())))
        }
    };
    let (state, message, detail) = match &outcome {
        Ok(_) => (JobState::Done, None, None),
        Err(f) => {
            let (message, detail) = blame_the_database_server(&app, f).await;
            tracing::error!(job = %id, "job failed: {message}: {detail}");
            discard(&app, &temp).await;
            (JobState::Error, Some(message), Some(detail))
        }
    };
    let finished_at = Utc::now().to_rfc3339();
    let end = |job: &Job| {
        job.update(|s| {
            s.state = state;
            s.phase = if state == JobState::Done { Phase::Done } else { Phase::Error };
            s.error = message.clone();
            s.finished_at = Some(finished_at.clone());
            if state == JobState::Done {
                s.progress = Some(1.0);
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
        client: Some(job.request.client.clone()),
        finished_at: Some(finished_at.clone()),
        ..JournalEntry::new(&id, &job.request.db_name, job.request.callback.clone(), job.request.email.clone())
    };
    app.jobs.journal.write_or_log(&entry);
    // The copy becomes visible once the template is kept from it; that runs
    // beside the callback so that production hears of the copy without
    // waiting. The job itself is done (for staging_status, the limit and
    // drops) once the copy is visible.
    let publish = async {
        if let Ok(finished) = &outcome {
            publish(&app, &job.request, finished).await;
            end(&job);
        }
    };
    tokio::join!(publish, tell(&app, &entry));
}

/// Resolves once the sidecar is stopping, unless the job has reached its
/// last step: `finishing` renames databases and must not be cut in half.
async fn stopped_before_finishing(jobs: &Jobs, job: &Job) {
    jobs.stopping.cancelled().await;
    if job.phase() == Phase::Finishing {
        std::future::pending::<()>().await;
    }
}

/// When PostgreSQL itself is gone, says so instead of what the tool saw of it.
async fn blame_the_database_server(app: &App, failure: &Failure) -> (String, String) {
    let as_is = (failure.message.clone(), failure.detail.clone());
    if failure.message.contains("database server") {
        return as_is;
    }
    let health = app.db.health().await;
    if health == "ok" {
        return as_is;
    }
    (
        format!("The copy failed because {health}; run the job again once the database server is back."),
        format!("{}\n{}", failure.message, failure.detail),
    )
}

/// Reports a job (callback, else mail) and forgets its journal entry once
/// somebody was told; otherwise the entry waits for the next start.
pub(crate) async fn tell(app: &App, entry: &JournalEntry) {
    struct Reporting<'a>(&'a AtomicUsize);
    impl Drop for Reporting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    app.jobs.reporting.fetch_add(1, Ordering::SeqCst);
    let _reporting = Reporting(&app.jobs.reporting);
    if callback::report(app, entry).await != Told::Nobody {
        app.jobs.journal.forget(&entry.job_id);
    }
}

/// Keeps the template (unless the cache is off) and makes the copy visible to Odoo.
async fn publish(app: &App, request: &Prod2x, finished: &Finished) {
    if let Err(e) = templates::keep(app, &request.db_name, &request.client, &finished.backup, &finished.report).await {
        tracing::warn!(db = %request.db_name, "no template kept: {e}");
    }
    if let Err(e) = app.db.publish(&request.db_name).await {
        tracing::error!(db = %request.db_name, "could not make the copy visible: {e}; run ALTER DATABASE … IS_TEMPLATE false");
    }
}

/// Stops the jobs for a shutdown: no more admissions; queued and restoring
/// jobs stop now (their hidden database is dropped and they are reported as
/// interrupted), a job in `finishing` completes; then waits up to `grace`
/// for the reports. Whatever is not reported by then stays in the journal and
/// is reported at the next start.
pub async fn shut_down(app: &App, grace: Duration) {
    app.jobs.stopping.cancel();
    let deadline = Instant::now() + grace;
    loop {
        let running = app.jobs.in_flight().len();
        let reporting = app.jobs.reporting.load(Ordering::SeqCst);
        if running == 0 && reporting == 0 {
            tracing::info!("every job has ended and was reported");
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                "{running} job(s) still running and {reporting} report(s) still under way after {grace:?}; \
                 the journal keeps them for the next start"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_are_served_in_the_order_they_were_taken() {
        let slots = Arc::new(Semaphore::new(1));
        let first = take_turn(&slots).await.await.unwrap();
        let second = take_turn(&slots).await;
        let third = take_turn(&slots).await;
        let gone = take_turn(&slots).await;
        drop(gone); // interrupted while queued
        let order = Arc::new(Mutex::new(Vec::new()));
        // The third is awaited first, yet the second is served first.
        let o = order.clone();
        let t3 = tokio::spawn(async move { let _p = third.await; o.lock().unwrap().push(3); });
        tokio::task::yield_now().await;
        let o = order.clone();
        let t2 = tokio::spawn(async move { let _p = second.await; o.lock().unwrap().push(2); });
        drop(first);
        t2.await.unwrap();
        t3.await.unwrap();
        assert_eq!(*order.lock().unwrap(), vec![2, 3]);
        assert_eq!(slots.available_permits(), 1);
    }
}
