//! Dropping what a copy leaves when it is not handed out.

use super::filestore;
use crate::services::Services;

/// Drops a database the sidecar is done with (a job's hidden database, a
/// replaced copy, a template) and its filestore, whatever state they are in.
/// A failure is logged and leaves the rest to the next sweep.
pub async fn discard(services: &Services, name: &str) {
    if let Err(e) = services.db.drop_force(name).await {
        services.cleanup_failed();
        tracing::error!("could not drop {name}: {e}; a later sweep tries again");
    }
    if let Err(e) = filestore::remove_off_core(&services.config.data_dir, name).await {
        tracing::error!("could not remove the filestore of {name}: {e}");
    }
}
