//! Tells statements from `COPY … FROM stdin` data in one pass over the stream, and
//! refuses it at the first psql meta-command, before any of that line is acted upon.

use std::ops::Range;

use crate::classify::{classify, Class, Kind};
use crate::error::{head, LoadError};
use crate::meta::Restrict;
use crate::split::{only_comments, open_quote, split, Split};

/// Largest statement accepted (PostgreSQL's own limit on a query string).
const MAX_STATEMENT: usize = 1 << 30;

/// One statement of the stream.
#[derive(Debug)]
pub(crate) struct Stmt {
    /// 1-based line where it starts.
    pub line: u64,
    /// Byte offset in the stream where it starts.
    pub offset: u64,
    /// Its text, without the `;`.
    pub text: String,
    /// Where it belongs.
    pub class: Class,
}

/// What the scanner found in a piece of the stream.
#[derive(Debug)]
pub(crate) enum Event {
    /// A statement that is not a `COPY … FROM stdin`.
    Stmt(Stmt),
    /// A `COPY … FROM stdin`; its data starts at byte `data` of the stream.
    CopyStart(Stmt, u64),
    /// COPY data: this range of the piece just fed, at byte `offset` of the stream;
    /// `line_start` when it starts a line.
    CopyData { range: Range<usize>, offset: u64, line_start: bool },
    /// The `\.` line that ends the COPY data, at byte `offset` of the stream.
    CopyEnd { offset: u64 },
}

/// The scanner's state between pieces.
pub(crate) struct Scanner {
    /// 1-based number of the line being read.
    line_no: u64,
    /// Stream offset of the next byte.
    offset: u64,
    at_line_start: bool,
    /// Line and first words of the COPY whose data is being read.
    copy: Option<(u64, String)>,
    /// The SQL line being assembled, and its offset.
    line: Vec<u8>,
    line_offset: u64,
    /// Whole lines of the statement(s) being accumulated, their first line and offset.
    buf: String,
    buf_line: u64,
    buf_offset: u64,
    /// When the buffer is known to end inside a quote or comment: what a line must
    /// hold to possibly close it (`None` inside: any line). Saves scanning a long
    /// function body again at each of its lines ending in `;`.
    quote: Option<Option<char>>,
    restrict: Restrict,
    statements_seen: bool,
}

impl Scanner {
    /// A scanner at the start of a stream.
    pub(crate) fn new() -> Self {
        Scanner {
            line_no: 1,
            offset: 0,
            at_line_start: true,
            copy: None,
            line: Vec::new(),
            line_offset: 0,
            buf: String::new(),
            buf_line: 0,
            buf_offset: 0,
            restrict: Restrict::default(),
            quote: None,
            statements_seen: false,
        }
    }

    /// Feeds the next piece (see [`crate::read::Pieces`]); `ends_line` when it ends its line.
    pub(crate) fn feed(&mut self, piece: &[u8], ends_line: bool, events: &mut Vec<Event>) -> Result<(), LoadError> {
        let start = self.offset;
        let line_start = self.at_line_start;
        self.offset += piece.len() as u64;
        self.at_line_start = ends_line;
        if self.copy.is_some() {
            if line_start && ends_line && trim_eol(piece) == b"\\." {
                self.copy = None;
                events.push(Event::CopyEnd { offset: start });
            } else {
                events.push(Event::CopyData { range: 0..piece.len(), offset: start, line_start });
            }
            if ends_line {
                self.line_no += 1;
            }
            return Ok(());
        }
        if line_start {
            self.line_offset = start;
        }
        if self.line.len() + piece.len() > MAX_STATEMENT {
            return Err(LoadError::Format { line: self.line_no, why: "a line longer than 1 GiB".into() });
        }
        self.line.extend_from_slice(piece);
        if !ends_line {
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        let result = self.sql_line(&line, events);
        self.line = line;
        self.line.clear();
        self.line_no += 1;
        result
    }

    /// Takes one whole SQL line in.
    fn sql_line(&mut self, raw: &[u8], events: &mut Vec<Event>) -> Result<(), LoadError> {
        let line_no = self.line_no;
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(LoadError::Format { line: line_no, why: "it is not UTF-8 (Odoo's databases are)".into() });
        };
        if line.contains('\0') {
            return Err(LoadError::Format { line: line_no, why: "a NUL byte".into() });
        }
        let trimmed = line.trim();
        if self.restrict.closed().is_some() {
            return if trimmed.is_empty() { Ok(()) } else { Err(LoadError::AfterUnrestrict { line: line_no }) };
        }
        if self.buf.is_empty() {
            if trimmed.is_empty() || trimmed.starts_with("--") {
                return Ok(());
            }
            if trimmed.starts_with('\\') {
                return self.restrict.meta_line(line_no, line, self.statements_seen);
            }
            self.buf_line = line_no;
            self.buf_offset = self.line_offset;
        } else if trimmed.starts_with('\\') {
            if self.quote.is_none() {
                self.quote = open_quote(&self.buf);
            }
            if self.quote.is_none() {
                return Err(LoadError::MetaCommand { line: line_no, command: crate::meta::command(line) });
            }
        }
        if self.buf.len() + line.len() > MAX_STATEMENT {
            return Err(LoadError::Format { line: self.buf_line, why: "a statement longer than 1 GiB".into() });
        }
        self.buf.push_str(line);
        match self.quote {
            Some(Some(closer)) if !line.contains(closer) => {}
            _ => self.quote = None,
        }
        if !trimmed.ends_with(';') || self.quote.is_some() {
            return Ok(());
        }
        match split(&self.buf) {
            Split::Incomplete => Ok(()),
            Split::Open(closer) => {
                // Any line may close it when the closer is unknown: scan again each time.
                self.quote = closer.map(Some);
                Ok(())
            }
            Split::Backslash(at) => {
                let line = self.line_of(at);
                let from = &self.buf[at..];
                Err(LoadError::MetaCommand { line, command: crate::meta::command(from.lines().next().unwrap_or("")) })
            }
            Split::Complete(ranges) => {
                let buf = std::mem::take(&mut self.buf);
                self.quote = None;
                let count = ranges.len();
                for (i, r) in ranges.into_iter().enumerate() {
                    let text = buf[r.clone()].to_owned();
                    let line = self.line_of_in(&buf, r.start);
                    let class = classify(&text, line)?;
                    let stmt = Stmt { line, offset: self.buf_offset + r.start as u64, text, class };
                    self.statements_seen = true;
                    if matches!(stmt.class.kind, Kind::Copy { .. }) {
                        if i + 1 != count {
                            return Err(LoadError::Format { line, why: "a statement after `COPY … FROM stdin` on its line".into() });
                        }
                        self.copy = Some((line, head(&stmt.text)));
                        events.push(Event::CopyStart(stmt, self.offset));
                    } else {
                        events.push(Event::Stmt(stmt));
                    }
                }
                Ok(())
            }
        }
    }

    /// Line number of byte `at` of the statement buffer.
    fn line_of(&self, at: usize) -> u64 {
        self.line_of_in(&self.buf, at)
    }

    fn line_of_in(&self, buf: &str, at: usize) -> u64 {
        self.buf_line + buf.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// At the end of the stream: nothing may be left unfinished.
    pub(crate) fn finish(&mut self) -> Result<(), LoadError> {
        if let Some((line, head)) = self.copy.take() {
            return Err(LoadError::Truncated { line, what: "COPY data", head });
        }
        if !self.line.is_empty() {
            // A last line the reader did not end: cannot happen with `Pieces`.
            return Err(LoadError::Truncated { line: self.line_no, what: "statement", head: String::new() });
        }
        if !self.buf.is_empty() && !only_comments(&self.buf) {
            if let Split::Backslash(at) = split(&self.buf) {
                let from = &self.buf[at..];
                return Err(LoadError::MetaCommand {
                    line: self.line_of(at),
                    command: crate::meta::command(from.lines().next().unwrap_or("")),
                });
            }
            return Err(LoadError::Truncated { line: self.buf_line, what: "statement", head: head(&self.buf) });
        }
        self.restrict.finish()
    }
}

/// The line without its `\n` or `\r\n`.
fn trim_eol(piece: &[u8]) -> &[u8] {
    let piece = piece.strip_suffix(b"\n").unwrap_or(piece);
    piece.strip_suffix(b"\r").unwrap_or(piece)
}

#[cfg(test)]
mod tests;
