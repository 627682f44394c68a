//! Masks looked up rather than computed: a column holding few distinct
//! values for its rows (a city, a zip code, a sender's address) is masked
//! once per value into a map, which the masking reads row by row: a keyed
//! SHA-256 per row costs several times more than a lookup. The map (value →
//! mask, a `jsonb` literal) is made with the masking functions themselves,
//! so a value is masked the same way with or without it, and a value
//! missing from it is masked as usual.

use postgres_protocol::escape::escape_literal;
use tokio_postgres::Transaction;

use super::builtin::{Mask, Table};
use super::masking::{masked_value, Memos};
use super::schema::{ident, Column, Type};

/// The most values a map holds (a few megabytes of SQL at most).
const MAX_VALUES: i64 = 50_000;

/// A map pays when each value appears this many times, on average, at least.
const MIN_REPEATS: f64 = 4.0;

/// The maps worth making for `table`: its text columns masked by a hash
/// whose values repeat in the rows that hold one (PostgreSQL's own
/// statistics say how often, from an `ANALYZE` of those columns).
pub async fn maps(tx: &Transaction<'_>, table: &Table, columns: &[Column]) -> Result<Memos, tokio_postgres::Error> {
    let hashed: Vec<(&Column, Mask)> = table
        .columns
        .iter()
        .filter(|(_, mask)| !matches!(mask, Mask::Text | Mask::Html | Mask::Password))
        .filter_map(|(name, mask)| columns.iter().find(|c| c.name == *name && matches!(c.kind, Type::Text(_))).map(|c| (c, *mask)))
        .collect();
    let mut memos = Memos::new();
    if hashed.is_empty() {
        return Ok(memos);
    }
    let names: Vec<String> = hashed.iter().map(|(c, _)| c.name.clone()).collect();
    let list = names.iter().map(|n| ident(n)).collect::<Vec<_>>().join(", ");
    tx.batch_execute(&format!("ANALYZE {} ({list})", ident(table.name))).await?;
    let stats = tx
        .query(
            "SELECT s.attname::text, CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * c.reltuples ELSE s.n_distinct END,
                    (c.reltuples * (1 - s.null_frac))::real
               FROM pg_stats AS s JOIN pg_class AS c ON c.oid = to_regclass($1)
              WHERE s.schemaname = 'public' AND s.tablename = $2 AND s.attname = ANY($3)",
            &[&ident(table.name), &table.name, &names],
        )
        .await?;
    for row in stats {
        let (name, distinct, rows): (String, f32, f32) = (row.get(0), row.get(1), row.get(2));
        if distinct < 1.0 || f64::from(distinct) > MAX_VALUES as f64 || f64::from(rows) < MIN_REPEATS * f64::from(distinct) {
            continue;
        }
        let Some((column, mask)) = hashed.iter().find(|(c, _)| c.name == name) else { continue };
        let Some(masked) = masked_value(column, *mask, "d.v") else { continue };
        let made = tx
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(jsonb_object_agg(d.v, {masked}), '{{}}')::text
                       FROM (SELECT DISTINCT x.{col}::text AS v FROM {table} AS x WHERE x.{col} IS NOT NULL LIMIT {limit}) AS d",
                    col = ident(&name),
                    table = ident(table.name),
                    limit = MAX_VALUES + 1
                ),
                &[],
            )
            .await?;
        let (values, map): (i64, String) = (made.get(0), made.get(1));
        tracing::debug!(table = table.name, column = %name, values, estimated = distinct, rows, "masks looked up from a map");
        if values <= MAX_VALUES {
            memos.insert(name, format!("{}::jsonb", escape_literal(&map)));
        }
    }
    Ok(memos)
}
