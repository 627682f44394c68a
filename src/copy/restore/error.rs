//! Why loading a backup failed, shared by the restore paths (`pg_restore`,
//! plain SQL, zip, companion archive).

use std::path::PathBuf;

use bytesize::ByteSize;

/// Why loading a backup failed; each says what failed and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A client program could not be started.
    #[error("cannot start {tool}: {source}; is the PostgreSQL client installed (pg_path)?")]
    Spawn {
        /// `pg_restore`.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A client program failed; `detail` is the end of what it printed.
    #[error("{tool} failed{status}: {detail}")]
    Tool {
        /// `pg_restore`.
        tool: &'static str,
        /// ` (exit status: 1)`, or empty when it stopped reading.
        status: String,
        /// The last lines of its error output.
        detail: String,
    },
    /// The plain SQL could not be loaded (or holds a psql command).
    #[error("{0}")]
    Sql(plain_sql::LoadError),
    /// Reading, spooling or extracting failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `reading the backup failed`.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not enough free disk.
    #[error("not enough free disk for {what} in {}: {} needed (with head room), {} free; free some space or restore elsewhere", dir.display(), ByteSize(*needed).display().iec(), ByteSize(*free).display().iec())]
    NoRoom {
        /// What was to be written.
        what: String,
        /// Where.
        dir: PathBuf,
        /// Bytes needed, head room included.
        needed: u64,
        /// Bytes free.
        free: u64,
    },
    /// The Odoo zip cannot be used.
    #[error("{0}")]
    Zip(String),
    /// The zip expands to absurd sizes.
    #[error("the backup zip is refused because {0}: it may be a zip bomb")]
    Bomb(String),
    /// The zip's manifest names another Odoo version.
    #[error("the backup is from Odoo {backup}; this staging server runs Odoo {staging}")]
    Version {
        /// The manifest's version.
        backup: String,
        /// The staging's.
        staging: String,
    },
}

/// Wraps an I/O error with what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::Io { what, source }
}
