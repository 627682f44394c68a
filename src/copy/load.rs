//! The full path of a new copy: stream the backup into the hidden database
//! as the job's own role, fill its filestore beside the load, check the
//! Odoo version, neutralize it (and anonymize it when asked), and hand the
//! database over to `db_user`.

use std::time::Instant;

use numikube_staging_rpc::{AnonymizeReport, NeutralizeReport, Phase};

use super::filestore::{self, Origin};
use super::odoo_tree::OdooTree;
use super::progress::{Counters, Counting};
use super::restore::pg_restore::PgTools;
use super::restore::{self, format, size_watch, Restore, RestoreError};
use super::timeline::Timeline;
use super::{anonymize, CopyError};
use super::{neutralize, version};
use crate::metrics;
use crate::pg::{JobRole, Marker, WorkingName};
use crate::services::Services;
use crate::storage::{Backup, BackupReader};

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

/// The full path: stream the backup into the hidden database `temp` and
/// neutralize it (and anonymize it when `anonymize`), its filestore filled
/// beside the load; says which format the backup was, for the metrics, and
/// where the filestore came from.
/// `counters` hear of the progress, `phase` of each step; pre-warm passes
/// `low_priority` so its client programs run niced.
///
/// Every statement of the backup, and every function it brings that runs
/// while it loads or is neutralized, runs as the job's own role (docs/contract.md
/// *Containment*, [`crate::pg::job_role`]); the copy is handed over to
/// `db_user` only once complete. On failure the caller discards `temp`,
/// which drops the role too.
pub async fn restore_and_neutralize(services: &Services, load: &Load<'_>) -> Result<Loaded, CopyError> {
    let working = WorkingName::parse(load.temp).expect("a copy is made under a working name");
    let role = services.db.create_job_role(&working).await?;
    let loaded = load_as(&role, services, load).await?;
    load.timeline.time("handover", services.db.hand_over(load.temp, &role)).await?;
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
    /// Where the steps' times are recorded.
    pub timeline: &'a Timeline,
    /// Run the client programs niced (pre-warm gives way to users' jobs).
    pub low_priority: bool,
    /// Anonymize the copy after neutralizing it.
    pub anonymize: bool,
}

async fn load_as(role: &JobRole, services: &Services, load: &Load<'_>) -> Result<Loaded, CopyError> {
    let Load { temp, backup, marker, counters, phase, timeline, low_priority, anonymize } = *load;
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
        timeline,
    };
    let (origin, filling) = filestore::choose(services, backup, sniffed.format, marker.client.as_deref(), &filestore_dir).await?;
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
    let neutralizing = Instant::now();
    let search_path = tree.search_path(&config.addons_path);
    let how =
        neutralize::Neutralization { search_path: &search_path, skip: &config.neutralize_skip, staging_url: config.staging_url.as_deref() };
    let mut report = neutralize::neutralize(&mut client, &how).await.map_err(CopyError::Neutralize)?;
    timeline.since("neutralize", neutralizing);
    tracing::info!(db = %temp, scripts = ?report.scripts, not_found = ?report.modules_not_found, "neutralized");
    report.tolerated = restored.tolerated;
    // On the same connection as the neutralization (the job's own role), never one of our own.
    let anonymized = match anonymize {
        true => {
            let how = anonymize::Anonymization { search_path: &search_path, key: config.anonymize_key.as_deref() };
            let masking = Instant::now();
            let masked = anonymize::anonymize(&mut client, &how).await.map_err(CopyError::Anonymize)?;
            let took = masking.elapsed();
            timeline.since("anonymize", masking);
            tracing::info!(db = %temp, scripts = ?masked.scripts, tables = ?masked.tables, values = masked.values, ?took, "anonymized");
            Some(masked)
        }
        false => None,
    };
    Ok(Loaded { report, format: counted_as, origin, anonymized })
}
