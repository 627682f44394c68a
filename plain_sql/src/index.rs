//! The spool-and-index pass: one read of the stream that writes it to the spool
//! file and hands on, as soon as each is spooled, the session settings, the
//! statements and the COPY data cut into chunks of whole lines, refusing
//! meta-commands on the way (before anything of their line runs).

use std::ops::Range;
use std::path::Path;

use tokio::io::AsyncRead;
use tokio::sync::mpsc::UnboundedSender;

use crate::classify::{Class, Kind};
use crate::conn::SessionStmt;
use crate::error::LoadError;
use crate::read::{Pieces, PIECE};
use crate::scan::{Event, Scanner};
use crate::spool::{Spool, Writer};

/// COPY data handed on in chunks of about this many bytes, cut between lines,
/// so that the chunks of one big table load side by side as it streams in.
pub(crate) const CHUNK: u64 = 4 << 20;

/// A statement of the spooled stream.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    /// 1-based line where it starts.
    pub line: u64,
    /// Where its text is in the spool file.
    pub offset: u64,
    /// Length of its text.
    pub len: usize,
    /// Where it belongs.
    pub class: Class,
    /// How many session statements come before it.
    pub session: usize,
}

impl Stmt {
    /// Where its text is in the spool file.
    pub(crate) fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.len as u64
    }
}

/// What the pass hands on, in the stream's order, once it is in the spool file
/// (flushed: readable by range).
#[derive(Debug)]
pub(crate) enum Spooled {
    /// A session setting, the next of the log.
    Session(SessionStmt),
    /// A statement (other than a session setting or a COPY).
    Stmt(Stmt),
    /// A chunk of COPY data: the COPY statement and a range of whole lines of its data.
    Chunk(Stmt, Range<u64>),
    /// A COPY block ended.
    CopyEnd,
}

/// Opens a spool file in `dir` of at most `limit` bytes; gives the writer and a reader of it.
pub(crate) fn spool(dir: &Path, limit: u64) -> Result<(Writer, Spool), LoadError> {
    let writer = Writer::create(dir, limit)?;
    let reader = writer.reader();
    Ok((writer, reader))
}

/// Reads `reader` once into `writer`, sending what it finds to `tx` as soon as
/// it is spooled; ends once everything is written and flushed (or the receiver
/// is gone).
pub(crate) async fn index<R: AsyncRead + Unpin>(reader: R, mut writer: Writer, tx: UnboundedSender<Spooled>) -> Result<(), LoadError> {
    let mut pieces = Pieces::new(reader);
    let mut scanner = Scanner::new();
    let mut events = Vec::new();
    let mut sessions = 0;
    // The COPY being read, whether it may be cut between lines, and where its next chunk starts.
    let mut copy: Option<(Stmt, bool, u64)> = None;
    // What waits for the next flush.
    let mut ready: Vec<Spooled> = Vec::new();
    // Bytes read since the load last had a turn.
    let mut unyielded = 0;
    while let Some((piece, ends_line)) = pieces.next().await.map_err(LoadError::Read)? {
        let piece_len = piece.len();
        scanner.feed(piece, ends_line, &mut events)?;
        writer.write(piece).await?;
        for event in events.drain(..) {
            match event {
                Event::Stmt(s) if s.class.kind == Kind::Session => {
                    sessions += 1;
                    ready.push(Spooled::Session(SessionStmt { line: s.line, text: s.text, tolerance: s.class.tolerance }));
                }
                Event::Stmt(s) => {
                    let len = s.text.len();
                    ready.push(Spooled::Stmt(Stmt { line: s.line, offset: s.offset, len, class: s.class, session: sessions }));
                }
                Event::CopyStart(s, data) => {
                    let lines = matches!(s.class.kind, Kind::Copy { lines: true });
                    let len = s.text.len();
                    copy = Some((Stmt { line: s.line, offset: s.offset, len, class: s.class, session: sessions }, lines, data));
                }
                Event::CopyData { offset, line_start, .. } => {
                    let (stmt, lines, start) = copy.as_mut().expect("COPY data comes after its COPY");
                    if *lines && line_start && offset - *start >= CHUNK {
                        ready.push(Spooled::Chunk(stmt.clone(), *start..offset));
                        *start = offset;
                    }
                }
                Event::CopyEnd { offset } => {
                    let (stmt, _, start) = copy.take().expect("a COPY ends after it starts");
                    if offset > start {
                        ready.push(Spooled::Chunk(stmt, start..offset));
                    }
                    ready.push(Spooled::CopyEnd);
                }
            }
        }
        // Chunks are read back from the file: flushed first. Statements wait for
        // the next chunk or the end, whichever comes first, unless no COPY is
        // under way (then at once: the schema runs while the stream comes in).
        if !ready.is_empty() && (copy.is_none() || ready.iter().any(|r| matches!(r, Spooled::Chunk(..)))) {
            writer.flush().await?;
            for r in ready.drain(..) {
                if tx.send(r).is_err() {
                    return Ok(()); // the load stopped (it failed): nothing more to do
                }
            }
            // The load runs in the same task: let it take what was handed on.
            tokio::task::yield_now().await;
            unyielded = 0;
        }
        unyielded += piece_len;
        if unyielded >= PIECE {
            // Nor is it kept waiting by a long stretch of short lines.
            tokio::task::yield_now().await;
            unyielded = 0;
        }
    }
    scanner.finish()?;
    writer.flush().await?;
    for r in ready {
        let _ = tx.send(r);
    }
    Ok(())
}
