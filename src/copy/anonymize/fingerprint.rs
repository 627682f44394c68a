//! What masks a copy on this staging, as one fingerprint: the sidecar's
//! version and its built-in set and functions, the configured key, and every
//! module's `data/anonymize.sql` on the search path. Two anonymized copies of
//! one backup with one fingerprint are the same database, so a template kept
//! of the first may serve the second (see `life::templates`); a new key, a
//! new sidecar or any script changed on disk makes a new fingerprint, and the
//! old template serves nobody.
//!
//! The fingerprint sits in the template's marker, which any role may read;
//! the staging's token (which no database holds) goes into the hash first,
//! so that the fingerprint gives nothing to guess the key from.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::builtin::TABLES;
use super::functions::definitions;
use super::scripts::script_of;

/// The fingerprint of masking with `key`, salted with `secret` (the staging's token).
pub fn of(secret: &str, key: &str, search_path: &[PathBuf]) -> std::io::Result<String> {
    let mut hash = Sha256::new();
    for part in [secret, env!("CARGO_PKG_VERSION"), &built_in(), key] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    for module in modules(search_path)? {
        // Found as the copy's own masking finds it: the first folder holding the module wins.
        let Some(path) = script_of(search_path, &module) else { continue };
        let script = std::fs::read(path)?;
        for part in [module.as_bytes(), &script] {
            hash.update(part.len().to_le_bytes());
            hash.update(part);
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The built-in set and its functions, as text: a sidecar masking otherwise
/// (a build between two versions) makes another fingerprint.
fn built_in() -> String {
    let tables = TABLES.iter().map(|t| format!("{}{:?}{:?}", t.name, t.rows, t.columns));
    let functions = definitions().into_iter().map(|(_, sql)| sql);
    tables.chain(functions).collect::<Vec<_>>().join("\n")
}

/// The names of the folders on `search_path`, installed modules or not, in order.
fn modules(search_path: &[PathBuf]) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for dir in search_path {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries {
            names.extend(entry?.file_name().to_str().map(String::from));
        }
    }
    Ok(names)
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
        assert_ne!(of("t2", "k", &path).unwrap(), of("t", "k", &path).unwrap(), "salted with the token");
        let first = of("t", "k", &path).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(of("t", "k", &path).unwrap(), first, "stable");
        assert_ne!(of("t", "k2", &path).unwrap(), first, "another key");
        // A folder later on the path does not hide the first one's module.
        module(b.path(), "loyalty", Some("SELECT 1;"));
        assert_eq!(of("t", "k", &path).unwrap(), first);
        // A module without a script, or a file that is no module, changes nothing.
        module(b.path(), "sale", None);
        std::fs::write(a.path().join("README"), "x").unwrap();
        assert_eq!(of("t", "k", &path).unwrap(), first);
        // A script added or changed does.
        module(b.path(), "crm_extra", Some("UPDATE crm_lead SET x = NULL;"));
        let second = of("t", "k", &path).unwrap();
        assert_ne!(second, first);
        std::fs::write(a.path().join("loyalty/data/anonymize.sql"), "UPDATE loyalty_card SET holder = '';").unwrap();
        assert_ne!(of("t", "k", &path).unwrap(), second);
    }
}
