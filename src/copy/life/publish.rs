//! Handing a finished copy out: keep its template (unless the cache is off,
//! or the copy is anonymized with a key of its own), then make it visible to
//! Odoo, retried before the sweep takes over.

use std::time::Duration;

use numikube_staging_rpc::{AnonymizeReport, NeutralizeReport};

use super::templates::{self, Kept};
use crate::copy::filestore::FilestoreReport;
use crate::copy::timeline::Timeline;
use crate::pg::Masking;
use crate::services::Services;
use crate::storage::Backup;

/// What a finished copy hands over.
pub struct Finished {
    /// Its final name.
    pub db_name: String,
    /// The client whose backup it holds.
    pub client: String,
    /// The backup it was made from.
    pub backup: Backup,
    /// What the neutralization ran.
    pub report: NeutralizeReport,
    /// Where its filestore came from and what it lacks.
    pub filestore: FilestoreReport,
    /// What the anonymization masked; `None`: the copy is not anonymized.
    pub anonymized: Option<AnonymizeReport>,
    /// The fingerprint of an anonymized copy's masking (`copy::anonymize::fingerprint`);
    /// `None` for a copy masked with a key of its own, which no later copy may share.
    pub fingerprint: Option<String>,
}

/// How often publishing a finished copy is tried before the sweep takes over.
const PUBLISH_TRIES: u32 = 5;

/// Keeps the template (unless the cache is off) and makes the copy visible to Odoo.
/// Each part's time goes to `timeline` (`template`, `publish`).
pub async fn publish(services: &Services, finished: &Finished, timeline: &Timeline) {
    let name = &finished.db_name;
    // An anonymized copy's template is marked with its masking, and serves
    // only anonymized copies masked alike; one masked with a key made for it
    // alone is not kept (no later copy may share its masks).
    let masking = match (&finished.anonymized, &finished.fingerprint) {
        (None, _) => Some(None),
        (Some(report), Some(fingerprint)) => Some(Some(Masking { fingerprint: fingerprint.clone(), report: report.clone() })),
        (Some(_), None) => None,
    };
    match masking {
        Some(masking) => {
            let kept = Kept { report: &finished.report, filestore: finished.filestore.origin.as_deref(), masking };
            let keeping = templates::keep(services, name, &finished.client, &finished.backup, &kept);
            if let Err(e) = timeline.time("template", keeping).await {
                tracing::warn!(db = %name, "no template kept: {e}");
            }
        }
        None => tracing::info!(db = %name, "anonymized with a key of its own (no numikube_staging_anonymize_key): no template kept"),
    }
    timeline.time("publish", make_visible(services, name)).await;
}

/// Makes the copy `name` visible to Odoo, retried before the sweep takes over.
async fn make_visible(services: &Services, name: &str) {
    // "Done" means open: a passing failure (a lock, a restart of PostgreSQL)
    // is retried before production is told; past that, the sweep publishes it.
    for attempt in 1..=PUBLISH_TRIES {
        match services.db.publish(name).await {
            Ok(()) => return,
            Err(e) if attempt == PUBLISH_TRIES => {
                tracing::error!(db = %name, "could not make the copy visible: {e}; the sweep tries again");
            }
            Err(e) => {
                tracing::warn!(db = %name, attempt, "could not make the copy visible yet: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
