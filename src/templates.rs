//! Instant repeat copies: after a restore, the sidecar keeps one neutralized
//! template per client (hidden with `IS_TEMPLATE`, so neither Odoo's
//! database list nor the limit sees it). The next request for the same
//! backup (same key and ETag) becomes `CREATE DATABASE … TEMPLATE …
//! STRATEGY FILE_COPY`, a new identity, and a filestore copied with hard
//! links — seconds instead of a full restore. A newer backup replaces the
//! template; `numikube_staging_template_cache = False` turns it all off.

use chrono::Utc;
use numikube_staging_rpc::NeutralizeReport;

use crate::app::App;
use crate::backup_source::Backup;
use crate::db::{DatabaseRow, Db, DbError, Marker};
use crate::copy::discard;
use crate::{filestore, neutralize};

/// Prefix of template databases.
pub const PREFIX: &str = "numikube_tpl_";
/// Marker state of a template.
pub const STATE: &str = "template";

/// Whether a row is one of our templates.
pub fn is_template(row: &DatabaseRow) -> bool {
    row.name.starts_with(PREFIX) && row.marker.as_ref().is_some_and(|m| m.state == STATE)
}

/// The templates of `client`, newest first.
pub async fn of_client(db: &Db, client: &str) -> Result<Vec<DatabaseRow>, DbError> {
    let mut rows: Vec<DatabaseRow> = db
        .all(false)
        .await?
        .into_iter()
        .filter(|r| is_template(r) && r.marker.as_ref().and_then(|m| m.client.as_deref()) == Some(client))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.marker.as_ref().map(|m| m.created_at)));
    Ok(rows)
}

/// Whether template `row` was made from exactly `backup`.
pub fn made_from(row: &DatabaseRow, backup: &Backup) -> bool {
    row.marker
        .as_ref()
        .is_some_and(|m| m.backup.as_deref() == Some(&backup.key) && m.etag.as_deref() == Some(&backup.etag))
}

/// The client's template for `backup`, if the cache is on and has it.
pub async fn usable(app: &App, client: &str, backup: &Backup) -> Option<DatabaseRow> {
    if !app.config.template_cache {
        return None;
    }
    of_client(&app.db, client).await.ok()?.into_iter().find(|t| made_from(t, backup))
}

/// Makes the hidden database `temp` a copy of `template`: file copy, hard-linked
/// filestore, and its own identity. Returns the template's neutralization report.
pub async fn copy_from(app: &App, template: &DatabaseRow, temp: &str, marker: &Marker) -> Result<NeutralizeReport, String> {
    app.db.copy_hidden(temp, &template.name, marker).await.map_err(|e| e.to_string())?;
    filestore::link_copy(&app.config.data_dir, &template.name, temp)
        .map_err(|e| format!("copying the template's filestore failed: {e}"))?;
    let mut client = app.db.connect(temp).await.map_err(|e| e.to_string())?;
    neutralize::new_identity(&mut client).await?;
    Ok(template.marker.as_ref().and_then(|m| m.neutralized.clone()).unwrap_or_default())
}

/// The marker of a template of `client` made from `backup`.
fn marker(name: &str, client: &str, backup: &Backup, report: &NeutralizeReport) -> Marker {
    Marker {
        numikube_staging: 1,
        state: STATE.into(),
        job_id: String::new(),
        db_name: name.into(),
        backup: Some(backup.key.clone()),
        etag: Some(backup.etag.clone()),
        created_at: Utc::now(),
        client: Some(client.into()),
        neutralized: Some(report.clone()),
        owner: None,
    }
}

/// Free bytes on the file system holding `path` (None when it cannot be known).
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `stat` a valid out-pointer.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Keeps `source` (a finished, neutralized copy nobody uses yet) as the
/// client's template for `backup`, then drops the client's older templates.
/// Skipped, with a log line, when the cache is off or the disk is short.
pub async fn keep(app: &App, source: &str, client: &str, backup: &Backup, report: &NeutralizeReport) -> Result<(), String> {
    if !app.config.template_cache {
        return Ok(());
    }
    let older = of_client(&app.db, client).await.map_err(|e| e.to_string())?;
    if older.iter().any(|t| made_from(t, backup)) {
        return Ok(());
    }
    let size = app.db.size(source).await.map_err(|e| e.to_string())? as u64;
    match app.db.data_directory().await.and_then(|d| free_bytes(&d)) {
        // Keep a fifth of the copy's size as head room for the databases users work in.
        Some(free) if free < size + size / 5 => {
            return Err(format!("not enough free disk for a template of {source}: {size} bytes needed, {free} free"));
        }
        Some(_) => {}
        None => tracing::info!("cannot read PostgreSQL's data directory to check free space; making the template anyway"),
    }
    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let marker = marker(&name, client, backup, report);
    if let Err(e) = app.db.copy_hidden(&name, source, &marker).await {
        return Err(format!("making the template {name} from {source} failed: {e}"));
    }
    // Nobody (autovacuum included) may be inside a template when a copy is made from it.
    if let Err(e) = app.db.close(&name).await {
        discard(app, &name).await;
        return Err(format!("closing the template {name} failed: {e}"));
    }
    if let Err(e) = filestore::link_copy(&app.config.data_dir, source, &name) {
        discard(app, &name).await;
        return Err(format!("linking the filestore of {source} into the template failed: {e}"));
    }
    tracing::info!(template = %name, client, key = %backup.key, "template kept");
    for old in older {
        discard(app, &old.name).await;
    }
    Ok(())
}

/// Turns the hidden database `temp` (restored for pre-warm) into the client's
/// template for `backup` by renaming it, then drops the client's older templates.
pub async fn adopt(app: &App, temp: &str, client: &str, backup: &Backup, report: &NeutralizeReport) -> Result<(), String> {
    let older = of_client(&app.db, client).await.map_err(|e| e.to_string())?;
    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    let marker = marker(&name, client, backup, report);
    app.db.set_marker(temp, &marker).await.map_err(|e| e.to_string())?;
    app.db.rename(temp, &name).await.map_err(|e| e.to_string())?;
    filestore::rename(&app.config.data_dir, temp, &name).map_err(|e| format!("moving the filestore of {temp} failed: {e}"))?;
    for old in older {
        discard(app, &old.name).await;
    }
    Ok(())
}

