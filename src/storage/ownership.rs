//! Which objects of the bucket are a client's backups (docs/contract.md, *Which
//! backup is a client's*): the client's name followed by a remainder that
//! matches, in full, one of the producers' patterns — so `cosmos-eu-daily-1.dump`
//! is never `cosmos`'s — or, when `numikube_staging_backup_pattern` is set, that glob.
//! Under either rule a companion archive (`….filestore.tar.gz`) is nobody's backup.

use std::sync::LazyLock;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;

/// The remainders the producers write after the client's name: a folder per
/// client; an extension; Numigi's `-daily-3.dump`; a date (and time) as Odoo's
/// database manager and OCA auto_backup write them.
static REMAINDER: LazyLock<Regex> = LazyLock::new(|| {
    let ext = r"(?:\.[A-Za-z0-9]+){1,3}";
    let date = r"(?:\d{4}-\d{2}-\d{2}|\d{4}_\d{2}_\d{2}|\d{8})";
    let time = r"(?:\d{2}-\d{2}(?:-\d{2})?|\d{2}_\d{2}(?:_\d{2})?|\d{2}:\d{2}(?::\d{2})?|\d{4}(?:\d{2})?)";
    Regex::new(&format!(r"^(?:/.+|{ext}|[-_](?:hourly|daily|weekly|monthly)[-_]\d+{ext}|[-_]{date}(?:[-_T]{time})?{ext})$"))
        .expect("the remainder pattern compiles")
});

/// The rule that tells a client's backups, from `numikube_staging_backup_pattern` or the default.
#[derive(Debug, Clone)]
pub struct Ownership {
    pattern: Option<String>,
}

impl Ownership {
    /// The default rule, or the glob `pattern` with `{client}` (`*` within a folder, `**` across, `?` one character).
    pub fn new(pattern: Option<String>) -> Ownership {
        Ownership { pattern }
    }

    /// The fixed start of every key of `client`, for listing the bucket.
    pub fn prefix(&self, client: &str) -> String {
        match &self.pattern {
            None => client.to_string(),
            Some(p) => {
                let literal: String = p.chars().take_while(|c| !matches!(c, '*' | '?' | '[')).collect();
                match literal.find("{client}") {
                    Some(at) => format!("{}{client}", &literal[..at]),
                    None => literal,
                }
            }
        }
    }

    /// Whether `key` is a backup of `client`.
    pub fn belongs_to(&self, key: &str, client: &str) -> bool {
        if super::companion::is_companion(key) {
            return false;
        }
        match &self.pattern {
            None => key.strip_prefix(client).is_some_and(|rest| REMAINDER.is_match(rest)),
            Some(p) => glob(p, client).is_some_and(|g| g.is_match(key)),
        }
    }
}

/// The glob `pattern` with `{client}` replaced, matched by globset (ripgrep's):
/// `*` and `?` never cross a `/`, `**` does; `None` if it is not a valid glob.
fn glob(pattern: &str, client: &str) -> Option<GlobMatcher> {
    let glob = pattern.replace("{client}", &globset::escape(client));
    GlobBuilder::new(&glob).literal_separator(true).build().ok().map(|g| g.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_client_by_the_default_rule() {
        let rule = Ownership::new(None);
        for ours in [
            "cosmos-daily-1.dump",
            "cosmos-hourly-12.dump",
            "cosmos_weekly_2.dump.gz",
            "cosmos_2026-11-24_03-00-00.zip",
            "cosmos_2026_11_24_03_00_00.dump",
            "cosmos-2026-11-24.dump",
            "cosmos-20261124T0300.sql.gz",
            "cosmos-2026-11-24T03:00:00.zip",
            "cosmos/daily/x.dump",
            "cosmos.zip",
            "cosmos.dump.gz",
        ] {
            assert!(rule.belongs_to(ours, "cosmos"), "{ours}");
        }
        for theirs in [
            "cosmos-eu-daily-1.dump",
            "cosmos-2-daily-1.dump",
            "cosmos_odoo.zip",
            "cosmos2-2026-11-24.zip",
            "cosmosx.zip",
            "cosmos",
            "cosmos-daily-1",
            "cosmos-eu/x.dump",
            "cosmos-2026-11-24-x.dump",
        ] {
            assert!(!rule.belongs_to(theirs, "cosmos"), "{theirs}");
        }
    }

    #[test]
    fn the_pattern_replaces_the_rule() {
        let rule = Ownership::new(Some("prod/{client}/*.dump".into()));
        assert!(rule.belongs_to("prod/cosmos/anything.dump", "cosmos"));
        assert!(!rule.belongs_to("prod/cosmos/a/b.dump", "cosmos"));
        assert!(!rule.belongs_to("prod/cosmos-eu/a.dump", "cosmos"));
        assert!(!rule.belongs_to("cosmos-daily-1.dump", "cosmos"));
        assert_eq!(rule.prefix("cosmos"), "prod/cosmos");
        let deep = Ownership::new(Some("backups/**/{client}-?.zip".into()));
        assert!(deep.belongs_to("backups/2026/11/cosmos-1.zip", "cosmos"));
        assert_eq!(deep.prefix("cosmos"), "backups/");
        assert!(Ownership::new(Some("a.b+{client}".into())).belongs_to("a.b+x", "x"));
        assert!(!Ownership::new(Some("a.b+{client}".into())).belongs_to("aXb+x", "x"));
    }

    #[test]
    fn a_companion_archive_is_nobodys_backup() {
        let rule = Ownership::new(None);
        for companion in
            ["cosmos-daily-1.filestore.tar.gz", "cosmos.filestore.tar", "cosmos/x.filestore.tar.zst", "cosmos_2026-11-24.filestore.tar"]
        {
            assert!(!rule.belongs_to(companion, "cosmos"), "{companion}");
        }
        assert!(rule.belongs_to("cosmos-daily-1.dump", "cosmos"));
        let pattern = Ownership::new(Some("{client}/**".into()));
        assert!(pattern.belongs_to("cosmos/x.dump", "cosmos"));
        assert!(!pattern.belongs_to("cosmos/x.filestore.tar.gz", "cosmos"));
    }
}
