//! The machine-readable marker the sidecar puts on every database it makes,
//! as the database's comment (`COMMENT ON DATABASE`): which job made it,
//! from which backup, when, and where it stands.

use chrono::{DateTime, Utc};
use numikube_staging_rpc::{AnonymizeReport, NeutralizeReport};
use serde::{Deserialize, Serialize};

use crate::process::Owner;
use crate::storage::Backup;

/// Where a marked database stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkerState {
    /// Hidden, being restored and neutralized.
    Restoring,
    /// Complete and neutralized, under (or about to get) its final name.
    Done,
    /// A kept template for repeat copies.
    Template,
}

/// The marker itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// Always 1; the key that tells our comments from anyone else's.
    pub numikube_staging: u32,
    /// Where the database stands.
    pub state: MarkerState,
    /// The job that made it.
    pub job_id: String,
    /// The final name it was made for.
    pub db_name: String,
    /// Key of the backup it was made from.
    pub backup: Option<String>,
    /// ETag of that backup.
    pub etag: Option<String>,
    /// When the job started.
    pub created_at: DateTime<Utc>,
    /// Client the backup belongs to (templates are kept per client).
    #[serde(default)]
    pub client: Option<String>,
    /// What the neutralization ran (kept on templates for their copies' reports).
    #[serde(default)]
    pub neutralized: Option<NeutralizeReport>,
    /// The process working on it, while it is hidden: another live sidecar's
    /// (or `restore` command's) work is never swept away.
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Who asked for the copy (the run payload's `email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// When the copy expires (`numikube_staging_expire_after`), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Where its filestore came from (`zip`, `companion <key>`, `source <folder>`, `none`):
    /// a template keeps it for the copies made from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filestore: Option<String>,
    /// Whether the requester was mailed that the copy expires soon (once per expiry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expiry_warned: bool,
    /// On a template of anonymized copies: what masked it and what it masked
    /// (`None`: a template as restored, which never serves an anonymized copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<Masking>,
}

/// What masked a template of anonymized copies, and what it masked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Masking {
    /// The fingerprint of the masking (`copy::anonymize::fingerprint`): the
    /// template serves only anonymized copies asked with the same one.
    pub fingerprint: String,
    /// What was masked, for the reports of the copies made from it.
    pub report: AnonymizeReport,
}

impl Marker {
    /// Reads a database comment; `None` if it is not our marker.
    pub fn parse(comment: Option<&str>) -> Option<Marker> {
        serde_json::from_str::<Marker>(comment?).ok().filter(|m| m.numikube_staging == 1)
    }

    /// A marker in `state` for the copy `db_name` made by `job_id` from `backup` of `client`, owned by this process.
    pub fn new(state: MarkerState, job_id: String, db_name: String, client: &str, backup: &Backup) -> Marker {
        Marker {
            numikube_staging: 1,
            state,
            job_id,
            db_name,
            backup: Some(backup.key.clone()),
            etag: Some(backup.etag.clone()),
            created_at: Utc::now(),
            client: Some(client.into()),
            neutralized: None,
            owner: Some(Owner::me()),
            requested_by: None,
            expires_at: None,
            filestore: None,
            expiry_warned: false,
            masking: None,
        }
    }

    /// Whether it marks a copy still being restored (hidden, but a rename may show it for a moment).
    pub fn is_being_made(&self) -> bool {
        self.state == MarkerState::Restoring
    }

    /// Whether it was made from exactly this backup (same key and ETag).
    pub fn made_from(&self, backup: &Backup) -> bool {
        self.backup.as_deref() == Some(&backup.key) && self.etag.as_deref() == Some(&backup.etag)
    }

    /// The marker as the comment's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a marker serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_of_the_previous_version_still_read() {
        let old = r#"{"numikube_staging":1,"state":"done","job_id":"j","db_name":"a-lab","backup":"a.dump","etag":"e","created_at":"2026-11-24T13:02:00Z"}"#;
        let m = Marker::parse(Some(old)).unwrap();
        assert_eq!(m.state, MarkerState::Done);
        assert!(Marker::parse(Some(r#"{"numikube_staging":2}"#)).is_none());
        assert!(Marker::parse(Some("a comment of somebody else")).is_none());
        let back = Marker::parse(Some(&m.to_json())).unwrap();
        assert_eq!(back, m);
        assert!(m.filestore.is_none() && !m.to_json().contains("filestore"));
        let from = Marker { filestore: Some("companion a-1.filestore.tar.gz".into()), ..m };
        assert_eq!(Marker::parse(Some(&from.to_json())).unwrap(), from);
    }
}
