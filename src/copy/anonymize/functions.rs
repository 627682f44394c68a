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

/// The characters a code's mask substitutes.
const ALNUM: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// SQL: text `v` with only the characters of `keep` (two `translate`s: the
/// others are found, then removed; several times cheaper than `regexp_replace`).
fn only(v: &str, keep: &str) -> String {
    format!("translate({v}, translate({v}, '{keep}', ''), '')")
}

/// The functions, in the order they must be made (each may use the ones before).
///
/// The ones the built-in set calls on every row are single expressions
/// without sub-queries, so that PostgreSQL inlines them (a call that is not
/// inlined costs more than the masking itself); only the rare values holding
/// several addresses or names go through a function with a sub-query. Only
/// the part of a hash that is used is `translate`d (its cost grows with the
/// length), which gives the same masks as translating the whole hash.
pub fn definitions() -> Vec<(&'static str, String)> {
    let f = |name: &'static str, args: &str, body: String| {
        (name, format!("CREATE FUNCTION pg_temp.{name}({args}) RETURNS text LANGUAGE sql STABLE AS $numikube$SELECT {body}$numikube$"))
    };
    let empty = "v IS NULL OR btrim(v) = ''";
    let hash = |seed: &str| format!("pg_temp.anonymize_hash({seed})");
    // One part of a list of names, as `anonymize_name_list` masks it.
    let part = |p: &str| format!("CASE WHEN btrim({p}) = '' THEN {p} ELSE pg_temp.anonymize_name_part({p}) END");
    // The first day of date `v`'s year.
    let jan1 = "make_date(extract(year FROM v)::integer, 1, 1)";
    vec![
        f("anonymize_hash", "v text", format!("encode(sha256(convert_to(current_setting('{SETTING}') || '|' || v, 'UTF8')), 'hex')")),
        f("anonymize_digits", "seed text, n integer", format!("translate(substr({}, 1, n), 'abcdef', '012345')", hash("seed"))),
        f("anonymize_address", "v text", format!("substr({}, 1, 16) || '@{MASKED_DOMAIN}'", hash("'email:' || lower(btrim(v))"))),
        f(
            "anonymize_email_list",
            "v text",
            format!(
                "coalesce((SELECT string_agg(pg_temp.anonymize_address(m[1]), ', ' ORDER BY n)
                             FROM regexp_matches(v, '{EMAIL_RE}', 'g') WITH ORDINALITY AS t(m, n)),
                          pg_temp.anonymize_address(v))"
            ),
        ),
        f(
            "anonymize_email",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v
                      WHEN length(v) - length(replace(v, '@', '')) = 1
                           THEN coalesce(pg_temp.anonymize_address(substring(v FROM '{EMAIL_RE}')), pg_temp.anonymize_address(v))
                      ELSE pg_temp.anonymize_email_list(v) END"
            ),
        ),
        f(
            "anonymize_phone",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v
                      WHEN v !~ '[0-9]' THEN pg_temp.anonymize_digits('phone:' || lower(btrim(v)), 6)
                      ELSE CASE WHEN btrim(v) LIKE '+%' THEN '+' ELSE '' END
                           || pg_temp.anonymize_digits('phone:' || {digits}, length({digits})) END",
                digits = only("v", "0123456789")
            ),
        ),
        f("anonymize_name_part", "v text", format!("'Person ' || substr({}, 1, 10)", hash("'name:' || lower(btrim(v))"))),
        f(
            "anonymize_name_list",
            "v text",
            format!("(SELECT string_agg({}, ', ' ORDER BY n) FROM regexp_split_to_table(v, ', ') WITH ORDINALITY AS t(p, n))", part("p")),
        ),
        // `Parent, Child` (a contact's `complete_name`) without the list's sub-query.
        f(
            "anonymize_name",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v
                      WHEN position(', ' IN v) = 0 THEN pg_temp.anonymize_name_part(v)
                      WHEN position(', ' IN substr(v, position(', ' IN v) + 2)) = 0
                           THEN {first} || ', ' || {second}
                      ELSE pg_temp.anonymize_name_list(v) END",
                first = part("split_part(v, ', ', 1)"),
                second = part("split_part(v, ', ', 2)"),
            ),
        ),
        f(
            "anonymize_street",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v
                      ELSE (('x' || substr({}, 1, 4))::bit(16)::integer % 999 + 1)::text || ' Street ' || substr({}, 1, 8) END",
                hash("'street-number:' || lower(btrim(v))"),
                hash("'street:' || lower(btrim(v))")
            ),
        ),
        f(
            "anonymize_city",
            "v text",
            format!("CASE WHEN {empty} THEN v ELSE 'City ' || substr({}, 1, 6) END", hash("'city:' || lower(btrim(v))")),
        ),
        // Digits for digits and letters for letters (a substitution drawn from the
        // value's hash), the rest kept: the length and the layout stay.
        f(
            "anonymize_code",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v
                      ELSE translate(v, '{ALNUM}',
                                     translate(substr({h}, 1, 10), 'abcdef', '012345')
                                     || translate(substr({h}, 11, 26), '0123456789abcdef', 'ABCDEFGHIJKLMNOP')
                                     || translate(substr({h}, 37, 26), '0123456789abcdef', 'abcdefghijklmnop')) END",
                h = hash(&format!("'code:' || upper({})", only("v", ALNUM)))
            ),
        ),
        f(
            "anonymize_vat",
            "v text",
            "CASE WHEN v ~ '^[A-Za-z]{2}' THEN substr(v, 1, 2) || pg_temp.anonymize_code(substr(v, 3)) ELSE pg_temp.anonymize_code(v) END"
                .into(),
        ),
        f(
            "anonymize_website",
            "v text",
            format!(
                "CASE WHEN {empty} THEN v ELSE 'https://' || substr({}, 1, 10) || '.{MASKED_DOMAIN}' END",
                hash("'web:' || lower(btrim(v))")
            ),
        ),
        f("anonymize_text", "v text", "CASE WHEN v IS NULL OR v = '' THEN v ELSE 'Masked text' END".into()),
        f("anonymize_html", "v text", "CASE WHEN v IS NULL OR v = '' THEN v ELSE '<p>Masked text</p>' END".into()),
        // Another day of the same year (ages stay about right), drawn from the
        // hash among the year's days but the value's own.
        (
            "anonymize_date",
            format!(
                "CREATE FUNCTION pg_temp.anonymize_date(v date) RETURNS date LANGUAGE sql STABLE AS $numikube$SELECT
                 CASE WHEN v IS NULL OR NOT isfinite(v) THEN v
                      ELSE {jan1} + {k} + ({k} >= v - {jan1})::integer END$numikube$",
                k = format!(
                    "(('x' || substr({}, 1, 7))::bit(28)::integer % (({jan1} + interval '1 year')::date - {jan1} - 1))",
                    hash("'date:' || to_char(v, 'YYYY-MM-DD')")
                ),
            ),
        ),
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
