//! Odoo's own source folder on the staging host: where `odoo/release.py`
//! tells the staging's Odoo version, and `odoo/addons` holds the modules
//! Odoo always adds to `addons_path` (`base` among them).

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// `version_info = (18, 0, 0, FINAL, 0, '')` in `odoo/release.py`.
static VERSION_INFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^version_info\s*=\s*\(\s*([^,\s]+)\s*,\s*([^,\s]+)").expect("the pattern compiles"));

/// Why Odoo's own folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// No `odoo/release.py` beside `addons_path`.
    #[error("Odoo's own folder (holding odoo/release.py) was not found beside addons_path; set numikube_staging_odoo_path to it")]
    NotFound,
    /// `release.py` cannot be read or has no `version_info`.
    #[error("cannot read Odoo's version from {path}: {detail}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// Odoo's source folder: the one holding `odoo/release.py`.
#[derive(Debug, Clone)]
pub struct OdooTree {
    root: PathBuf,
}

impl OdooTree {
    /// `numikube_staging_odoo_path` when set, else found beside an `addons_path` folder
    /// (`/opt/odoo/addons` → `/opt/odoo`; `…/odoo/addons` → `…`).
    pub fn find(odoo_path: Option<&Path>, addons_path: &[PathBuf]) -> Result<OdooTree, TreeError> {
        let holds_release = |root: &Path| root.join("odoo").join("release.py").is_file();
        if let Some(root) = odoo_path {
            return if holds_release(root) { Ok(OdooTree { root: root.into() }) } else { Err(TreeError::NotFound) };
        }
        addons_path
            .iter()
            .flat_map(|dir| [dir.parent(), dir.parent().and_then(Path::parent)])
            .flatten()
            .find(|root| holds_release(root))
            .map(|root| OdooTree { root: root.into() })
            .ok_or(TreeError::NotFound)
    }

    /// `odoo/addons`, which Odoo always adds to `addons_path`.
    pub fn addons(&self) -> PathBuf {
        self.root.join("odoo").join("addons")
    }

    /// Where modules' `data/*.sql` are searched: `addons_path`, then `odoo/addons`.
    pub fn search_path(&self, addons_path: &[PathBuf]) -> Vec<PathBuf> {
        addons_path.iter().cloned().chain([self.addons()]).collect()
    }

    /// The staging's Odoo major version, `version_info[:2]` (e.g. `18.0`, or `saas~17.4`).
    pub fn version(&self) -> Result<String, TreeError> {
        let path = self.root.join("odoo").join("release.py");
        let unreadable = |detail: String| TreeError::Unreadable { path: path.clone(), detail };
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
        let caps = VERSION_INFO.captures(&text).ok_or_else(|| unreadable("no version_info line".into()))?;
        let part = |i: usize| caps[i].trim_matches(|c| c == '\'' || c == '"').to_string();
        Ok(format!("{}.{}", part(1), part(2)))
    }
}

/// The major version (`18.0`) of a module version (`18.0.1.3`) or a major version;
/// `None` for a `saas~` version, which never matches a staging.
pub fn major_of(version: &str) -> Option<String> {
    if version.starts_with("saas") {
        return None;
    }
    let mut parts = version.split('.');
    let (major, minor) = (parts.next()?, parts.next()?);
    (major.bytes().all(|b| b.is_ascii_digit()) && minor.bytes().all(|b| b.is_ascii_digit()) && !major.is_empty())
        .then(|| format!("{major}.{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_release_py_and_compared_by_major() {
        let dir = tempfile::tempdir().unwrap();
        let odoo = dir.path().join("odoo");
        std::fs::create_dir_all(odoo.join("addons")).unwrap();
        std::fs::write(odoo.join("release.py"), "RELEASE_LEVELS = []\nversion_info = (18, 0, 0, FINAL, 0, '')\n").unwrap();
        let addons = vec![dir.path().join("addons")];
        let tree = OdooTree::find(None, &addons).unwrap();
        assert_eq!(tree.version().unwrap(), "18.0");
        assert_eq!(tree.addons(), odoo.join("addons"));
        assert!(OdooTree::find(None, &[odoo.join("addons")]).is_ok(), "…/odoo/addons on addons_path");
        assert!(OdooTree::find(Some(&dir.path().join("nowhere")), &addons).is_err());
        std::fs::write(odoo.join("release.py"), "version_info = ('saas~17', 4, 0, 'final', 0, '')\n").unwrap();
        assert_eq!(major_of(&tree.version().unwrap()), None);
        assert_eq!(major_of("18.0.1.3").as_deref(), Some("18.0"));
        assert_eq!(major_of("17.0").as_deref(), Some("17.0"));
        assert_eq!(major_of("saas~17.4.1.0"), None);
        assert_eq!(major_of("x"), None);
    }
}
