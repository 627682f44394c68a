//! Unpacking a companion archive (`<backup>.filestore.tar[.gz|.zst]`, see
//! [`crate::storage::companion`]) into the hidden copy's filestore, streamed
//! from the bucket while the database loads. Its entries are Odoo's
//! `xx/<sha1>` tree, at the archive's root or under `filestore/`. The zip's
//! guards apply: only files and folders (no link, no device), nothing outside
//! the folder, sizes as declared, a bound on what it expands to against its
//! compressed size, and the disk's head room kept, checked before and while
//! writing ([`super::spool`]).

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::io::SyncIoBridge;

use bytesize::ByteSize;

use crate::copy::restore::entry_path::{in_filestore, Outside};
use crate::copy::restore::spool::Room;
use crate::copy::restore::{RestoreError, MAX_TOTAL_RATIO};
use crate::storage::BackupReader;

/// What the headers of one entry (its name, long-name and pax records) may take at most.
const HEADER_ROOM: u64 = 1 << 20;

/// Why a companion archive was refused or could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum CompanionError {
    /// A link, a device, a FIFO…: the archive is refused.
    #[error("its entry {entry} is a {kind}; a filestore archive may hold only files and folders")]
    Kind {
        /// The entry's name.
        entry: String,
        /// What it is.
        kind: String,
    },
    /// An absolute path or a `..`.
    #[error("its entry {0} points outside the filestore folder (an absolute path or ..)")]
    Outside(String),
    /// An entry that holds other than it declares.
    #[error("its entry {entry} holds {actual} bytes where its header declares {declared}")]
    Size {
        /// The entry's name.
        entry: String,
        /// What its header says.
        declared: u64,
        /// What it held.
        actual: u64,
    },
    /// It expands beyond the ratio bound.
    #[error("it expands to more than {MAX_TOTAL_RATIO} times its {} (a tar bomb?)", ByteSize(*.compressed))]
    Bomb {
        /// Its size in the bucket.
        compressed: u64,
    },
    /// An entry's headers (long names, pax records) beyond [`HEADER_ROOM`].
    #[error("an entry's headers take more than {} (a tar bomb?)", ByteSize(HEADER_ROOM))]
    Headers,
    /// Not enough free disk (with the head room).
    #[error(transparent)]
    Room(RestoreError),
    /// Not a tar archive, truncated, or a write failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The load beside it failed first.
    #[error("stopped because the load failed")]
    Stopped,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CompanionError {
    let what = what.into();
    move |source| CompanionError::Io { what, source }
}

/// The archive's stream decompressed by what its first bytes say: gzip, zstd, or a plain tar.
pub async fn decompressed(stream: BackupReader) -> std::io::Result<BackupReader> {
    let mut buffered = BufReader::with_capacity(256 << 10, stream);
    let head = buffered.fill_buf().await?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        let mut decoder = GzipDecoder::new(buffered);
        decoder.multiple_members(true);
        Box::pin(decoder)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut decoder = ZstdDecoder::new(buffered);
        decoder.multiple_members(true);
        Box::pin(decoder)
    } else {
        Box::pin(buffered)
    })
}

/// A blocking reader of the async `stream`, for [`unpack`] on a blocking thread
/// (made here, on the runtime, which the bridge needs).
pub fn blocking_reader(stream: BackupReader) -> impl Read + Send {
    std::io::BufReader::with_capacity(256 << 10, SyncIoBridge::new(stream))
}

/// Unpacks the tar stream `archive` (`compressed` bytes in the bucket) into
/// `dir`; returns how many files it wrote. Stops once `stop` is set.
pub fn unpack(archive: impl Read, compressed: u64, dir: &Path, stop: &AtomicBool) -> Result<u64, CompanionError> {
    let state = Rc::new(Guard {
        read: Cell::new(0),
        window: Cell::new(HEADER_ROOM),
        limit: compressed.max(1) * MAX_TOTAL_RATIO,
        tripped: Cell::new(None),
    });
    let mut tar = tar::Archive::new(Guarded { inner: archive, guard: state.clone(), stop });
    let tripped = |e: std::io::Error, what: &str| state.tripped.take().unwrap_or_else(|| io(what)(e));
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let mut room = Room::new(dir);
    let mut files = 0;
    let entries = tar.entries().map_err(|e| tripped(e, "the filestore archive is not a tar archive"))?;
    // The window covers each entry's data (read whole, or skipped by the
    // parser) and the next entry's headers: it is moved once per entry.
    for entry in entries {
        let mut entry = entry.map_err(|e| tripped(e, "the filestore archive is not a tar archive, or is truncated"))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let declared = entry.size();
        state.window.set(state.read.get() + declared + HEADER_ROOM);
        let is_dir = match entry.header().entry_type() {
            tar::EntryType::Directory => true,
            tar::EntryType::Regular | tar::EntryType::Continuous => name.ends_with('/') && declared == 0,
            tar::EntryType::XGlobalHeader => continue,
            other => return Err(CompanionError::Kind { entry: name, kind: kind(other) }),
        };
        let Some(relative) = inside(&name)? else { continue };
        let target = dir.join(relative);
        if is_dir {
            std::fs::create_dir_all(&target).map_err(io(format!("cannot create {}", target.display())))?;
            continue;
        }
        room.take(declared, &format!("the filestore archive's entry {name}")).map_err(CompanionError::Room)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
        }
        let mut out = std::fs::File::create(&target).map_err(io(format!("cannot write {}", target.display())))?;
        let actual =
            std::io::copy(&mut (&mut entry).take(declared + 1), &mut out).map_err(|e| tripped(e, &format!("unpacking {name} failed")))?;
        if actual != declared {
            return Err(CompanionError::Size { entry: name, declared, actual });
        }
        files += 1;
    }
    Ok(files)
}

/// The archive's path `name` relative to the filestore: `None` for the root
/// itself (`./`, `filestore/`); refused when it leaves the folder.
fn inside(name: &str) -> Result<Option<PathBuf>, CompanionError> {
    in_filestore(name).map_err(|Outside| CompanionError::Outside(name.into()))
}

/// A few words for an entry type that is refused.
fn kind(t: tar::EntryType) -> String {
    match t {
        tar::EntryType::Link => "hard link".into(),
        tar::EntryType::Symlink => "symbolic link".into(),
        tar::EntryType::Char | tar::EntryType::Block => "device".into(),
        tar::EntryType::Fifo => "FIFO".into(),
        tar::EntryType::GNUSparse => "sparse file".into(),
        other => format!("entry of type {:?}", other.as_byte() as char),
    }
}

/// What the unpacking loop and the reader under the tar parser share.
struct Guard {
    /// Bytes of tar stream read so far.
    read: Cell<u64>,
    /// Where the current entry (with the next one's headers) must end.
    window: Cell<u64>,
    /// What the whole stream may expand to.
    limit: u64,
    /// Why the reader failed, when a guard tripped.
    tripped: Cell<Option<CompanionError>>,
}

/// The decompressed stream under the tar parser, failing past the guard's bounds or once stopped.
struct Guarded<'a, R> {
    inner: R,
    guard: Rc<Guard>,
    stop: &'a AtomicBool,
}

impl<R: Read> Read for Guarded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let g = &self.guard;
        let trip = |why: CompanionError| {
            let text = why.to_string();
            g.tripped.set(Some(why));
            Err(std::io::Error::other(text))
        };
        if self.stop.load(Ordering::Relaxed) {
            return trip(CompanionError::Stopped);
        }
        let n = self.inner.read(buf)?;
        g.read.set(g.read.get() + n as u64);
        if g.read.get() > g.limit {
            return trip(CompanionError::Bomb { compressed: g.limit / MAX_TOTAL_RATIO });
        }
        if g.read.get() > g.window.get() {
            return trip(CompanionError::Headers);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn entries_at_the_root_or_under_filestore_land_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[("ab/abc", b"one"), ("filestore/cd/cde", b"two"), ("./ef/efg", b"three")]);
        assert_eq!(unpack(archive.as_slice(), archive.len() as u64, dir.path(), &AtomicBool::new(false)).unwrap(), 3);
        assert_eq!(std::fs::read(dir.path().join("ab/abc")).unwrap(), b"one");
        assert_eq!(std::fs::read(dir.path().join("cd/cde")).unwrap(), b"two");
        assert_eq!(std::fs::read(dir.path().join("ef/efg")).unwrap(), b"three");
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        for bad in ["../x", "ab/../../x", "/etc/x"] {
            assert!(matches!(inside(bad), Err(CompanionError::Outside(_))), "{bad}");
        }
        assert_eq!(inside("filestore/").unwrap(), None);
        assert_eq!(inside("filestore/ab/x").unwrap().unwrap(), PathBuf::from("ab/x"));
    }

    #[test]
    fn a_stream_beyond_the_ratio_is_a_bomb() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[("ab/zeros", &[0u8; 100_000])]);
        let err = unpack(archive.as_slice(), 100, dir.path(), &AtomicBool::new(false)).unwrap_err();
        assert!(matches!(err, CompanionError::Bomb { .. }), "{err}");
    }

    #[test]
    fn a_name_longer_than_the_header_room_is_refused_before_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("ab/{}", "x".repeat(2 << 20));
        let archive = tar_of(&[("ab/abc", b"one"), (long.as_str(), b"two")]);
        let err = unpack(archive.as_slice(), archive.len() as u64, dir.path(), &AtomicBool::new(false)).unwrap_err();
        assert!(matches!(err, CompanionError::Headers), "{err}");
    }

    #[test]
    fn a_stopped_unpack_fails() {
        let dir = tempfile::tempdir().unwrap();
        let archive = tar_of(&[("ab/abc", b"one")]);
        let err = unpack(archive.as_slice(), archive.len() as u64, dir.path(), &AtomicBool::new(true)).unwrap_err();
        assert!(matches!(err, CompanionError::Stopped), "{err}");
    }
}
