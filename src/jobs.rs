//! Staging jobs: admission under the database limit, the pipeline of one
//! restore, and the journal that lets a restarted sidecar finish the story.
//!
//! A job goes `queued → downloading → restoring → neutralizing → finishing →
//! done`, or to `error` from any step. The database with the final name
//! appears only in `finishing`, once the copy is complete and neutralized;
//! until then it lives as a hidden (template) database named
//! `numikube_tmp_<job>`, dropped on any failure.
//!
//! # Why a journal of small files, and what it is trusted with
//!
//! A job's *promise to report* must outlive the process, and nothing else
//! needs to. So each accepted job gets one JSON file in
//! `<data_dir>/numikube_staging/jobs/<job>.json`, written atomically (temp
//! file, fsync, rename, fsync of the directory) when the job is admitted —
//! admission is refused if it cannot be written — and again when it ends; it
//! is removed once production (or the requester, by mail) was told. The file
//! names its owner process (pid and start time), so a restarted sidecar, or
//! the periodic sweep, adopts only entries whose owner is gone: an entry
//! still `running` was interrupted and is reported as such (or as done if its
//! database did reach its final name), an ended one is reported again.
//!
//! The *databases* are not trusted to the journal: every database the
//! sidecar makes while working has a name no final name can have
//! (`numikube_tmp_<32 hex>`, `numikube_old_<32 hex>`: final names always hold
//! a `-`), so the sweep finds leftovers in `pg_database` itself, even one
//! whose marker was never written, and drops them with `DROP DATABASE … WITH
//! (FORCE)`, which does not wait for an orphaned `pg_restore` session. A
//! sweep that fails (PostgreSQL down) is simply run again later. No second
//! server, no lock file, nothing to migrate: the journal is as durable as
//! `data_dir`, which already holds the filestores.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use chrono::Utc;
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, error, JobState, JobStatus, Phase, RunPayload, RunStarted};
use serde::{Deserialize, Serialize};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::backup_format;
use crate::callback::{self, Told};
use crate::config::Config;
use crate::db::Marker;
use crate::restore::{Counting, PgTools};
use crate::{filestore, names, neutralize, restore, templates};

/// Prefix of a refreshed copy's previous version while the new one takes its name.
const OLD_PREFIX: &str = "numikube_old_";

/// How often unfinished work of dead processes and leftovers are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

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
    status: Mutex<JobStatus>,
    bytes_read: Arc<AtomicU64>,
    size: AtomicU64,
    /// Its place in the line for a restore slot, taken at admission.
    turn: Mutex<Option<Turn>>,
}

impl Job {
    fn new(request: Prod2x, status: JobStatus, turn: Option<Turn>) -> Job {
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

    fn set_phase(&self, phase: Phase) {
        tracing::info!(job = %self.id(), db = %self.request.db_name, ?phase, "job phase");
        self.status.lock().unwrap().phase = phase;
    }

    fn phase(&self) -> Phase {
        self.status.lock().unwrap().phase
    }

    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.status.lock().unwrap());
    }

    /// The job's id.
    pub fn id(&self) -> String {
        self.status.lock().unwrap().job_id.clone()
    }

    fn is_running(&self) -> bool {
        self.status.lock().unwrap().state == JobState::Running
    }

    /// Waits, in admission order, for a restore slot (`numikube_staging_max_restores`).
    async fn wait_turn(&self) -> OwnedSemaphorePermit {
        let turn = self.turn.lock().unwrap().take().expect("a job waits for its turn once");
        turn.await.expect("the semaphore is never closed")
    }
}

/// The process that owns a journal entry or a hidden database: its host,
/// pid and start time (so that a reused pid is not taken for the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat`), 0 if unknown.
    pub started: u64,
    /// Host name (`/proc/sys/kernel/hostname`); empty in journals of older versions.
    #[serde(default)]
    pub host: String,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner { pid, started: process_start(pid).unwrap_or(0), host: this_host() }
    }

    /// Whether the owner still runs. A process of another host (sharing the
    /// database server) cannot be checked and counts as alive: its own
    /// sidecar cleans up after it.
    pub fn is_alive(&self) -> bool {
        if !self.host.is_empty() && self.host != this_host() {
            return true;
        }
        self.started != 0 && process_start(self.pid) == Some(self.started)
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat`, after the command name (which may hold spaces).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// A journal entry: enough to clean up and report after a restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The job id.
    pub job_id: String,
    /// Final name.
    pub db_name: String,
    /// Callback URL.
    pub callback: Option<String>,
    /// Requester's address.
    pub email: Option<String>,
    /// `running`, `done` or `error`.
    pub state: JobState,
    /// Error sentence when failed.
    pub error: Option<String>,
    /// Detail for the traceback.
    pub detail: Option<String>,
    /// Client technical name.
    #[serde(default)]
    pub client: Option<String>,
    /// RFC 3339 time the job was accepted.
    #[serde(default)]
    pub started_at: Option<String>,
    /// RFC 3339 time the job ended.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The process working on it or reporting it.
    #[serde(default)]
    pub owner: Option<Owner>,
}

impl JournalEntry {
    /// A new running job's entry, owned by this process.
    pub fn new(job_id: &str, db_name: &str, callback: Option<String>, email: Option<String>) -> JournalEntry {
        JournalEntry {
            job_id: job_id.into(),
            db_name: db_name.into(),
            callback,
            email,
            state: JobState::Running,
            error: None,
            detail: None,
            client: None,
            started_at: Some(Utc::now().to_rfc3339()),
            finished_at: None,
            owner: Some(Owner::me()),
        }
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
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    admission: tokio::sync::Mutex<()>,
    pub(crate) slots: Arc<Semaphore>,
    journal_dir: PathBuf,
    /// Woken when a user's job is admitted, so that pre-warm gives way.
    pub(crate) user_arrived: tokio::sync::Notify,
    /// Cancelled on SIGTERM: no more admissions; queued and restoring jobs stop.
    stopping: CancellationToken,
    /// Reports (callback, then mail) under way, waited for at shutdown.
    reporting: AtomicUsize,
    /// A cleanup failed (PostgreSQL down?): the next admission starts a sweep.
    cleanup_failed: AtomicBool,
    /// One sweep at a time, so an entry is never adopted twice.
    sweeping: tokio::sync::Mutex<()>,
}

impl Jobs {
    /// Prepares the registry; the journal lives in the sidecar's state directory.
    pub fn new(config: &Config) -> anyhow::Result<Jobs> {
        Ok(Jobs {
            jobs: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            slots: Arc::new(Semaphore::new(config.max_restores)),
            journal_dir: config.state_dir().join("jobs"),
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
    fn busy_ids(&self) -> HashSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().filter(|j| j.is_running()).map(|j| j.id().replace('-', "")).collect()
    }

    /// Whether the sidecar is stopping (SIGTERM).
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Writes a job's journal entry atomically and durably.
    pub fn journal(&self, entry: &JournalEntry) -> std::io::Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.journal_dir)?;
        let path = self.journal_dir.join(format!("{}.json", entry.job_id));
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(entry)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(&self.journal_dir)?.sync_all()
    }

    /// As [`Jobs::journal`], for a job already under way: a full disk must
    /// not fail the job, so a failure is only logged.
    fn journal_or_log(&self, entry: &JournalEntry) {
        if let Err(e) = self.journal(entry) {
            tracing::error!(job = %entry.job_id, "cannot write the job journal in {}: {e}; a restart now would forget this job", self.journal_dir.display());
        }
    }

    /// Forgets a job's journal entry once production (or the requester) was told.
    pub fn forget(&self, job_id: &str) {
        let _ = std::fs::remove_file(self.journal_dir.join(format!("{job_id}.json")));
    }

    /// Journal entries on disk (of this process and of others).
    pub fn journal_entries(&self) -> Vec<JournalEntry> {
        let Ok(dir) = std::fs::read_dir(&self.journal_dir) else { return Vec::new() };
        dir.filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect()
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
    let _admission = jobs.admission.lock().await;
    if jobs.is_stopping() {
        return Err(stopping());
    }
    // Read before the listing: a job that ends in between has renamed its
    // copy into place before it stops counting as in flight, so it is seen
    // one way or the other (read the other way round, it could be missed).
    let in_flight = jobs.in_flight();
    let rows = app
        .db
        .all(false)
        .await
        .map_err(|e| error(codes::UNAVAILABLE, format!("The staging server cannot check its databases: {e}."), None))?;
    if jobs.cleanup_failed.swap(false, Ordering::Relaxed) {
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
            .filter(|r| r.is_template && r.marker.as_ref().is_some_and(|m| m.state == "done" && m.db_name == r.name))
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

    let job_id = uuid::Uuid::new_v4().to_string();
    let entry = JournalEntry {
        client: Some(request.client.clone()),
        ..JournalEntry::new(&job_id, &request.db_name, request.callback.clone(), request.email.clone())
    };
    // No promise to report without a record of it.
    jobs.journal(&entry).map_err(|e| {
        error(
            codes::INTERNAL,
            format!(
                "The staging server cannot write its job journal in {}: {e}. Free some disk space or fix the permissions, then run the job again.",
                jobs.journal_dir.display()
            ),
            None,
        )
    })?;
    let status = JobStatus {
        job_id: job_id.clone(),
        db_name: request.db_name.clone(),
        state: JobState::Running,
        phase: Phase::Queued,
        progress: None,
        error: None,
        started_at: entry.started_at.clone().unwrap_or_default(),
        finished_at: None,
        backup: None,
        neutralized: None,
    };
    let job = Arc::new(Job::new(request.clone(), status, Some(take_turn(&jobs.slots).await)));
    jobs.jobs.lock().unwrap().insert(job_id.clone(), job.clone());
    jobs.user_arrived.notify_waiters();
    jobs.user_arrived.notify_waiters();
    tracing::info!(job = %job_id, db = %request.db_name, client = %request.client, "job accepted");
    let app = app.clone();
    tokio::spawn(async move { run(app, job).await });
    Ok(RunStarted { db_name: request.db_name, job_id })
}

/// A failure: a sentence for the user and a detail for the traceback.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) detail: String,
}

impl Failure {
    fn new(message: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure { message: message.into(), detail: detail.into() }
    }
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
            cleanup_temp(&app, &temp).await;
            (JobState::Error, Some(message), Some(detail))
        }
    };
    let finished_at = Utc::now().to_rfc3339();
    job.update(|s| {
        s.state = state;
        s.phase = if state == JobState::Done { Phase::Done } else { Phase::Error };
        s.error = message.clone();
        s.finished_at = Some(finished_at.clone());
        if state == JobState::Done {
            s.progress = Some(1.0);
        }
    });
    let entry = JournalEntry {
        state,
        error: message,
        detail,
        client: Some(job.request.client.clone()),
        finished_at: Some(finished_at),
        ..JournalEntry::new(&id, &job.request.db_name, job.request.callback.clone(), job.request.email.clone())
    };
    app.jobs.journal_or_log(&entry);
    // The copy becomes visible once the template is kept from it; that runs
    // beside the callback so that production hears of the copy without waiting.
    let publish = async {
        if let Ok(finished) = &outcome {
            publish(&app, &job.request, finished).await;
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
async fn tell(app: &App, entry: &JournalEntry) {
    struct Reporting<'a>(&'a AtomicUsize);
    impl Drop for Reporting<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    app.jobs.reporting.fetch_add(1, Ordering::SeqCst);
    let _reporting = Reporting(&app.jobs.reporting);
    if callback::report(app, entry).await != Told::Nobody {
        app.jobs.forget(&entry.job_id);
    }
}

/// What a successful pipeline hands over.
struct Finished {
    backup: crate::backup_source::Backup,
    report: numikube_staging_rpc::NeutralizeReport,
}

/// Keeps the template (unless the cache is off) and makes the copy visible to Odoo.
async fn publish(app: &App, request: &Prod2x, finished: &Finished) {
    if let Err(e) = templates::keep(app, &request.db_name, &request.client, &finished.backup, &finished.report).await {
        tracing::warn!(db = %request.db_name, "no template kept: {e}");
    }
    if let Err(e) = app.db.set_template(&request.db_name, false).await {
        tracing::error!(db = %request.db_name, "could not make the copy visible: {e}; run ALTER DATABASE … IS_TEMPLATE false");
    }
}

/// Drops a job's hidden database and filestore, whatever state they are in.
/// A failure is logged and leaves the rest to the next sweep.
pub async fn cleanup_temp(app: &App, temp: &str) {
    if let Err(e) = app.db.drop_force(temp).await {
        app.jobs.cleanup_failed.store(true, Ordering::Relaxed);
        tracing::error!("could not drop the temporary database {temp}: {e}; it is dropped by a later sweep");
    }
    if let Err(e) = filestore::remove(&app.config.data_dir, temp) {
        tracing::error!("could not remove the filestore of {temp}: {e}");
    }
}

async fn pipeline(app: &App, job: &Job, temp: &str) -> Result<Finished, Failure> {
    let request = &job.request;
    let _slot = job.wait_turn().await;

    job.set_phase(Phase::Downloading);
    let backup = app.source.newest(&request.client).await.map_err(|e| {
        let message = format!("No copy could be made: {e}.");
        Failure::new(message, e.to_string())
    })?;
    job.size.store(backup.size, Ordering::Relaxed);
    job.update(|s| s.backup = Some(backup.key.clone()));
    let marker = Marker {
        numikube_staging: 1,
        state: "restoring".into(),
        job_id: job.id(),
        db_name: request.db_name.clone(),
        backup: Some(backup.key.clone()),
        etag: Some(backup.etag.clone()),
        created_at: Utc::now(),
        client: Some(request.client.clone()),
        neutralized: None,
        owner: Some(Owner::me()),
    };
    let db_down = |e: crate::db::DbError| Failure::new(format!("The copy failed because of the database server: {e}."), e.to_string());

    let report = match templates::usable(app, &request.client, &backup).await {
        Some(template) => {
            // A repeat copy of a backup already restored: seconds, not minutes.
            job.set_phase(Phase::Restoring);
            tracing::info!(job = %job.id(), template = %template.name, "copying the template");
            let report = templates::copy_from(app, &template, temp, &marker)
                .await
                .map_err(|e| Failure::new(format!("Copying the ready template failed: {}.", first_line(&e)), e))?;
            job.bytes_read.store(backup.size, Ordering::Relaxed);
            report
        }
        None => {
            let phase = |p| job.set_phase(p);
            restore_and_neutralize(app, temp, &backup, &marker, job.bytes_read.clone(), &phase, false).await?
        }
    };
    job.update(|s| s.neutralized = Some(report.clone()));

    job.set_phase(Phase::Finishing);
    let done = Marker { state: "done".into(), neutralized: Some(report.clone()), ..marker };
    app.db.set_marker(temp, &done).await.map_err(db_down)?;
    put_in_place(app, temp, &request.db_name, &job.id()).await?;
    Ok(Finished { backup, report })
}

/// The full path: stream the backup into the hidden database `temp` and neutralize it.
/// `bytes_read` counts the backup's bytes, `phase` hears of each step; pre-warm
/// passes `low_priority` so its client programs run niced.
pub(crate) async fn restore_and_neutralize(
    app: &App,
    temp: &str,
    backup: &crate::backup_source::Backup,
    marker: &Marker,
    bytes_read: Arc<AtomicU64>,
    phase: &(dyn Fn(Phase) + Sync),
    low_priority: bool,
) -> Result<numikube_staging_rpc::NeutralizeReport, Failure> {
    let db_down = |e: crate::db::DbError| Failure::new(format!("The copy failed because of the database server: {e}."), e.to_string());
    let stream = app
        .source
        .open(backup)
        .await
        .map_err(|e| Failure::new(format!("The backup {} could not be read: {e}.", backup.key), e.to_string()))?;
    let counted: crate::backup_source::BackupReader = Box::pin(Counting::new(stream, bytes_read));
    let sniffed = backup_format::sniff(counted)
        .await
        .map_err(|e| Failure::new(format!("The backup {} cannot be restored: {e}.", backup.key), e))?;
    tracing::info!(db = %temp, key = %backup.key, format = sniffed.format.label(), gzip = sniffed.gzip, "backup opened");
    app.db.create_hidden(temp, marker).await.map_err(db_down)?;

    let tools = PgTools {
        pg_restore: app.config.pg_tool("pg_restore"),
        psql: app.config.pg_tool("psql"),
        env: app.db.libpq_env(),
        jobs: app.config.restore_jobs,
        low_priority,
    };
    let filestore_dir = filestore::path(&app.config.data_dir, temp).expect("temporary names are safe");
    let spool = app.config.state_dir().join("spool");
    restore::restore(&tools, sniffed, temp, &filestore_dir, &spool, &|| phase(Phase::Restoring))
        .await
        .map_err(|e| Failure::new(format!("Restoring the backup {} failed: {}.", backup.key, first_line(&e)), e))?;

    phase(Phase::Neutralizing);
    let mut client = app.db.connect(temp).await.map_err(db_down)?;
    let report = neutralize::neutralize(&mut client, &app.config.addons_path)
        .await
        .map_err(|e| Failure::new(format!("Neutralizing the copy failed: {}.", first_line(&e)), e))?;
    tracing::info!(db = %temp, scripts = ?report.scripts, not_found = ?report.modules_not_found, "neutralized");
    Ok(report)
}

/// Gives the finished copy its final name, replacing an earlier copy the
/// sidecar made (a refresh) only now, and never a database it did not make.
async fn put_in_place(app: &App, temp: &str, final_name: &str, job_id: &str) -> Result<(), Failure> {
    let db_down = |e: crate::db::DbError| Failure::new(format!("The copy failed because of the database server: {e}."), e.to_string());
    let data_dir = &app.config.data_dir;
    let rows = app.db.all(false).await.map_err(db_down)?;
    let previous = rows.iter().find(|r| r.name == final_name);
    let old = format!("{OLD_PREFIX}{}", job_id.replace('-', ""));
    if let Some(previous) = previous {
        if previous.marker.is_none() {
            return Err(Failure::new(
                format!("A database named \"{final_name}\" appeared meanwhile and was not made by the staging service; it was left untouched and the copy was discarded."),
                "foreign database with the final name",
            ));
        }
        // Hide the previous copy, then move it aside; it is dropped once the new one is in place.
        app.db.set_template(final_name, true).await.map_err(db_down)?;
        app.db.rename(final_name, &old).await.map_err(db_down)?;
        let _ = filestore::rename(data_dir, final_name, &old);
    }
    if let Err(e) = app.db.rename(temp, final_name).await {
        if previous.is_some() {
            // Put the previous copy back as it was.
            let _ = app.db.rename(&old, final_name).await;
            let _ = app.db.set_template(final_name, false).await;
            let _ = filestore::rename(data_dir, &old, final_name);
        }
        return Err(db_down(e));
    }
    filestore::rename(data_dir, temp, final_name)
        .map_err(|e| Failure::new(format!("Moving the filestore into place failed: {e}."), e.to_string()))?;
    if previous.is_some() {
        if let Err(e) = app.db.drop_force(&old).await {
            tracing::error!("could not drop the replaced copy {old}: {e}; drop it by hand");
        }
        let _ = filestore::remove(data_dir, &old);
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim_end_matches('.').to_string()
}

/// Finishes the story of jobs whose process is gone, then drops leftovers.
///
/// Runs at start (before serving), every [`SWEEP_EVERY`], and after a failed
/// cleanup once PostgreSQL answers again. A journal entry is adopted only if
/// its job is not one of this process's and its owner no longer runs: a
/// `restore` command beside the server keeps its own jobs.
pub async fn recover(app: &Arc<App>) {
    let _one_at_a_time = app.jobs.sweeping.lock().await;
    let rows = app.db.all(false).await;
    for mut entry in app.jobs.journal_entries() {
        if app.jobs.find(&entry.job_id).is_some() || entry.owner.as_ref().is_some_and(Owner::is_alive) {
            continue;
        }
        if entry.state == JobState::Running {
            // Stopped after the final rename but before the journal said so: the copy is there.
            let made = rows.as_ref().ok().and_then(|rows| {
                rows.iter().find(|r| {
                    r.name == entry.db_name && r.marker.as_ref().is_some_and(|m| m.job_id == entry.job_id && m.state == "done")
                })
            });
            if let Some(row) = made {
                tracing::warn!(job = %entry.job_id, db = %entry.db_name, "the interrupted job had finished its copy");
                if row.is_template {
                    if let Err(e) = app.db.set_template(&row.name, false).await {
                        tracing::error!(db = %row.name, "could not make the copy visible: {e}");
                    }
                }
                entry.state = JobState::Done;
            } else {
                tracing::warn!(job = %entry.job_id, db = %entry.db_name, "job interrupted by a restart; reporting it as failed");
                entry.state = JobState::Error;
                entry.error = Some(INTERRUPTED.into());
                entry.detail = Some("numikube-staging stopped or crashed while this job was running".into());
            }
            entry.finished_at = Some(Utc::now().to_rfc3339());
        } else {
            tracing::info!(job = %entry.job_id, db = %entry.db_name, state = ?entry.state, "reporting a job whose report was still pending");
        }
        entry.owner = Some(Owner::me());
        app.jobs.journal_or_log(&entry);
        let job = Arc::new(Job::new(
            Prod2x {
                client: entry.client.clone().unwrap_or_default(),
                db_name: entry.db_name.clone(),
                callback: entry.callback.clone(),
                email: entry.email.clone(),
            },
            JobStatus {
                job_id: entry.job_id.clone(),
                db_name: entry.db_name.clone(),
                state: entry.state,
                phase: if entry.state == JobState::Done { Phase::Done } else { Phase::Error },
                progress: (entry.state == JobState::Done).then_some(1.0),
                error: entry.error.clone(),
                started_at: entry.started_at.clone().unwrap_or_default(),
                finished_at: entry.finished_at.clone(),
                backup: None,
                neutralized: None,
            },
            None,
        ));
        app.jobs.jobs.lock().unwrap().insert(entry.job_id.clone(), job);
        let app = app.clone();
        tokio::spawn(async move { tell(&app, &entry).await });
    }
    if let Err(e) = sweep(app).await {
        app.jobs.cleanup_failed.store(true, Ordering::Relaxed);
        tracing::warn!("cannot look for leftover databases now ({e}); trying again in {SWEEP_EVERY:?}");
    }
}

/// The job id (without dashes) in a working name: `numikube_tmp_<id>` or `numikube_old_<id>`.
fn working_name(name: &str) -> Option<(&'static str, &str)> {
    [names::TEMP_PREFIX, OLD_PREFIX].into_iter().find_map(|prefix| {
        let id = name.strip_prefix(prefix)?;
        (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((prefix, id))
    })
}

/// Drops the hidden databases and filestores of jobs that no longer run, and
/// puts back a refreshed copy whose replacement never took its name.
async fn sweep(app: &App) -> Result<(), crate::db::DbError> {
    let rows = app.db.all(false).await?;
    // Read after the listing: a job admitted later has no database in `rows` yet.
    let mut busy = app.jobs.busy_ids();
    let mut owned_elsewhere = HashSet::new();
    for entry in app.jobs.journal_entries() {
        if entry.owner.as_ref().is_some_and(Owner::is_alive) && app.jobs.find(&entry.job_id).is_none() {
            if entry.state == JobState::Running {
                busy.insert(entry.job_id.replace('-', ""));
            }
            owned_elsewhere.insert(entry.job_id);
        }
    }
    // Jobs of this process or of another live one finish their own copies.
    let known = |job_id: &str| owned_elsewhere.contains(job_id) || app.jobs.find(job_id).is_some();
    // A pre-warm build of this process has no job: while one runs, its hidden database is spared.
    let prewarming = app.prewarm.states().iter().any(|p| p.state == "building");
    let names_now: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let me = Owner::me();
    for row in &rows {
        if let Some(m) = row.marker.as_ref().filter(|m| m.state == "done" && row.is_template && row.name == m.db_name) {
            if !known(&m.job_id) {
                // Finished, but its process stopped before making it visible.
                tracing::warn!("making {} visible: its job finished but its process stopped first", row.name);
                app.db.set_template(&row.name, false).await?;
            }
            continue;
        }
        let Some((prefix, id)) = working_name(&row.name) else { continue };
        let prewarm_build = row.marker.as_ref().is_none_or(|m| m.job_id.starts_with("prewarm-"));
        // Another live process (a second sidecar on this server, a `restore` command) finishes its own work.
        let other_live_owner = row.marker.as_ref().and_then(|m| m.owner.as_ref()).is_some_and(|o| *o != me && o.is_alive());
        if busy.contains(id) || !row.owned || (prewarming && prewarm_build) || other_live_owner {
            continue;
        }
        let previous = row.marker.as_ref().map(|m| m.db_name.as_str()).filter(|_| prefix == OLD_PREFIX);
        match previous {
            // Interrupted between the two renames of a refresh: the previous copy goes back.
            Some(final_name) if !names_now.contains(final_name) => {
                tracing::warn!("putting {} back as {final_name}", row.name);
                app.db.rename(&row.name, final_name).await?;
                app.db.set_template(final_name, false).await?;
                let _ = filestore::rename(&app.config.data_dir, &row.name, final_name);
            }
            _ => {
                tracing::warn!("dropping {}, left by a job that no longer runs", row.name);
                app.db.drop_force(&row.name).await?;
                let _ = filestore::remove(&app.config.data_dir, &row.name);
            }
        }
    }
    remove_orphan_spool_files(&app.config.state_dir().join("spool"));
    // A filestore may outlive its database (extracted after the drop of a cut-short job).
    let filestores = app.config.data_dir.join("filestore");
    for dir in std::fs::read_dir(&filestores).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        match working_name(&name) {
            Some((prefix, id))
                if prefix == names::TEMP_PREFIX && !busy.contains(id) && !prewarming && !names_now.contains(name.as_str()) =>
            {
                tracing::warn!("removing the filestore {}, left by a job that no longer runs", dir.path().display());
                if let Err(e) = filestore::remove(&app.config.data_dir, &name) {
                    tracing::error!("could not remove {}: {e}", dir.path().display());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes downloads spooled by processes that died (a killed sidecar's
/// `.dump` or `.zip` can be as large as a backup). A live job holds its spool
/// file open, so a file no process has open is an orphan; when open files
/// cannot be listed, nothing is removed.
fn remove_orphan_spool_files(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else { return };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    if files.is_empty() {
        return;
    }
    // Listed after the files: a spool file is open from the moment it exists.
    let Some(open) = open_files() else { return };
    for file in files.into_iter().filter(|f| !open.contains(f)) {
        tracing::warn!("removing {}, spooled by a process that no longer runs", file.display());
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::error!("could not remove {}: {e}", file.display());
        }
    }
}

/// Every file some process has open, from `/proc/<pid>/fd`.
fn open_files() -> Option<HashSet<PathBuf>> {
    let mut open = HashSet::new();
    for process in std::fs::read_dir("/proc").ok()?.flatten() {
        if !process.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else { continue };
        open.extend(fds.flatten().filter_map(|fd| std::fs::read_link(fd.path()).ok()));
    }
    (!open.is_empty()).then_some(open)
}

/// Runs [`recover`] every [`SWEEP_EVERY`] until the sidecar stops.
pub async fn sweep_periodically(app: Arc<App>) {
    loop {
        tokio::select! {
            () = app.jobs.stopping.cancelled() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => recover(&app).await,
        }
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

    #[test]
    fn only_exact_working_names_are_leftovers() {
        let temp = names::temp_name("0f8e5d0c-1a2b-4c3d-8e9f-001122334455");
        assert_eq!(working_name(&temp), Some((names::TEMP_PREFIX, "0f8e5d0c1a2b4c3d8e9f001122334455")));
        assert!(working_name("numikube_old_0f8e5d0c1a2b4c3d8e9f001122334455").is_some());
        for not_ours in ["numikube_tmp_x-lab", "numikube_tmp_0f8e5d0c1a2b4c3d8e9f00112233445", "cosmos-lab_a", "numikube_tmp_"] {
            assert_eq!(working_name(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Owner::me();
        assert!(me.is_alive());
        assert!(!Owner { started: me.started + 1, ..me.clone() }.is_alive());
        assert!(!Owner { pid: u32::MAX, started: 1 }.is_alive());
    }

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

    #[test]
    fn only_spool_files_nobody_holds_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let held = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let orphan = dir.path().join("backup-orphan.dump");
        std::fs::write(&orphan, b"PGDMP").unwrap();
        remove_orphan_spool_files(dir.path());
        assert!(held.path().exists(), "a live job's spool file stays");
        assert!(!orphan.exists(), "a dead process's spool file goes");
    }

    #[test]
    fn journal_entries_of_older_versions_still_read() {
        let old = r#"{"job_id":"j","db_name":"d","callback":null,"email":null,"state":"running","error":null,"detail":null}"#;
        let e: JournalEntry = serde_json::from_str(old).unwrap();
        assert!(e.owner.is_none() && e.state == JobState::Running);
    }
}
