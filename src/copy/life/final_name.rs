//! The last step of a copy: its final name. The database rename and the
//! filestore move are one step, undone as a whole when either fails. A
//! refresh replaces the earlier copy only now, and never a database the
//! sidecar did not make; a timestamped run replaces nothing.

use std::path::Path;

use super::discard::discard;
use crate::copy::filestore;
use crate::pg::{Db, DbError, WorkKind, WorkingName};
use crate::services::Services;

/// Why the finished copy could not take its final name.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A database of that name appeared meanwhile, not made by the sidecar.
    #[error("a database named \"{0}\" exists and was not made by the staging service")]
    Foreign(String),
    /// A copy of another client took that name meanwhile.
    #[error("a copy named \"{name}\" exists and is not a copy of {client}")]
    OthersCopy {
        /// The final name.
        name: String,
        /// The request's client.
        client: String,
    },
    /// A timestamped copy of that name exists.
    #[error("a copy named \"{0}\" exists")]
    Exists(String),
    /// The filestore could not be moved.
    #[error("moving the filestore into place failed: {0}")]
    Filestore(std::io::Error),
}

/// Renames database `from` to `to` and its filestore with it; on failure
/// neither has moved.
async fn rename_with_filestore(db: &Db, data_dir: &Path, from: &str, to: &str) -> Result<(), PlaceError> {
    db.rename(from, to).await?;
    if let Err(e) = filestore::rename_off_core(data_dir, from, to).await {
        if let Err(back) = db.rename(to, from).await {
            tracing::error!("could not rename {to} back to {from} after the filestore move failed: {back}");
        }
        return Err(PlaceError::Filestore(e));
    }
    Ok(())
}

/// The copy being placed: its hidden name, final name, job and client.
pub struct Placing<'a> {
    /// The hidden database.
    pub temp: &'a str,
    /// The name it takes.
    pub final_name: &'a str,
    /// The job making it.
    pub job_id: &'a str,
    /// The client whose copy it is.
    pub client: &'a str,
}

/// Gives the finished copy its final name. With `refresh`, an earlier copy
/// the sidecar made for the same client under that name is replaced, only
/// now; without, an existing copy is left alone and the job fails (two
/// timestamped runs in a minute).
pub async fn put_in_place(services: &Services, placing: &Placing<'_>, refresh: bool) -> Result<(), PlaceError> {
    let Placing { temp, final_name, job_id, client } = *placing;
    let db = &services.db;
    let data_dir = &services.config.data_dir;
    let rows = db.all(false).await?;
    let previous = rows.iter().find(|r| r.name == final_name);
    let old = WorkingName::for_job(WorkKind::Old, job_id).to_string();
    if let Some(previous) = previous {
        if previous.marker.is_none() {
            return Err(PlaceError::Foreign(final_name.into()));
        }
        if previous.client().as_deref() != Some(client) {
            return Err(PlaceError::OthersCopy { name: final_name.into(), client: client.into() });
        }
        if !refresh {
            return Err(PlaceError::Exists(final_name.into()));
        }
        // Hide the previous copy, then move it aside; it is dropped once the new one is in place.
        db.hide(final_name).await?;
        if let Err(e) = rename_with_filestore(db, data_dir, final_name, &old).await {
            restore_previous(db, final_name).await;
            return Err(e);
        }
    }
    if let Err(e) = rename_with_filestore(db, data_dir, temp, final_name).await {
        if previous.is_some() {
            // Put the previous copy back as it was.
            match rename_with_filestore(db, data_dir, &old, final_name).await {
                Ok(()) => restore_previous(db, final_name).await,
                Err(back) => tracing::error!("could not put the previous copy {old} back as {final_name}: {back}; the sweep tries again"),
            }
        }
        return Err(e);
    }
    if previous.is_some() {
        discard(services, &old).await;
    }
    Ok(())
}

/// Opens the previous copy again after a failed refresh.
async fn restore_previous(db: &Db, name: &str) {
    if let Err(e) = db.publish(name).await {
        let e: DbError = e;
        tracing::error!("could not open the previous copy {name} again: {e}; the sweep tries again");
    }
}
