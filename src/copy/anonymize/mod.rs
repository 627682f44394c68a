//! Anonymized copies (docs/contract.md, *Anonymized copies*): the people in a copy
//! (customers, contacts, portal users, employees' private data, leads) are
//! masked, so that a copy can leave the company's hands.
//!
//! Runs after the neutralization, on the same connection (the job's own
//! role), in one transaction of its own with `row_security = off`,
//! `search_path = pg_catalog, public` and the changed tables' user triggers
//! disabled; a backup holding a trigger, rule or policy on them is refused
//! ([`guard`]). The steps: the masking functions and the key ([`functions`],
//! [`key`]); the people's e-mails and phones collected ([`verify`], which
//! reads them here); the built-in set ([`builtin`]): each table rewritten
//! once ([`masking::rewrite_table`], the masks of repeated values looked up
//! in a map made first, [`memo`]), or where it cannot be, masked with one
//! set-based `UPDATE` (the plain indexes of a table whose every row it
//! rewrites set aside and built again after it); every installed module's
//! `data/anonymize.sql` ([`scripts`]); the search for
//! survivors ([`verify`]), which fails the copy if any is found.

mod builtin;
pub mod fingerprint;
mod functions;
mod key;
mod masking;
mod memo;
mod schema;
mod scripts;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;

use numikube_staging_rpc::AnonymizeReport;
use tokio_postgres::{Client, Transaction};

use crate::copy::guard;
use crate::pg::describe;
use builtin::TABLES;
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
    #[error("the backup holds {} (masked table {table}), which could undo the masking; the copy was refused (remove it from production, or run the job without anonymization)", .objects.join(", "))]
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

/// Masks `table` with one `UPDATE`; the indexes of a table whose every
/// row it rewrites are built again after it, rather than kept up to date by it.
async fn update(
    tx: &Transaction<'_>,
    table: &builtin::Table,
    columns: &[schema::Column],
    memos: &masking::Memos,
) -> Result<(u64, Vec<String>), AnonymizeError> {
    let set_aside = match table.rows.nearly_all() {
        true => masking::set_aside_indexes(tx, table.name).await.map_err(sql(format!("setting aside the indexes of {}", table.name)))?,
        false => Vec::new(),
    };
    let done = masking::mask_table(tx, table, columns, memos).await.map_err(sql(format!("masking {}", table.name)))?;
    masking::rebuild_indexes(tx, set_aside).await.map_err(sql(format!("building the indexes of {} again", table.name)))?;
    Ok(done)
}

/// How to anonymize: where module scripts are looked for, and the key.
pub struct Anonymization<'a> {
    /// `addons_path` then Odoo's own `odoo/addons`.
    pub search_path: &'a [PathBuf],
    /// `numikube_staging_anonymize_key`; `None`: a random key for this copy.
    pub key: Option<&'a str>,
}

/// What the steps learn as they go.
#[derive(Default)]
struct Steps {
    /// The report being made.
    report: AnonymizeReport,
    /// Tables checked for triggers, rules and policies, their triggers disabled.
    guarded: Vec<String>,
    /// Tables searched for survivors at the end.
    checked: Vec<String>,
    /// What the built-in set rewrote, per table: masks only.
    masked: HashMap<String, verify::Masked>,
}

/// Anonymizes the database behind `client` and reports what was masked.
pub async fn anonymize(client: &mut Client, how: &Anonymization<'_>) -> Result<AnonymizeReport, AnonymizeError> {
    let started = std::time::Instant::now();
    let tx = client.transaction().await.map_err(sql("opening a transaction"))?;
    tx.batch_execute("SET LOCAL row_security = off; SET LOCAL search_path = pg_catalog, public")
        .await
        .map_err(sql("setting up the transaction"))?;
    functions::create(&tx, &key::key_for_copy(how.key)).await.map_err(sql("making the masking functions"))?;
    masking::kept_partners(&tx).await.map_err(sql("finding the partners of the companies and internal users"))?;
    let collected = verify::collect(&tx).await.map_err(sql("collecting the e-mails and phones of the people to mask"))?;
    tracing::debug!(collected = collected.len(), took = ?started.elapsed(), "e-mail addresses and phone numbers to look for after masking");

    let mut steps = Steps::default();
    steps.built_in_set(&tx).await?;
    steps.module_scripts(&tx, how.search_path).await?;
    steps.fail_closed(&tx, collected).await?;

    for table in &steps.guarded {
        guard::enable_triggers(&tx, table).await.map_err(sql(format!("enabling the triggers of {table} again")))?;
    }
    functions::drop(&tx).await.map_err(sql("dropping the masking functions"))?;
    tx.commit().await.map_err(sql("committing the anonymization"))?;
    Ok(steps.report)
}

impl Steps {
    /// The built-in set, table by table.
    async fn built_in_set(&mut self, tx: &Transaction<'_>) -> Result<(), AnonymizeError> {
        for table in TABLES {
            let Some(columns) = schema::columns(tx, table.name).await.map_err(sql(format!("reading the columns of {}", table.name)))?
            else {
                continue;
            };
            self.guard(tx, table.name).await?;
            self.checked.push(table.name.into());
            let step = std::time::Instant::now();
            let memos = memo::maps(tx, table, &columns).await.map_err(sql(format!("mapping the repeated values of {}", table.name)))?;
            let rewritten = masking::rewrite_table(tx, table, &columns, &memos).await.map_err(sql(format!("masking {}", table.name)))?;
            let (masked, set) = match rewritten {
                Some(done) => done,
                None => update(tx, table, &columns, &memos).await?,
            };
            let rows = table.rows.sql(columns.iter().any(|c| c.name == "share"));
            self.masked.insert(table.name.into(), verify::Masked { columns: set, rows });
            tracing::debug!(table = table.name, masked, took = ?step.elapsed(), "built-in masking");
            if masked > 0 {
                self.report.values += masked;
                self.report.tables.push(table.name.into());
            }
        }
        Ok(())
    }

    /// The installed modules' `data/anonymize.sql`, in module order, after the built-in set.
    async fn module_scripts(&mut self, tx: &Transaction<'_>, search_path: &[PathBuf]) -> Result<(), AnonymizeError> {
        let before = scripts::changed_rows(tx).await.map_err(sql("reading the rows changed so far"))?;
        let found = scripts::installed(tx, search_path).await.map_err(sql("reading the installed modules"))?;
        for (module, path) in found {
            let script = scripts::read(module, &path).map_err(|source| AnonymizeError::Read { path: path.clone(), source })?;
            for table in script.targets() {
                if schema::columns(tx, &table).await.map_err(sql(format!("looking for table {table}")))?.is_some() {
                    self.guard(tx, &table).await?;
                    self.check(&table);
                }
            }
            let failed = |detail: String| AnonymizeError::Script { module: script.module.clone(), path: script.path.clone(), detail };
            tx.batch_execute(&script.text).await.map_err(|e| failed(describe(&e)))?;
            // A script that ended the transaction (COMMIT, ROLLBACK) took the key and the checks with it.
            let key: Option<String> =
                tx.query_one("SELECT current_setting($1, true)", &[&key::SETTING]).await.map_err(sql("checking the transaction"))?.get(0);
            if key.unwrap_or_default().is_empty() {
                return Err(failed("the script ended the anonymization's transaction (COMMIT or ROLLBACK); remove that statement".into()));
            }
            self.report.scripts.push(script.module);
        }
        let after = scripts::changed_rows(tx).await.map_err(sql("reading the rows the scripts changed"))?;
        let mut changed: Vec<(&String, i64)> =
            after.iter().map(|(table, rows)| (table, rows - before.get(table).copied().unwrap_or(0))).filter(|(_, n)| *n > 0).collect();
        changed.sort();
        for (table, rows) in changed {
            self.report.values += rows as u64;
            if !self.report.tables.contains(table) {
                self.report.tables.push(table.clone());
            }
            // A table a script changed without a plain `UPDATE <table>` (a CTE, a DO block) is guarded now.
            self.guard(tx, table).await?;
            self.check(table);
        }
        Ok(())
    }

    /// Searches the masked tables for what was collected; any survivor fails the copy.
    async fn fail_closed(&mut self, tx: &Transaction<'_>, mut seen: verify::Collected) -> Result<(), AnonymizeError> {
        verify::forget_chance_matches(tx, &mut seen).await.map_err(sql("preparing the search for survivors"))?;
        let mut survivors = Vec::new();
        for table in &self.checked {
            let step = std::time::Instant::now();
            let found = verify::survivors_in(tx, table, &seen, self.masked.get(table))
                .await
                .map_err(sql(format!("searching {table} for survivors")))?;
            tracing::debug!(table, took = ?step.elapsed(), "searched for survivors");
            survivors.extend(found);
        }
        match survivors.is_empty() {
            true => Ok(()),
            false => Err(AnonymizeError::Survivors(survivors)),
        }
    }

    /// Adds `table` to those searched for survivors.
    fn check(&mut self, table: &str) {
        if !self.checked.iter().any(|t| t == table) {
            self.checked.push(table.into());
        }
    }

    /// Refuses a table holding the backup's triggers, rules or policies; disables its user triggers.
    async fn guard(&mut self, tx: &Transaction<'_>, table: &str) -> Result<(), AnonymizeError> {
        if self.guarded.iter().any(|t| t == table) {
            return Ok(());
        }
        let objects =
            guard::hooks_on(tx, &[table.to_string()]).await.map_err(sql(format!("looking for triggers, rules and policies on {table}")))?;
        if !objects.is_empty() {
            return Err(AnonymizeError::Refused { table: table.into(), objects });
        }
        guard::disable_triggers(tx, table).await.map_err(sql(format!("disabling the triggers of {table}")))?;
        self.guarded.push(table.into());
        Ok(())
    }
}
