//! Where an archive's entry unpacks in a copy's filestore (an Odoo zip's
//! `filestore/…`, a companion's tree at its root or under `filestore/`):
//! never outside that folder.

use std::path::{Component, Path, PathBuf};

/// An entry whose path leaves the folder (`..`, an absolute path).
#[derive(Debug, PartialEq, Eq)]
pub struct Outside;

/// The entry `name` relative to the filestore folder, its leading
/// `filestore/` left out: `None` for the folder itself (`./`, `filestore/`).
pub fn in_filestore(name: &str) -> Result<Option<PathBuf>, Outside> {
    let mut relative = PathBuf::new();
    for part in Path::new(name).components() {
        match part {
            Component::Normal(p) => relative.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(Outside),
        }
    }
    let relative = relative.strip_prefix("filestore").map(Path::to_path_buf).unwrap_or(relative);
    Ok((!relative.as_os_str().is_empty()).then_some(relative))
}
