//! The built-in set at work: the kept partners, then one set-based
//! `UPDATE` per table of [`super::builtin::TABLES`], each column through its
//! masking function, for the columns the copy has and their types.

use std::collections::HashMap;

use tokio_postgres::Transaction;

use super::builtin::{Mask, Rows, Table, KEPT_PARTNERS};
use super::schema::{self, ident, Column, Type};

/// The partners kept as they are: the companies' own and the internal users'.
pub async fn kept_partners(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
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

/// An index set aside while its table is rewritten.
pub struct SetAside {
    /// `CREATE INDEX …` as PostgreSQL prints it.
    definition: String,
    /// `COMMENT ON INDEX …`, when it has one.
    comment: Option<String>,
}

/// Drops the plain indexes of `table` (none that backs a constraint, or that
/// anything depends on, clusters the table, identifies its rows for
/// replication, lives in a tablespace of its own or has a statistics target)
/// and returns them to be built again: an `UPDATE` that rewrites every row
/// costs several times more while each row's new version goes into every
/// index than building the index once after it.
pub async fn set_aside_indexes(tx: &Transaction<'_>, table: &str) -> Result<Vec<SetAside>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class')
               FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid
              WHERE i.indrelid = to_regclass($1) AND c.relkind = 'i' AND c.reltablespace = 0
                AND i.indisvalid AND i.indisready AND NOT i.indisclustered AND NOT i.indisreplident
                AND NOT EXISTS (SELECT 1 FROM pg_constraint AS con WHERE con.conindid = i.indexrelid)
                AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indexrelid)
                AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a WHERE a.attrelid = i.indexrelid AND a.attstattarget > 0)",
            &[&ident(table)],
        )
        .await?;
    let mut set_aside = Vec::new();
    for row in rows {
        let (name, definition, comment): (String, String, Option<String>) = (row.get(0), row.get(1), row.get(2));
        let index = format!("public.{}", ident(&name));
        tx.batch_execute(&format!("DROP INDEX {index}")).await?;
        let comment = comment.map(|c| format!("COMMENT ON INDEX {index} IS {}", postgres_protocol::escape::escape_literal(&c)));
        set_aside.push(SetAside { definition, comment });
    }
    Ok(set_aside)
}

/// Builds the indexes [`set_aside_indexes`] dropped again, as they were.
pub async fn rebuild_indexes(tx: &Transaction<'_>, indexes: Vec<SetAside>) -> Result<(), tokio_postgres::Error> {
    for index in indexes {
        tx.batch_execute(&index.definition).await?;
        if let Some(comment) = index.comment {
            tx.batch_execute(&comment).await?;
        }
    }
    Ok(())
}

/// The masked value of `column` as SQL, for its type, `value` naming it
/// (`x."email"`); `None`: not masked.
pub fn masked_value(column: &Column, mask: Mask, value: &str) -> Option<String> {
    match column.kind {
        // A date mask for dates only, and only text masks for text.
        Type::Date if mask == Mask::Date => Some(mask.sql(value)),
        Type::Date | Type::Json | Type::Other => None,
        _ if mask == Mask::Date => None,
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
    }
}

/// Per column, the SQL of a map of its masks (`'{…}'::jsonb`, value →
/// mask), made by [`super::memo`]: the masking reads a value's mask there first.
pub type Memos = HashMap<String, String>;

/// What the built-in set does to one table: each masked column with its
/// masked value (`value` naming the column), and SQL on row `x` telling
/// whether a row holds anything to mask and how many values it masks.
struct Planned<'a> {
    /// (column, its masked value).
    assignments: Vec<(&'a Column, String)>,
    /// Per column: whether row `x` holds a value in it.
    touched: Vec<String>,
    /// Per column but passwords: 1 when row `x` holds a value in it.
    counted: Vec<String>,
}

/// Plans `table`'s masking for the `columns` the copy has; `value(name)`
/// names a column in the masked values; a column with a map in `memos` reads its masks there.
fn plan<'a>(table: &Table, columns: &'a [Column], value: impl Fn(&str) -> String, memos: &Memos) -> Planned<'a> {
    let mut planned = Planned { assignments: Vec::new(), touched: Vec::new(), counted: Vec::new() };
    for (name, mask) in table.columns {
        let Some(column) = columns.iter().find(|c| c.name == *name) else { continue };
        let Some(mut masked) = masked_value(column, *mask, &value(name)) else { continue };
        if let Some(map) = memos.get(*name) {
            masked = format!("coalesce({map} ->> ({})::text, {masked})", value(name));
        }
        planned.assignments.push((column, masked));
        let col = ident(name);
        planned.touched.push(format!("coalesce(x.{col}::text, '') <> ''"));
        if *mask != Mask::Password {
            planned.counted.push(format!("(x.{col} IS NOT NULL AND x.{col}::text <> '')::integer"));
        }
    }
    planned
}

/// SQL adding up `counted` (0 when there is nothing to count).
fn sum(counted: &[String]) -> String {
    if counted.is_empty() {
        "0".into()
    } else {
        counted.join(" + ")
    }
}

/// Masks `table` in one rewrite of it (`ALTER TABLE … ALTER COLUMN … TYPE
/// <its own type> USING <mask>`), when its masked columns are all text or dates and
/// its rows are [`Rows::All`] or [`Rows::NotKept`] (the few kept rows, a
/// company's and the internal users' partners, are set aside first and put
/// back after it): each row is written once and each index built once after
/// it, where an `UPDATE` writes a second version of every row beside the
/// first (the table doubles until a vacuum, and so does every copy made
/// from it). Returns how many values it masked and the columns, or `None`
/// when it does not apply or PostgreSQL refuses it (a view, rule or
/// generated column uses a masked column): the table is then as it was, for
/// [`mask_table`].
pub async fn rewrite_table(
    tx: &Transaction<'_>,
    table: &Table,
    columns: &[Column],
    memos: &Memos,
) -> Result<Option<(u64, Vec<String>)>, tokio_postgres::Error> {
    let planned = plan(table, columns, ident, memos);
    let rewritable = planned.assignments.iter().all(|(c, _)| matches!(c.kind, Type::Text(_) | Type::Date));
    let applies = match table.rows {
        Rows::All => true,
        // The kept rows are found again by their id.
        Rows::NotKept(_) => columns.iter().any(|c| c.name == "id"),
        _ => false,
    };
    if !applies || planned.assignments.is_empty() || !rewritable {
        return Ok(None);
    }
    let name = ident(table.name);
    let rows = table.rows.sql(false);
    let masked: i64 = tx
        .query_one(
            &format!(
                "SELECT coalesce(sum({}), 0)::bigint FROM {name} AS x WHERE {rows} AND ({})",
                sum(&planned.counted),
                planned.touched.join(" OR ")
            ),
            &[],
        )
        .await?
        .get(0);
    let list: Vec<String> = planned.assignments.iter().map(|(c, _)| ident(&c.name)).collect();
    let alters: Vec<String> =
        planned.assignments.iter().map(|(c, value)| format!("ALTER COLUMN {} TYPE {} USING {value}", ident(&c.name), c.declared)).collect();
    let mut rewrite = format!("ALTER TABLE {name} {}", alters.join(", "));
    if table.rows != Rows::All {
        rewrite = format!(
            "CREATE TEMP TABLE numikube_kept_rows ON COMMIT DROP AS SELECT x.id, {columns} FROM {name} AS x WHERE NOT ({rows});
             {rewrite};
             UPDATE {name} AS x SET {put_back} FROM pg_temp.numikube_kept_rows AS k WHERE k.id = x.id;
             DROP TABLE pg_temp.numikube_kept_rows",
            columns = list.iter().map(|c| format!("x.{c}")).collect::<Vec<_>>().join(", "),
            put_back = list.iter().map(|c| format!("{c} = k.{c}")).collect::<Vec<_>>().join(", "),
        );
    }
    tx.batch_execute("SAVEPOINT numikube_rewrite").await?;
    match tx.batch_execute(&rewrite).await {
        Ok(()) => {
            tx.batch_execute("RELEASE SAVEPOINT numikube_rewrite").await?;
            Ok(Some((masked as u64, planned.assignments.iter().map(|(c, _)| c.name.clone()).collect())))
        }
        Err(e) => {
            tracing::debug!(table = table.name, error = %crate::pg::describe(&e), "the table cannot be rewritten; masking it with an UPDATE");
            tx.batch_execute("ROLLBACK TO SAVEPOINT numikube_rewrite").await?;
            Ok(None)
        }
    }
}

/// One set-based `UPDATE` of the built-in set; returns how many values it
/// masked and the columns it masked.
pub async fn mask_table(
    tx: &Transaction<'_>,
    table: &Table,
    columns: &[Column],
    memos: &Memos,
) -> Result<(u64, Vec<String>), tokio_postgres::Error> {
    let has_share = columns.iter().any(|c| c.name == "share");
    let Planned { assignments, mut touched, mut counted } = plan(table, columns, |name| format!("x.{}", ident(name)), memos);
    let masked_columns: Vec<String> = assignments.iter().map(|(c, _)| c.name.clone()).collect();
    let mut sets: Vec<String> = assignments.iter().map(|(c, value)| format!("{} = {value}", ident(&c.name))).collect();
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
        counted = sum(&counted),
    );
    let masked: i64 = tx.query_one(&statement, &[]).await?.get(0);
    Ok((masked as u64, masked_columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, kind: Type) -> Column {
        Column { name: name.into(), kind, declared: String::new() }
    }

    #[test]
    fn each_type_is_masked_its_way() {
        let text = masked_value(&column("email", Type::Text(None)), Mask::Email, "x.\"email\"").unwrap();
        assert_eq!(text, "pg_temp.anonymize_email(x.\"email\"::text)");
        let short = masked_value(&column("zip", Type::Text(Some(8))), Mask::Code, "x.\"zip\"").unwrap();
        assert_eq!(short, "left(pg_temp.anonymize_code(x.\"zip\"::text), 8)", "a limited column keeps its limit");
        assert_eq!(masked_value(&column("password", Type::Text(Some(8))), Mask::Password, "x.p").unwrap(), "NULL");
        let translated = masked_value(&column("body", Type::Jsonb), Mask::Html, "x.\"body\"").unwrap();
        assert!(
            translated.contains("jsonb_each(x.\"body\")") && translated.contains("pg_temp.anonymize_html(e.value #>> '{}')"),
            "{translated}"
        );
        assert!(masked_value(&column("data", Type::Json), Mask::Text, "x.data").is_none());
        assert!(masked_value(&column("n", Type::Other), Mask::Text, "x.n").is_none());
        assert_eq!(masked_value(&column("birthday", Type::Date), Mask::Date, "x.b").unwrap(), "pg_temp.anonymize_date(x.b)");
        assert!(masked_value(&column("birthday", Type::Date), Mask::Text, "x.b").is_none(), "a text mask never on a date");
        assert!(masked_value(&column("note", Type::Text(None)), Mask::Date, "x.n").is_none(), "a date mask never on text");
    }

    #[test]
    fn rows_are_chosen_by_who_is_kept() {
        assert_eq!(Rows::All.sql(false), "true");
        assert!(
            Rows::NotKept("partner_id").sql(false).starts_with("NOT EXISTS")
                && Rows::NotKept("partner_id").sql(false).contains("x.partner_id")
        );
        assert_eq!(Rows::Shared.sql(true), "x.share IS TRUE");
        assert_eq!(Rows::Shared.sql(false), "false", "without share, nobody is a portal user");
        assert_eq!(Rows::Internal.sql(false), "true");
    }
}
