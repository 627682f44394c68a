//! Making a copy of production harmless before anyone can open it.
//!
//! This does what `odoo-bin neutralize` does, without Odoo: a built-in set
//! for databases whose modules ship no script (crons, mail and fetchmail
//! servers off), then, for each installed module, its `data/neutralize.sql`
//! from `addons_path` or Odoo's own `odoo/addons` (which Odoo always adds),
//! in module order (`ir_module_module.id`); then the copy gets its own
//! identity ([`super::identity`]) and what must be off is verified
//! ([`super::verify`]). Everything runs in one transaction, and it fails
//! closed: an installed module found nowhere (unless in
//! `numikube_staging_neutralize_skip`) or any survivor fails the copy.

use std::path::{Path, PathBuf};

use numikube_staging_rpc::NeutralizeReport;
use tokio_postgres::Client;

use super::{identity, verify};
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
    Survivors(#[from] super::verify::Survivors),
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
pub async fn neutralize(client: &mut Client, how: &Neutralization<'_>) -> Result<NeutralizeReport, NeutralizeError> {
    let addons_path = how.search_path;
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    let mut report = NeutralizeReport::default();

    // The built-in set first, so that the modules' own scripts have the last word
    // (Odoo's mail script deactivates every server, then adds an active dummy one
    // pointing nowhere, which must stay active to shadow odoo.conf's SMTP server).
    for (table, statement) in BUILT_IN {
        if table_exists(&tx, table).await.map_err(sql("looking for the table"))? {
            tx.batch_execute(statement).await.map_err(sql(format!("built-in neutralization of {table}")))?;
        }
    }
    if table_exists(&tx, "ir_module_module").await.map_err(sql("looking for the modules table"))? {
        let rows = tx
            .query("SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove') ORDER BY id", &[])
            .await
            .map_err(sql("reading the installed modules"))?;
        for row in rows {
            let module: String = row.get(0);
            match script_of(addons_path, &module) {
                Some(path) => {
                    run_script(&tx, &module, &path).await?;
                    report.scripts.push(module);
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

    identity::renew(&tx, how.staging_url).await.map_err(sql("giving the copy its own identity"))?;
    report.verified = verify::verify(&tx).await.map_err(sql("verifying the neutralization"))??;
    tx.commit().await.map_err(sql("committing the neutralization"))?;
    Ok(report)
}

/// Gives a copy of an already neutralized template its own identity.
pub async fn new_identity(client: &mut Client, staging_url: Option<&str>) -> Result<(), NeutralizeError> {
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    identity::renew(&tx, staging_url).await.map_err(sql("giving the copy its own identity"))?;
    tx.commit().await.map_err(sql("committing the new identity"))
}

async fn run_script(tx: &tokio_postgres::Transaction<'_>, module: &str, path: &Path) -> Result<(), NeutralizeError> {
    let script = std::fs::read_to_string(path).map_err(|source| NeutralizeError::Read { path: path.into(), source })?;
    tx.batch_execute(&script).await.map_err(|e| NeutralizeError::Script { module: module.into(), path: path.into(), detail: describe(&e) })
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
