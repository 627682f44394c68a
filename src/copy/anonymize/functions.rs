//! The masking functions, made in the session's own temporary schema for
//! the anonymization's transaction (and dropped before it commits): the
//! built-in set uses them, and so may a module's `data/anonymize.sql`
//! (`pg_temp.anonymize_email(email)`, …; see the README).
//!
//! Every mask is a keyed SHA-256 (PostgreSQL's own `sha256`, no extension)
//! of the value, so one value is masked the same way wherever it appears;
//! NULL stays NULL and an empty string stays empty; masked values keep their
//! shape (an e-mail is an address at `example.com`, a phone keeps its length
//! and leading `+`, a VAT number its country prefix).

use tokio_postgres::Transaction;

use super::key::SETTING;

/// One address in a text: what collecting and checking look for too.
pub const EMAIL_RE: &str = r"([A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+)";

/// One phone number in a text (its digits are compared).
pub const PHONE_RE: &str = r"(\+?[0-9][0-9 ().-]{4,}[0-9])";

/// The domain of masked addresses (reserved, RFC 2606).
pub const MASKED_DOMAIN: &str = "example.com";

/// The functions, in the order they must be made (each may use the ones before).
fn definitions() -> Vec<(&'static str, String)> {
    let f = |name: &'static str, args: &str, returns: &str, body: String| {
        (name, format!("CREATE FUNCTION pg_temp.{name}({args}) RETURNS {returns} LANGUAGE sql STABLE AS $numikube${body}$numikube$"))
    };
    let empty = "v IS NULL OR btrim(v) = ''";
    vec![
        f(
            "anonymize_hash",
            "v text",
            "text",
            format!("SELECT encode(sha256(convert_to(current_setting('{SETTING}') || '|' || v, 'UTF8')), 'hex')"),
        ),
        f(
            "anonymize_digits",
            "seed text, n integer",
            "text",
            "SELECT substr(repeat(translate(pg_temp.anonymize_hash(seed), 'abcdef', '012345'), n / 64 + 1), 1, n)".into(),
        ),
        f(
            "anonymize_address",
            "v text",
            "text",
            format!("SELECT substr(pg_temp.anonymize_hash('email:' || lower(btrim(v))), 1, 16) || '@{MASKED_DOMAIN}'"),
        ),
        f(
            "anonymize_email",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    ELSE coalesce((SELECT string_agg(pg_temp.anonymize_address(m[1]), ', ' ORDER BY n)
                                     FROM regexp_matches(v, '{EMAIL_RE}', 'g') WITH ORDINALITY AS t(m, n)),
                                  pg_temp.anonymize_address(v)) END"
            ),
        ),
        f(
            "anonymize_phone",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    ELSE CASE WHEN btrim(v) LIKE '+%' THEN '+' ELSE '' END
                         || pg_temp.anonymize_digits('phone:' || CASE WHEN d = '' THEN lower(btrim(v)) ELSE d END,
                                                     CASE WHEN d = '' THEN 6 ELSE length(d) END) END
                   FROM (SELECT regexp_replace(v, '[^0-9]', '', 'g') AS d) AS x"
            ),
        ),
        f(
            "anonymize_name_part",
            "v text",
            "text",
            "SELECT 'Person ' || substr(pg_temp.anonymize_hash('name:' || lower(btrim(v))), 1, 10)".into(),
        ),
        f(
            "anonymize_name",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    WHEN position(', ' IN v) = 0 THEN pg_temp.anonymize_name_part(v)
                    ELSE (SELECT string_agg(CASE WHEN btrim(p) = '' THEN p ELSE pg_temp.anonymize_name_part(p) END, ', ' ORDER BY n)
                            FROM regexp_split_to_table(v, ', ') WITH ORDINALITY AS t(p, n)) END"
            ),
        ),
        f(
            "anonymize_street",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    ELSE (('x' || substr(h, 1, 4))::bit(16)::integer % 999 + 1)::text || ' Street ' || substr(h, 5, 8) END
                   FROM (SELECT pg_temp.anonymize_hash('street:' || lower(btrim(v))) AS h) AS x"
            ),
        ),
        f(
            "anonymize_city",
            "v text",
            "text",
            format!("SELECT CASE WHEN {empty} THEN v ELSE 'City ' || substr(pg_temp.anonymize_hash('city:' || lower(btrim(v))), 1, 6) END"),
        ),
        f(
            "anonymize_code",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    ELSE (SELECT string_agg(CASE WHEN c ~ '[0-9]' THEN substr(d, i::integer, 1)
                                                 WHEN c ~ '[A-Za-z]' THEN substr(l, i::integer, 1)
                                                 ELSE c END, '' ORDER BY i)
                            FROM regexp_split_to_table(v, '') WITH ORDINALITY AS t(c, i)) END
                   FROM (SELECT pg_temp.anonymize_digits('code:' || k, length(v)) AS d,
                                translate(pg_temp.anonymize_digits('code-letters:' || k, length(v)), '0123456789', 'ABCDEFGHJK') AS l
                           FROM (SELECT upper(regexp_replace(v, '[^A-Za-z0-9]', '', 'g')) AS k) AS kk) AS x"
            ),
        ),
        f(
            "anonymize_vat",
            "v text",
            "text",
            "SELECT CASE WHEN v ~ '^[A-Za-z]{2}' THEN substr(v, 1, 2) || pg_temp.anonymize_code(substr(v, 3))
                         ELSE pg_temp.anonymize_code(v) END"
                .into(),
        ),
        f(
            "anonymize_website",
            "v text",
            "text",
            format!(
                "SELECT CASE WHEN {empty} THEN v
                    ELSE 'https://' || substr(pg_temp.anonymize_hash('web:' || lower(btrim(v))), 1, 10) || '.{MASKED_DOMAIN}' END"
            ),
        ),
        f("anonymize_text", "v text", "text", "SELECT CASE WHEN v IS NULL OR v = '' THEN v ELSE 'Masked text' END".into()),
        f("anonymize_html", "v text", "text", "SELECT CASE WHEN v IS NULL OR v = '' THEN v ELSE '<p>Masked text</p>' END".into()),
    ]
}

/// Makes the functions in `tx`'s temporary schema and sets the key for the transaction.
pub async fn create(tx: &Transaction<'_>, key: &str) -> Result<(), tokio_postgres::Error> {
    tx.query_one("SELECT set_config($1, $2, true)", &[&SETTING, &key]).await?;
    for (_, statement) in definitions() {
        tx.batch_execute(&statement).await?;
    }
    Ok(())
}

/// Drops the functions, so that nothing of the masking stays in the session.
pub async fn drop(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    for (name, statement) in definitions().iter().rev() {
        let args = statement.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map_or("", |(args, _)| args);
        tx.batch_execute(&format!("DROP FUNCTION IF EXISTS pg_temp.{name}({args})")).await?;
    }
    tx.query_one("SELECT set_config($1, '', true)", &[&SETTING]).await?;
    Ok(())
}
