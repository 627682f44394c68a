//! The filestore directories, `<data_dir>/filestore/<db>`, that go with databases.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Runs a filestore operation on a blocking thread: a large filestore takes
/// long to remove or link, and the async core must keep answering meanwhile.
async fn off_core<T: Send + 'static>(op: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> std::io::Result<T> {
    tokio::task::spawn_blocking(op).await.map_err(std::io::Error::other)?
}

/// As [`remove`], off the async core.
pub async fn remove_off_core(data_dir: &Path, db: &str) -> std::io::Result<()> {
    let (data_dir, db) = (data_dir.to_path_buf(), db.to_string());
    off_core(move || remove(&data_dir, &db)).await
}

/// As [`rename`], off the async core.
pub async fn rename_off_core(data_dir: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let (data_dir, from, to) = (data_dir.to_path_buf(), from.to_string(), to.to_string());
    off_core(move || rename(&data_dir, &from, &to)).await
}

/// As [`link_copy`], off the async core.
pub async fn link_copy_off_core(data_dir: &Path, from: &str, to: &str) -> std::io::Result<u64> {
    let (data_dir, from, to) = (data_dir.to_path_buf(), from.to_string(), to.to_string());
    off_core(move || link_copy(&data_dir, &from, &to)).await
}

/// Copies the filestore of `from` to `to` with hard links: Odoo never rewrites
/// a filestore file in place, so the copy costs no space and almost no time.
/// Falls back to a real copy across file systems.
pub fn link_copy(data_dir: &Path, from: &str, to: &str) -> std::io::Result<u64> {
    let (Some(src), Some(dst)) = (path(data_dir, from), path(data_dir, to)) else {
        return Err(std::io::Error::other("unsafe database name for a filestore directory"));
    };
    if !src.exists() {
        return Ok(0);
    }
    link_tree(&src, &dst, &AtomicBool::new(false))
}

/// Hard-links every file below `src` into `dst` (made as needed), copying
/// those that cannot be linked (another file system, a file of another
/// owner under `fs.protected_hardlinks`); returns how many files it placed.
/// `src` is only read: opened read-only, never chmod'ed nor touched. Anything
/// but files and folders (a symbolic link, a socket) is skipped with a
/// warning. Stops with an error once `stop` is set.
pub fn link_tree(src: &Path, dst: &Path, stop: &AtomicBool) -> std::io::Result<u64> {
    std::fs::create_dir_all(dst)?;
    let mut files = 0;
    for entry in std::fs::read_dir(src)? {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("stopped"));
        }
        let entry = entry?;
        let target = dst.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            files += link_tree(&entry.path(), &target, stop)?;
        } else if kind.is_file() {
            if std::fs::hard_link(entry.path(), &target).is_err() {
                std::fs::copy(entry.path(), &target)?;
            }
            files += 1;
        } else {
            tracing::warn!("{} is neither a file nor a folder: not put in the copy's filestore", entry.path().display());
        }
    }
    Ok(files)
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

    #[test]
    fn link_copy_shares_the_files() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = path(dir.path(), "tpl").unwrap();
        std::fs::create_dir_all(src.join("ab")).unwrap();
        std::fs::write(src.join("ab/f"), b"x").unwrap();
        assert_eq!(link_copy(dir.path(), "tpl", "copy").unwrap(), 1);
        let a = std::fs::metadata(src.join("ab/f")).unwrap();
        let b = std::fs::metadata(path(dir.path(), "copy").unwrap().join("ab/f")).unwrap();
        assert_eq!(a.ino(), b.ino());
    }

    #[test]
    fn link_tree_skips_symbolic_links_and_leaves_the_source_as_it_was() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("ab")).unwrap();
        std::fs::write(src.join("ab/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("ab/link")).unwrap();
        let before = std::fs::metadata(src.join("ab/f")).unwrap();
        assert_eq!(link_tree(&src, &dir.path().join("dst"), &AtomicBool::new(false)).unwrap(), 1);
        assert!(!dir.path().join("dst/ab/link").exists() && dir.path().join("dst/ab/f").exists());
        let after = std::fs::metadata(src.join("ab/f")).unwrap();
        assert_eq!((before.mtime(), before.mode(), before.nlink() + 1), (after.mtime(), after.mode(), after.nlink()));
        assert!(link_tree(&src, &dir.path().join("again"), &AtomicBool::new(true)).is_err());
    }
}
