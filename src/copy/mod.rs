//! Making one copy: restore the chosen backup (or copy the kept template)
//! into a hidden database, neutralize it, mark it, and give it its final
//! name — replacing an earlier copy of the sidecar's (a refresh) only then,
//! and never a database it did not make.

//!
//! Stages, each a folder, data flowing one way: [`restore`] (the backup into
//! the hidden database), [`filestore`] (its files, beside the load),
//! [`neutralize`], [`anonymize`], then [`life`] (final name, publication,
//! template, discard). [`load`] strings the first four together as the job's
//! own role; [`make`] adds the template path and the final name.

pub mod anonymize;
mod error;
pub mod filestore;
pub mod guard;
pub mod life;
mod load;
pub mod neutralize;
pub mod odoo_tree;
mod progress;
pub mod restore;
pub mod timeline;
mod version;

use std::time::Instant;

use numikube_staging_rpc::Phase;

use crate::config::Config;
use crate::metrics;
use crate::pg::{Marker, MarkerState, WorkingName};
use crate::services::Services;

pub use error::{first_line, CopyError};
pub use filestore::FilestoreReport;
pub use life::{discard, drop_with_filestore, publish, templates, Finished, Hidden};
pub use load::{restore_and_neutralize, Load, Loaded};
pub use progress::{Counters, Fraction, Tracker};
pub use timeline::Timeline;

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
    // An anonymized copy comes only from a template of an anonymized copy of
    // the same backup masked alike (same key, sidecar and scripts), never from
    // one kept as restored; without a configured key it is a full restore
    // (a key of its own). A copy not asked to be anonymized never comes from a
    // masked template.
    let fingerprint = match request.anonymize {
        true => masking_fingerprint(&services.config).unwrap_or_else(|e| {
            tracing::warn!("{e}; no template used or kept for this anonymized copy");
            None
        }),
        false => None,
    };
    let template = match (request.anonymize, &fingerprint) {
        (true, None) => None,
        (_, masked) => templates::usable(services, request.client, &backup, masked.as_deref()).await,
    };
    let (report, format, origin, anonymized) = match template {
        Some(template) => {
            // A repeat copy of a backup already restored: seconds, not minutes.
            tracker.phase(Phase::Restoring);
            tracing::info!(job = %request.job_id, template = %template.name, "copying the template");
            let copying = Instant::now();
            let report = templates::copy_from(services, &template, &temp_name, &marker).await.map_err(CopyError::Template)?;
            services.metrics.template_copied(copying.elapsed());
            tracker.timeline().since("clone", copying);
            tracker.bytes_read().store(backup.size, std::sync::atomic::Ordering::Relaxed);
            // Its filestore is the template's (hard links), wherever that one came from.
            let marker = template.marker.as_ref();
            let anonymized = marker.and_then(|m| m.masking.as_ref()).map(|m| m.report.clone());
            (report, metrics::Format::Template, marker.and_then(|m| m.filestore.clone()), anonymized)
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
                timeline: tracker.timeline(),
                low_priority: false,
                anonymize: request.anonymize,
            };
            let loaded = restore_and_neutralize(services, &load).await?;
            (loaded.report, loaded.format, Some(loaded.origin.to_string()), loaded.anonymized)
        }
    };
    tracker.neutralized(&report);
    let finishing = Instant::now();
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
    let placing = life::Placing { temp: &temp_name, final_name: request.db_name, job_id: request.job_id, client: request.client };
    life::put_in_place(services, &placing, request.refresh).await?;
    tracker.timeline().since("finish", finishing);
    // Under its final name: the restore is over (for a template copy, the backup's size counts as read).
    let bytes = tracker.bytes_read().load(std::sync::atomic::Ordering::Relaxed);
    services.metrics.restore_finished(format, started.elapsed(), bytes);
    Ok(Finished { db_name: request.db_name.into(), client: request.client.into(), backup, report, filestore, anonymized, fingerprint })
}

/// The fingerprint of this staging's masking now ([`anonymize::fingerprint`]);
/// `None` without a configured key. An error says why it cannot be known
/// (Odoo's tree not found, a script unreadable).
pub fn masking_fingerprint(config: &Config) -> Result<Option<String>, String> {
    // Without a key, each copy has one of its own: no two copies are masked alike.
    let Some(key) = config.anonymize_key.as_deref().filter(|k| !k.is_empty()) else { return Ok(None) };
    let tree = odoo_tree::OdooTree::find(config.odoo_path.as_deref(), &config.addons_path).map_err(|e| e.to_string())?;
    anonymize::fingerprint::of(&config.token, key, &tree.search_path(&config.addons_path))
        .map(Some)
        .map_err(|e| format!("the modules' anonymize.sql could not be read for the masked template's fingerprint: {e}"))
}

/// Counts the attachments of the hidden copy `temp` (to be `db_name`) whose
/// file is missing; warns when there are any. `None` when they cannot be counted.
async fn count_missing(services: &Services, temp: &str, db_name: &str) -> Result<Option<u64>, CopyError> {
    let dir = filestore::path(&services.config.data_dir, temp).expect("working names are safe directory names");
    let mut client = services.db.connect(temp).await?;
    match filestore::missing(&mut client, &dir).await {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn without_a_key_there_is_no_fingerprint() {
        for extra in ["", "numikube_staging_anonymize_key =\n"] {
            let text = format!("[options]\nnumikube_staging_token = s3cret\n{extra}");
            let config = Config::parse(Path::new("/etc/odoo.conf"), &text, &|_| None).unwrap();
            assert_eq!(masking_fingerprint(&config), Ok(None), "a key per copy: no fingerprint ({extra:?})");
        }
    }
}
