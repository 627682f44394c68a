//! Making one copy: restore the chosen backup (or copy the kept template)
//! into a hidden database, neutralize it, mark it, and give it its final
//! name — replacing an earlier copy of the sidecar's (a refresh) only then,
//! and never a database it did not make.

pub mod anonymize;
mod attachments;
mod companion;
mod discard;
mod error;
pub mod filestore;
mod filling;
pub mod format;
pub mod guard;
mod identity;
mod loading;
pub mod neutralize;
pub mod odoo_tree;
mod origin;
mod pg_restore;
mod place;
mod progress;
mod restore;
mod size_watch;
mod spool;
pub mod templates;
mod verify;
mod version;
mod zip;

use std::time::Instant;

use numikube_staging_rpc::{AnonymizeReport, NeutralizeReport, Phase};

use crate::metrics;
use crate::pg::{JobRole, Marker, MarkerState, WorkingName};
use crate::services::Services;
use crate::storage::{Backup, BackupReader};

pub use discard::{discard, drop_with_filestore};
pub use error::{first_line, CopyError};
pub use filling::FillError;
pub use loading::human;
use loading::{Counting, Restore, RestoreError};
use odoo_tree::OdooTree;
pub use origin::Origin;
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
    /// Where its filestore came from and what it lacks.
    pub filestore: FilestoreReport,
    /// What the anonymization masked; `None`: the copy is not anonymized.
    pub anonymized: Option<AnonymizeReport>,
}

/// What loading a backup into a hidden database gave.
pub struct Loaded {
    /// What the neutralization ran.
    pub report: NeutralizeReport,
    /// The backup's format, for the metrics.
    pub format: metrics::Format,
    /// Where the copy's filestore came from.
    pub origin: Origin,
    /// What the anonymization masked; `None`: the copy is not anonymized.
    pub anonymized: Option<AnonymizeReport>,
}

/// Where a copy's filestore came from and what it lacks, for the job's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilestoreReport {
    /// `zip`, `companion <key>`, `source <folder>` or `none` ([`Origin`]);
    /// `None` for a copy of a template kept by an older version, which did not record it.
    pub origin: Option<String>,
    /// Attachments whose file is missing from the filestore; `None` when they could not be counted.
    pub missing_attachments: Option<u64>,
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
    let (report, format, origin, anonymized) = match template {
        Some(template) => {
            // A repeat copy of a backup already restored: seconds, not minutes.
            tracker.phase(Phase::Restoring);
            tracing::info!(job = %request.job_id, template = %template.name, "copying the template");
            let copying = Instant::now();
            let report = templates::copy_from(services, &template, &temp_name, &marker).await.map_err(CopyError::Template)?;
            services.metrics.template_copied(copying.elapsed());
            tracker.bytes_read().store(backup.size, std::sync::atomic::Ordering::Relaxed);
            // Its filestore is the template's (hard links), wherever that one came from.
            (report, metrics::Format::Template, template.marker.as_ref().and_then(|m| m.filestore.clone()), None)
        }
        None => {
            let phase = |p| tracker.phase(p);
            let counters = Counters { bytes_read: tracker.bytes_read(), restored: tracker.restored() };
            let load = Load {
                temp: &temp_name,
                backup: &backup,
                marker: &marker,
                counters: &counters,
                phase: &phase,
                low_priority: false,
                anonymize: request.anonymize,
            };
            let loaded = restore_and_neutralize(services, &load).await?;
            (loaded.report, loaded.format, Some(loaded.origin.to_string()), loaded.anonymized)
        }
    };
    tracker.neutralized(&report);
    let filestore = FilestoreReport { missing_attachments: count_missing(services, &temp_name, request.db_name).await?, origin };
    tracker.filestore(&filestore);

    tracker.phase(Phase::Finishing);
    let done = Marker {
        state: MarkerState::Done,
        neutralized: Some(report.clone()),
        requested_by: request.requested_by.map(Into::into),
        // Counted from now, when the copy is made, not from the job's start.
        expires_at: request.life.map(|life| chrono::Utc::now() + life),
        filestore: filestore.origin.clone(),
        ..marker
    };
    services.db.set_marker(&temp_name, &done).await?;
    place::put_in_place(services, &temp_name, request.db_name, request.job_id, request.refresh).await?;
    // Under its final name: the restore is over (for a template copy, the backup's size counts as read).
    let bytes = tracker.bytes_read().load(std::sync::atomic::Ordering::Relaxed);
    services.metrics.restore_finished(format, started.elapsed(), bytes);
    Ok(Finished { backup, report, filestore, anonymized })
}

/// Counts the attachments of the hidden copy `temp` (to be `db_name`) whose
/// file is missing; warns when there are any. `None` when they cannot be counted.
async fn count_missing(services: &Services, temp: &str, db_name: &str) -> Result<Option<u64>, CopyError> {
    let dir = filestore::path(&services.config.data_dir, temp).expect("working names are safe directory names");
    let mut client = services.db.connect(temp).await?;
    match attachments::missing(&mut client, &dir).await {
        Ok(0) => Ok(Some(0)),
        Ok(missing) => {
            tracing::warn!(db = %db_name, missing, "{missing} attachments of the copy point to a file missing from its filestore");
            Ok(Some(missing))
        }
        Err(e) => {
            tracing::warn!(db = %db_name, "the attachments whose file is missing were not counted: {e}");
            Ok(None)
        }
    }
}

/// The full path: stream the backup into the hidden database `temp` and
/// neutralize it (and anonymize it when `anonymize`), its filestore filled
/// beside the load; says which format the backup was, for the metrics, and
/// where the filestore came from.
/// `counters` hear of the progress, `phase` of each step; pre-warm passes
/// `low_priority` so its client programs run niced.
///
/// Every statement of the backup, and every function it brings that runs
/// while it loads or is neutralized, runs as the job's own role (DESIGN.md
/// *Containment*, [`crate::pg::job_role`]); the copy is handed over to
/// `db_user` only once complete. On failure the caller discards `temp`,
/// which drops the role too.
pub async fn restore_and_neutralize(services: &Services, load: &Load<'_>) -> Result<Loaded, CopyError> {
    let working = WorkingName::parse(load.temp).expect("a copy is made under a working name");
    let role = services.db.create_job_role(&working).await?;
    let loaded = load_as(&role, services, load).await?;
    services.db.hand_over(load.temp, &role).await?;
    Ok(loaded)
}

/// What [`restore_and_neutralize`] loads, and who hears of it.
#[derive(Clone, Copy)]
pub struct Load<'a> {
    /// The hidden database, by its working name.
    pub temp: &'a str,
    /// The backup.
    pub backup: &'a Backup,
    /// The hidden database's marker while it is made.
    pub marker: &'a Marker,
    /// Bytes read and entries restored, for the progress.
    pub counters: &'a Counters,
    /// Told of each step.
    pub phase: &'a (dyn Fn(Phase) + Sync),
    /// Run the client programs niced (pre-warm gives way to users' jobs).
    pub low_priority: bool,
    /// Anonymize the copy after neutralizing it.
    pub anonymize: bool,
}

async fn load_as(role: &JobRole, services: &Services, load: &Load<'_>) -> Result<Loaded, CopyError> {
    let Load { temp, backup, marker, counters, phase, low_priority, anonymize } = *load;
    let config = &services.config;
    let stream = services.source.open(backup).await.map_err(|source| CopyError::Open { key: backup.key.clone(), source })?;
    let counted: BackupReader = Box::pin(Counting::new(stream, counters.bytes_read.clone()));
    let sniffed = format::sniff(counted).await.map_err(|source| CopyError::Format { key: backup.key.clone(), source })?;
    let counted_as = match sniffed.format {
        format::Format::Custom => metrics::Format::Custom,
        format::Format::OdooZip => metrics::Format::Zip,
        format::Format::PlainSql => metrics::Format::Plain,
    };
    tracing::info!(db = %temp, key = %backup.key, format = sniffed.format.label(), gzip = sniffed.gzip, role = role.name(), "backup opened");
    services.db.create_hidden(temp, marker, Some(role.name())).await?;

    let tree = OdooTree::find(config.odoo_path.as_deref(), &config.addons_path).map_err(CopyError::OdooTree)?;
    let tools =
        PgTools { pg_restore: config.pg_tool("pg_restore"), env: role.libpq_env(&services.db), jobs: config.restore_jobs, low_priority };
    let filestore_dir = filestore::path(&config.data_dir, temp).expect("working names are safe directory names");
    let spool = config.state_dir().join("spool");
    let restoring = || phase(Phase::Restoring);
    let how = Restore {
        jobs: tools.jobs,
        target: role.config_for(&services.db, temp),
        db: temp,
        filestore_dir: &filestore_dir,
        spool_dir: &spool,
        size: backup.size,
        staging_version: tree.version().ok(),
        restored: counters.restored.clone(),
        restoring: &restoring,
    };
    let (origin, filling) = origin::choose(services, backup, sniffed.format, marker.client.as_deref(), &filestore_dir).await?;
    let load = async {
        restore::restore(&tools, &how, sniffed).await.map_err(|source| match source {
            RestoreError::Version { backup, staging } => CopyError::Version { backup, staging },
            source => CopyError::Restore { key: backup.key.clone(), source },
        })
    };
    let load = async {
        match filling {
            Some(filling) => filling.beside(load).await,
            None => load.await,
        }
    };
    // A small backup may expand to anything: past the bound, the restore stops
    // (its programs, sessions and the filestore's filling die with it).
    let restored = tokio::select! {
        restored = load => restored?,
        too_large = size_watch::watch(&services.db, temp, &filestore_dir, config.max_copy_size, backup.size) => {
            return Err(CopyError::TooLarge(too_large));
        }
    };

    let mut client = services.db.connect_as(role, temp).await?;
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
    Ok(Loaded { report, format: counted_as, origin, anonymized })
}
