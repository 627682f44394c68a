//! Why a copy failed: one variant per step, each a sentence for the Odoo
//! user (its `Display`) and a detail for the job's traceback.

use super::filestore::{FilestoreError, FillError};
use super::life::{PlaceError, TemplateError};
use super::neutralize::NeutralizeError;
use super::restore::format::FormatError;
use super::restore::RestoreError;
use crate::pg::DbError;
use crate::storage::SourceError;

/// A failed copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// No backup of the client could be found.
    #[error("No copy could be made: {0}.")]
    NoBackup(SourceError),
    /// The backup could not be opened.
    #[error("The backup {key} could not be read: {source}.")]
    Open {
        /// The backup.
        key: String,
        /// Why.
        source: SourceError,
    },
    /// The backup is of no known format.
    #[error("The backup {key} cannot be restored: {source}.")]
    Format {
        /// The backup.
        key: String,
        /// Why.
        source: FormatError,
    },
    /// Loading the backup failed.
    #[error("Restoring the backup {key} failed: {}.", first_line(&.source.to_string()))]
    Restore {
        /// The backup.
        key: String,
        /// Why.
        source: RestoreError,
    },
    /// Odoo's own folder cannot be read on the staging host.
    #[error("No copy could be made: {0}.")]
    OdooTree(super::odoo_tree::TreeError),
    /// The backup is of another Odoo version than the staging's.
    #[error("The backup is from Odoo {backup}; this staging server runs Odoo {staging}.")]
    Version {
        /// The backup's version (`17.0`, `saas~17.4`, or what it lacks).
        backup: String,
        /// The staging's.
        staging: String,
    },
    /// The copy could not be neutralized.
    #[error("Neutralizing the copy failed: {}.", first_line(&.0.to_string()))]
    Neutralize(NeutralizeError),
    /// The copy could not be anonymized (or something survived the masking).
    #[error("Anonymizing the copy failed: {}.", first_line(&.0.to_string()))]
    Anonymize(super::anonymize::AnonymizeError),
    /// The kept template could not be copied.
    #[error("Copying the ready template failed: {}.", first_line(&.0.to_string()))]
    Template(TemplateError),
    /// PostgreSQL failed.
    #[error("The copy failed because of the database server: {0}.")]
    Db(#[from] DbError),
    /// A database the sidecar did not make took the final name meanwhile.
    #[error("A database named \"{0}\" appeared meanwhile and was not made by the staging service; it was left untouched and the copy was discarded.")]
    Foreign(String),
    /// Another client's copy took the final name meanwhile.
    #[error("A copy named \"{name}\" appeared meanwhile and is not a copy of {client}; it was left untouched and the copy was discarded. Choose another suffix.")]
    OthersCopy {
        /// The final name.
        name: String,
        /// The request's client.
        client: String,
    },
    /// A timestamped name that exists already (two runs in one minute): nothing is replaced.
    #[error("A copy named \"{0}\" was made less than a minute ago: wait a minute or choose another suffix.")]
    Exists(String),
    /// The copy grew past `numikube_staging_max_copy_size` while it loaded.
    #[error("The copy was stopped: {0}.")]
    TooLarge(super::restore::size_watch::TooLarge),
    /// The copy's filestore could not be filled (a companion archive refused, production's filestore unreadable).
    #[error("The copy's filestore could not be filled from {origin}: {}; nothing was kept.", first_line(&.source.to_string()))]
    Fill {
        /// Where it was filled from (`companion <key>`, `source <folder>`).
        origin: String,
        /// Why.
        source: FillError,
    },
    /// The filestore could not be moved to the final name.
    #[error("Moving the filestore into place failed: {0}.")]
    Filestore(std::io::Error),
}

impl From<FilestoreError> for CopyError {
    fn from(e: FilestoreError) -> Self {
        match e {
            FilestoreError::Open { key, source } => CopyError::Open { key, source },
            FilestoreError::Fill { origin, source } => CopyError::Fill { origin, source },
        }
    }
}

impl From<PlaceError> for CopyError {
    fn from(e: PlaceError) -> Self {
        match e {
            PlaceError::Db(e) => CopyError::Db(e),
            PlaceError::Foreign(name) => CopyError::Foreign(name),
            PlaceError::OthersCopy { name, client } => CopyError::OthersCopy { name, client },
            PlaceError::Exists(name) => CopyError::Exists(name),
            PlaceError::Filestore(e) => CopyError::Filestore(e),
        }
    }
}

impl CopyError {
    /// The detail for the job's traceback.
    pub fn detail(&self) -> String {
        match self {
            CopyError::NoBackup(e) | CopyError::Open { source: e, .. } => e.to_string(),
            CopyError::Format { source, .. } => source.to_string(),
            CopyError::Restore { source, .. } => source.to_string(),
            CopyError::OdooTree(e) => e.to_string(),
            CopyError::Version { backup, staging } => {
                format!("the backup's base module is of Odoo {backup}, odoo/release.py of the staging says {staging}")
            }
            CopyError::Neutralize(e) => e.to_string(),
            CopyError::Anonymize(e) => e.to_string(),
            CopyError::Template(e) => e.to_string(),
            CopyError::Db(e) => e.to_string(),
            CopyError::Foreign(_) => "foreign database with the final name".into(),
            CopyError::OthersCopy { client, .. } => format!("another client's copy with the final name, not {client}'s"),
            CopyError::Exists(_) => "a timestamped copy of that name exists; a timestamped run never replaces one".into(),
            CopyError::Filestore(e) => e.to_string(),
            CopyError::TooLarge(e) => e.to_string(),
            CopyError::Fill { origin, source } => format!("filling the filestore from {origin}: {source}"),
        }
    }

    /// Whether PostgreSQL itself failed (then the job says so, not what a tool saw of it).
    pub fn is_database_server(&self) -> bool {
        matches!(self, CopyError::Db(_))
    }
}

/// The first line of a tool's message, without its final full stop.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim_end_matches('.').to_string()
}
