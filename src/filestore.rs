//! The filestore directories, `<data_dir>/filestore/<db>`, that go with databases.

use std::path::{Path, PathBuf};

/// Whether a database name can safely be a directory name under `filestore/`.
fn safe(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

/// The filestore of `db` under `data_dir`, if the name is a safe directory name.
pub fn path(data_dir: &Path, db: &str) -> Option<PathBuf> {
    safe(db).then(|| data_dir.join("filestore").join(db))
}

/// Removes the filestore of `db` if there is one.
pub fn remove(data_dir: &Path, db: &str) -> std::io::Result<()> {
    match path(data_dir, db) {
        Some(dir) if dir.exists() => std::fs::remove_dir_all(dir),
        _ => Ok(()),
    }
}

/// Moves the filestore of `from` to `to` (same file system: a rename), if `from` has one.
pub fn rename(data_dir: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let (Some(src), Some(dst)) = (path(data_dir, from), path(data_dir, to)) else {
        return Err(std::io::Error::other("unsafe database name for a filestore directory"));
    };
    if !src.exists() {
        return Ok(());
    }
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_get_no_directory() {
        let d = Path::new("/data");
        for bad in ["", ".", "..", "../etc", "a/b"] {
            assert!(path(d, bad).is_none(), "{bad}");
        }
        assert_eq!(path(d, "cosmos-lab").unwrap(), PathBuf::from("/data/filestore/cosmos-lab"));
    }

    #[test]
    fn rename_then_remove() {
        let dir = tempfile::tempdir().unwrap();
        let src = path(dir.path(), "a").unwrap();
        std::fs::create_dir_all(src.join("ab")).unwrap();
        std::fs::write(src.join("ab/f"), b"x").unwrap();
        rename(dir.path(), "a", "b").unwrap();
        assert!(path(dir.path(), "b").unwrap().join("ab/f").exists());
        remove(dir.path(), "b").unwrap();
        assert!(!path(dir.path(), "b").unwrap().exists());
        rename(dir.path(), "missing", "c").unwrap();
    }
}
