//! The backup's Odoo version must be the staging's: `base`'s `latest_version`
//! in the restored database, read before anything else runs in it, against
//! `version_info[:2]` of the staging's `odoo/release.py`.

use tokio_postgres::Client;

use super::error::CopyError;
use super::odoo_tree::{major_of, OdooTree};
use crate::pg::describe;

/// Fails unless the database behind `client` is of the staging's Odoo major version.
pub async fn check(client: &Client, tree: &OdooTree) -> Result<(), CopyError> {
    let staging = tree.version().map_err(CopyError::OdooTree)?;
    let backup = backup_version(client).await?;
    let matches = major_of(&staging).is_some() && major_of(&backup) == major_of(&staging);
    if !matches {
        let backup = major_of(&backup).unwrap_or(backup);
        return Err(CopyError::Version { backup, staging });
    }
    Ok(())
}

/// `base`'s `latest_version`, or a few words saying why there is none.
async fn backup_version(client: &Client) -> Result<String, CopyError> {
    let db_err = |e: tokio_postgres::Error| CopyError::Db(crate::pg::DbError { where_: "of the copy".into(), detail: describe(&e) });
    let exists: bool = client.query_one("SELECT to_regclass('ir_module_module') IS NOT NULL", &[]).await.map_err(db_err)?.get(0);
    if !exists {
        return Ok("an unknown version (no Odoo modules in it)".into());
    }
    let row = client.query_opt("SELECT latest_version FROM ir_module_module WHERE name = 'base'", &[]).await.map_err(db_err)?;
    Ok(row.and_then(|r| r.get::<_, Option<String>>(0)).unwrap_or_else(|| "an unknown version (no base module)".into()))
}
