//! The spool-and-index pass: one read of the stream that writes it to the spool
//! file and notes where each statement and COPY block is, refusing meta-commands
//! on the way, so that nothing has run when a backup is refused.

use std::ops::Range;
use std::path::Path;

use tokio::io::AsyncRead;

use crate::classify::{Class, Kind};
use crate::conn::SessionStmt;
use crate::error::LoadError;
use crate::read::{Pieces, PIECE};
use crate::scan::{Event, Scanner};
use crate::spool::{Spool, Writer};

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

/// A `COPY … FROM stdin` block of the spooled stream.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// The COPY statement.
    pub stmt: Stmt,
    /// Where its data is in the spool file (whole lines, without the `\.` line).
    pub data: Range<u64>,
    /// Offsets of line starts in the data, about [`PIECE`] bytes apart: where it may
    /// be cut into chunks.
    pub cuts: Vec<u64>,
}

/// One item of the stream, in order.
#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A statement (other than a session setting).
    Stmt(Stmt),
    /// A COPY block.
    Copy(Block),
}

/// The spooled, indexed stream.
pub(crate) struct Indexed {
    /// The spool file.
    pub spool: Spool,
    /// Statements and COPY blocks, in order.
    pub items: Vec<Item>,
    /// The session statements, in order.
    pub log: Vec<SessionStmt>,
}

/// Reads `reader` once into a spool file in `dir` of at most `limit` bytes, indexing it.
pub(crate) async fn index<R: AsyncRead + Unpin>(reader: R, dir: &Path, limit: u64) -> Result<Indexed, LoadError> {
    let mut writer = Writer::create(dir, limit)?;
    let mut pieces = Pieces::new(reader);
    let mut scanner = Scanner::new();
    let mut events = Vec::new();
    let mut items = Vec::new();
    let mut log = Vec::new();
    let mut block: Option<Block> = None;
    while let Some((piece, ends_line)) = pieces.next().await.map_err(LoadError::Read)? {
        scanner.feed(piece, ends_line, &mut events)?;
        writer.write(piece).await?;
        for event in events.drain(..) {
            match event {
                Event::Stmt(s) if s.class.kind == Kind::Session => {
                    log.push(SessionStmt { line: s.line, text: s.text, tolerance: s.class.tolerance });
                }
                Event::Stmt(s) => {
                    let len = s.text.len();
                    items.push(Item::Stmt(Stmt { line: s.line, offset: s.offset, len, class: s.class, session: log.len() }));
                }
                Event::CopyStart(s, data) => {
                    let len = s.text.len();
                    let stmt = Stmt { line: s.line, offset: s.offset, len, class: s.class, session: log.len() };
                    block = Some(Block { stmt, data: data..data, cuts: Vec::new() });
                }
                Event::CopyData { offset, line_start, .. } => {
                    let b = block.as_mut().expect("COPY data comes after its COPY");
                    let last = b.cuts.last().copied().unwrap_or(b.data.start);
                    if line_start && offset - last >= PIECE as u64 {
                        b.cuts.push(offset);
                    }
                }
                Event::CopyEnd { offset } => {
                    let mut b = block.take().expect("a COPY ends after it starts");
                    b.data.end = offset;
                    items.push(Item::Copy(b));
                }
            }
        }
    }
    scanner.finish()?;
    Ok(Indexed { spool: writer.finish().await?, items, log })
}
