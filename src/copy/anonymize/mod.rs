//! Anonymized copies (DESIGN.md, *Anonymized copies*): the people in a copy
//! (customers, contacts, portal users, employees' private data, leads) are
//! masked, so that a copy can leave the company's hands.
//!
//! Runs after the neutralization, on the same connection (the job's own
//! role), in one transaction of its own with `row_security = off`,
//! `search_path = pg_catalog, public` and the changed tables' user triggers
//! disabled; a backup holding a trigger, rule or policy on them is refused
//! ([`guard`]). The steps: the masking functions and the key ([`functions`],
//! [`key`]); the people's e-mails and phones collected ([`verify`]); the
//! built-in set ([`builtin`]), one set-based `UPDATE` per table; every
//! installed module's `data/anonymize.sql` ([`scripts`]); the search for
//! survivors ([`verify`]), which fails the copy if any is found.

mod builtin;
mod functions;
mod guard;
mod key;
mod schema;
mod scripts;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;

use numikube_staging_rpc::AnonymizeReport;
use tokio_postgres::{Client, Transaction};

use crate::pg::describe;
use builtin::{Mask, Rows, Table, KEPT_PARTNERS, TABLES};
use schema::{ident, Column, Type};
pub use verify::Survivor;

/// Why a copy could not be anonymized; the job fails and the copy is dropped.
#[derive(Debug, thiserror::Error)]
pub enum AnonymizeError {
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
    #[error("the anonymization script of module {module} ({path}) failed: {detail}")]
    Script {
        /// The module.
        module: String,
        /// The script.
        path: PathBuf,
        /// PostgreSQL's message.
        detail: String,
    },
    /// The backup holds what could undo the masking on a table it changes.
    #[error("the backup holds {} on table {table}, which could undo the masking; the copy was refused (remove it from production, or run the job without anonymization)", .objects.join(", "))]
    Refused {
        /// The table.
        table: String,
        /// The triggers, rules and policies.
        objects: Vec<String>,
    },
    /// Production's addresses or phone numbers of masked people are still in the copy.
    #[error("e-mail addresses or phone numbers of masked people survived the masking in {}; the copy was dropped: mask those columns in a module's data/anonymize.sql (see the README, Anonymized copies)", describe_survivors(.0))]
    Survivors(Vec<Survivor>),
}

fn describe_survivors(survivors: &[Survivor]) -> String {
    survivors
        .iter()
        .map(|s| format!("{}.{} ({} value{})", s.table, s.column, s.values, if s.values == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sql(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> AnonymizeError {
    let what = what.into();
    move |e| AnonymizeError::Sql { what, detail: describe(&e) }
}

/// How to anonymize: where module scripts are looked for, and the key.
pub struct Anonymization<'a> {
    /// `addons_path` then Odoo's own `odoo/addons`.
    pub search_path: &'a [PathBuf],
    /// `numikube_staging_anonymize_key`; `None`: a random key for this copy.
    pub key: Option<&'a str>,
}

/// Anonymizes the database behind `client` and reports what was masked.
pub async fn anonymize(client: &mut Client, how: &Anonymization<'_>) -> Result<AnonymizeReport, AnonymizeError> {
    let started = std::time::Instant::now();
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    tx.batch_execute("SET LOCAL row_security = off; SET LOCAL search_path = pg_catalog, public")
        .await
        .map_err(sql("setting up the transaction"))?;
    functions::create(&tx, &key::key_for_copy(how.key)).await.map_err(sql("making the masking functions"))?;
    kept_partners(&tx).await.map_err(sql("finding the partners of the companies and internal users"))?;
    verify::prepare(&tx).await.map_err(sql("preparing the check"))?;
    let collected = verify::collect(&tx).await.map_err(sql("collecting the e-mails and phones of the people to mask"))?;
    tracing::debug!(collected, took = ?started.elapsed(), "e-mail addresses and phone numbers to look for after masking");

    let mut report = AnonymizeReport::default();
    let mut guarded: Vec<String> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    // Columns the built-in set rewrote in every row: they hold masks only.
    let mut overwritten: HashMap<String, Vec<String>> = HashMap::new();

    // The built-in set.
    for table in TABLES {
        let Some(columns) = schema::columns(&tx, table.name).await.map_err(sql(format!("reading the columns of {}", table.name)))? else {
            continue;
        };
        guard(&tx, table.name, &mut guarded).await?;
        checked.push(table.name.into());
        let step = std::time::Instant::now();
        let (masked, set) = mask_table(&tx, table, &columns).await.map_err(sql(format!("masking {}", table.name)))?;
        if table.rows == Rows::All {
            overwritten.insert(table.name.into(), set);
        }
        tracing::debug!(table = table.name, masked, took = ?step.elapsed(), "built-in masking");
        if masked > 0 {
            report.values += masked;
            report.tables.push(table.name.into());
        }
    }

    // The modules' scripts, after the built-in set.
    let before = changed_rows(&tx).await.map_err(sql("reading the rows changed so far"))?;
    let found = scripts::installed(&tx, how.search_path).await.map_err(sql("reading the installed modules"))?;
    for (module, path) in found {
        let script = scripts::read(module, &path).map_err(|source| AnonymizeError::Read { path: path.clone(), source })?;
        for table in script.targets() {
            if schema::columns(&tx, &table).await.map_err(sql(format!("looking for table {table}")))?.is_some() {
                guard(&tx, &table, &mut guarded).await?;
                if !checked.contains(&table) {
                    checked.push(table);
                }
            }
        }
        tx.batch_execute(&script.text).await.map_err(|e| AnonymizeError::Script {
            module: script.module.clone(),
            path: script.path.clone(),
            detail: describe(&e),
        })?;
        // A script that ended the transaction (COMMIT, ROLLBACK) took the key and the checks with it.
        let key: Option<String> =
            tx.query_one("SELECT current_setting($1, true)", &[&key::SETTING]).await.map_err(sql("checking the transaction"))?.get(0);
        if key.unwrap_or_default().is_empty() {
            return Err(AnonymizeError::Script {
                module: script.module.clone(),
                path: script.path.clone(),
                detail: "the script ended the anonymization's transaction (COMMIT or ROLLBACK); remove that statement".into(),
            });
        }
        report.scripts.push(script.module);
    }
    let after = changed_rows(&tx).await.map_err(sql("reading the rows the scripts changed"))?;
    for (table, rows) in &after {
        let by_scripts = rows - before.get(table).copied().unwrap_or(0);
        if by_scripts <= 0 {
            continue;
        }
        report.values += by_scripts as u64;
        if !report.tables.contains(table) {
            report.tables.push(table.clone());
        }
        // A table a script changed without a plain `UPDATE <table>` (a CTE, a DO block) is checked now.
        if !guarded.contains(table) {
            guard(&tx, table, &mut guarded).await?;
        }
        if !checked.contains(table) {
            checked.push(table.clone());
        }
    }

    // Fail closed.
    verify::forget_chance_matches(&tx).await.map_err(sql("preparing the search for survivors"))?;
    let kinds = verify::kinds(&tx).await.map_err(sql("preparing the search for survivors"))?;
    let mut survivors = Vec::new();
    for table in &checked {
        let step = std::time::Instant::now();
        let skip = overwritten.get(table).map(Vec::as_slice).unwrap_or_default();
        survivors.extend(verify::survivors_in(&tx, table, &kinds, skip).await.map_err(sql(format!("searching {table} for survivors")))?);
        tracing::debug!(table, took = ?step.elapsed(), "searched for survivors");
    }
    if !survivors.is_empty() {
        return Err(AnonymizeError::Survivors(survivors));
    }

    for table in &guarded {
        guard::enable_triggers(&tx, table).await.map_err(sql(format!("enabling the triggers of {table} again")))?;
    }
    functions::drop(&tx).await.map_err(sql("dropping the masking functions"))?;
    tx.commit().await.map_err(sql("committing the anonymization"))?;
    Ok(report)
}

/// Refuses a table holding the backup's triggers, rules or policies; disables its user triggers.
async fn guard(tx: &Transaction<'_>, table: &str, guarded: &mut Vec<String>) -> Result<(), AnonymizeError> {
    if guarded.iter().any(|t| t == table) {
        return Ok(());
    }
    let objects = guard::objects_on(tx, table).await.map_err(sql(format!("looking for triggers, rules and policies on {table}")))?;
    if !objects.is_empty() {
        return Err(AnonymizeError::Refused { table: table.into(), objects });
    }
    guard::disable_triggers(tx, table).await.map_err(sql(format!("disabling the triggers of {table}")))?;
    guarded.push(table.into());
    Ok(())
}

/// The partners kept as they are: the companies' own and the internal users'.
async fn kept_partners(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute("CREATE TEMP TABLE numikube_kept_partners (id integer PRIMARY KEY) ON COMMIT DROP").await?;
    if let Some(columns) = schema::columns(tx, "res_company").await? {
        if columns.iter().any(|c| c.name == "partner_id") {
            tx.execute(
                &format!("INSERT INTO {KEPT_PARTNERS} SELECT DISTINCT partner_id FROM res_company WHERE partner_id IS NOT NULL ON CONFLICT DO NOTHING"),
                &[],
            )
            .await?;
        }
    }
    if let Some(columns) = schema::columns(tx, "res_users").await? {
        if columns.iter().any(|c| c.name == "partner_id") {
            let internal = Rows::Internal.sql(columns.iter().any(|c| c.name == "share"));
            tx.execute(
                &format!(
                    "INSERT INTO {KEPT_PARTNERS} SELECT DISTINCT partner_id FROM res_users AS x WHERE partner_id IS NOT NULL AND {internal} ON CONFLICT DO NOTHING"
                ),
                &[],
            )
            .await?;
        }
    }
    Ok(())
}

/// The masked value of `column` of row `x` as SQL, for its type; `None`: not masked.
fn masked_value(column: &Column, mask: Mask) -> Option<String> {
    let value = format!("x.{}", ident(&column.name));
    match column.kind {
        Type::Text(limit) => {
            let masked = mask.sql(&format!("{value}::text"));
            Some(match limit {
                Some(n) if mask != Mask::Password => format!("left({masked}, {n})"),
                _ => masked,
            })
        }
        // Odoo's translated fields: every language's text masked.
        Type::Jsonb => {
            let each = mask.sql("e.value #>> '{}'");
            Some(format!(
                "CASE WHEN jsonb_typeof({value}) = 'object' THEN coalesce((SELECT jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'string' THEN to_jsonb({each}) ELSE e.value END) FROM jsonb_each({value}) AS e), {value})
                      WHEN jsonb_typeof({value}) = 'string' THEN to_jsonb({})
                      ELSE {value} END",
                mask.sql(&format!("{value} #>> '{{}}'"))
            ))
        }
        Type::Json | Type::Other => None,
    }
}

/// One set-based `UPDATE` of the built-in set; returns how many values it
/// masked and the columns it masked.
async fn mask_table(tx: &Transaction<'_>, table: &Table, columns: &[Column]) -> Result<(u64, Vec<String>), tokio_postgres::Error> {
    let has_share = columns.iter().any(|c| c.name == "share");
    let mut sets = Vec::new();
    let mut counted = Vec::new();
    let mut touched = Vec::new();
    let mut masked_columns = Vec::new();
    for (name, mask) in table.columns {
        let Some(column) = columns.iter().find(|c| c.name == *name) else { continue };
        let Some(value) = masked_value(column, *mask) else { continue };
        masked_columns.push(name.to_string());
        let col = ident(name);
        sets.push(format!("{col} = {value}"));
        touched.push(format!("coalesce(x.{col}::text, '') <> ''"));
        if *mask != Mask::Password {
            counted.push(format!("(x.{col} IS NOT NULL AND x.{col}::text <> '')::integer"));
        }
    }
    // Portal users' logins: their e-mail, masked as the partner's is, unique as logins must be.
    let login = table.name == "res_users" && has_share && columns.iter().any(|c| c.name == "login");
    if login {
        sets.push(
            "login = CASE WHEN d.rank = 1 THEN pg_temp.anonymize_email(x.login::text) ELSE 'u' || x.id || '.' || pg_temp.anonymize_email(x.login::text) END"
                .into(),
        );
        touched.push("true".into());
        counted.push("1".into());
    }
    if sets.is_empty() {
        return Ok((0, masked_columns));
    }
    let from = match login {
        true => " FROM (SELECT id, row_number() OVER (PARTITION BY pg_temp.anonymize_email(login::text) ORDER BY id) AS rank FROM res_users WHERE share IS TRUE) AS d",
        false => "",
    };
    let join = if login { " AND d.id = x.id" } else { "" };
    let statement = format!(
        "WITH masked AS (UPDATE {table} AS x SET {sets}{from} WHERE {rows}{join} AND ({touched}) RETURNING {counted} AS n)
         SELECT coalesce(sum(n), 0)::bigint FROM masked",
        table = ident(table.name),
        sets = sets.join(", "),
        rows = table.rows.sql(has_share),
        touched = touched.join(" OR "),
        counted = if counted.is_empty() { "0".into() } else { counted.join(" + ") },
    );
    let masked: i64 = tx.query_one(&statement, &[]).await?.get(0);
    Ok((masked as u64, masked_columns))
}

/// Rows updated, inserted or deleted so far in this transaction, per table.
async fn changed_rows(tx: &Transaction<'_>) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT relname::text, n_tup_upd + n_tup_ins + n_tup_del FROM pg_stat_xact_user_tables
              WHERE schemaname NOT LIKE 'pg\\_temp%' AND to_regclass(quote_ident(relname::text)) = relid",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect())
}
