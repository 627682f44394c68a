//! Companion archives (docs/contract.md, *Restore → Filestore*): a custom dump or a
//! plain SQL backup has no filestore, so its producer may put one beside it,
//! the backup's key with its extension replaced by `.filestore.tar`,
//! `.filestore.tar.gz` or `.filestore.tar.zst` (`cosmos-daily-1.dump` →
//! `cosmos-daily-1.filestore.tar.gz`). A companion is never a backup of its own.

use std::sync::LazyLock;

use regex::Regex;

/// The endings of a companion archive, plain, gzip'ed and zstd'ed.
pub const ENDINGS: [&str; 3] = [".filestore.tar", ".filestore.tar.gz", ".filestore.tar.zst"];

/// A backup's extension: up to three dot-parts at the end of its last path
/// part, each starting with a letter (`.dump`, `.sql.gz`, `.backup`, `.pgdump`),
/// so that a date or a number before it (`-daily-1`, `_2026-11-24`) stays.
static EXTENSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\.[A-Za-z][A-Za-z0-9]*){1,3}$").expect("the extension pattern compiles"));

/// Whether `key` names a companion archive (which is never a backup).
pub fn is_companion(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    ENDINGS.iter().any(|ending| name.len() > ending.len() && name.ends_with(ending))
}

/// `key` without its extension: where a companion's ending goes.
pub fn stem(key: &str) -> &str {
    let name_at = key.rfind('/').map_or(0, |slash| slash + 1);
    match EXTENSION.find(&key[name_at..]) {
        // A name that is all extension (`.dump`) keeps it: its companion would have no name.
        Some(ext) if ext.start() > 0 => &key[..name_at + ext.start()],
        _ => key,
    }
}

/// The keys a companion of the backup `key` may have, in the order of [`ENDINGS`].
pub fn candidates(key: &str) -> [String; 3] {
    let stem = stem(key);
    ENDINGS.map(|ending| format!("{stem}{ending}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_companion_replaces_the_backups_extension() {
        for (backup, companion) in [
            ("cosmos-daily-1.dump", "cosmos-daily-1.filestore.tar.gz"),
            ("cosmos-hourly-12.dump.gz", "cosmos-hourly-12.filestore.tar.gz"),
            ("cosmos_2026-11-24_03-00-00.sql.gz", "cosmos_2026-11-24_03-00-00.filestore.tar.gz"),
            ("cosmos-20261124T0300.sql", "cosmos-20261124T0300.filestore.tar.gz"),
            ("cosmos/daily/x.backup", "cosmos/daily/x.filestore.tar.gz"),
            ("cosmos.pgdump", "cosmos.filestore.tar.gz"),
            ("a.b/cosmos", "a.b/cosmos.filestore.tar.gz"),
            ("cosmos-1.0.dump", "cosmos-1.0.filestore.tar.gz"),
        ] {
            assert_eq!(candidates(backup)[1], companion, "{backup}");
        }
        assert_eq!(
            candidates("cosmos-daily-1.dump"),
            ["cosmos-daily-1.filestore.tar", "cosmos-daily-1.filestore.tar.gz", "cosmos-daily-1.filestore.tar.zst"]
        );
    }

    #[test]
    fn companions_are_told_by_their_ending() {
        for companion in ["cosmos-daily-1.filestore.tar.gz", "cosmos.filestore.tar", "cosmos/x.filestore.tar.zst"] {
            assert!(is_companion(companion), "{companion}");
        }
        for backup in ["cosmos-daily-1.dump", "cosmos.tar.gz", "filestore.tar.gz/x.dump", "cosmos.filestore.zip", ".filestore.tar"] {
            assert!(!is_companion(backup), "{backup}");
        }
    }
}
