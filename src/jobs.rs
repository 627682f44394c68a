//! Staging jobs: admission under the database limit, the pipeline of one
//! restore, and the journal that lets a restarted sidecar finish the story.
//!
//! A job goes `queued → downloading → restoring → neutralizing → finishing →
//! done`, or to `error` from any step. The database with the final name
//! appears only in `finishing`, once the copy is complete and neutralized;
//! until then it lives as a hidden (template) database named
//! `numikube_tmp_<job>`, dropped on any failure.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, error, JobState, JobStatus, Phase, RunPayload, RunStarted};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::app::App;
use crate::backup_format;
use crate::config::Config;
use crate::db::Marker;
use crate::restore::{Counting, PgTools};
use crate::{callback, filestore, names, neutralize, restore};

/// Prefix of a refreshed copy's previous version while the new one takes its name.
const OLD_PREFIX: &str = "numikube_old_";

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
}

impl Job {
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
}

/// The accepted jobs and the admission lock that keeps the limit exact.
pub struct Jobs {
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    admission: tokio::sync::Mutex<()>,
    slots: Arc<Semaphore>,
    journal_dir: PathBuf,
}

impl Jobs {
    /// Prepares the registry; the journal lives in the sidecar's state directory.
    pub fn new(config: &Config) -> anyhow::Result<Jobs> {
        Ok(Jobs {
            jobs: Mutex::new(HashMap::new()),
            admission: tokio::sync::Mutex::new(()),
            slots: Arc::new(Semaphore::new(config.max_restores)),
            journal_dir: config.state_dir().join("jobs"),
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

    /// Writes a job's journal entry (best effort: a full disk must not fail the job).
    pub fn journal(&self, entry: &JournalEntry) {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.journal_dir)?;
            let path = self.journal_dir.join(format!("{}.json", entry.job_id));
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(entry)?)?;
            std::fs::rename(tmp, path)
        };
        if let Err(e) = write() {
            tracing::warn!(job = %entry.job_id, "cannot write the job journal in {}: {e}", self.journal_dir.display());
        }
    }

    /// Forgets a job's journal entry once production (or the requester) was told.
    pub fn forget(&self, job_id: &str) {
        let _ = std::fs::remove_file(self.journal_dir.join(format!("{job_id}.json")));
    }

    /// Journal entries left by an earlier run.
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
pub async fn accept(app: &Arc<App>, request: Prod2x) -> Result<RunStarted, ErrorObjectOwned> {
    let jobs = &app.jobs;
    let _admission = jobs.admission.lock().await;
    let rows = app
        .db
        .all(false)
        .await
        .map_err(|e| error(codes::UNAVAILABLE, format!("The staging server cannot check its databases: {e}"), None))?;
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
    let in_flight = jobs.in_flight();
    if in_flight.contains(&request.db_name) {
        return Err(error(
            codes::CONFLICT,
            format!("The database \"{}\" is already being created; wait for that job to end.", request.db_name),
            None,
        ));
    }
    let mut counted: HashSet<String> = rows.iter().filter(|r| app.db.in_instance_list(r)).map(|r| r.name.clone()).collect();
    counted.extend(in_flight);
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
    let job = Arc::new(Job {
        request: request.clone(),
        status: Mutex::new(JobStatus {
            job_id: job_id.clone(),
            db_name: request.db_name.clone(),
            state: JobState::Running,
            phase: Phase::Queued,
            progress: None,
            error: None,
            started_at: Utc::now().to_rfc3339(),
            finished_at: None,
            backup: None,
            neutralized: None,
        }),
        bytes_read: Arc::new(AtomicU64::new(0)),
        size: AtomicU64::new(0),
    });
    jobs.journal(&JournalEntry {
        job_id: job_id.clone(),
        db_name: request.db_name.clone(),
        callback: request.callback.clone(),
        email: request.email.clone(),
        state: JobState::Running,
        error: None,
        detail: None,
    });
    jobs.jobs.lock().unwrap().insert(job_id.clone(), job.clone());
    tracing::info!(job = %job_id, db = %request.db_name, client = %request.client, "job accepted");
    let app = app.clone();
    tokio::spawn(async move { run(app, job).await });
    Ok(RunStarted { db_name: request.db_name, job_id })
}

/// A failure: a sentence for the user and a detail for the traceback.
struct Failure {
    message: String,
    detail: String,
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
    let outcome = pipeline(&app, &job, &temp).await;
    let (state, message, detail) = match outcome {
        Ok(()) => (JobState::Done, None, None),
        Err(f) => {
            tracing::error!(job = %id, "job failed: {}: {}", f.message, f.detail);
            cleanup_temp(&app, &temp).await;
            (JobState::Error, Some(f.message), Some(f.detail))
        }
    };
    job.update(|s| {
        s.state = state;
        s.phase = if state == JobState::Done { Phase::Done } else { Phase::Error };
        s.error = message.clone();
        s.finished_at = Some(Utc::now().to_rfc3339());
        if state == JobState::Done {
            s.progress = Some(1.0);
        }
    });
    let entry = JournalEntry {
        job_id: id.clone(),
        db_name: job.request.db_name.clone(),
        callback: job.request.callback.clone(),
        email: job.request.email.clone(),
        state,
        error: message,
        detail,
    };
    app.jobs.journal(&entry);
    callback::report(&app, &entry).await;
    app.jobs.forget(&id);
}

/// Drops a job's hidden database and filestore, whatever state they are in.
pub async fn cleanup_temp(app: &App, temp: &str) {
    if let Err(e) = app.db.drop_force(temp).await {
        tracing::error!("could not drop the temporary database {temp}: {e}; drop it by hand");
    }
    if let Err(e) = filestore::remove(&app.config.data_dir, temp) {
        tracing::error!("could not remove the filestore of {temp}: {e}");
    }
}

async fn pipeline(app: &App, job: &Job, temp: &str) -> Result<(), Failure> {
    let request = &job.request;
    let _slot = app.jobs.slots.clone().acquire_owned().await.expect("the semaphore is never closed");

    job.set_phase(Phase::Downloading);
    let backup = app.source.newest(&request.client).await.map_err(|e| {
        let message = format!("No copy could be made: {e}.");
        Failure::new(message, e.to_string())
    })?;
    job.size.store(backup.size, Ordering::Relaxed);
    job.update(|s| s.backup = Some(backup.key.clone()));
    let stream = app
        .source
        .open(&backup)
        .await
        .map_err(|e| Failure::new(format!("The backup {} could not be read: {e}.", backup.key), e.to_string()))?;
    let counted: crate::backup_source::BackupReader = Box::pin(Counting::new(stream, job.bytes_read.clone()));
    let sniffed = backup_format::sniff(counted)
        .await
        .map_err(|e| Failure::new(format!("The backup {} cannot be restored: {e}.", backup.key), e))?;
    tracing::info!(job = %job.id(), key = %backup.key, format = sniffed.format.label(), gzip = sniffed.gzip, "backup opened");

    let marker = Marker {
        numikube_staging: 1,
        state: "restoring".into(),
        job_id: job.id(),
        db_name: request.db_name.clone(),
        backup: Some(backup.key.clone()),
        etag: Some(backup.etag.clone()),
        created_at: Utc::now(),
    };
    let db_down = |e: crate::db::DbError| Failure::new(format!("The copy failed because of the database server: {e}."), e.to_string());
    app.db.create_hidden(temp, &marker).await.map_err(db_down)?;

    job.set_phase(Phase::Restoring);
    let tools = PgTools {
        pg_restore: app.config.pg_tool("pg_restore"),
        psql: app.config.pg_tool("psql"),
        env: app.db.libpq_env(),
    };
    let filestore_dir = filestore::path(&app.config.data_dir, temp).expect("temporary names are safe");
    restore::restore(&tools, sniffed, temp, &filestore_dir, &app.config.state_dir().join("spool"))
        .await
        .map_err(|e| Failure::new(format!("Restoring the backup {} failed: {}.", backup.key, first_line(&e)), e))?;

    job.set_phase(Phase::Neutralizing);
    let mut client = app.db.connect(temp).await.map_err(db_down)?;
    let report = neutralize::neutralize(&mut client, &app.config.addons_path)
        .await
        .map_err(|e| Failure::new(format!("Neutralizing the copy failed: {}.", first_line(&e)), e))?;
    drop(client);
    tracing::info!(job = %job.id(), scripts = ?report.scripts, not_found = ?report.modules_not_found, "neutralized");
    job.update(|s| s.neutralized = Some(report));

    job.set_phase(Phase::Finishing);
    let done = Marker { state: "done".into(), ..marker };
    app.db.set_marker(temp, &done).await.map_err(db_down)?;
    put_in_place(app, temp, &request.db_name, &job.id()).await
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
    app.db.set_template(final_name, false).await.map_err(db_down)?;
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

/// After a restart: drops what interrupted jobs left and reports them as
/// failed; delivers results whose report was still pending.
pub async fn recover(app: &Arc<App>) {
    // Hidden databases of ours left by a job of an earlier run.
    if let Ok(rows) = app.db.all(false).await {
        let names_now: HashSet<String> = rows.iter().map(|r| r.name.clone()).collect();
        for row in rows.iter().filter(|r| r.marker.is_some()) {
            let marker = row.marker.as_ref().expect("filtered");
            if row.name.starts_with(names::TEMP_PREFIX) {
                tracing::warn!("dropping {} left by an interrupted job", row.name);
                cleanup_temp(app, &row.name).await;
            } else if row.name.starts_with(OLD_PREFIX) {
                if names_now.contains(&marker.db_name) {
                    tracing::warn!("dropping {}, replaced by a newer copy of {}", row.name, marker.db_name);
                    cleanup_temp(app, &row.name).await;
                } else {
                    // Interrupted between the two renames of a refresh: the previous copy goes back.
                    tracing::warn!("putting {} back as {}", row.name, marker.db_name);
                    let restored = app.db.rename(&row.name, &marker.db_name).await.and(app.db.set_template(&marker.db_name, false).await);
                    if let Err(e) = restored {
                        tracing::error!("could not put {} back as {}: {e}; rename it by hand", row.name, marker.db_name);
                    }
                    let _ = filestore::rename(&app.config.data_dir, &row.name, &marker.db_name);
                }
            }
        }
    }
    for mut entry in app.jobs.journal_entries() {
        if entry.state == JobState::Running {
            cleanup_temp(app, &names::temp_name(&entry.job_id)).await;
            entry.state = JobState::Error;
            entry.error = Some("The copy was interrupted by a restart of the staging service; run the job again.".into());
            entry.detail = Some("numikube-staging restarted while this job was running".into());
            app.jobs.journal(&entry);
        }
        let app = app.clone();
        tokio::spawn(async move {
            callback::report(&app, &entry).await;
            app.jobs.forget(&entry.job_id);
        });
    }
}
