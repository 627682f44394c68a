//! What a backup may not hold on the tables the neutralization (or the
//! anonymization) changes or verifies (docs/contract.md *Containment*): a trigger,
//! a rule, a row-security policy or forced row security, or a function
//! called by a constraint, a default or an index of such a table, or by a
//! check or default of a domain one of its columns has, directly or through
//! an operator. Each could hide a row from the checks, undo a change, or run
//! the backup's own SQL with the power of whoever writes the table (a repeat
//! copy's new identity is written as `db_user`); the copy is refused, naming them.

use postgres_protocol::escape::escape_identifier;
use tokio_postgres::Transaction;

/// The tables the built-in neutralization and its verification change or read.
pub const NEUTRALIZED: &[&str] = &[
    "ir_mail_server",
    "fetchmail_server",
    "ir_cron",
    "payment_provider",
    "ir_act_server",
    "ir_config_parameter",
    "staging_environment",
    "ir_module_module",
    "ir_model_data",
];

/// What one session of the neutralization sets first: no row hidden by a
/// policy (a query a policy would filter fails instead), and PostgreSQL's
/// own functions and operators before anything the backup defines.
pub const SESSION: &str = "SET LOCAL row_security = off; SET LOCAL search_path = pg_catalog, public";

/// The tables a script writes (UPDATE, INSERT, DELETE targets), as PostgreSQL's own parser reads it.
pub fn tables_written(sql: &str) -> Vec<String> {
    match pg_query::parse(sql, 0) {
        Ok(parsed) => parsed.dml_tables().into_iter().map(|t| t.rsplit('.').next().unwrap_or(&t).to_string()).collect(),
        // A script PostgreSQL's parser cannot read fails when it runs.
        Err(_) => Vec::new(),
    }
}

/// The hooks on `tables` (in schema `public`), each named for the user; empty when there are none.
pub async fn hooks_on(tx: &Transaction<'_>, tables: &[String]) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "WITH RECURSIVE t AS (
                 SELECT c.oid, c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relname = ANY($1)),
             -- The types of their columns, and the domains and element types under them.
             ty(oid, relname) AS (
                 SELECT a.atttypid, t.relname FROM pg_catalog.pg_attribute a JOIN t ON a.attrelid = t.oid
                 WHERE a.attnum > 0 AND NOT a.attisdropped
                 UNION
                 SELECT CASE WHEN y.typtype = 'd' THEN y.typbasetype ELSE y.typelem END, ty.relname
                 FROM ty JOIN pg_catalog.pg_type y ON y.oid = ty.oid
                 WHERE (y.typtype = 'd' AND y.typbasetype <> 0) OR (y.typtype <> 'd' AND y.typelem <> 0)),
             -- What runs when a row is written: constraints, defaults, index
             -- expressions, and the checks and defaults of the columns' domains.
             hooks(classid, objid, what) AS (
                 SELECT 'pg_catalog.pg_constraint'::regclass, con.oid, 'the constraint ' || con.conname || ' of ' || t.relname
                 FROM pg_catalog.pg_constraint con JOIN t ON con.conrelid = t.oid
                 UNION ALL
                 SELECT 'pg_catalog.pg_attrdef'::regclass, ad.oid, 'a default of ' || t.relname
                 FROM pg_catalog.pg_attrdef ad JOIN t ON ad.adrelid = t.oid
                 UNION ALL
                 SELECT 'pg_catalog.pg_class'::regclass, i.indexrelid, 'the index ' || i.indexrelid::regclass::text || ' of ' || t.relname
                 FROM pg_catalog.pg_index i JOIN t ON i.indrelid = t.oid
                 UNION ALL
                 SELECT 'pg_catalog.pg_constraint'::regclass, con.oid,
                        'the constraint ' || con.conname || ' of the domain ' || pg_catalog.format_type(ty.oid, NULL) || ' of ' || ty.relname
                 FROM ty JOIN pg_catalog.pg_constraint con ON con.contypid = ty.oid
                 UNION ALL
                 SELECT 'pg_catalog.pg_type'::regclass, ty.oid, 'the domain ' || pg_catalog.format_type(ty.oid, NULL) || ' of ' || ty.relname
                 FROM ty JOIN pg_catalog.pg_type y ON y.oid = ty.oid WHERE y.typtype = 'd'),
             -- The functions they call, directly or through an operator.
             called AS (
                 SELECT d.refobjid AS proc, h.what
                 FROM hooks h JOIN pg_catalog.pg_depend d ON d.classid = h.classid AND d.objid = h.objid
                 WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass
                 UNION ALL
                 SELECT o.oprcode::oid, h.what || ' (through the operator ' || o.oprname || ')'
                 FROM hooks h JOIN pg_catalog.pg_depend d ON d.classid = h.classid AND d.objid = h.objid
                 JOIN pg_catalog.pg_operator o ON o.oid = d.refobjid
                 WHERE d.refclassid = 'pg_catalog.pg_operator'::regclass
             )
             SELECT 'the table ' || relname || ', which is not a plain table' FROM t WHERE relkind NOT IN ('r', 'p')
             UNION ALL SELECT 'row-level security on ' || relname FROM t WHERE relrowsecurity OR relforcerowsecurity
             UNION ALL SELECT 'the policy ' || p.polname || ' on ' || t.relname FROM pg_catalog.pg_policy p JOIN t ON p.polrelid = t.oid
             UNION ALL SELECT 'the trigger ' || g.tgname || ' on ' || t.relname
                 FROM pg_catalog.pg_trigger g JOIN t ON g.tgrelid = t.oid WHERE NOT g.tgisinternal
             UNION ALL SELECT 'the rule ' || r.rulename || ' on ' || t.relname
                 FROM pg_catalog.pg_rewrite r JOIN t ON r.ev_class = t.oid WHERE r.rulename <> '_RETURN'
             UNION ALL SELECT 'the function ' || p.proname || ' called by ' || called.what
                 FROM called JOIN pg_catalog.pg_proc p ON p.oid = called.proc
                 WHERE p.pronamespace <> 'pg_catalog'::regnamespace
             ORDER BY 1",
            &[&tables],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Disables the user triggers of `table` (in `public`) for the transaction:
/// belt and braces beside [`hooks_on`], which refuses any there is.
pub async fn disable_triggers(tx: &Transaction<'_>, table: &str) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!("ALTER TABLE public.{} DISABLE TRIGGER USER", escape_identifier(table))).await
}

/// Enables them again, before the transaction commits.
pub async fn enable_triggers(tx: &Transaction<'_>, table: &str) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(&format!("ALTER TABLE public.{} ENABLE TRIGGER USER", escape_identifier(table))).await
}
