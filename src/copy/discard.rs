//! Dropping what a copy leaves when it is not handed out.

use super::filestore;
use crate::pg::{JobRole, WorkKind, WorkingName};
use crate::services::Services;

/// Drops a database the sidecar is done with (a job's hidden database, a
/// replaced copy, a template) and its filestore, whatever state they are in.
/// A job's hidden database goes with the role its backup ran as.
/// A failure is logged and leaves the rest to the next sweep.
pub async fn discard(services: &Services, name: &str) {
    match services.db.drop_force(name).await {
        Err(e) => {
            services.cleanup_failed();
            tracing::error!("could not drop {name}: {e}; a later sweep tries again");
        }
        Ok(()) => {
            if let Some(working) = WorkingName::parse(name).filter(|w| w.kind() == WorkKind::Temp) {
                if let Err(e) = services.db.drop_job_role(&JobRole::name_for(&working)).await {
                    services.cleanup_failed();
                    tracing::error!("could not drop the role of {name}: {e}; a later sweep tries again");
                }
            }
        }
    }
    if let Err(e) = filestore::remove_off_core(&services.config.data_dir, name).await {
        tracing::error!("could not remove the filestore of {name}: {e}");
    }
}
