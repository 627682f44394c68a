//! Database names: the rule for clients, levels and suffixes, and how a
//! staging database's name is built (`<client>-<level>[_<YYYYMMDD_HHMM>][_<suffix>]`).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;

/// PostgreSQL truncates identifiers longer than this many bytes.
pub const MAX_NAME_BYTES: usize = 63;

/// Lowercase letters, digits, `_`, and single `-` between them (docs/contract.md, *Names*).
static PART: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$").unwrap());

/// Checks one part of a name; `field` names it in the message.
pub fn check_part(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("The {field} is empty."));
    }
    if !PART.is_match(value) {
        return Err(format!(
            "The {field} \"{}\" may only contain lowercase letters, digits, \"_\" and \"-\" (not at the start or the end, not twice in a row).",
            value.escape_default()
        ));
    }
    Ok(())
}

/// Builds and checks the final name of a staging database.
pub fn staging_name(client: &str, level: &str, suffix: Option<&str>, timestamp: Option<DateTime<chrono_tz::Tz>>) -> Result<String, String> {
    check_part("client", client)?;
    check_part("level", level)?;
    let mut name = format!("{client}-{level}");
    if let Some(at) = timestamp {
        name.push_str(&at.format("_%Y%m%d_%H%M").to_string());
    }
    if let Some(suffix) = suffix.filter(|s| !s.is_empty()) {
        check_part("suffix", suffix)?;
        name.push('_');
        name.push_str(suffix);
    }
    check_length(&name)?;
    Ok(name)
}

/// Refuses names PostgreSQL would truncate, saying by how much.
pub fn check_length(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "The database name \"{name}\" is {} bytes long, {} more than PostgreSQL's limit of {MAX_NAME_BYTES}; use a shorter suffix.",
            name.len(),
            name.len() - MAX_NAME_BYTES
        ));
    }
    Ok(())
}

/// The current time in the staging's zone (`numikube_staging_timezone` or the host's).
pub fn now_in(zone: Option<chrono_tz::Tz>) -> DateTime<chrono_tz::Tz> {
    let now = Utc::now();
    match zone {
        Some(tz) => now.with_timezone(&tz),
        None => {
            // chrono-tz has no "local" zone: read the host's one by name, else UTC.
            let local = iana_local().and_then(|n| n.parse().ok()).unwrap_or(chrono_tz::UTC);
            now.with_timezone(&local)
        }
    }
}

/// The host's zone name from `TZ`, else as the system says it (iana-time-zone:
/// `/etc/localtime`, `/etc/timezone`).
fn iana_local() -> Option<String> {
    if let Ok(tz) = std::env::var("TZ") {
        return Some(tz.trim_start_matches(':').to_string());
    }
    iana_time_zone::get_timezone().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn builds_the_documented_example() {
        let at = chrono_tz::Europe::Brussels.with_ymd_and_hms(2026, 11, 24, 13, 2, 0).unwrap();
        let name = staging_name("cosmos", "lab", Some("david-test"), Some(at)).unwrap();
        assert_eq!(name, "cosmos-lab_20261124_1302_david-test");
    }

    #[test]
    fn without_timestamp_or_suffix() {
        assert_eq!(staging_name("cosmos", "test", None, None).unwrap(), "cosmos-test");
        assert_eq!(staging_name("cosmos", "test", Some(""), None).unwrap(), "cosmos-test");
    }

    #[test]
    fn hostile_parts_are_refused() {
        for bad in ["David", "a b", "a;drop", "a'b", "é", "-a", "a-", "a--b", "", "a\"b", "a%b", "a/b"] {
            assert!(check_part("suffix", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "david-test", "a_b", "x1-2_3"] {
            assert!(check_part("suffix", good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn too_long_says_by_how_much() {
        let err = staging_name("cosmos", "lab", Some(&"x".repeat(60)), None).unwrap_err();
        assert!(err.contains("71 bytes") && err.contains("8 more"), "{err}");
    }
}
