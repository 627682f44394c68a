//! A copy's own identity, like Odoo's "restore as copy": new `database.uuid`,
//! `database.secret` and `database.create_date`; `web.base.url` set to the
//! staging's (`numikube_staging_url`, removed when empty) and not frozen; no
//! `database.enterprise_code`. The copy never passes for production.

use tokio_postgres::Transaction;

/// Sets an `ir_config_parameter`, inserting it if missing.
async fn set_param(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), tokio_postgres::Error> {
    let updated = tx.execute("UPDATE ir_config_parameter SET value = $2 WHERE key = $1", &[&key, &value]).await?;
    if updated == 0 {
        tx.execute("INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2)", &[&key, &value]).await?;
    }
    Ok(())
}

/// Gives the copy behind `tx` its own identity and marks it neutralized;
/// the inner error names what did not read back as written.
pub async fn renew(tx: &Transaction<'_>, staging_url: Option<&str>) -> Result<Result<(), String>, tokio_postgres::Error> {
    let exists: bool = tx.query_one("SELECT to_regclass('ir_config_parameter') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(Ok(()));
    }
    let written = [
        ("database.is_neutralized", "True".to_string()),
        ("database.uuid", uuid::Uuid::new_v4().to_string()),
        ("database.secret", uuid::Uuid::new_v4().to_string()),
        ("database.create_date", chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string()),
    ];
    for (key, value) in &written {
        set_param(tx, key, value).await?;
    }
    match staging_url.map(|u| u.trim_end_matches('/')).filter(|u| !u.is_empty()) {
        Some(url) => set_param(tx, "web.base.url", url).await?,
        None => {
            tx.execute("DELETE FROM ir_config_parameter WHERE key = 'web.base.url'", &[]).await?;
        }
    }
    tx.execute("DELETE FROM ir_config_parameter WHERE key IN ('web.base.url.freeze', 'database.enterprise_code')", &[]).await?;
    // Read back: nothing may have kept production's identity.
    for (key, value) in &written {
        let row = tx.query_opt("SELECT value FROM ir_config_parameter WHERE key = $1", &[key]).await?;
        if row.as_ref().map(|r| r.get::<_, Option<String>>(0)) != Some(Some(value.clone())) {
            return Ok(Err(format!("{key} is not the value just written")));
        }
    }
    Ok(Ok(()))
}
