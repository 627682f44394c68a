//! The body the sidecar POSTs to production's callback route when a job ends
//! (docs/contract.md *Wire protocol*): `state` tells the two shapes apart.

use serde::{Deserialize, Serialize};

use crate::AnonymizeReport;

/// A job's end, as production's `/staging/callback` receives it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Callback {
    /// The copy is made and open.
    Done {
        /// The token of the client's environment: its own (`numikube_staging_client_tokens`), else the shared one.
        token: String,
        /// The copy's name.
        db_name: String,
        /// The job's id.
        job_id: String,
        /// Where the copy's filestore came from (`zip`, `companion <key>`, `source <folder>`, `none`).
        filestore: Option<String>,
        /// How many attachments point to a missing file.
        missing_attachments: Option<u64>,
        /// What the anonymization masked; absent for a copy not anonymized.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anonymized: Option<AnonymizeReport>,
    },
    /// The job failed.
    Error {
        /// The sentence for the user.
        error: String,
        /// The detail, for the job's traceback.
        traceback: String,
        /// The same detail, under the name older addons read.
        stacktrace: String,
        /// The token of the client's environment: its own (`numikube_staging_client_tokens`), else the shared one.
        token: String,
        /// The name the copy would have had.
        db_name: String,
        /// The job's id.
        job_id: String,
    },
}
