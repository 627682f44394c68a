//! Making one copy: restore the newest backup (or copy the kept template)
//! into a hidden database, neutralize it, mark it, and give it its final
//! name — replacing an earlier copy of the sidecar's (a refresh) only then,
//! and never a database it did not make.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use numikube_staging_rpc::Phase;

use crate::app::App;
use crate::backup_format;
use crate::db::{DbError, Marker};
use crate::jobs::{Job, OLD_PREFIX};
use crate::restore::{Counting, PgTools};
use crate::{filestore, neutralize, restore, templates};

/// A failure: a sentence for the user and a detail for the traceback.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>, detail: impl Into<String>) -> Failure {
        Failure { message: message.into(), detail: detail.into() }
    }
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Failure {
        Failure::new(format!("The copy failed because of the database server: {e}."), e.to_string())
    }
}

/// What a successful pipeline hands over.
pub(crate) struct Finished {
    pub(crate) backup: crate::backup_source::Backup,
    pub(crate) report: numikube_staging_rpc::NeutralizeReport,
}

/// Drops a database the sidecar is done with (a job's hidden database, a
/// replaced copy, a template) and its filestore, whatever state they are in.
/// A failure is logged and leaves the rest to the next sweep.
pub async fn discard(app: &App, name: &str) {
    if let Err(e) = app.db.drop_force(name).await {
        app.jobs.cleanup_failed.store(true, Ordering::Relaxed);
        tracing::error!("could not drop {name}: {e}; a later sweep tries again");
    }
    if let Err(e) = filestore::remove(&app.config.data_dir, name) {
        tracing::error!("could not remove the filestore of {name}: {e}");
    }
}

/// The steps of one job after its admission, up to the final name.
pub(crate) async fn pipeline(app: &App, job: &Job, temp: &str) -> Result<Finished, Failure> {
    let request = &job.request;
    let _slot = job.wait_turn().await;

    job.set_phase(Phase::Downloading);
    let backup = app.source.newest(&request.client).await.map_err(|e| {
        let message = format!("No copy could be made: {e}.");
        Failure::new(message, e.to_string())
    })?;
    job.size.store(backup.size, Ordering::Relaxed);
    job.update(|s| s.backup = Some(backup.key.clone()));
    let marker = Marker::restoring(job.id(), request.db_name.clone(), &request.client, &backup);
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
    app.db.set_marker(temp, &done).await?;
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
    app.db.create_hidden(temp, marker).await?;

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
    let mut client = app.db.connect(temp).await?;
    let report = neutralize::neutralize(&mut client, &app.config.addons_path)
        .await
        .map_err(|e| Failure::new(format!("Neutralizing the copy failed: {}.", first_line(&e)), e))?;
    tracing::info!(db = %temp, scripts = ?report.scripts, not_found = ?report.modules_not_found, "neutralized");
    Ok(report)
}

/// Gives the finished copy its final name, replacing an earlier copy the
/// sidecar made (a refresh) only now, and never a database it did not make.
async fn put_in_place(app: &App, temp: &str, final_name: &str, job_id: &str) -> Result<(), Failure> {
    let data_dir = &app.config.data_dir;
    let rows = app.db.all(false).await?;
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
        app.db.hide(final_name).await?;
        app.db.rename(final_name, &old).await?;
        let _ = filestore::rename(data_dir, final_name, &old);
    }
    if let Err(e) = app.db.rename(temp, final_name).await {
        if previous.is_some() {
            // Put the previous copy back as it was.
            let _ = app.db.rename(&old, final_name).await;
            let _ = app.db.publish(final_name).await;
            let _ = filestore::rename(data_dir, &old, final_name);
        }
        return Err(e.into());
    }
    filestore::rename(data_dir, temp, final_name)
        .map_err(|e| Failure::new(format!("Moving the filestore into place failed: {e}."), e.to_string()))?;
    if previous.is_some() {
        discard(app, &old).await;
    }
    Ok(())
}

pub(crate) fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim_end_matches('.').to_string()
}
