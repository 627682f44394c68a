//! A copy's size while it loads (docs/contract.md *Containment*): its database and
//! its filestore are measured every few seconds, and a copy that grows past
//! `numikube_staging_max_copy_size` is stopped, so that a small backup cannot
//! fill the cluster's disk (production may share it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;

use crate::config::CopySize;
use crate::pg::{Db, DbError};

/// How often the copy is measured.
const EVERY: Duration = Duration::from_secs(1);

/// A copy that grew past its bound, or could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum TooLarge {
    /// Past the bound.
    #[error("the copy grew to {} (database {}, filestore {}) while loading, past numikube_staging_max_copy_size ({}{}); it was stopped and dropped. Check the backup, or raise numikube_staging_max_copy_size on the staging server", ByteSize(database + filestore), ByteSize(*database), ByteSize(*filestore), ByteSize(*bound), setting)]
    Grew {
        /// `pg_database_size` of the copy.
        database: u64,
        /// Bytes in its filestore.
        filestore: u64,
        /// The bound in bytes.
        bound: u64,
        /// How the bound was set, e.g. ` = 50x the backup's size of 4.7 MiB`.
        setting: String,
    },
    /// PostgreSQL could not say the database's size.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Measures the database `db` and its filestore `filestore` every few
/// seconds; resolves only when together they pass the bound (or cannot be read).
pub async fn watch(db: &Db, name: &str, filestore: &Path, limit: CopySize, backup_size: u64) -> TooLarge {
    let bound = limit.bound(backup_size);
    let setting = match limit {
        CopySize::Times(_) => format!(" = {limit} of {}", ByteSize(backup_size)),
        CopySize::Bytes(_) => String::new(),
    };
    loop {
        tokio::time::sleep(EVERY).await;
        let database = match db.size(name).await {
            Ok(size) => size.max(0) as u64,
            Err(e) => return TooLarge::Db(e),
        };
        let dir: PathBuf = filestore.to_path_buf();
        let filestore = tokio::task::spawn_blocking(move || bytes_under(&dir)).await.unwrap_or(0);
        if database + filestore > bound {
            return TooLarge::Grew { database, filestore, bound, setting };
        }
    }
}

/// Bytes of the regular files under `dir` (0 when it does not exist).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
