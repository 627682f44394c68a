//! Telling backup formats apart by their first bytes, not their names:
//! PostgreSQL custom dump (`PGDMP`), Odoo backup zip (`PK`), plain SQL;
//! each may be gzip-compressed.

use std::io::Cursor;

use async_compression::tokio::bufread::GzipDecoder;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

use crate::storage::BackupReader;

/// Why a backup's format cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The first bytes could not be read.
    #[error("cannot read the backup: {0}")]
    Read(std::io::Error),
    /// Nothing to read.
    #[error("the backup is empty")]
    Empty,
    /// A gzip header, but no gzip content.
    #[error("the backup is gzip-compressed but cannot be decompressed: {0}")]
    Gzip(std::io::Error),
    /// None of the formats.
    #[error("the backup is neither a PostgreSQL custom dump, an Odoo backup zip nor plain SQL: it may be corrupt or of another kind")]
    Unknown,
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `pg_dump -Fc` output, for `pg_restore`.
    Custom,
    /// Odoo's backup zip: `dump.sql`, `filestore/`, `manifest.json`.
    OdooZip,
    /// Plain SQL, for `psql`.
    PlainSql,
}

impl Format {
    /// A short name for logs and messages.
    pub fn label(self) -> &'static str {
        match self {
            Format::Custom => "PostgreSQL custom dump",
            Format::OdooZip => "Odoo backup zip",
            Format::PlainSql => "plain SQL dump",
        }
    }
}

/// A backup stream whose format is known, positioned at its first byte.
pub struct Sniffed {
    /// The format found.
    pub format: Format,
    /// Whether it was gzip-compressed (the reader yields the decompressed bytes).
    pub gzip: bool,
    /// The (decompressed) content.
    pub reader: BackupReader,
}

impl std::fmt::Debug for Sniffed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sniffed").field("format", &self.format).field("gzip", &self.gzip).finish()
    }
}

/// Reads up to `n` first bytes and gives back a reader that still starts at byte 0.
async fn peek(mut reader: BackupReader, n: usize) -> std::io::Result<(Vec<u8>, BackupReader)> {
    let mut head = Vec::with_capacity(n);
    while head.len() < n {
        let mut chunk = vec![0u8; n - head.len()];
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let rest: BackupReader = Box::pin(Cursor::new(head.clone()).chain(reader));
    Ok((head, rest))
}

/// The format of raw (uncompressed) leading bytes, if recognized.
fn classify(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"PGDMP") {
        Some(Format::Custom)
    } else if head.starts_with(b"PK\x03\x04") {
        Some(Format::OdooZip)
    } else if !head.is_empty() && looks_like_sql(head) {
        Some(Format::PlainSql)
    } else {
        None
    }
}

/// SQL dumps are text: reject anything with control bytes other than white space.
fn looks_like_sql(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    !text.contains('\u{FFFD}') && head.iter().all(|&b| b >= 0x20 || b == b'\n' || b == b'\r' || b == b'\t')
}

/// Finds the format of `reader`, unwrapping gzip.
pub async fn sniff(reader: BackupReader) -> Result<Sniffed, FormatError> {
    let (head, reader) = peek(reader, 512).await.map_err(FormatError::Read)?;
    if head.is_empty() {
        return Err(FormatError::Empty);
    }
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let reader: BackupReader = if gzip {
        let decoder = GzipDecoder::new(BufReader::with_capacity(256 * 1024, reader));
        Box::pin(decoder) as std::pin::Pin<Box<dyn AsyncRead + Send>>
    } else {
        reader
    };
    let (head, reader) = if gzip { peek(reader, 512).await.map_err(FormatError::Gzip)? } else { (head, reader) };
    let format = classify(&head).ok_or(FormatError::Unknown)?;
    Ok(Sniffed { format, gzip, reader })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_compression::tokio::write::GzipEncoder;
    use tokio::io::AsyncWriteExt;

    fn reader(bytes: Vec<u8>) -> BackupReader {
        Box::pin(Cursor::new(bytes))
    }

    async fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzipEncoder::new(Vec::new());
        enc.write_all(bytes).await.unwrap();
        enc.shutdown().await.unwrap();
        enc.into_inner()
    }

    #[tokio::test]
    async fn recognizes_each_format_and_keeps_every_byte() {
        for (bytes, format) in [
            (b"PGDMP\x01\x0e\x00rest".to_vec(), Format::Custom),
            (b"PK\x03\x04zipdata".to_vec(), Format::OdooZip),
            (b"--\n-- PostgreSQL database dump\n".to_vec(), Format::PlainSql),
        ] {
            for compressed in [false, true] {
                let input = if compressed { gz(&bytes).await } else { bytes.clone() };
                let mut s = sniff(reader(input)).await.unwrap();
                assert_eq!((s.format, s.gzip), (format, compressed));
                let mut out = Vec::new();
                s.reader.read_to_end(&mut out).await.unwrap();
                assert_eq!(out, bytes);
            }
        }
    }

    #[tokio::test]
    async fn refuses_garbage_and_empty() {
        assert!(sniff(reader(vec![0, 1, 2, 3, 255, 254])).await.unwrap_err().to_string().contains("corrupt"));
        assert!(sniff(reader(vec![])).await.unwrap_err().to_string().contains("empty"));
        assert!(sniff(reader(vec![0x1f, 0x8b, 1, 2, 3])).await.is_err());
    }
}
