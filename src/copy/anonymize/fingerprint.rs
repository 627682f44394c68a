//! What masks a copy on this staging, as one fingerprint: the sidecar's
//! version (its built-in set and functions), the configured key, and every
//! module's `data/anonymize.sql` on the search path. Two anonymized copies of
//! one backup with one fingerprint are the same database, so a template kept
//! of the first may serve the second (see `life::templates`); a new key, a
//! new sidecar or any script changed on disk makes a new fingerprint, and the
//! old template serves nobody.
//!
//! The fingerprint sits in the template's marker, which any role may read;
//! the staging's token (which no database holds) goes into the hash first,
//! so that the fingerprint gives nothing to guess the key from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The fingerprint, salted with `secret` (the staging's token); `None` without
/// a configured key (a key per copy: no two copies are masked alike, so none
/// may come from another's template).
pub fn of(secret: &str, key: Option<&str>, search_path: &[PathBuf]) -> std::io::Result<Option<String>> {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    let mut hash = Sha256::new();
    for part in [secret, env!("CARGO_PKG_VERSION"), key] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    for (module, script) in scripts(search_path)? {
        for part in [module.as_bytes(), &script] {
            hash.update(part.len().to_le_bytes());
            hash.update(part);
        }
    }
    Ok(Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

/// Every module's `data/anonymize.sql` on `search_path`, installed or not,
/// by module name (the first folder holding a module wins, as in Odoo).
fn scripts(search_path: &[PathBuf]) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut seen = BTreeMap::new();
    for dir in search_path {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries {
            let module = entry?.path();
            let Some(name) = module.file_name().and_then(|n| n.to_str()).map(String::from) else { continue };
            let is_module = module.join("__manifest__.py").is_file() || module.join("__openerp__.py").is_file();
            if !is_module || seen.contains_key(&name) {
                continue;
            }
            let script = module.join("data").join("anonymize.sql");
            seen.insert(name, if script.is_file() { Some(std::fs::read(script)?) } else { None });
        }
    }
    Ok(seen.into_iter().filter_map(|(name, script)| script.map(|s| (name, s))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(root: &std::path::Path, name: &str, script: Option<&str>) {
        std::fs::create_dir_all(root.join(name).join("data")).unwrap();
        std::fs::write(root.join(name).join("__manifest__.py"), "{}").unwrap();
        if let Some(script) = script {
            std::fs::write(root.join(name).join("data/anonymize.sql"), script).unwrap();
        }
    }

    #[test]
    fn the_key_and_every_script_count_and_nothing_else() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        module(a.path(), "loyalty", Some("UPDATE loyalty_card SET holder = NULL;"));
        module(a.path(), "web", None);
        let path = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(of("t", None, &path).unwrap(), None, "a key per copy: no fingerprint");
        assert_eq!(of("t", Some(""), &path).unwrap(), None);
        assert_ne!(of("t2", Some("k"), &path).unwrap(), of("t", Some("k"), &path).unwrap(), "salted with the token");
        let first = of("t", Some("k"), &path).unwrap().unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(of("t", Some("k"), &path).unwrap().unwrap(), first, "stable");
        assert_ne!(of("t", Some("k2"), &path).unwrap().unwrap(), first, "another key");
        // A folder later on the path does not hide the first one's module.
        module(b.path(), "loyalty", Some("SELECT 1;"));
        assert_eq!(of("t", Some("k"), &path).unwrap().unwrap(), first);
        // A module without a script, or a file that is no module, changes nothing.
        module(b.path(), "sale", None);
        std::fs::write(a.path().join("README"), "x").unwrap();
        assert_eq!(of("t", Some("k"), &path).unwrap().unwrap(), first);
        // A script added or changed does.
        module(b.path(), "crm_extra", Some("UPDATE crm_lead SET x = NULL;"));
        let second = of("t", Some("k"), &path).unwrap().unwrap();
        assert_ne!(second, first);
        std::fs::write(a.path().join("loyalty/data/anonymize.sql"), "UPDATE loyalty_card SET holder = '';").unwrap();
        assert_ne!(of("t", Some("k"), &path).unwrap().unwrap(), second);
    }
}
