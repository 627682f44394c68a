//! Making a copy of production harmless before anyone can open it.
//!
//! This does what `odoo-bin neutralize` does, without Odoo: a built-in set
//! for databases whose modules ship no script (crons, mail and fetchmail
//! servers off), then, for each installed module whose `data/neutralize.sql`
//! is on `addons_path`, that script, in module order (`ir_module_module.id`). The
//! copy also gets its own identity (new `database.uuid` and
//! `database.secret`, no `database.enterprise_code`) so it never passes for
//! production with Odoo's servers. Everything runs in one transaction: a
//! copy is neutralized completely or the job fails.

use std::path::{Path, PathBuf};

use numikube_staging_rpc::NeutralizeReport;
use tokio_postgres::Client;

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

/// Finds `<module>/data/neutralize.sql` on `addons_path` (first match wins, as in Odoo).
pub fn script_of(addons_path: &[PathBuf], module: &str) -> Option<PathBuf> {
    addons_path
        .iter()
        .map(|dir| dir.join(module))
        .find(|dir| dir.join("__manifest__.py").is_file() || dir.join("__openerp__.py").is_file())
        .map(|dir| dir.join("data").join("neutralize.sql"))
        .filter(|p| p.is_file())
}

/// Whether `module` exists on `addons_path` at all.
fn on_addons_path(addons_path: &[PathBuf], module: &str) -> bool {
    addons_path.iter().any(|dir| dir.join(module).join("__manifest__.py").is_file())
}

async fn table_exists(tx: &tokio_postgres::Transaction<'_>, table: &str) -> Result<bool, tokio_postgres::Error> {
    let row = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await?;
    Ok(row.get(0))
}

/// Sets an `ir_config_parameter`, inserting it if missing.
async fn set_param(tx: &tokio_postgres::Transaction<'_>, key: &str, value: &str) -> Result<(), tokio_postgres::Error> {
    let updated = tx.execute("UPDATE ir_config_parameter SET value = $2 WHERE key = $1", &[&key, &value]).await?;
    if updated == 0 {
        tx.execute("INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2)", &[&key, &value]).await?;
    }
    Ok(())
}

/// A fresh `database.secret`, like Odoo's (a UUID4 string).
fn new_secret() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Neutralizes the database behind `client` and reports what ran.
pub async fn neutralize(client: &mut Client, addons_path: &[PathBuf]) -> Result<NeutralizeReport, NeutralizeError> {
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
            .query(
                "SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove') ORDER BY id",
                &[],
            )
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

    identity(&tx).await?;
    tx.commit().await.map_err(sql("committing the neutralization"))?;
    Ok(report)
}

/// Marks the copy neutralized and gives it its own identity.
async fn identity(tx: &tokio_postgres::Transaction<'_>) -> Result<(), NeutralizeError> {
    if !table_exists(tx, "ir_config_parameter").await.map_err(sql("looking for the parameters table"))? {
        return Ok(());
    }
    let run = async {
        set_param(tx, "database.is_neutralized", "True").await?;
        set_param(tx, "database.uuid", &uuid::Uuid::new_v4().to_string()).await?;
        set_param(tx, "database.secret", &new_secret()).await?;
        tx.execute("DELETE FROM ir_config_parameter WHERE key = 'database.enterprise_code'", &[]).await
    };
    run.await.map(drop).map_err(sql("giving the copy its own identity"))
}

/// Gives a copy of an already neutralized template its own identity (new uuid and secret).
pub async fn new_identity(client: &mut Client) -> Result<(), NeutralizeError> {
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    identity(&tx).await?;
    tx.commit().await.map_err(sql("committing the new identity"))
}

async fn run_script(tx: &tokio_postgres::Transaction<'_>, module: &str, path: &Path) -> Result<(), NeutralizeError> {
    let script = std::fs::read_to_string(path).map_err(|source| NeutralizeError::Read { path: path.into(), source })?;
    tx.batch_execute(&script).await.map_err(|e| NeutralizeError::Script {
        module: module.into(),
        path: path.into(),
        detail: describe(&e),
    })
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
