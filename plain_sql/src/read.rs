//! Cuts the backup stream into pieces of at most one line, so that neither a long
//! line nor a whole table is ever held in memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest piece handed out: a longer line comes in several pieces, a shorter one
/// always whole.
pub(crate) const PIECE: usize = 256 * 1024;

/// A reader handing out the stream line by line, long lines in pieces.
pub(crate) struct Pieces<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    /// Bytes after `start` known to hold no `\n`.
    scanned: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> Pieces<R> {
    /// Wraps `reader`.
    pub(crate) fn new(reader: R) -> Self {
        Pieces { inner: reader, buf: Vec::with_capacity(2 * PIECE), start: 0, scanned: 0, eof: false }
    }

    /// The next piece and whether it ends its line (a last line without `\n` counts as
    /// ended); `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> std::io::Result<Option<(&[u8], bool)>> {
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = pending[self.scanned..].iter().position(|&b| b == b'\n') {
                let piece = self.start..self.start + self.scanned + i + 1;
                self.start = piece.end;
                self.scanned = 0;
                return Ok(Some((&self.buf[piece], true)));
            }
            self.scanned = pending.len();
            if pending.len() >= PIECE || (self.eof && !pending.is_empty()) {
                let take = pending.len().min(PIECE);
                let piece = self.start..self.start + take;
                self.start = piece.end;
                self.scanned = 0;
                let ends = self.eof && self.start == self.buf.len();
                return Ok(Some((&self.buf[piece], ends)));
            }
            if self.eof {
                return Ok(None);
            }
            // Keep the unfinished line, make room when needed and read more.
            if self.buf.capacity() - self.buf.len() < PIECE / 4 {
                self.buf.drain(..self.start);
                self.start = 0;
                self.buf.reserve(PIECE);
            }
            let n = self.inner.read_buf(&mut self.buf).await?;
            self.eof = n == 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_and_pieces() {
        let mut input = b"a\nbc\n".to_vec();
        input.extend_from_slice(&vec![b'x'; PIECE + 10]);
        input.extend_from_slice(b"\nlast");
        // A reader handing out 7 bytes at a time still gives whole short lines.
        let (mut w, r) = tokio::io::duplex(7);
        let feed = input.clone();
        tokio::spawn(async move { tokio::io::AsyncWriteExt::write_all(&mut w, &feed).await });
        let mut p = Pieces::new(r);
        let mut got = Vec::new();
        while let Some((piece, ends)) = p.next().await.unwrap() {
            got.push((piece.len(), ends));
        }
        assert_eq!(got, vec![(2, true), (3, true), (PIECE, false), (11, true), (4, true)]);
    }
}
