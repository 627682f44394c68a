//! What the copy holds: a table's columns and their types, read from the
//! catalog (`to_regclass` under the transaction's `search_path`), so that
//! every statement touches only tables and columns that exist.

use tokio_postgres::Transaction;

/// A column's type, as far as masking cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `text`, `varchar` or `char`; `Some(n)` when limited to `n` characters.
    Text(Option<i32>),
    /// `jsonb` (Odoo's translated fields).
    Jsonb,
    /// `json`.
    Json,
    /// `date` (birthdays).
    Date,
    /// Anything else (never masked nor searched).
    Other,
}

/// One column.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Type,
    /// Its type as declared, with its collation when not its type's default
    /// (`character varying(80) COLLATE "C"`): what a rewrite of it keeps.
    pub declared: String,
}

impl Column {
    /// Whether it holds text (searched for survivors).
    pub fn is_text_like(&self) -> bool {
        matches!(self.kind, Type::Text(_) | Type::Jsonb | Type::Json)
    }
}

/// `name` quoted as an SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of table `table`, or `None` when there is no such (ordinary or partitioned) table.
pub async fn columns(tx: &Transaction<'_>, table: &str) -> Result<Option<Vec<Column>>, tokio_postgres::Error> {
    let exists = tx.query_opt("SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind IN ('r', 'p')", &[&ident(table)]).await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows = tx
        .query(
            "SELECT a.attname::text, t.typname::text, a.atttypmod,
                    format_type(a.atttypid, a.atttypmod)
                    || CASE WHEN a.attcollation <> t.typcollation THEN ' COLLATE ' || a.attcollation::regcollation::text ELSE '' END
               FROM pg_attribute AS a JOIN pg_type AS t ON t.oid = a.atttypid
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&ident(table)],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|r| {
                let (name, typname, typmod, declared): (String, String, i32, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
                let kind = match typname.as_str() {
                    "text" => Type::Text(None),
                    "varchar" | "bpchar" => Type::Text((typmod > 4).then_some(typmod - 4)),
                    "jsonb" => Type::Jsonb,
                    "json" => Type::Json,
                    "date" => Type::Date,
                    _ => Type::Other,
                };
                Column { name, kind, declared }
            })
            .collect(),
    ))
}
