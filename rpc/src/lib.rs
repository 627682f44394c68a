//! The JSON-RPC API of the numikube-staging sidecar.
//!
//! This crate is the contract between the sidecar, its Rust tests and any
//! other Rust client: the request and answer types, the stable error codes,
//! and the [`StagingApi`] trait from which jsonrpsee derives both the server
//! skeleton (`StagingApiServer`) and a typed client (`StagingApiClient`).
//! Non-Rust clients (the Odoo staging route) read `openrpc.json` beside this
//! crate, which a test keeps in sync with this file.

mod callback;
mod payload;
mod states;
pub mod time;
mod types;

use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

pub use callback::Callback;
pub use payload::RunPayload;
pub use states::{DropStatus, Reach, Warmth};
pub use types::*;

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
pub const METHODS: [&str; 8] = [
    "staging_run",
    "staging_drop",
    "staging_status",
    "staging_list",
    "staging_health",
    "staging_backups",
    "staging_cancel",
    "staging_extend",
];

/// Builds a JSON-RPC error: `message` is a sentence for an Odoo user,
/// `detail` (optional) goes to `error.data` for the traceback field.
pub fn error(code: i32, message: impl Into<String>, detail: Option<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), detail)
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

    /// Databases of this instance; with `client`, only that client's copies.
    #[method(name = "list")]
    async fn list(&self, token: String, client: Option<String>) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned>;

    /// Version and the state of PostgreSQL and of the bucket; no token.
    #[method(name = "health")]
    async fn health(&self) -> Result<Health, ErrorObjectOwned>;

    /// The client's backups in the bucket, newest first.
    #[method(name = "backups")]
    async fn backups(&self, token: String, client: String) -> Result<Backups, ErrorObjectOwned>;

    /// Stops a queued or restoring job: nothing is left and it is reported as failed.
    #[method(name = "cancel")]
    async fn cancel(&self, token: String, job_id: String) -> Result<Cancelled, ErrorObjectOwned>;

    /// Pushes a copy's expiry back by `numikube_staging_expire_after` from now.
    #[method(name = "extend")]
    async fn extend(&self, token: String, db_name: String) -> Result<Extended, ErrorObjectOwned>;
}

#[cfg(test)]
mod tests;
