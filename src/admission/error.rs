//! Why a request was not admitted: one sentence for the Odoo user each.

use std::path::PathBuf;

use crate::job::JobRequest;
use crate::pg::DbError;

/// Why a request was not admitted; each is a sentence for the Odoo user.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The token is missing or wrong.
    #[error("The staging token is wrong: the environment's token on production must equal numikube_staging_token of the staging server.")]
    BadToken,
    /// The token is right but serves other clients.
    #[error("This staging token does not serve the client \"{0}\": use the token numikube_staging_client_tokens gives that client on the staging server.")]
    OtherClient(String),
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The sidecar is stopping.
    #[error("The staging service is restarting; run the job again in a minute.")]
    Stopping,
    /// PostgreSQL cannot be read.
    #[error("The staging server cannot check its databases: {0}.")]
    Unavailable(DbError),
    /// A database the sidecar did not make has the name.
    #[error("A database named \"{0}\" already exists on the staging server and was not made by the staging service; it is never replaced. Choose another suffix.")]
    Foreign(String),
    /// A copy of another client has the name.
    #[error(
        "A copy named \"{name}\" exists on the staging server and is not a copy of {client}; it is never replaced. Choose another suffix."
    )]
    OthersCopy {
        /// The name asked for.
        name: String,
        /// The request's client.
        client: String,
    },
    /// A timestamped name that exists already: two runs in one minute.
    #[error("A copy named \"{0}\" was made less than a minute ago: wait a minute or choose another suffix.")]
    Recent(String),
    /// A job is making that name already.
    #[error("The database \"{0}\" is already being created; wait for that job to end.")]
    InFlight(String),
    /// No room under the limit.
    #[error("The staging server already holds {count} databases (its limit is {limit}); drop one with a Drop Databases job first.")]
    LimitReached {
        /// Databases and jobs counted.
        count: usize,
        /// `numikube_staging_database_limit`.
        limit: usize,
    },
    /// The journal cannot be written, so no promise to report can be made.
    #[error("The staging server cannot write its job journal in {}: {source}. Free some disk space or fix the permissions, then run the job again.", dir.display())]
    Journal {
        /// The journal's directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl AdmissionError {
    /// The refusal of a name a job is making already: a timestamped run never
    /// replaces anything, so it is told what it would be told once that copy
    /// exists (wait a minute or choose another suffix); a refresh, to wait for that job.
    pub fn in_flight(request: &JobRequest) -> Self {
        match request.timestamped {
            true => Self::Recent(request.db_name.clone()),
            false => Self::InFlight(request.db_name.clone()),
        }
    }
}
