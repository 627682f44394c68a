//! Spooled downloads left by processes that died.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Removes downloads spooled by processes that died (a killed sidecar's
/// `.dump` or `.zip` can be as large as a backup). A live job holds its spool
/// file open, so a file no process has open is an orphan; when open files
/// cannot be listed, nothing is removed. Returns how many files went.
pub fn remove_orphan_spool_files(dir: &Path) -> u64 {
    let Ok(dir) = dir.canonicalize() else { return 0 };
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    if files.is_empty() {
        return 0;
    }
    // Listed after the files: a spool file is open from the moment it exists.
    let Some(open) = open_files() else { return 0 };
    let mut removed = 0;
    for file in files.into_iter().filter(|f| !open.contains(f)) {
        tracing::warn!("removing {}, spooled by a process that no longer runs", file.display());
        match std::fs::remove_file(&file) {
            Ok(()) => removed += 1,
            Err(e) => tracing::error!("could not remove {}: {e}", file.display()),
        }
    }
    removed
}

/// Every file some process has open, from `/proc/<pid>/fd` (procfs).
fn open_files() -> Option<HashSet<PathBuf>> {
    let mut open = HashSet::new();
    for process in procfs::process::all_processes().ok()?.flatten() {
        // A process that ended meanwhile, or one we may not look into, holds nothing we could see.
        let Ok(fds) = process.fd() else { continue };
        open.extend(fds.flatten().filter_map(|fd| match fd.target {
            procfs::process::FDTarget::Path(path) => Some(path),
            _ => None,
        }));
    }
    (!open.is_empty()).then_some(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_spool_files_nobody_holds_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let held = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
        let orphan = dir.path().join("backup-orphan.dump");
        std::fs::write(&orphan, b"PGDMP").unwrap();
        remove_orphan_spool_files(dir.path());
        assert!(held.path().exists(), "a live job's spool file stays");
        assert!(!orphan.exists(), "a dead process's spool file goes");
    }
}
