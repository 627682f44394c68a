//! Disk space: a backup is spooled to `<data_dir>/numikube_staging/spool/`
//! only when it fits there, with a margin; what a zip expands to is checked
//! against the free space of where it goes. The staging's disk is Odoo's too:
//! filling it would stop every database on the server.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncWriteExt};

use super::{io, RestoreError};

/// Head room kept free on a file system after a spool or an extraction:
/// a tenth of what is written, and at least 256 MiB.
pub fn margin(bytes: u64) -> u64 {
    (bytes / 10).max(256 << 20)
}

/// The most that may be written where `free` bytes are free, keeping the head room.
pub fn room_for(free: u64) -> u64 {
    free.saturating_sub(256 << 20).min(free / 11 * 10)
}

/// Free bytes on the file system holding `path` (its nearest existing ancestor); `None` when unknown.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let stat = rustix::fs::statvfs(existing).ok()?;
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Refuses to write `bytes` into `dir` when its file system has not that much free, plus the margin.
pub fn check_room(dir: &Path, bytes: u64, what: &str) -> Result<(), RestoreError> {
    let Some(free) = free_bytes(dir) else { return Ok(()) };
    let needed = bytes.saturating_add(margin(bytes));
    if free < needed {
        return Err(RestoreError::NoRoom { what: what.into(), dir: dir.to_path_buf(), needed, free });
    }
    Ok(())
}

/// Free space is read again after this much was written (others write to the disk too).
const RECHECK_EVERY: u64 = 64 << 20;

/// The room left in a directory for files written one by one (an archive
/// unpacked), keeping the head room: free space is read again when short
/// and every [`RECHECK_EVERY`] bytes.
pub struct Room<'a> {
    dir: &'a Path,
    left: u64,
    since: u64,
}

impl<'a> Room<'a> {
    /// The room in `dir` (read at the first [`Room::take`]).
    pub fn new(dir: &'a Path) -> Room<'a> {
        Room { dir, left: 0, since: RECHECK_EVERY }
    }

    /// Takes `bytes` for `what`, or says the disk is short.
    pub fn take(&mut self, bytes: u64, what: &str) -> Result<(), RestoreError> {
        if bytes > self.left || self.since >= RECHECK_EVERY {
            let Some(free) = free_bytes(self.dir) else { return Ok(()) };
            (self.left, self.since) = (room_for(free), 0);
            if bytes > self.left {
                let needed = bytes + margin(bytes);
                return Err(RestoreError::NoRoom { what: what.into(), dir: self.dir.to_path_buf(), needed, free });
            }
        }
        self.left -= bytes;
        self.since += bytes;
        Ok(())
    }
}

/// Writes a stream of about `size` bytes to a temporary file in `dir` (deleted
/// when dropped), after checking that it fits.
pub async fn spool_to_file(
    reader: &mut (dyn AsyncRead + Send + Unpin),
    size: u64,
    dir: &Path,
    suffix: &str,
) -> Result<tempfile::NamedTempFile, RestoreError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    check_room(dir, size, "the download of the backup")?;
    let spool = tempfile::Builder::new()
        .prefix("backup-")
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(io(format!("cannot create a spool file in {}", dir.display())))?;
    let mut file = tokio::fs::File::create(spool.path()).await.map_err(io("cannot write the spool file"))?;
    tokio::io::copy(reader, &mut file).await.map_err(io(format!("downloading the backup to {} failed", spool.path().display())))?;
    file.flush().await.map_err(io("writing the spool file failed"))?;
    Ok(spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_fits_keeps_the_head_room() {
        for free in [0u64, 100 << 20, 300 << 20, 10 << 30] {
            let room = room_for(free);
            assert!(room == 0 || room + margin(room) <= free, "{free}: {room}");
        }
        assert_eq!(room_for(300 << 20), 44 << 20);
    }

    #[test]
    fn room_is_taken_until_the_disk_is_short() {
        let dir = tempfile::tempdir().unwrap();
        let mut room = Room::new(dir.path());
        room.take(1 << 10, "a file").unwrap();
        let err = room.take(u64::MAX / 4, "the entry ab/big").unwrap_err().to_string();
        assert!(err.contains("not enough free disk for the entry ab/big"), "{err}");
    }
}
