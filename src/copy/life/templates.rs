//! Instant repeat copies: after a restore, the sidecar keeps one neutralized
//! template per client (hidden, so neither Odoo's database list nor the
//! limit sees it). The next request for the same backup (same key and ETag)
//! becomes `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`, a new
//! identity, and a filestore copied with hard links — seconds instead of a
//! full restore. A newer backup replaces the template;
//! `numikube_staging_template_cache = False` turns it all off.
//!
//! A template is kept as restored, for copies not asked to be anonymized.
//! Beside it, a client may have one template of an anonymized copy, marked
//! with its masking's fingerprint (`copy::anonymize::fingerprint`): it serves
//! only anonymized copies of the same backup asked with the same fingerprint,
//! and never a copy not asked to be anonymized.

use chrono::Utc;
use numikube_staging_rpc::NeutralizeReport;

use super::discard;
use crate::copy::filestore;
use crate::copy::neutralize::{self, NeutralizeError};
use crate::copy::restore::spool::free_bytes;
use crate::pg::{DatabaseRow, Db, DbError, Marker, MarkerState, Masking, WorkKind, WorkingName};
use crate::services::Services;
use crate::storage::Backup;

/// Why a template could not be kept or copied.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A filestore could not be linked or moved.
    #[error("{what} failed: {source}")]
    Filestore {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The copy's new identity could not be set.
    #[error(transparent)]
    Identity(#[from] NeutralizeError),
    /// Too little disk for one more database.
    #[error("not enough free disk for a template of {source_db}: {size} bytes needed, {free} free")]
    DiskShort {
        /// The copy the template would be made from.
        source_db: String,
        /// Bytes needed.
        size: u64,
        /// Bytes free.
        free: u64,
    },
    /// A step on the new template failed; it was dropped.
    #[error("{what} {name} failed: {source}")]
    Step {
        /// What was being done.
        what: &'static str,
        /// The template.
        name: String,
        /// Why.
        source: Box<TemplateError>,
    },
}

fn filestore_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> TemplateError {
    let what = what.into();
    move |source| TemplateError::Filestore { what, source }
}

/// The templates of `client`, newest first.
pub async fn of_client(db: &Db, client: &str) -> Result<Vec<DatabaseRow>, DbError> {
    let mut rows: Vec<DatabaseRow> = db
        .all(false)
        .await?
        .into_iter()
        .filter(|r| r.is_kept_template() && r.marker.as_ref().and_then(|m| m.client.as_deref()) == Some(client))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.marker.as_ref().map(|m| m.created_at)));
    Ok(rows)
}

/// Whether template `row` was made from exactly `backup`.
pub fn made_from(row: &DatabaseRow, backup: &Backup) -> bool {
    row.marker.as_ref().is_some_and(|m| m.made_from(backup))
}

/// The fingerprint of the masking of template `row`; `None`: kept as restored.
fn fingerprint(row: &DatabaseRow) -> Option<&str> {
    row.marker.as_ref().and_then(|m| m.masking.as_ref()).map(|m| m.fingerprint.as_str())
}

/// Whether template `row` was made from `backup` and masked with `masked`
/// (`None`: kept as restored).
fn holds(row: &DatabaseRow, backup: &Backup, masked: Option<&str>) -> bool {
    made_from(row, backup) && fingerprint(row) == masked
}

/// Whether template `row` is superseded by one of `backup` masked with
/// `masked` (`None`: as restored): it was made from another backup, or it is
/// of the same kind (as restored, or masked, whatever its fingerprint).
fn superseded(row: &DatabaseRow, backup: &Backup, masked: Option<&str>) -> bool {
    !made_from(row, backup) || fingerprint(row).is_some() == masked.is_some()
}

/// The client's template for `backup`, if the cache is on and has it: the
/// one kept as restored when `masked` is `None`, else the one masked with
/// that fingerprint.
pub async fn usable(services: &Services, client: &str, backup: &Backup, masked: Option<&str>) -> Option<DatabaseRow> {
    if !services.config.template_cache {
        return None;
    }
    of_client(&services.db, client).await.ok()?.into_iter().find(|t| holds(t, backup, masked))
}

/// Makes the hidden database `temp` a copy of `template`: file copy, hard-linked
/// filestore, and its own identity. Returns the template's neutralization report.
pub async fn copy_from(
    services: &Services,
    template: &DatabaseRow,
    temp: &str,
    marker: &Marker,
) -> Result<NeutralizeReport, TemplateError> {
    services.db.copy_hidden(temp, &template.name, marker).await?;
    filestore::link_copy_off_core(&services.config.data_dir, &template.name, temp)
        .await
        .map_err(filestore_err("copying the template's filestore"))?;
    let mut client = services.db.connect(temp).await?;
    neutralize::new_identity(&mut client, services.config.staging_url.as_deref()).await?;
    Ok(template.marker.as_ref().and_then(|m| m.neutralized.clone()).unwrap_or_default())
}

/// What a kept template holds besides its data: what neutralized it, where
/// its filestore came from, and what masked it (`None`: kept as restored).
pub struct Kept<'a> {
    /// The neutralization's report.
    pub report: &'a NeutralizeReport,
    /// Where the filestore came from (`zip`, `companion <key>`, …).
    pub filestore: Option<&'a str>,
    /// The masking of an anonymized copy; `None`: as restored.
    pub masking: Option<Masking>,
}

impl Kept<'_> {
    /// The fingerprint of its masking; `None`: kept as restored.
    fn fingerprint(&self) -> Option<&str> {
        self.masking.as_ref().map(|m| m.fingerprint.as_str())
    }
}

/// The marker of a template of `client` made from `backup`.
fn marker(name: &str, client: &str, backup: &Backup, kept: &Kept<'_>) -> Marker {
    Marker {
        job_id: String::new(),
        created_at: Utc::now(),
        neutralized: Some(kept.report.clone()),
        filestore: kept.filestore.map(Into::into),
        masking: kept.masking.clone(),
        owner: None,
        ..Marker::new(MarkerState::Template, String::new(), name.into(), client, backup)
    }
}

/// Keeps `source` (a finished, neutralized copy nobody uses yet) as the
/// client's template for `backup`, then drops the client's templates it
/// supersedes (of another backup, or of the same kind). Skipped, with a log
/// line, when the cache is off or the disk is short.
pub async fn keep(services: &Services, source: &str, client: &str, backup: &Backup, kept: &Kept<'_>) -> Result<(), TemplateError> {
    let db = &services.db;
    if !services.config.template_cache {
        return Ok(());
    }
    let masked = kept.fingerprint();
    let older = of_client(db, client).await?;
    if older.iter().any(|t| holds(t, backup, masked)) {
        return Ok(());
    }
    let size = db.size(source).await? as u64;
    match db.data_directory().await.and_then(|d| free_bytes(&d)) {
        // Keep a fifth of the copy's size as head room for the databases users work in.
        Some(free) if free < size + size / 5 => return Err(TemplateError::DiskShort { source_db: source.into(), size, free }),
        Some(_) => {}
        None => tracing::info!("cannot read PostgreSQL's data directory to check free space; making the template anyway"),
    }
    let name = WorkingName::fresh(WorkKind::Template).to_string();
    let marker = marker(&name, client, backup, kept);
    let step = |what, e: TemplateError| TemplateError::Step { what, name: name.clone(), source: Box::new(e) };
    db.copy_hidden(&name, source, &marker).await.map_err(|e| step("making the template", e.into()))?;
    // Nobody (autovacuum included) may be inside a template when a copy is made from it.
    if let Err(e) = db.keep_as_template(&name).await {
        discard(services, &name).await;
        return Err(step("closing the template", e.into()));
    }
    if let Err(e) = filestore::link_copy_off_core(&services.config.data_dir, source, &name).await {
        discard(services, &name).await;
        return Err(step("linking the filestore into the template", filestore_err(format!("linking {source}"))(e)));
    }
    tracing::info!(template = %name, client, key = %backup.key, anonymized = masked.is_some(), "template kept");
    for old in older.into_iter().filter(|t| superseded(t, backup, masked)) {
        discard(services, &old.name).await;
    }
    Ok(())
}

/// Drops the client templates of anonymized copies masked otherwise than this
/// staging masks now (`current`, see `copy::masking_fingerprint`: a new key,
/// a key removed, a new sidecar, a script changed), which serve nobody.
/// `rows`: the cluster's databases.
pub async fn retire_masked(services: &Services, rows: &[DatabaseRow], current: Option<&str>) {
    for row in rows.iter().filter(|r| r.is_kept_template()) {
        if fingerprint(row).is_some_and(|f| Some(f) != current) {
            tracing::info!(template = %row.name, "dropping a template masked otherwise than this staging masks now");
            discard(services, &row.name).await;
        }
    }
}

/// Turns the hidden database `temp` (restored for pre-warm) into the client's
/// template for `backup`, as restored, by renaming it, then drops the
/// client's templates it supersedes.
pub async fn adopt(services: &Services, temp: &str, client: &str, backup: &Backup, kept: &Kept<'_>) -> Result<(), TemplateError> {
    let older = of_client(&services.db, client).await?;
    let name = WorkingName::fresh(WorkKind::Template).to_string();
    let marker = marker(&name, client, backup, kept);
    services.db.set_marker(temp, &marker).await?;
    services.db.rename(temp, &name).await?;
    services.db.keep_as_template(&name).await?;
    filestore::rename_off_core(&services.config.data_dir, temp, &name)
        .await
        .map_err(filestore_err(format!("moving the filestore of {temp}")))?;
    let masked = kept.fingerprint();
    for old in older.into_iter().filter(|t| superseded(t, backup, masked)) {
        discard(services, &old.name).await;
    }
    Ok(())
}
