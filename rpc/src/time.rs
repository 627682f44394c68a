//! Times on the wire: RFC 3339 strings exactly as chrono's `to_rfc3339`
//! writes them (`2026-12-02T20:00:00.123456789+00:00`), `DateTime<Utc>` inside.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

fn parse<E: serde::de::Error>(text: &str) -> Result<DateTime<Utc>, E> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| E::custom(format!("not an RFC 3339 time: {text:?}: {e}")))
}

/// `#[serde(with = "rfc3339")]` for a `DateTime<Utc>`.
pub mod rfc3339 {
    use super::*;

    /// Writes `time` as RFC 3339.
    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&time.to_rfc3339())
    }

    /// Reads an RFC 3339 time, in any offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        parse(&String::deserialize(d)?)
    }
}

/// `#[serde(with = "rfc3339_option")]` for an `Option<DateTime<Utc>>` (`null` when none).
pub mod rfc3339_option {
    use super::*;

    /// Writes `time` as RFC 3339, or `null`.
    pub fn serialize<S: Serializer>(time: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match time {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 time or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?.map(|t| parse(&t)).transpose()
    }
}
