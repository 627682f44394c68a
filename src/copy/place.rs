//! The last step of a copy: its final name. A refresh replaces the earlier
//! copy only now, and never a database the sidecar did not make.

use super::{discard, filestore, CopyError};
use crate::pg::{WorkKind, WorkingName};
use crate::services::Services;

/// Gives the finished copy `temp` its final name, replacing an earlier copy the
/// sidecar made (a refresh) only now, and never a database it did not make.
pub async fn put_in_place(services: &Services, temp: &str, final_name: &str, job_id: &str) -> Result<(), CopyError> {
    let db = &services.db;
    let data_dir = &services.config.data_dir;
    let rows = db.all(false).await?;
    let previous = rows.iter().find(|r| r.name == final_name);
    let old = WorkingName::for_job(WorkKind::Old, job_id).to_string();
    if let Some(previous) = previous {
        if previous.marker.is_none() {
            return Err(CopyError::Foreign(final_name.into()));
        }
        // Hide the previous copy, then move it aside; it is dropped once the new one is in place.
        db.hide(final_name).await?;
        db.rename(final_name, &old).await?;
        let _ = filestore::rename(data_dir, final_name, &old);
    }
    if let Err(e) = db.rename(temp, final_name).await {
        if previous.is_some() {
            // Put the previous copy back as it was.
            let _ = db.rename(&old, final_name).await;
            let _ = db.publish(final_name).await;
            let _ = filestore::rename(data_dir, &old, final_name);
        }
        return Err(e.into());
    }
    filestore::rename(data_dir, temp, final_name).map_err(CopyError::Filestore)?;
    if previous.is_some() {
        discard(services, &old).await;
    }
    Ok(())
}
