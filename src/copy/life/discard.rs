//! Dropping what a copy leaves when it is not handed out, and a copy that
//! goes: the one way a database of the sidecar's leaves with its filestore
//! (and, for a job's hidden database, the role its backup ran as).

use crate::copy::filestore;
use crate::pg::{DbError, JobRole, WorkKind, WorkingName};
use crate::services::Services;

/// Drops a database the sidecar is done with (a job's hidden database, a
/// replaced copy, a template) and its filestore, whatever state they are in.
/// A failure is logged and leaves the rest to the next sweep.
pub async fn discard(services: &Services, name: &str) {
    if let Err(e) = drop_with_filestore(services, name).await {
        services.cleanup_failed();
        tracing::error!("could not drop {name}: {e}; a later sweep tries again");
    }
}

/// Drops `name` (`DROP DATABASE … WITH (FORCE)`), then its filestore and, for
/// a job's hidden database, the role its backup ran as. Says whether the
/// database went; a filestore or role that stays is logged (the sweep retries).
pub async fn drop_with_filestore(services: &Services, name: &str) -> Result<(), DbError> {
    services.db.drop_force(name).await?;
    if let Some(working) = WorkingName::parse(name).filter(|w| w.kind() == WorkKind::Temp) {
        if let Err(e) = services.db.drop_job_role(&JobRole::name_for(&working)).await {
            services.cleanup_failed();
            tracing::error!("could not drop the role of {name}: {e}; a later sweep tries again");
        }
    }
    if let Err(e) = filestore::remove_off_core(&services.config.data_dir, name).await {
        tracing::error!("dropped {name} but could not remove its filestore: {e}");
    }
    Ok(())
}
