//! Dropping databases, safely.
//!
//! A name is dropped only if it is in this instance's list (Odoo's rule, see
//! [`crate::pg::Db::in_instance_list`]) **and** carries the sidecar's marker,
//! or, with `numikube_staging_drop_unmarked = True`, is in the list and not
//! in `numikube_staging_protected_databases`. Names are only compared with
//! the rows of `pg_database`, never put into SQL as given.

use std::collections::BTreeSet;

use numikube_staging_rpc::{DropResult, Refused};

use crate::admission::Admission;
use crate::copy::filestore;
use crate::job::Jobs;
use crate::pg::{DatabaseRow, DbError, WorkKind};
use crate::services::Services;

/// Splits pasted names on any white space, dropping duplicates, keeping order.
pub fn split_names(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    text.split_whitespace().filter(|n| seen.insert(n.to_string())).map(String::from).collect()
}

/// Drops what may be dropped among `names`, and says what happened to each.
///
/// Holds the admission lock of every process throughout, so no restore is
/// admitted between the checks and the drops; the registry it comes with
/// knows every process's jobs in flight.
///
/// `whose` says whether the requester may drop a database of the list (its
/// client, docs/contract.md *Containment*), or why not.
pub async fn drop_databases(
    services: &Services,
    admission: &Admission,
    jobs: &Jobs,
    names: &[String],
    whose: &(dyn Fn(&DatabaseRow) -> Result<(), String> + Sync),
) -> Result<DropResult, DbError> {
    let registry = admission.lock().await?;
    let db = &services.db;
    let rows = db.all(false).await?;
    let mut in_flight = jobs.in_flight();
    // Restores of another process (a `restore` command beside the server) show as
    // their hidden database, whose marker names the database being made.
    in_flight.extend(
        rows.iter()
            .filter(|r| r.working_name().is_some_and(|w| w.kind() == WorkKind::Temp))
            .filter_map(|r| r.marker.as_ref())
            .filter(|m| m.is_being_made())
            .map(|m| m.db_name.clone()),
    );
    let config = &services.config;
    let mut result = DropResult::default();
    for name in names {
        let refuse = |reason: &str| Refused { name: name.clone(), reason: reason.to_string() };
        // Before "missing": a new copy's final name exists only at the very end of its job.
        if in_flight.contains(name) || registry.is_in_flight(name) {
            result.refused.push(refuse("it is still being created; drop it once its job has ended"));
            continue;
        }
        let Some(row) = rows.iter().find(|r| &r.name == name) else {
            result.missing.push(name.clone());
            continue;
        };
        // Kept templates are hidden from Odoo's list but are ours to drop.
        if !row.is_kept_template() && !db.in_instance_list(row) {
            result.refused.push(refuse("it is not one of this staging server's databases"));
            continue;
        }
        if row.marker.as_ref().is_some_and(|m| m.is_being_made()) {
            result.refused.push(refuse("it is still being created; drop it once its job has ended"));
            continue;
        }
        if row.marker.is_none() {
            if !config.drop_unmarked {
                result.refused.push(refuse("it was not made by the staging service"));
                continue;
            }
            if config.protected_databases.iter().any(|p| p == name) {
                result.refused.push(refuse("it is protected by numikube_staging_protected_databases"));
                continue;
            }
        }
        if let Err(reason) = whose(row) {
            result.refused.push(refuse(&reason));
            continue;
        }
        match db.drop_force(name).await {
            Ok(()) => {
                tracing::info!(db = %name, "dropped");
                result.dropped.push(name.clone());
            }
            Err(e) => {
                tracing::error!(db = %name, "drop failed: {e}");
                result.refused.push(refuse("the database server would not drop it (see the staging service's log)"));
            }
        }
    }
    // The drops are done either way; a lost session has released the lock too.
    if let Err(e) = registry.end().await {
        tracing::warn!("after the drops, the admission lock was not released cleanly: {e}");
    }
    // Out of the lock and off the async core: a large filestore takes long to remove.
    for name in &result.dropped {
        if let Err(e) = filestore::remove_off_core(&config.data_dir, name).await {
            tracing::error!("dropped {name} but could not remove its filestore: {e}");
        }
    }
    services.refresh_copies().await;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::split_names;

    #[test]
    fn names_split_on_any_white_space_without_duplicates() {
        assert_eq!(
            split_names("cosmos-lab_a\ncosmos-lab_b cosmos-test\t cosmos-lab_a\r\n"),
            vec!["cosmos-lab_a", "cosmos-lab_b", "cosmos-test"]
        );
        assert!(split_names(" \n\t").is_empty());
    }
}
