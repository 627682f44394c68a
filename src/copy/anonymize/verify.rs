//! Fail closed: before masking, the e-mail addresses and phone numbers of
//! the people to be masked are collected (less those of the people kept,
//! which stay); after masking (built-in set and module scripts), in the same
//! transaction, every text column of every masked table is read back and
//! searched for any of them. Both read the rows in batches and cut the
//! addresses and numbers out of each value here, with the same patterns as
//! the masking functions, and look them up in a hash set: one pass over
//! each table, linear in the data (PostgreSQL's `regexp_matches` on every
//! row cost more than the masking itself). A phone number counts only where
//! it stands on its own, not inside a hash or an identifier.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use tokio_postgres::Transaction;

use super::builtin::{Kind, Rows, KEPT, PEOPLE};
use super::functions::{EMAIL_RE, MASKED_DOMAIN, PHONE_RE};
use super::schema::{self, ident, Type};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| Regex::new(EMAIL_RE).expect("the pattern compiles"));
static PHONE: LazyLock<Regex> = LazyLock::new(|| Regex::new(PHONE_RE).expect("the pattern compiles"));
static MASK_SHAPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^[0-9a-f]{{16}}@{}$", regex::escape(MASKED_DOMAIN))).expect("the pattern compiles"));

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

/// The masked people's addresses (lower case, each kept as a 64-bit hash:
/// 8 bytes whatever its length; a chance collision can only fail a copy,
/// never let a value through) and phone numbers (digits only, six or more).
#[derive(Debug, Default)]
pub struct Collected {
    emails: HashSet<u64>,
    phones: HashSet<String>,
}

/// The 64-bit hash of a collected value (the same for the whole process).
fn fingerprint(value: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(value, &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

impl Collected {
    /// How many values are looked for.
    pub fn len(&self) -> usize {
        self.emails.len() + self.phones.len()
    }

    /// Whether nothing is looked for.
    pub fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.phones.is_empty()
    }

    /// Adds the addresses or numbers of `kind` found in `text`.
    fn add_from(&mut self, kind: Kind, text: &str) {
        match kind {
            // Production values of the masks' own shape cannot be told from masked ones.
            Kind::Email => self.emails.extend(
                EMAIL
                    .find_iter(text)
                    .map(|m| m.as_str().to_ascii_lowercase())
                    .filter(|e| !MASK_SHAPED.is_match(e))
                    .map(|e| fingerprint(&e)),
            ),
            Kind::Phone => self.phones.extend(PHONE.find_iter(text).map(|m| digits(m.as_str())).filter(|d| d.len() >= 6)),
        }
    }

    /// Whether `text` holds one of the values (the patterns run only on
    /// text with an `@`, or with six digits or more).
    fn leaks(&self, text: &str) -> bool {
        let email = !self.emails.is_empty()
            && text.contains('@')
            && EMAIL.find_iter(text).any(|m| self.emails.contains(&fingerprint(&m.as_str().to_ascii_lowercase())));
        let phone = || {
            !self.phones.is_empty()
                && text.bytes().filter(u8::is_ascii_digit).nth(5).is_some()
                && PHONE.find_iter(text).any(|m| standalone(text, m.start(), m.end()) && self.phones.contains(&digits(m.as_str())))
        };
        email || phone()
    }
}

/// Whether `text[start..end]` stands on its own, neither letters nor digits
/// glued to it: the digits inside a hash or an identifier (an e-mail's
/// `Message-Id`, a reference) are not a phone number, and one chance match
/// among millions of them would fail every copy of that database.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let glued = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    !glued(text[..start].chars().next_back()) && !glued(text[end..].chars().next())
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Rows fetched at a time: the sidecar holds no more than these in memory.
const BATCH: i32 = 5_000;

/// Reads the rows of `select` in batches through a portal and hands each to `each`.
async fn each_row(tx: &Transaction<'_>, select: &str, mut each: impl FnMut(&tokio_postgres::Row)) -> Result<(), tokio_postgres::Error> {
    let portal = tx.bind(select, &[]).await?;
    loop {
        let rows = tx.query_portal(&portal, BATCH).await?;
        rows.iter().for_each(&mut each);
        if rows.len() < BATCH as usize {
            return Ok(());
        }
    }
}

/// The values of `column` of the `rows` of `table` (if both exist) into `into`.
async fn collect_one(
    tx: &Transaction<'_>,
    into: &mut Collected,
    (table, rows, column, kind): (&str, Rows, &str, Kind),
) -> Result<(), tokio_postgres::Error> {
    let Some(columns) = schema::columns(tx, table).await? else { return Ok(()) };
    let Some(col) = columns.iter().find(|c| c.name == column && matches!(c.kind, Type::Text(_))) else { return Ok(()) };
    let has_share = columns.iter().any(|c| c.name == "share");
    let select = format!(
        "SELECT x.{col}::text FROM {table} AS x WHERE x.{col} IS NOT NULL AND x.{col} <> '' AND {rows}",
        col = ident(&col.name),
        table = ident(table),
        rows = rows.sql(has_share)
    );
    each_row(tx, &select, |row| into.add_from(kind, row.get(0))).await
}

/// Collects the masked people's addresses and numbers, less the kept people's.
pub async fn collect(tx: &Transaction<'_>) -> Result<Collected, tokio_postgres::Error> {
    let (mut seen, mut kept) = (Collected::default(), Collected::default());
    for source in PEOPLE {
        collect_one(tx, &mut seen, *source).await?;
    }
    for source in KEPT {
        collect_one(tx, &mut kept, *source).await?;
    }
    seen.emails.retain(|e| !kept.emails.contains(e));
    seen.phones.retain(|p| !kept.phones.contains(p));
    Ok(seen)
}

/// After masking: a phone number whose masked digits happen to be another
/// person's real ones is not a survivor (both are in the copy only as masks).
pub async fn forget_chance_matches(tx: &Transaction<'_>, seen: &mut Collected) -> Result<(), tokio_postgres::Error> {
    let phones: Vec<&String> = seen.phones.iter().collect();
    let mut chance = Vec::new();
    for batch in phones.chunks(BATCH as usize) {
        let rows = tx.query("SELECT pg_temp.anonymize_digits('phone:' || v, length(v)) FROM unnest($1::text[]) AS v", &[&batch]).await?;
        chance.extend(rows.iter().map(|r| r.get::<_, String>(0)).filter(|masked| seen.phones.contains(masked)));
    }
    for masked in chance {
        seen.phones.remove(&masked);
    }
    Ok(())
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
/// nothing but masks) for the collected values, and names the columns where
/// some survived.
pub async fn survivors_in(
    tx: &Transaction<'_>,
    table: &str,
    seen: &Collected,
    masked: Option<&Masked>,
) -> Result<Vec<Survivor>, tokio_postgres::Error> {
    let Some(columns) = schema::columns(tx, table).await? else { return Ok(Vec::new()) };
    // The text columns only (dates and numbers would be taken for phone numbers).
    let text: Vec<_> = columns.into_iter().filter(|c| c.is_text_like()).collect();
    if text.is_empty() || seen.is_empty() {
        return Ok(Vec::new());
    }
    // The columns the built-in set rewrote are searched only in the rows it
    // left as they were (none, when it rewrote every row).
    let is_masked = |name: &String| masked.is_some_and(|m| m.columns.contains(name));
    let every_row = masked.is_some_and(|m| m.rows == "true");
    let text: Vec<_> = text.into_iter().filter(|c| !(every_row && is_masked(&c.name))).collect();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let only_unmasked: Vec<bool> = text.iter().map(|c| is_masked(&c.name)).collect();
    let unmasked_row = match masked {
        Some(m) if only_unmasked.iter().any(|x| *x) => format!("NOT coalesce({}, false)", m.rows),
        _ => "true".into(),
    };
    let values: Vec<String> = text.iter().map(|c| format!("x.{}::text", ident(&c.name))).collect();
    let select = format!("SELECT {unmasked_row}, {} FROM {} AS x", values.join(", "), ident(table));
    let mut counts = vec![0i64; text.len()];
    each_row(tx, &select, |row| {
        let unmasked: bool = row.get(0);
        for (i, count) in counts.iter_mut().enumerate() {
            if only_unmasked[i] && !unmasked {
                continue;
            }
            if let Some(value) = row.get::<_, Option<&str>>(i + 1) {
                if seen.leaks(value) {
                    *count += 1;
                }
            }
        }
    })
    .await?;
    Ok(text
        .iter()
        .zip(counts)
        .map(|(c, values)| Survivor { table: table.into(), column: c.name.clone(), values })
        .filter(|s| s.values > 0)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_cut_out_as_the_masking_functions_see_them() {
        let mut seen = Collected::default();
        seen.add_from(Kind::Email, "Zebulon <Zebulon.Q@Customer.test>, ann@b.example.org.");
        seen.add_from(Kind::Phone, "+32 475 11 22 33 / 0476-98.76.54, ext 12");
        assert_eq!(seen.emails, HashSet::from([fingerprint("zebulon.q@customer.test"), fingerprint("ann@b.example.org")]));
        seen.add_from(Kind::Email, "0123456789abcdef@example.com");
        assert_eq!(seen.emails.len(), 2, "a value shaped like a mask is not looked for");
        assert_eq!(seen.phones, HashSet::from(["32475112233".into(), "0476987654".into()]), "fewer than six digits are no number");
        assert!(seen.leaks("write to ZEBULON.Q@customer.test"));
        assert!(seen.leaks("call (0476) 98 76 54"));
        assert!(!seen.leaks("x.zebulon.q@customer.test.com"), "another address holding it is not it");
        assert!(!seen.leaks("no one here: 12345"));
        assert!(!seen.leaks("<c9a0476987654e1.1700000042-openerp-42@example.com>"), "digits inside a hash are no number");
        assert!(seen.leaks("<p>tel.+32 475 11 22 33</p>"));
    }
}
