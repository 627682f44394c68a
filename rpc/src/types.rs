//! The answers of the API's methods.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::time::{rfc3339, rfc3339_option};
use crate::{DropStatus, Reach, Warmth};

/// Answer to an accepted prod2x request: the restore goes on in the background.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStarted {
    /// The final name the database will have.
    pub db_name: String,
    /// Id to follow the job with `staging_status`.
    pub job_id: String,
    /// The payload's `backup`, echoed so production knows it was not ignored; absent when none was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Whether the copy will be anonymized, always written: production fails a
    /// job that asked for it when the answer does not echo it true.
    #[serde(default)]
    pub anonymize: bool,
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
    pub status: DropStatus,
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
    /// Installed modules not found on `addons_path` nor in Odoo's own addons,
    /// allowed by `numikube_staging_neutralize_skip` (any other fails the copy).
    pub modules_not_found: Vec<String>,
    /// What was verified off after the scripts, in the same transaction.
    #[serde(default)]
    pub verified: Vec<String>,
    /// Statements of a plain SQL backup that failed harmlessly (pg_dump writes
    /// them; a non-superuser restore cannot run them), with line and message.
    #[serde(default)]
    pub tolerated: Vec<String>,
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
    /// 0..1 over the whole job, never going back, 1 only when done; null while queued.
    pub progress: Option<f64>,
    /// One-line reason when the job failed.
    pub error: Option<String>,
    /// RFC 3339 time the job was accepted.
    #[serde(with = "rfc3339")]
    pub started_at: DateTime<Utc>,
    /// RFC 3339 time the job ended.
    #[serde(default, with = "rfc3339_option")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Key of the backup used, once chosen.
    #[serde(default)]
    pub backup: Option<String>,
    /// What the neutralization ran, once it has.
    #[serde(default)]
    pub neutralized: Option<NeutralizeReport>,
    /// Where the copy's filestore came from, once known: `zip`, `companion <key>`, `source <folder>` or `none`.
    #[serde(default)]
    pub filestore: Option<String>,
    /// How many attachments point to a file missing from the copy's filestore, once counted.
    #[serde(default)]
    pub missing_attachments: Option<u64>,
    /// Whether the copy is anonymized (asked by production or `numikube_staging_anonymize = always`).
    #[serde(default)]
    pub anonymize: bool,
    /// What the anonymization masked, once it has.
    #[serde(default)]
    pub anonymized: Option<AnonymizeReport>,
}

/// What the anonymization of a copy masked.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct AnonymizeReport {
    /// Modules whose `data/anonymize.sql` ran, in order.
    pub scripts: Vec<String>,
    /// Tables whose rows were masked, by the built-in set or a module's script.
    pub tables: Vec<String>,
    /// Values masked by the built-in set, plus rows changed by the modules' scripts.
    pub values: u64,
}

/// One database of this instance, as `staging_list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatabaseInfo {
    /// Database name.
    pub name: String,
    /// `pg_database_size`.
    pub size_bytes: i64,
    /// When the sidecar made it (from its marker), if it did.
    #[serde(default, with = "rfc3339_option")]
    pub created_at: Option<DateTime<Utc>>,
    /// Whether it carries the sidecar's marker.
    pub made_by_staging: bool,
    /// The job that made it.
    pub job_id: Option<String>,
    /// The backup it was made from.
    pub backup: Option<String>,
    /// Who asked for it (the run payload's `email`).
    #[serde(default)]
    pub requested_by: Option<String>,
    /// RFC 3339 time it expires (`numikube_staging_expire_after`), if it does.
    #[serde(default, with = "rfc3339_option")]
    pub expires_at: Option<DateTime<Utc>>,
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
    pub postgres: Reach,
    /// `ok` or why the bucket cannot be read.
    pub storage: Reach,
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
    pub state: Warmth,
    /// The backup the template is (being) made from.
    pub backup: Option<String>,
    /// RFC 3339 time of the last look at the bucket.
    #[serde(default, with = "rfc3339_option")]
    pub checked_at: Option<DateTime<Utc>>,
}

/// One backup of a client in the bucket, as `staging_backups` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BackupInfo {
    /// Object key, the value of the run payload's `backup`.
    pub key: String,
    /// RFC 3339 last-modified time.
    #[serde(with = "rfc3339")]
    pub last_modified: DateTime<Utc>,
    /// Size in bytes.
    pub size_bytes: u64,
}

/// Answer of `staging_backups`: the client's backups, newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Backups {
    /// Newest first.
    pub backups: Vec<BackupInfo>,
}

/// Answer of `staging_cancel`: the job as it ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cancelled {
    /// Always `error`: a cancelled job is reported like any failed job.
    pub state: JobState,
    /// The sentence production shows, "Cancelled …".
    pub error: String,
}

/// Answer of `staging_extend`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Extended {
    /// RFC 3339 time the copy now expires.
    #[serde(with = "rfc3339")]
    pub expires_at: DateTime<Utc>,
}
