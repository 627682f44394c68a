//! After a crash or beside another process: finish the story of jobs whose
//! process is gone (report them), and drop what they left behind — hidden
//! databases, filestores, spooled downloads. Runs at start, every
//! [`SWEEP_EVERY`], and after a failed cleanup once PostgreSQL answers again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use numikube_staging_rpc::JobState;

use crate::app::App;
use crate::jobs::{tell, Job, Prod2x, INTERRUPTED, OLD_PREFIX};
use crate::journal::Owner;
use crate::{filestore, names};

/// How often unfinished work of dead processes and leftovers are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Finishes the story of jobs whose process is gone, then drops leftovers.
///
/// Runs at start (before serving), every [`SWEEP_EVERY`], and after a failed
/// cleanup once PostgreSQL answers again. A journal entry is adopted only if
/// its job is not one of this process's and its owner no longer runs: a
/// `restore` command beside the server keeps its own jobs.
pub async fn recover(app: &Arc<App>) {
    let _one_at_a_time = app.jobs.sweeping.lock().await;
    let rows = app.db.all(false).await;
    for mut entry in app.jobs.journal.entries() {
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
                    if let Err(e) = app.db.publish(&row.name).await {
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
        app.jobs.journal.write_or_log(&entry);
        let job = Arc::new(Job::new(
            Prod2x {
                client: entry.client.clone().unwrap_or_default(),
                db_name: entry.db_name.clone(),
                callback: entry.callback.clone(),
                email: entry.email.clone(),
            },
            entry.status(),
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
    for entry in app.jobs.journal.entries() {
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
                app.db.publish(&row.name).await?;
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
                app.db.publish(final_name).await?;
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
    fn only_spool_files_nobody_holds_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let held = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let orphan = dir.path().join("backup-orphan.dump");
        std::fs::write(&orphan, b"PGDMP").unwrap();
        remove_orphan_spool_files(dir.path());
        assert!(held.path().exists(), "a live job's spool file stays");
        assert!(!orphan.exists(), "a dead process's spool file goes");
    }
}
