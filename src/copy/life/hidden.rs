//! The hidden database a copy is made in, as a guard: dropped with its
//! filestore and role unless the copy took its final name.

use std::sync::Arc;

use super::discard::discard;
use crate::pg::WorkingName;
use crate::services::Services;

/// A job's (or pre-warm's) hidden working database while it is made.
///
/// [`Hidden::discard`] drops it at once (a failed job, before its end is
/// reported); [`Hidden::placed`] says the copy took its final name and leaves
/// nothing to drop. Dropped otherwise (a panic, a future cut short), it is
/// discarded in the background, and the sweep is the last resort.
pub struct Hidden {
    services: Arc<Services>,
    name: WorkingName,
    armed: bool,
}

impl Hidden {
    /// Guards `name`, which need not exist yet.
    pub fn new(services: Arc<Services>, name: WorkingName) -> Self {
        Hidden { services, name, armed: true }
    }

    /// Its working name.
    pub fn name(&self) -> &WorkingName {
        &self.name
    }

    /// Drops the database, its filestore and its role now.
    pub async fn discard(mut self) {
        self.armed = false;
        discard(&self.services, &self.name.to_string()).await;
    }

    /// The copy took its final name (or became the template): nothing to drop.
    pub fn placed(mut self) {
        self.armed = false;
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (services, name) = (self.services.clone(), self.name.to_string());
        tracing::warn!(db = %name, "a hidden database was left behind; dropping it");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { discard(&services, &name).await });
        }
    }
}
