//! Odoo's backup zip (database manager, `odoo-bin db dump`, Odoo.sh, OCA
//! auto_backup): `dump.sql`, `filestore/` and `manifest.json`. The zip needs
//! its central directory, so it is spooled first; then its manifest is
//! checked (Odoo version), what it expands to is bounded (no zip bomb, no
//! full disk), and `dump.sql` is loaded by the plain SQL loader while the
//! filestore is extracted beside it, straight to where the copy will use it.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::io::StreamReader;

use bytesize::ByteSize;

use super::entry_path::{in_filestore, Outside};
use super::format::Sniffed;
use super::spool::{check_room, spool_to_file};
use super::{io, Restore, RestoreError, RestoreReport};
use crate::copy::odoo_tree::major_of;

/// Deflate cannot compress more than about 1032 to 1: a higher declared ratio is a lie.
const MAX_RATIO: u64 = 1032;
/// What a whole Odoo zip may expand to, at most, against its own size
/// (SQL compresses about 5 to 10 times, a filestore hardly at all).
pub const MAX_TOTAL_RATIO: u64 = 200;
/// Entries a zip may hold (a filestore of a million files is already rare).
const MAX_ENTRIES: usize = 2_000_000;

type Archive = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

fn open(path: &Path) -> Result<Archive, RestoreError> {
    let file = std::fs::File::open(path).map_err(io("cannot reopen the spooled zip"))?;
    zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| RestoreError::Zip(format!("the backup zip is unreadable (corrupt or truncated?): {e}")))
}

/// What the central directory says, checked before anything is written.
struct Contents {
    /// Declared size of `dump.sql`.
    dump_bytes: u64,
    /// Declared size of everything under `filestore/`.
    filestore_bytes: u64,
    /// `major_version` of `manifest.json` (else `version_info[:2]`), if there is one.
    version: Option<String>,
}

/// Reads the central directory and the manifest; refuses absurd sizes.
fn inspect(path: &Path, zip_bytes: u64) -> Result<Contents, RestoreError> {
    let mut archive = open(path)?;
    if archive.len() > MAX_ENTRIES {
        return Err(RestoreError::Bomb(format!("it holds {} entries (at most {MAX_ENTRIES})", archive.len())));
    }
    let (mut dump_bytes, mut filestore_bytes, mut total, mut has_dump) = (0u64, 0u64, 0u64, false);
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| RestoreError::Zip(format!("the backup zip is corrupt: {e}")))?;
        let (size, packed) = (entry.size(), entry.compressed_size());
        if size > packed.max(1).saturating_mul(MAX_RATIO) {
            return Err(RestoreError::Bomb(format!(
                "its entry {} claims {} from {} compressed, more than deflate can expand",
                entry.name(),
                ByteSize(size),
                ByteSize(packed)
            )));
        }
        total = total.saturating_add(size);
        match entry.name() {
            "dump.sql" => (has_dump, dump_bytes) = (true, size),
            name if name.starts_with("filestore/") => {
                filestore_path(name, entry.is_symlink())?;
                filestore_bytes = filestore_bytes.saturating_add(size);
            }
            _ => {}
        }
    }
    if total > zip_bytes.max(1).saturating_mul(MAX_TOTAL_RATIO) {
        return Err(RestoreError::Bomb(format!(
            "it expands to {} from {} (more than {MAX_TOTAL_RATIO} times)",
            ByteSize(total),
            ByteSize(zip_bytes)
        )));
    }
    if !has_dump {
        return Err(RestoreError::Zip("the zip has no dump.sql: it is not an Odoo backup".into()));
    }
    Ok(Contents { dump_bytes, filestore_bytes, version: manifest_version(&mut archive)? })
}

/// `major_version` of `manifest.json`, else the first two parts of `version_info`.
fn manifest_version(archive: &mut Archive) -> Result<Option<String>, RestoreError> {
    let Ok(entry) = archive.by_name("manifest.json") else { return Ok(None) };
    let mut text = String::new();
    entry.take(1 << 20).read_to_string(&mut text).map_err(io("reading manifest.json from the zip failed"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| RestoreError::Zip(format!("the zip's manifest.json is not JSON: {e}")))?;
    if let Some(major) = manifest.get("major_version").and_then(|v| v.as_str()) {
        return Ok(Some(major.to_string()));
    }
    let info = manifest.get("version_info").and_then(|v| v.as_array());
    Ok(info.filter(|i| i.len() >= 2).map(|i| format!("{}.{}", plain(&i[0]), plain(&i[1]))))
}

fn plain(v: &serde_json::Value) -> String {
    v.as_str().map(String::from).unwrap_or_else(|| v.to_string())
}

/// Restores an Odoo zip: spool, check, then `dump.sql` and the filestore side by side.
pub async fn restore_zip(r: &Restore<'_>, loader: &plain_sql::LoadOptions, mut backup: Sniffed) -> Result<RestoreReport, RestoreError> {
    let spool = r.timeline.time("download", spool_to_file(&mut backup.reader, r.size, r.spool_dir, ".zip")).await?;
    let path = spool.path().to_path_buf();
    let zip_bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(r.size);
    let contents = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || inspect(&path, zip_bytes)).await.map_err(|e| RestoreError::Zip(e.to_string()))??
    };
    if let (Some(backup), Some(staging)) = (&contents.version, &r.staging_version) {
        if major_of(backup).is_none() || major_of(backup) != major_of(staging) {
            return Err(RestoreError::Version { backup: backup.clone(), staging: staging.clone() });
        }
    }
    r.restored.total.store(contents.dump_bytes, std::sync::atomic::Ordering::Relaxed);
    (r.restoring)();
    let data_dir = r.filestore_dir.parent().unwrap_or(r.filestore_dir);
    check_room(data_dir, contents.filestore_bytes, "the backup's filestore")?;
    if r.parallel() {
        check_room(r.spool_dir, contents.dump_bytes, "the backup's dump.sql, spooled to load it in parallel")?;
    }
    let started = std::time::SystemTime::now();
    let sql = async {
        let reader = entry_stream(path.clone(), contents.dump_bytes);
        plain_sql::load(reader, loader).await.map_err(RestoreError::Sql)
    };
    let (files_path, dir) = (path.clone(), r.filestore_dir.to_path_buf());
    let files = r.timeline.time("filestore", async {
        tokio::task::spawn_blocking(move || extract_filestore(&files_path, &dir)).await.map_err(|e| RestoreError::Zip(e.to_string()))?
    });
    let (loaded, extracted) = tokio::join!(sql, files);
    extracted?;
    let report = loaded?;
    drop(spool);
    Ok(RestoreReport::new(report, r.timeline, started))
}

/// `dump.sql` of the zip at `path` as an async stream, read on a blocking
/// thread, never more than `declared` bytes.
fn entry_stream(path: PathBuf, declared: u64) -> impl tokio::io::AsyncRead + Send + Unpin {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let send = |item| tx.blocking_send(item).is_ok();
        let mut archive = match open(&path) {
            Ok(a) => a,
            Err(e) => {
                let _ = send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let mut entry = match archive.by_name("dump.sql") {
            Ok(e) => e.take(declared + 1),
            Err(e) => {
                let _ = send(Err(std::io::Error::other(e.to_string())));
                return;
            }
        };
        let (mut buf, mut read) = (vec![0u8; 256 * 1024], 0u64);
        loop {
            match entry.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    read += n as u64;
                    if read > declared {
                        let lie = std::io::Error::other("dump.sql expands beyond the size the zip declares (a zip bomb?)");
                        let _ = send(Err(lie));
                        return;
                    }
                    if !send(Ok(Bytes::copy_from_slice(&buf[..n]))) {
                        return; // the loader stopped reading
                    }
                }
                Err(e) => {
                    let _ = send(Err(e));
                    return;
                }
            }
        }
    });
    StreamReader::new(tokio_stream_of(rx))
}

fn tokio_stream_of(rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed()
}

/// Where the entry `name` (under `filestore/`, as the caller checked) goes, relative to the
/// copy's filestore (`None` for the folder itself); refused when it would
/// leave that folder (`..`, an absolute path) or is a link: a backup writes
/// nothing outside its own copy's filestore, and a copy's folder may hold
/// hard links to production's files.
fn filestore_path(name: &str, is_link: bool) -> Result<Option<PathBuf>, RestoreError> {
    let refused = |why: &str| RestoreError::Zip(format!("the backup zip is refused: its entry {name} {why}"));
    let relative = in_filestore(name).map_err(|Outside| refused("points outside the filestore folder (an absolute path or ..)"))?;
    if is_link {
        return Err(refused("is a symbolic link; a filestore may hold only files and folders"));
    }
    Ok(relative)
}

/// Extracts `filestore/…` entries into `dir`, refusing paths that escape it,
/// links, and entries that expand beyond or fall short of their declared size.
fn extract_filestore(path: &Path, dir: &Path) -> Result<(), RestoreError> {
    let mut archive = open(path)?;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| RestoreError::Zip(format!("the backup zip is corrupt: {e}")))?;
        let name = entry.name().to_string();
        if !name.starts_with("filestore/") {
            continue;
        }
        let Some(relative) = filestore_path(&name, entry.is_symlink())? else { continue };
        let target = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(format!("cannot create {}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
        }
        let declared = entry.size();
        let mut out = std::fs::File::create(&target).map_err(io(format!("cannot write {}", target.display())))?;
        let written =
            std::io::copy(&mut entry.take(declared + 1), &mut out).map_err(io(format!("extracting {} failed", target.display())))?;
        if written > declared {
            return Err(RestoreError::Bomb(format!("its entry {name} expands beyond its declared {}", ByteSize(declared))));
        }
        if written < declared {
            return Err(RestoreError::Zip(format!(
                "the backup zip is corrupt: its entry {name} holds {written} bytes where it declares {declared}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filestore_entry_stays_in_the_copys_folder_and_is_no_link() {
        assert_eq!(filestore_path("filestore/ab/abcdef", false).unwrap(), Some(PathBuf::from("ab/abcdef")));
        assert_eq!(filestore_path("filestore/./ab/", false).unwrap(), Some(PathBuf::from("ab")));
        assert_eq!(filestore_path("filestore/", false).unwrap(), None);
        for escaping in ["filestore/../victim/ab/f", "filestore/ab/../../x", "filestore//../x"] {
            let error = filestore_path(escaping, false).unwrap_err().to_string();
            assert!(error.contains("points outside the filestore folder") && error.contains(escaping), "{error}");
        }
        let error = filestore_path("filestore/ab/passwd", true).unwrap_err().to_string();
        assert!(error.contains("filestore/ab/passwd is a symbolic link"), "{error}");
    }
}
