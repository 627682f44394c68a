//! Making one copy: restore the chosen backup (or copy the kept template)
//! into a hidden database, neutralize it, mark it, and give it its final
//! name — replacing an earlier copy of the sidecar's (a refresh) only then,
//! and never a database it did not make.

pub mod anonymize;
mod discard;
mod error;
pub mod filestore;
pub mod format;
mod identity;
mod loading;
pub mod neutralize;
pub mod odoo_tree;
mod pg_restore;
mod place;
mod progress;
mod restore;
mod spool;
pub mod templates;
mod verify;
mod version;
mod zip;

use std::time::Instant;

use numikube_staging_rpc::{AnonymizeReport, NeutralizeReport, Phase};

use crate::metrics;
use crate::pg::{Marker, MarkerState, WorkingName};
use crate::services::Services;
use crate::storage::{Backup, BackupReader};

pub use discard::discard;
pub use error::{first_line, CopyError};
pub use loading::human;
use loading::{Counting, Restore, RestoreError};
use odoo_tree::OdooTree;
use pg_restore::PgTools;
pub use progress::{Counters, Fraction, Tracker};

/// What to make: the job, the client and the final name.
pub struct CopyRequest<'a> {
    /// The job's id.
    pub job_id: &'a str,
    /// The client whose backup is restored.
    pub client: &'a str,
    /// The final database name.
    pub db_name: &'a str,
    /// The backup asked for; `None`: the newest.
    pub backup: Option<&'a str>,
    /// Whether an earlier copy of the same name is replaced (a run without timestamp).
    pub refresh: bool,
    /// Who asked for it (the payload's `email`), for its marker.
    pub requested_by: Option<&'a str>,
    /// How long the copy lives once made (`numikube_staging_expire_after`); `None`: for ever.
    pub life: Option<std::time::Duration>,
    /// Whether the copy is anonymized (see [`anonymize`]).
    pub anonymize: bool,
}

/// What a finished copy hands over.
pub struct Finished {
    /// The backup it was made from.
    pub backup: Backup,
    /// What the neutralization ran.
    pub report: NeutralizeReport,
    /// What the anonymization masked; `None`: the copy is not anonymized.
    pub anonymized: Option<AnonymizeReport>,
}

/// The steps of one copy, up to the final name, in the hidden database `temp`.
pub async fn make(
    services: &Services,
    request: &CopyRequest<'_>,
    temp: &WorkingName,
    tracker: &dyn Tracker,
) -> Result<Finished, CopyError> {
    let temp_name = temp.to_string();
    tracker.phase(Phase::Downloading);
    let backup = services.source.chosen(request.client, request.backup).await.map_err(CopyError::NoBackup)?;
    tracker.backup_chosen(&backup);
    let marker = Marker::new(MarkerState::Restoring, request.job_id.into(), request.db_name.into(), request.client, &backup);
    let started = Instant::now();
    // An anonymized copy is never made from a kept template: the full restore
    // path runs every masking statement under the job's own role, in the
    // copy's own database, and a template (kept as restored) must never be
    // what a copy asked to be anonymized starts from without that path.
    // A copy not asked to be anonymized keeps the template path.
    let template = match request.anonymize {
        true => None,
        false => templates::usable(services, request.client, &backup).await,
    };
    let (report, format, anonymized) = match template {
        Some(template) => {
            // A repeat copy of a backup already restored: seconds, not minutes.
            tracker.phase(Phase::Restoring);
            tracing::info!(job = %request.job_id, template = %template.name, "copying the template");
            let copying = Instant::now();
            let report = templates::copy_from(services, &template, &temp_name, &marker).await.map_err(CopyError::Template)?;
            services.metrics.template_copied(copying.elapsed());
            tracker.bytes_read().store(backup.size, std::sync::atomic::Ordering::Relaxed);
            (report, metrics::Format::Template, None)
        }
        None => {
            let phase = |p| tracker.phase(p);
            let counters = Counters { bytes_read: tracker.bytes_read(), restored: tracker.restored() };
            restore_and_neutralize(services, &temp_name, &backup, &marker, &counters, &phase, false, request.anonymize).await?
        }
    };
    tracker.neutralized(&report);

    tracker.phase(Phase::Finishing);
    let done = Marker {
        state: MarkerState::Done,
        neutralized: Some(report.clone()),
        requested_by: request.requested_by.map(Into::into),
        // Counted from now, when the copy is made, not from the job's start.
        expires_at: request.life.map(|life| chrono::Utc::now() + life),
        ..marker
    };
    services.db.set_marker(&temp_name, &done).await?;
    place::put_in_place(services, &temp_name, request.db_name, request.job_id, request.refresh).await?;
    // Under its final name: the restore is over (for a template copy, the backup's size counts as read).
    let bytes = tracker.bytes_read().load(std::sync::atomic::Ordering::Relaxed);
    services.metrics.restore_finished(format, started.elapsed(), bytes);
    Ok(Finished { backup, report, anonymized })
}

/// The full path: stream the backup into the hidden database `temp` and
/// neutralize it (and anonymize it when `anonymize`); says which format the
/// backup was, for the metrics. `counters` hear of the progress, `phase` of
/// each step; pre-warm passes `low_priority` so its client programs run niced.
#[allow(clippy::too_many_arguments)]
pub async fn restore_and_neutralize(
    services: &Services,
    temp: &str,
    backup: &Backup,
    marker: &Marker,
    counters: &Counters,
    phase: &(dyn Fn(Phase) + Sync),
    low_priority: bool,
    anonymize: bool,
) -> Result<(NeutralizeReport, metrics::Format, Option<AnonymizeReport>), CopyError> {
    let config = &services.config;
    let stream = services.source.open(backup).await.map_err(|source| CopyError::Open { key: backup.key.clone(), source })?;
    let counted: BackupReader = Box::pin(Counting::new(stream, counters.bytes_read.clone()));
    let sniffed = format::sniff(counted).await.map_err(|source| CopyError::Format { key: backup.key.clone(), source })?;
    let counted_as = match sniffed.format {
        format::Format::Custom => metrics::Format::Custom,
        format::Format::OdooZip => metrics::Format::Zip,
        format::Format::PlainSql => metrics::Format::Plain,
    };
    tracing::info!(db = %temp, key = %backup.key, format = sniffed.format.label(), gzip = sniffed.gzip, "backup opened");
    services.db.create_hidden(temp, marker).await?;

    let tree = OdooTree::find(config.odoo_path.as_deref(), &config.addons_path).map_err(CopyError::OdooTree)?;
    let tools = PgTools { pg_restore: config.pg_tool("pg_restore"), env: services.db.libpq_env(), jobs: config.restore_jobs, low_priority };
    let filestore_dir = filestore::path(&config.data_dir, temp).expect("working names are safe directory names");
    let spool = config.state_dir().join("spool");
    let restoring = || phase(Phase::Restoring);
    let how = Restore {
        jobs: tools.jobs,
        target: services.db.config_for(temp),
        db: temp,
        filestore_dir: &filestore_dir,
        spool_dir: &spool,
        size: backup.size,
        staging_version: tree.version().ok(),
        restored: counters.restored.clone(),
        restoring: &restoring,
    };
    let restored = restore::restore(&tools, &how, sniffed).await.map_err(|source| match source {
        RestoreError::Version { backup, staging } => CopyError::Version { backup, staging },
        source => CopyError::Restore { key: backup.key.clone(), source },
    })?;

    let mut client = services.db.connect(temp).await?;
    // Before anything else runs in it: a copy Odoo cannot open is never handed out.
    version::check(&client, &tree).await?;

    phase(Phase::Neutralizing);
    let mut search_path = config.addons_path.clone();
    search_path.push(tree.addons());
    let how =
        neutralize::Neutralization { search_path: &search_path, skip: &config.neutralize_skip, staging_url: config.staging_url.as_deref() };
    let mut report = neutralize::neutralize(&mut client, &how).await.map_err(CopyError::Neutralize)?;
    tracing::info!(db = %temp, scripts = ?report.scripts, not_found = ?report.modules_not_found, "neutralized");
    report.tolerated = restored.tolerated;
    // On the same connection as the neutralization (the job's own role), never one of our own.
    let anonymized = match anonymize {
        true => {
            let how = anonymize::Anonymization { search_path: &search_path, key: config.anonymize_key.as_deref() };
            let masking = Instant::now();
            let masked = anonymize::anonymize(&mut client, &how).await.map_err(CopyError::Anonymize)?;
            let took = masking.elapsed();
            tracing::info!(db = %temp, scripts = ?masked.scripts, tables = ?masked.tables, values = masked.values, ?took, "anonymized");
            Some(masked)
        }
        false => None,
    };
    Ok((report, counted_as, anonymized))
}
