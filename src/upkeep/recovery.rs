//! After a crash or beside another process: finish the story of jobs whose
//! process is gone (report them), and drop what they left behind — hidden
//! databases, filestores, spooled downloads — and templates of anonymized
//! copies masked otherwise than now. Runs at start, every
//! [`SWEEP_EVERY`], and after a failed cleanup once PostgreSQL answers again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use numikube_staging_rpc::JobState;

use super::{expiry, spool, Upkeep};
use crate::copy::{self, filestore};
use crate::job::run::INTERRUPTED;
use crate::job::{Job, JobRequest};
use crate::metrics::{self, Swept};
use crate::pg::{job_role, DbError, MarkerState, WorkKind, WorkingName};
use crate::process::Owner;

/// How often unfinished work of dead processes and leftovers are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Finishes the story of jobs whose process is gone, then drops leftovers.
///
/// Runs at start (before serving), every [`SWEEP_EVERY`], and after a failed
/// cleanup once PostgreSQL answers again. A journal entry is adopted only if
/// its job is not one of this process's and its owner no longer runs: a
/// `restore` command beside the server keeps its own jobs.
pub async fn recover(upkeep: &Upkeep) {
    let _one_at_a_time = upkeep.sweeping.lock().await;
    let services = &upkeep.services;
    let rows = services.db.all(false).await;
    for mut entry in upkeep.reporter.journal().entries() {
        if upkeep.jobs.find(&entry.job_id).is_some() || entry.owner.as_ref().is_some_and(Owner::is_alive) {
            continue;
        }
        if entry.state == JobState::Running {
            // Stopped after the final rename but before the journal said so: the copy is there.
            let made = rows.as_ref().ok().and_then(|rows| {
                rows.iter().find(|r| {
                    r.name == entry.db_name && r.marker.as_ref().is_some_and(|m| m.job_id == entry.job_id && m.state == MarkerState::Done)
                })
            });
            if let Some(row) = made {
                tracing::warn!(job = %entry.job_id, db = %entry.db_name, "the interrupted job had finished its copy");
                if row.is_template || row.hidden {
                    if let Err(e) = services.db.publish(&row.name).await {
                        tracing::error!(db = %row.name, "could not make the copy visible: {e}");
                    }
                }
                entry.state = JobState::Done;
                services.metrics.job_state(None, metrics::JobState::Done);
            } else {
                tracing::warn!(job = %entry.job_id, db = %entry.db_name, "job interrupted by a restart; reporting it as failed");
                entry.state = JobState::Error;
                services.metrics.job_state(None, metrics::JobState::Error);
                entry.error = Some(INTERRUPTED.into());
                entry.detail = Some("numikube-staging stopped or crashed while this job was running".into());
            }
            entry.finished_at = Some(Utc::now());
        } else {
            tracing::info!(job = %entry.job_id, db = %entry.db_name, state = ?entry.state, "reporting a job whose report was still pending");
        }
        entry.owner = Some(Owner::me());
        upkeep.reporter.journal().write_or_log(&entry);
        let job = Arc::new(Job::new(JobRequest::from_journal(&entry), entry.status(), None));
        upkeep.jobs.insert(job);
        let (services, reporter) = (services.clone(), upkeep.reporter.clone());
        upkeep.services.work.spawn(async move { reporter.tell(&services.config, &entry).await });
    }
    if let Err(e) = sweep(upkeep).await {
        services.cleanup_failed();
        tracing::warn!("cannot look for leftover databases now ({e}); trying again in {SWEEP_EVERY:?}");
    }
}

/// Drops the hidden databases and filestores of jobs that no longer run, and
/// puts back a refreshed copy whose replacement never took its name.
async fn sweep(upkeep: &Upkeep) -> Result<(), DbError> {
    let (db, data_dir) = (&upkeep.services.db, &upkeep.services.config.data_dir);
    let rows = db.all(false).await?;
    // Read after the listing: a job admitted later has no database in `rows` yet.
    let mut busy = upkeep.jobs.busy_ids();
    let mut running_elsewhere = HashSet::new();
    for entry in upkeep.reporter.journal().entries() {
        if entry.owner.as_ref().is_some_and(Owner::is_alive)
            && upkeep.jobs.find(&entry.job_id).is_none()
            && entry.state == JobState::Running
        {
            busy.insert(entry.job_id.replace('-', ""));
            running_elsewhere.insert(entry.job_id);
        }
    }
    // A job still running (here or in another live process) publishes its own
    // copy; one that ended with its copy still hidden (its process stopped, or
    // publishing failed) gets it published here.
    let still_running = |job_id: &str| running_elsewhere.contains(job_id) || upkeep.jobs.find(job_id).is_some_and(|j| j.is_running());
    // A pre-warm build of this process has no job: while one runs, its hidden database is spared.
    let prewarming = upkeep.prewarm.is_building();
    let names_now: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let me = Owner::me();
    // One database that cannot be handled does not stop the sweep: the others
    // are handled, and the next sweep tries that one again.
    let mut failed = 0;
    let mut tried = |what: &str, name: &str, outcome: Result<(), DbError>| {
        if let Err(e) = outcome {
            failed += 1;
            tracing::error!("could not {what} {name}: {e}; the next sweep tries again");
        }
    };
    for row in &rows {
        if let Some(m) = row.marker.as_ref().filter(|_| row.is_being_published()) {
            if !still_running(&m.job_id) {
                tracing::warn!("making {} visible: its job finished without making it so", row.name);
                tried("make visible", &row.name, db.publish(&row.name).await);
            }
            continue;
        }
        let Some(working) = row.working_name().filter(|w| w.kind() != WorkKind::Template) else { continue };
        let prewarm_build = row.marker.as_ref().is_none_or(|m| m.job_id.starts_with("prewarm-"));
        // Another live process (a second sidecar on this server, a `restore` command) finishes its own work.
        let other_live_owner = row.marker.as_ref().and_then(|m| m.owner.as_ref()).is_some_and(|o| *o != me && o.is_alive());
        if busy.contains(working.id()) || !(row.owned || row.hidden) || (prewarming && prewarm_build) || other_live_owner {
            continue;
        }
        let previous = row.marker.as_ref().map(|m| m.db_name.as_str()).filter(|_| working.kind() == WorkKind::Old);
        match previous {
            // Interrupted between the two renames of a refresh: the previous copy goes back.
            Some(final_name) if !names_now.contains(final_name) => {
                tracing::warn!("putting {} back as {final_name}", row.name);
                let back = match db.rename(&row.name, final_name).await {
                    Ok(()) => db.publish(final_name).await,
                    Err(e) => Err(e),
                };
                if back.is_ok() {
                    let _ = filestore::rename_off_core(data_dir, &row.name, final_name).await;
                }
                tried("put back", &row.name, back);
            }
            _ => {
                tracing::warn!("dropping {}, left by a job that no longer runs", row.name);
                let dropped = copy::drop_with_filestore(&upkeep.services, &row.name).await;
                if dropped.is_ok() {
                    upkeep.services.metrics.swept(Swept::Database, 1);
                }
                tried("drop", &row.name, dropped);
            }
        }
    }
    // A template of anonymized copies masked otherwise than now serves nobody.
    match copy::masking_fingerprint(&upkeep.services.config) {
        Ok(current) => copy::templates::retire_masked(&upkeep.services, &rows, current.as_deref()).await,
        Err(e) => tracing::debug!("the masked templates are left as they are for now: {e}"),
    }
    // The roles backups ran as, left by a job that is gone (a crash before its discard).
    // A role whose database is still there goes at the next sweep, after the database.
    for role in db.job_roles().await? {
        let id = role.strip_prefix(job_role::PREFIX).unwrap_or_default();
        let temp = WorkingName::for_job(WorkKind::Temp, id).to_string();
        if busy.contains(id) || prewarming || names_now.contains(temp.as_str()) {
            continue;
        }
        tracing::warn!("dropping the role {role}, left by a job that no longer runs");
        tried("drop the role", &role, db.drop_job_role(&role).await);
    }
    if failed > 0 {
        upkeep.services.cleanup_failed();
    }
    let spool_dir = upkeep.services.config.state_dir().join("spool");
    let spooled = tokio::task::spawn_blocking(move || spool::remove_orphan_spool_files(&spool_dir)).await;
    upkeep.services.metrics.swept(Swept::Spool, spooled.unwrap_or(0));
    // A filestore may outlive its database (extracted after the drop of a cut-short job).
    for dir in std::fs::read_dir(data_dir.join("filestore")).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        match WorkingName::parse(&name) {
            Some(w) if w.kind() == WorkKind::Temp && !busy.contains(w.id()) && !prewarming && !names_now.contains(name.as_str()) => {
                tracing::warn!("removing the filestore {}, left by a job that no longer runs", dir.path().display());
                if let Err(e) = filestore::remove_off_core(data_dir, &name).await {
                    tracing::error!("could not remove {}: {e}", dir.path().display());
                } else {
                    upkeep.services.metrics.swept(Swept::Filestore, 1);
                }
            }
            _ => {}
        }
    }
    upkeep.services.metrics.sweep_finished();
    upkeep.services.refresh_copies().await;
    Ok(())
}

/// Runs [`recover`] every [`SWEEP_EVERY`] until the sidecar stops.
pub async fn sweep_periodically(upkeep: Arc<Upkeep>) {
    loop {
        tokio::select! {
            () = upkeep.services.stopped() => return,
            () = tokio::time::sleep(SWEEP_EVERY) => {
                recover(&upkeep).await;
                expiry::sweep(&upkeep).await;
            }
            () = upkeep.services.sweep_requested() => recover(&upkeep).await,
        }
    }
}
