//! Fail closed: before masking, the e-mail addresses and phone numbers of
//! the people to be masked are collected in a temporary table (less those
//! of the people kept, which stay); after masking (built-in set and module
//! scripts), in the same transaction, every text column of every masked
//! table is searched for any of them, set-based: addresses and phone
//! numbers are cut out of each value and looked up in the collected set
//! (a hash or index lookup, so the search stays linear in the data).

use tokio_postgres::Transaction;

use super::builtin::{Kind, Rows, KEPT, PEOPLE};
use super::functions::{EMAIL_RE, MASKED_DOMAIN, PHONE_RE};
use super::schema::{self, ident, Type};

/// The collected values.
const SEEN: &str = "pg_temp.numikube_seen";
/// The kept people's values.
const KEPT_VALUES: &str = "pg_temp.numikube_kept_values";

/// A column where production's values survived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivor {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// How many of its values still hold an address or number of a masked person.
    pub values: i64,
}

/// Makes the temporary tables of the collected values.
pub async fn prepare(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.batch_execute(
        "CREATE TEMP TABLE numikube_seen (kind text NOT NULL, value text NOT NULL, PRIMARY KEY (kind, value)) ON COMMIT DROP;
         CREATE TEMP TABLE numikube_kept_values (kind text NOT NULL, value text NOT NULL, PRIMARY KEY (kind, value)) ON COMMIT DROP;",
    )
    .await
}

/// The values of `column` of the `rows` of `table` (if both exist) into `into`.
async fn collect_one(
    tx: &Transaction<'_>,
    into: &str,
    (table, rows, column, kind): (&str, Rows, &str, Kind),
) -> Result<u64, tokio_postgres::Error> {
    let Some(columns) = schema::columns(tx, table).await? else { return Ok(0) };
    let Some(col) = columns.iter().find(|c| c.name == column && matches!(c.kind, Type::Text(_))) else { return Ok(0) };
    let has_share = columns.iter().any(|c| c.name == "share");
    let (re, value) = match kind {
        Kind::Email => (EMAIL_RE, "lower(m[1])"),
        Kind::Phone => (PHONE_RE, "regexp_replace(m[1], '[^0-9]', '', 'g')"),
    };
    let statement = format!(
        "INSERT INTO {into} (kind, value)
         SELECT DISTINCT '{label}', v FROM (
             SELECT {value} AS v FROM {table} AS x, regexp_matches(x.{col}, '{re}', 'g') AS m WHERE {rows}) AS found
          WHERE v <> '' AND ('{label}' = 'email' OR length(v) >= 6)
         ON CONFLICT DO NOTHING",
        label = kind.label(),
        table = ident(table),
        col = ident(&col.name),
        rows = rows.sql(has_share),
    );
    tx.execute(&statement, &[]).await
}

/// Collects the masked people's addresses and numbers, less the kept people's.
pub async fn collect(tx: &Transaction<'_>) -> Result<u64, tokio_postgres::Error> {
    for source in PEOPLE {
        collect_one(tx, SEEN, *source).await?;
    }
    for source in KEPT {
        collect_one(tx, KEPT_VALUES, *source).await?;
    }
    tx.execute(&format!("DELETE FROM {SEEN} AS s USING {KEPT_VALUES} AS k WHERE s.kind = k.kind AND s.value = k.value"), &[]).await?;
    // Production values of the masks' own shape cannot be told from masked ones.
    tx.execute(
        &format!("DELETE FROM {SEEN} WHERE kind = 'email' AND value ~ '^[0-9a-f]{{16}}@{}$'", MASKED_DOMAIN.replace('.', "\\.")),
        &[],
    )
    .await?;
    let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {SEEN}"), &[]).await?.get(0);
    Ok(n as u64)
}

/// After masking: a phone number whose masked digits happen to be another
/// person's real ones is not a survivor (both are in the copy only as masks).
pub async fn forget_chance_matches(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &format!(
            "DELETE FROM {SEEN} AS s
              USING (SELECT pg_temp.anonymize_digits('phone:' || value, length(value)) AS masked FROM {SEEN} WHERE kind = 'phone') AS m
              WHERE s.kind = 'phone' AND s.value = m.masked"
        ),
        &[],
    )
    .await?;
    Ok(())
}

/// Which kinds of values are still looked for (none: nothing to search).
pub async fn kinds(tx: &Transaction<'_>) -> Result<Vec<Kind>, tokio_postgres::Error> {
    let rows = tx.query(&format!("SELECT DISTINCT kind FROM {SEEN}"), &[]).await?;
    let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    Ok([Kind::Email, Kind::Phone].into_iter().filter(|k| found.iter().any(|f| f == k.label())).collect())
}

/// SQL: whether text `v` holds a collected value of `kinds`.
fn leak(v: &str, kinds: &[Kind]) -> String {
    let one = |kind: &Kind| match kind {
        Kind::Email => format!(
            "(position('@' IN {v}) > 0 AND EXISTS (SELECT 1 FROM regexp_matches({v}, '{EMAIL_RE}', 'g') AS m
                                                      JOIN {SEEN} AS s ON s.kind = 'email' AND s.value = lower(m[1])))"
        ),
        Kind::Phone => format!(
            "({v} ~ '[0-9][-0-9 ().]{{4,}}[0-9]' AND EXISTS (SELECT 1 FROM regexp_matches({v}, '{PHONE_RE}', 'g') AS m
                                               JOIN {SEEN} AS s ON s.kind = 'phone' AND s.value = regexp_replace(m[1], '[^0-9]', '', 'g')))"
        ),
    };
    let any: Vec<String> = kinds.iter().map(one).collect();
    if any.is_empty() {
        "false".into()
    } else {
        format!("({})", any.join(" OR "))
    }
}

/// What the built-in set rewrote in a table: its columns, in the rows where
/// `rows` (SQL on row `x`) holds. There they hold nothing but masks.
#[derive(Debug, Clone)]
pub struct Masked {
    /// The columns.
    pub columns: Vec<String>,
    /// Which rows.
    pub rows: String,
}

/// Searches the text columns of `table` (but where `masked` says they hold
/// nothing but masks) for the collected values of `kinds`: first the text of
/// each row as a whole (one scan, one search per row), then, only in the rows
/// where something was found, column by column, to name them.
pub async fn survivors_in(
    tx: &Transaction<'_>,
    table: &str,
    kinds: &[Kind],
    masked: Option<&Masked>,
) -> Result<Vec<Survivor>, tokio_postgres::Error> {
    let Some(columns) = schema::columns(tx, table).await? else { return Ok(Vec::new()) };
    let text: Vec<_> = columns.into_iter().filter(|c| c.is_text_like()).collect();
    if text.is_empty() || kinds.is_empty() {
        return Ok(Vec::new());
    }
    // The text columns only (dates and numbers would be taken for phone
    // numbers), one per line; the masked ones only in the rows left as they were.
    let is_masked = |name: &String| masked.is_some_and(|m| m.columns.contains(name));
    let as_text = |names: Vec<&String>| names.iter().map(|n| format!("x.{}::text", ident(n))).collect::<Vec<_>>().join(", ");
    let mut parts = vec![as_text(text.iter().map(|c| &c.name).filter(|n| !is_masked(n)).collect())];
    if let Some(m) = masked {
        let kept = as_text(text.iter().map(|c| &c.name).filter(|n| is_masked(n)).collect());
        if !kept.is_empty() && m.rows != "true" {
            parts.push(format!("CASE WHEN NOT ({}) THEN concat_ws(E'\\n', {kept}) END", m.rows));
        }
    }
    parts.retain(|p| !p.is_empty());
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    // (OFFSET 0 keeps PostgreSQL from computing that text once per use.)
    let rows = format!(
        "SELECT * FROM (SELECT x.*, concat_ws(E'\\n', {}) AS numikube_text FROM {} AS x OFFSET 0) AS numikube_row WHERE {}",
        parts.join(", "),
        ident(table),
        leak("numikube_row.numikube_text", kinds)
    );
    let counts: Vec<String> =
        text.iter().map(|c| format!("count(*) FILTER (WHERE {})", leak(&format!("x.{}::text", ident(&c.name)), kinds))).collect();
    let row = tx.query_one(&format!("SELECT {} FROM ({rows}) AS x", counts.join(", ")), &[]).await?;
    Ok(text
        .iter()
        .enumerate()
        .map(|(i, c)| Survivor { table: table.into(), column: c.name.clone(), values: row.get(i) })
        .filter(|s| s.values > 0)
        .collect())
}
