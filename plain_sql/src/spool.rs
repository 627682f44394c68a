//! The spool file: the decompressed stream written once, and read back by range
//! from several connections as soon as it is flushed. It is unlinked as soon as it is created, so it goes
//! away with its last handle, whatever happens to the process.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;

use crate::error::LoadError;

/// A spool file being written.
pub(crate) struct Writer {
    file: tokio::io::BufWriter<tokio::fs::File>,
    reader: Spool,
    written: u64,
    limit: u64,
}

/// A spool file to read ranges from; cheap to clone.
#[derive(Clone)]
pub(crate) struct Spool {
    file: Arc<File>,
    dir: PathBuf,
}

impl Writer {
    /// Creates an anonymous spool file in `dir` that may grow to `limit` bytes.
    pub(crate) fn create(dir: &Path, limit: u64) -> Result<Writer, LoadError> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let fail = |source| LoadError::Spool { dir: dir.to_owned(), source };
        let name = format!(".numikube-plain-sql-{}-{}.spool", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed));
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(fail)?;
        std::fs::remove_file(&path).map_err(fail)?;
        let writer = file.try_clone().map_err(fail)?;
        Ok(Writer {
            file: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(writer)),
            reader: Spool { file: Arc::new(file), dir: dir.to_owned() },
            written: 0,
            limit,
        })
    }

    /// Appends `bytes`.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), LoadError> {
        let dir = &self.reader.dir;
        self.written += bytes.len() as u64;
        if self.written > self.limit {
            return Err(LoadError::SpoolFull { dir: dir.clone(), limit: self.limit });
        }
        self.file.write_all(bytes).await.map_err(|source| LoadError::Spool { dir: dir.clone(), source })
    }

    /// Flushes what was written: from then on it can be read back by range.
    pub(crate) async fn flush(&mut self) -> Result<(), LoadError> {
        let dir = &self.reader.dir;
        self.file.flush().await.map_err(|source| LoadError::Spool { dir: dir.clone(), source })
    }

    /// A reader of the file, for what has been flushed.
    pub(crate) fn reader(&self) -> Spool {
        self.reader.clone()
    }
}

impl Spool {
    /// Reads `len` bytes at `offset`.
    pub(crate) async fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>, LoadError> {
        let file = self.file.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; len];
            file.read_exact_at(&mut buf, offset).map(|()| buf)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        result.map_err(|source| LoadError::Spool { dir: self.dir.clone(), source })
    }

    /// Reads the statement text at `offset`.
    pub(crate) async fn text(&self, offset: u64, len: usize) -> Result<String, LoadError> {
        let bytes = self.read(offset, len).await?;
        // The scanner checked this text was UTF-8 when it was written.
        String::from_utf8(bytes).map_err(|e| LoadError::Spool { dir: self.dir.clone(), source: std::io::Error::other(e) })
    }
}
