//! The run payload as production posts it, read the way Odoo sends text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The run payload exactly as production posts it to `/web/staging/run`.
///
/// Every field is optional at this level so that a missing one is answered
/// with a sentence naming it, not a serde error. Unknown keys are kept in
/// `extra` and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunPayload {
    /// The environment's token (`numikube_staging_token` of the staging).
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Client technical name, e.g. `cosmos`.
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// `prod2x` (new database) or `dropdb`.
    #[serde(rename = "type", default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Put `_<YYYYMMDD_HHMM>` in the new database's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<bool>,
    /// URL to POST the result to when the restore ends.
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    /// `lab`, `test`, `ecom`, …
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Optional last part of the name.
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// dropdb: names separated by any white space.
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub database_names: Option<String>,
    /// The requester's e-mail, for the fallback mail (newer productions).
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A key from `staging_backups` to restore instead of the newest (newer productions).
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// `<database.uuid>:<job id>:<run count>`: a repeat within 24 hours gets the first answer.
    #[serde(default, deserialize_with = "odoo_str", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Whether the copy must be anonymized (see docs/contract.md, *Anonymized copies*); `false`/`null`: no.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymize: Option<bool>,
    /// Keys this sidecar does not know; ignored.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// Reads a text field the way Odoo sends it: a string, or `false`/`null` for empty
/// (productions of the original module send `"suffix": false`).
fn odoo_str<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Str(String),
        Bool(bool),
    }
    match Option::<Text>::deserialize(deserializer)? {
        Some(Text::Str(s)) => Ok(Some(s)),
        None | Some(Text::Bool(false)) => Ok(None),
        Some(Text::Bool(true)) => Err(serde::de::Error::custom("expected a string or false, found true")),
    }
}
