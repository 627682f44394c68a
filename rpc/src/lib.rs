//! The JSON-RPC API of the numikube-staging sidecar.
//!
//! This crate is the contract between the sidecar, its Rust tests and any
//! other Rust client: the request and answer types, the stable error codes,
//! and the [`StagingApi`] trait from which jsonrpsee derives both the server
//! skeleton (`StagingApiServer`) and a typed client (`StagingApiClient`).
//! Non-Rust clients (the Odoo staging route) read `openrpc.json` beside this
//! crate, which a test keeps in sync with this file.

use std::collections::BTreeMap;

use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Stable JSON-RPC error codes, one per kind of refusal.
///
/// The staging route of the Odoo addon maps them to Odoo exceptions, so a
/// code never changes meaning once released. They avoid jsonrpsee's own codes
/// (-32700, -32600..-32603, -32007 "request too big", -32008, -32009).
pub mod codes {
    /// Something failed inside the sidecar; the message says what.
    pub const INTERNAL: i32 = -32040;
    /// The token is missing or wrong.
    pub const BAD_TOKEN: i32 = -32041;
    /// A field is missing or malformed (name, suffix, callback URL, …).
    pub const INVALID_INPUT: i32 = -32042;
    /// The instance already holds as many databases as it may.
    pub const LIMIT_REACHED: i32 = -32043;
    /// No job or database with that name or id.
    pub const NOT_FOUND: i32 = -32044;
    /// The object storage or PostgreSQL cannot be reached.
    pub const UNAVAILABLE: i32 = -32045;
    /// The request clashes with existing state (a name being created, a foreign database).
    pub const CONFLICT: i32 = -32046;
    /// The method exists in the contract but this sidecar does not do it yet.
    pub const NOT_IMPLEMENTED: i32 = -32049;
}

/// Every method name of the API, as sent on the wire.
pub const METHODS: [&str; 5] = [
    "staging_run",
    "staging_drop",
    "staging_status",
    "staging_list",
    "staging_health",
];

/// Builds a JSON-RPC error: `message` is a sentence for an Odoo user,
/// `detail` (optional) goes to `error.data` for the traceback field.
pub fn error(code: i32, message: impl Into<String>, detail: Option<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), detail)
}

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

/// Answer to an accepted prod2x request: the restore goes on in the background.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStarted {
    /// The final name the database will have.
    pub db_name: String,
    /// Id to follow the job with `staging_status`.
    pub job_id: String,
}

/// A name that was not dropped, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Refused {
    /// The name as given.
    pub name: String,
    /// A sentence for the user.
    pub reason: String,
}

/// Answer to a drop: what happened to each name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DropResult {
    /// Always `done`: a drop is answered once it is over.
    pub status: String,
    /// Names that were dropped.
    pub dropped: Vec<String>,
    /// Names of no database of this instance.
    pub missing: Vec<String>,
    /// Names that exist but may not be dropped.
    pub refused: Vec<Refused>,
}

/// Answer of `staging_run`, whose shape depends on the payload's type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RunResult {
    /// prod2x: accepted, restoring.
    Started(RunStarted),
    /// dropdb: done.
    Dropped(DropResult),
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Accepted and not finished.
    Running,
    /// The database is ready.
    Done,
    /// The job failed; `error` says why.
    Error,
}

/// The step a running job is at.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Waiting for a restore slot.
    Queued,
    /// Reading the backup from the bucket.
    Downloading,
    /// Loading the backup into the temporary database.
    Restoring,
    /// Running the neutralization scripts.
    Neutralizing,
    /// Marker, filestore and rename.
    Finishing,
    /// Finished well.
    Done,
    /// Finished badly.
    Error,
}

/// What the neutralization did to a copy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NeutralizeReport {
    /// Modules whose `data/neutralize.sql` ran, in order.
    pub scripts: Vec<String>,
    /// Installed modules not found on `addons_path`.
    pub modules_not_found: Vec<String>,
}

/// Answer of `staging_status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobStatus {
    /// The job's id.
    pub job_id: String,
    /// The final database name.
    pub db_name: String,
    /// running, done or error.
    pub state: JobState,
    /// The current step.
    pub phase: Phase,
    /// 0..1 where known (bytes of the backup read), else null.
    pub progress: Option<f64>,
    /// One-line reason when the job failed.
    pub error: Option<String>,
    /// RFC 3339 time the job was accepted.
    pub started_at: String,
    /// RFC 3339 time the job ended.
    pub finished_at: Option<String>,
    /// Key of the backup used, once chosen.
    #[serde(default)]
    pub backup: Option<String>,
    /// What the neutralization ran, once it has.
    #[serde(default)]
    pub neutralized: Option<NeutralizeReport>,
}

/// One database of this instance, as `staging_list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabaseInfo {
    /// Database name.
    pub name: String,
    /// `pg_database_size`.
    pub size_bytes: i64,
    /// When the sidecar made it (from its marker), if it did.
    pub created_at: Option<String>,
    /// Whether it carries the sidecar's marker.
    pub made_by_staging: bool,
    /// The job that made it.
    pub job_id: Option<String>,
    /// The backup it was made from.
    pub backup: Option<String>,
    /// A kept template for instant repeat copies (hidden from Odoo, not counted in the limit).
    #[serde(default)]
    pub template: bool,
}

/// Answer of `staging_health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    /// Version of the sidecar.
    pub version: String,
    /// `ok` or why PostgreSQL cannot be used.
    pub postgres: String,
    /// `ok` or why the bucket cannot be read.
    pub storage: String,
    /// Pre-warm state per client of `numikube_staging_prewarm_clients`.
    #[serde(default)]
    pub prewarm: Vec<PrewarmState>,
}

/// Where pre-warm stands for one client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrewarmState {
    /// The client.
    pub client: String,
    /// `waiting`, `building`, `ready`, or why not (no backup, error).
    pub state: String,
    /// The backup the template is (being) made from.
    pub backup: Option<String>,
    /// RFC 3339 time of the last look at the bucket.
    pub checked_at: Option<String>,
}

/// The sidecar's API. Every method but `staging_health` takes the token.
#[rpc(server, client, namespace = "staging")]
pub trait StagingApi {
    /// Run a payload as production posts it: prod2x answers at once, dropdb when done.
    #[method(name = "run")]
    async fn run(&self, payload: RunPayload) -> Result<RunResult, ErrorObjectOwned>;

    /// Drop databases named in `database_names` (split on any white space).
    #[method(name = "drop")]
    async fn drop_databases(&self, token: String, database_names: String) -> Result<DropResult, ErrorObjectOwned>;

    /// State of a job, by job id or database name.
    #[method(name = "status")]
    async fn status(&self, token: String, job_or_db: String) -> Result<JobStatus, ErrorObjectOwned>;

    /// Databases of this instance.
    #[method(name = "list")]
    async fn list(&self, token: String) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned>;

    /// Version and the state of PostgreSQL and of the bucket; no token.
    #[method(name = "health")]
    async fn health(&self) -> Result<Health, ErrorObjectOwned>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openrpc() -> Value {
        let text = include_str!("../openrpc.json");
        serde_json::from_str(text).expect("openrpc.json is valid JSON")
    }

    #[test]
    fn openrpc_lists_exactly_the_methods_of_the_trait() {
        let doc = openrpc();
        let mut names: Vec<&str> = doc["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        names.sort();
        let mut expected = METHODS.to_vec();
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn openrpc_documents_every_error_code() {
        let doc = openrpc();
        let documented: Vec<i64> = doc["components"]["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        for code in [
            codes::INTERNAL,
            codes::BAD_TOKEN,
            codes::INVALID_INPUT,
            codes::LIMIT_REACHED,
            codes::NOT_FOUND,
            codes::UNAVAILABLE,
            codes::CONFLICT,
            codes::NOT_IMPLEMENTED,
        ] {
            assert!(documented.contains(&(code as i64)), "code {code} missing from openrpc.json");
        }
    }

    #[test]
    fn payload_keeps_unknown_keys_aside_and_reads_type() {
        let p: RunPayload = serde_json::from_value(serde_json::json!({
            "token": "t", "client": "cosmos", "type": "prod2x", "timestamp": true,
            "callback": "http://x/cb", "level": "lab", "suffix": "a", "future_key": 1
        }))
        .unwrap();
        assert_eq!(p.kind.as_deref(), Some("prod2x"));
        assert_eq!(p.extra.get("future_key"), Some(&serde_json::json!(1)));
    }

    #[test]
    fn odoo_false_means_empty_text() {
        let p: RunPayload = serde_json::from_value(serde_json::json!({
            "token": "t", "client": "cosmos", "type": "prod2x", "suffix": false, "email": null, "level": "lab"
        }))
        .unwrap();
        assert_eq!((p.suffix, p.email), (None, None));
        assert!(serde_json::from_value::<RunPayload>(serde_json::json!({"suffix": true})).is_err());
        assert!(serde_json::from_value::<RunPayload>(serde_json::json!({"suffix": 5})).is_err());
    }

    #[test]
    fn run_result_serializes_flat_for_both_shapes() {
        let started = RunResult::Started(RunStarted { db_name: "a".into(), job_id: "j".into() });
        assert_eq!(serde_json::to_value(&started).unwrap(), serde_json::json!({"db_name":"a","job_id":"j"}));
        let dropped: RunResult = serde_json::from_value(serde_json::json!({
            "status":"done","dropped":[],"missing":["x"],"refused":[]})).unwrap();
        assert!(matches!(dropped, RunResult::Dropped(_)));
    }
}
