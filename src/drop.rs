//! Dropping databases, safely.
//!
//! A name is dropped only if it is in this instance's list (Odoo's rule, see
//! [`crate::db::Db::in_instance_list`]) **and** carries the sidecar's marker,
//! or, with `numikube_staging_drop_unmarked = True`, is in the list and not
//! in `numikube_staging_protected_databases`. Names are only compared with
//! the rows of `pg_database`, never put into SQL as given.

use std::collections::BTreeSet;

use numikube_staging_rpc::{DropResult, Refused};

use crate::app::App;
use crate::db::DbError;
use crate::filestore;

/// Splits pasted names on any white space, dropping duplicates, keeping order.
pub fn split_names(text: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    text.split_whitespace().filter(|n| seen.insert(n.to_string())).map(String::from).collect()
}

/// Drops what may be dropped among `names`, and says what happened to each.
pub async fn drop_databases(app: &App, names: &[String]) -> Result<DropResult, DbError> {
    let rows = app.db.all(false).await?;
    let in_flight = app.jobs.in_flight();
    let config = &app.config;
    let mut result = DropResult { status: "done".into(), ..Default::default() };
    for name in names {
        let Some(row) = rows.iter().find(|r| &r.name == name) else {
            result.missing.push(name.clone());
            continue;
        };
        let refuse = |reason: &str| Refused { name: name.clone(), reason: reason.to_string() };
        if in_flight.contains(name) {
            result.refused.push(refuse("it is still being created; drop it once its job has ended"));
            continue;
        }
        if !app.db.in_instance_list(row) {
            result.refused.push(refuse("it is not one of this staging server's databases"));
            continue;
        }
        let allowed = row.marker.is_some()
            || (config.drop_unmarked && !config.protected_databases.iter().any(|p| p == name));
        if !allowed {
            result.refused.push(refuse("it was not made by the staging service"));
            continue;
        }
        match app.db.drop_force(name).await {
            Ok(()) => {
                if let Err(e) = filestore::remove(&config.data_dir, name) {
                    tracing::error!("dropped {name} but could not remove its filestore: {e}");
                }
                tracing::info!(db = %name, "dropped");
                result.dropped.push(name.clone());
            }
            Err(e) => result.refused.push(refuse(&format!("the database server refused: {}", e.detail))),
        }
    }
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
