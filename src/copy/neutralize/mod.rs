//! Making a copy of production harmless before anyone can open it.
//!
//! This does what `odoo-bin neutralize` does, without Odoo: a built-in set
//! for databases whose modules ship no script (crons, mail and fetchmail
//! servers off), then, for each installed module, its `data/neutralize.sql`
//! from `addons_path` or Odoo's own `odoo/addons` (which Odoo always adds),
//! in module order (`ir_module_module.id`); then the copy gets its own
//! identity ([`identity`]) and what must be off is verified
//! ([`verify`]). Everything runs in one transaction, and it fails
//! closed: an installed module found nowhere (unless in
//! `numikube_staging_neutralize_skip`) or any survivor fails the copy.

mod identity;
mod verify;

use std::path::PathBuf;

use numikube_staging_rpc::NeutralizeReport;
use tokio_postgres::Client;

use crate::copy::guard;
use crate::pg::describe;

/// Why a copy could not be neutralized; the job fails and the copy is dropped.
#[derive(Debug, thiserror::Error)]
pub enum NeutralizeError {
    /// A statement of the built-in set or of the bookkeeping failed.
    #[error("{what} failed: {detail}")]
    Sql {
        /// What was being done.
        what: String,
        /// PostgreSQL's message.
        detail: String,
    },
    /// A module's script could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The script.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Installed modules found neither on `addons_path` nor in Odoo's own addons.
    #[error("the installed module(s) {} were found neither on addons_path nor in Odoo's own addons, so their data cannot be neutralized; add them to addons_path, or list them in numikube_staging_neutralize_skip if they hold nothing to neutralize", .0.join(", "))]
    Missing(Vec<String>),
    /// Something stayed on after the scripts.
    #[error("the copy is not neutralized: {0}")]
    Survivors(#[from] verify::Survivors),
    /// The backup holds what could hide from the checks or undo the neutralization.
    #[error("the backup holds {} on tables the neutralization changes or verifies; any of them could undo the neutralization once the copy runs, so the copy is refused. Remove them from production (or the backup) and run the job again", .0.join(", "))]
    Hooked(Vec<String>),
    /// The new identity did not stay as written.
    #[error("the copy's new identity did not stay as written ({0}); something in the backup rewrites ir_config_parameter, so the copy is refused")]
    Identity(String),
    /// A module's script failed.
    #[error("the neutralization script of module {module} ({path}) failed: {detail}")]
    Script {
        /// The module.
        module: String,
        /// The script.
        path: PathBuf,
        /// PostgreSQL's message.
        detail: String,
    },
}

fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> NeutralizeError {
    let what = what.into();
    move |e| NeutralizeError::Sql { what, detail: describe(&e) }
}

/// Built-in neutralization, each statement guarded so that it runs only on
/// the tables that exist (`ir_cron` and friends are missing in a bare database).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "ir_cron",
        "UPDATE ir_cron SET active = false WHERE active AND id NOT IN (
             SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')",
    ),
    ("ir_mail_server", "UPDATE ir_mail_server SET active = false WHERE active"),
    ("fetchmail_server", "UPDATE fetchmail_server SET active = false WHERE active"),
];

/// Finds `<module>/data/neutralize.sql` on the search path (first match wins, as in Odoo).
pub fn script_of(addons_path: &[PathBuf], module: &str) -> Option<PathBuf> {
    addons_path
        .iter()
        .map(|dir| dir.join(module))
        .find(|dir| dir.join("__manifest__.py").is_file() || dir.join("__openerp__.py").is_file())
        .map(|dir| dir.join("data").join("neutralize.sql"))
        .filter(|p| p.is_file())
}

/// Whether `module` exists on the search path at all.
fn on_addons_path(addons_path: &[PathBuf], module: &str) -> bool {
    addons_path.iter().any(|dir| dir.join(module).join("__manifest__.py").is_file())
}

async fn table_exists(tx: &tokio_postgres::Transaction<'_>, table: &str) -> Result<bool, tokio_postgres::Error> {
    let row = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?;
    Ok(row.get(0))
}

/// How to neutralize: where scripts are looked for, which modules may be missing, the staging's URL.
pub struct Neutralization<'a> {
    /// `addons_path` then Odoo's own `odoo/addons`.
    pub search_path: &'a [PathBuf],
    /// `numikube_staging_neutralize_skip`.
    pub skip: &'a [String],
    /// `numikube_staging_url`, the copy's `web.base.url`.
    pub staging_url: Option<&'a str>,
}

/// Neutralizes the database behind `client` and reports what ran and what was verified.
///
/// Fails closed against the backup itself (docs/contract.md *Containment*): no row
/// security, PostgreSQL's own functions first, and a backup holding a hook on
/// a table that is changed or verified is refused before anything runs.
pub async fn neutralize(client: &mut Client, how: &Neutralization<'_>) -> Result<NeutralizeReport, NeutralizeError> {
    let addons_path = how.search_path;
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    tx.batch_execute(guard::SESSION).await.map_err(sql("pinning the session's settings"))?;
    let mut report = NeutralizeReport::default();

    let mut scripts = Vec::new();
    if table_exists(&tx, "ir_module_module").await.map_err(sql("looking for the modules table"))? {
        let rows = tx
            .query("SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove') ORDER BY id", &[])
            .await
            .map_err(sql("reading the installed modules"))?;
        for row in rows {
            let module: String = row.get(0);
            match script_of(addons_path, &module) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|source| NeutralizeError::Read { path: path.clone(), source })?;
                    scripts.push((module, path, text));
                }
                None if !on_addons_path(addons_path, &module) => report.modules_not_found.push(module),
                None => {}
            }
        }
    }
    let missing: Vec<String> = report.modules_not_found.iter().filter(|m| !how.skip.contains(m)).cloned().collect();
    if !missing.is_empty() {
        return Err(NeutralizeError::Missing(missing));
    }
    let mut touched: Vec<String> = guard::NEUTRALIZED.iter().map(|t| t.to_string()).collect();
    touched.extend(scripts.iter().flat_map(|(_, _, text)| guard::tables_written(text)));
    let hooks = guard::hooks_on(&tx, &touched).await.map_err(sql("looking for triggers, rules and policies"))?;
    if !hooks.is_empty() {
        return Err(NeutralizeError::Hooked(hooks));
    }

    // The built-in set first, so that the modules' own scripts have the last word
    // (Odoo's mail script deactivates every server, then adds an active dummy one
    // pointing nowhere, which must stay active to shadow odoo.conf's SMTP server).
    for (table, statement) in BUILT_IN {
        if table_exists(&tx, table).await.map_err(sql("looking for the table"))? {
            tx.batch_execute(statement).await.map_err(sql(format!("built-in neutralization of {table}")))?;
        }
    }
    for (module, path, text) in scripts {
        tx.batch_execute(&text).await.map_err(|e| NeutralizeError::Script { module: module.clone(), path, detail: describe(&e) })?;
        report.scripts.push(module);
    }

    renew_identity(&tx, how.staging_url).await?;
    report.verified = verify::verify(&tx).await.map_err(sql("verifying the neutralization"))??;
    tx.commit().await.map_err(sql("committing the neutralization"))?;
    Ok(report)
}

/// Gives the copy its own identity and reads it back.
async fn renew_identity(tx: &tokio_postgres::Transaction<'_>, staging_url: Option<&str>) -> Result<(), NeutralizeError> {
    match identity::renew(tx, staging_url).await.map_err(sql("giving the copy its own identity"))? {
        Ok(()) => Ok(()),
        Err(what) => Err(NeutralizeError::Identity(what)),
    }
}

/// Gives a copy of an already neutralized template its own identity.
pub async fn new_identity(client: &mut Client, staging_url: Option<&str>) -> Result<(), NeutralizeError> {
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    tx.batch_execute(guard::SESSION).await.map_err(sql("pinning the session's settings"))?;
    renew_identity(&tx, staging_url).await?;
    tx.commit().await.map_err(sql("committing the new identity"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_scripts_only_of_real_modules() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("mail");
        std::fs::create_dir_all(m.join("data")).unwrap();
        std::fs::write(m.join("__manifest__.py"), "{}").unwrap();
        std::fs::write(m.join("data/neutralize.sql"), "SELECT 1;").unwrap();
        std::fs::create_dir_all(dir.path().join("web")).unwrap();
        std::fs::write(dir.path().join("web/__manifest__.py"), "{}").unwrap();
        let path = vec![dir.path().to_path_buf()];
        assert!(script_of(&path, "mail").is_some());
        assert!(script_of(&path, "web").is_none());
        assert!(on_addons_path(&path, "web"));
        assert!(!on_addons_path(&path, "sale"));
    }
}
