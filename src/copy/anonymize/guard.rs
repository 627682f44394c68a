//! The masking cannot be fooled by the backup (DESIGN.md, *Containment*):
//! a table it changes must hold no trigger, rule or row-security policy of
//! the backup's (a rule could turn an `UPDATE` into nothing, a trigger could
//! put the real values back once the staging Odoo runs the copy); such a
//! backup is refused, naming the object. The tables' user triggers are also
//! disabled for the transaction, and enabled again before it commits.

use tokio_postgres::Transaction;

use super::schema::ident;

/// What of the backup's sits on `table` and could undo the masking.
pub async fn objects_on(tx: &Transaction<'_>, table: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal
             UNION ALL
             SELECT 'rule ' || rulename FROM pg_rewrite WHERE ev_class = to_regclass($1) AND rulename <> '_RETURN'
             UNION ALL
             SELECT 'row-security policy ' || polname FROM pg_policy WHERE polrelid = to_regclass($1)
             UNION ALL
             SELECT 'forced row security' FROM pg_class WHERE oid = to_regclass($1) AND relforcerowsecurity",
            &[&ident(table)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Disables the user triggers of `table` for the transaction.
pub async fn disable_triggers(tx: &Transaction<'_>, table: &str) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!("ALTER TABLE {} DISABLE TRIGGER USER", ident(table))).await
}

/// Enables them again.
pub async fn enable_triggers(tx: &Transaction<'_>, table: &str) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!("ALTER TABLE {} ENABLE TRIGGER USER", ident(table))).await
}
