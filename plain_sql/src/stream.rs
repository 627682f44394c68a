//! Streaming mode: statements run as they are read, COPY data is passed on as it
//! comes, all on one connection; nothing is spooled.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use tokio::io::AsyncRead;
use tokio_postgres::CopyInSink;

use crate::conn::Conn;
use crate::error::{head, pg_message, LoadError};
use crate::read::{Pieces, PIECE};
use crate::report::{LoadReport, Mode, Tally};
use crate::scan::{Event, Scanner};
use crate::LoadOptions;

/// A COPY under way: its sink, line, first words and the data not yet sent.
struct Copying {
    sink: Pin<Box<CopyInSink<Bytes>>>,
    line: u64,
    head: String,
    pending: BytesMut,
}

impl Copying {
    fn fail(&self, e: tokio_postgres::Error) -> LoadError {
        LoadError::Copy { line: self.line, head: self.head.clone(), message: pg_message(&e) }
    }

    /// Sends the pending data.
    async fn flush(&mut self, tally: &Tally) -> Result<(), LoadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = self.pending.split().freeze();
        tally.sent(data.len());
        let result = self.sink.send(data).await;
        result.map_err(|e| self.fail(e))
    }
}

/// Loads `reader` statement by statement on one connection.
pub(crate) async fn load<R: AsyncRead + Unpin>(reader: R, opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    let start = opts.progress.load(std::sync::atomic::Ordering::Relaxed);
    let tally = Tally::new(opts.progress.clone());
    let conn = Conn::open(&opts.target).await?;
    let mut pieces = Pieces::new(reader);
    let mut scanner = Scanner::new();
    let mut events = Vec::new();
    let mut copying: Option<Copying> = None;
    while let Some((piece, ends_line)) = pieces.next().await.map_err(LoadError::Read)? {
        scanner.feed(piece, ends_line, &mut events)?;
        for event in events.drain(..) {
            match event {
                Event::Stmt(s) => {
                    tally.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    conn.exec(s.line, &s.text, s.class.tolerance, &tally).await?;
                }
                Event::CopyStart(s, _) => {
                    tally.statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tally.copy_blocks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tally.copy_chunks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tally.sent(s.text.len());
                    let fail = |e| LoadError::Statement { line: s.line, head: head(&s.text), message: pg_message(&e) };
                    let sink = conn.client().copy_in(s.text.as_str()).await.map_err(fail)?;
                    copying =
                        Some(Copying { sink: Box::pin(sink), line: s.line, head: head(&s.text), pending: BytesMut::with_capacity(PIECE) });
                }
                Event::CopyData { range, .. } => {
                    let c = copying.as_mut().expect("COPY data comes after its COPY");
                    c.pending.extend_from_slice(&piece[range]);
                    if c.pending.len() >= PIECE {
                        c.flush(&tally).await?;
                    }
                }
                Event::CopyEnd { .. } => {
                    let mut c = copying.take().expect("a COPY ends after it starts");
                    c.flush(&tally).await?;
                    let rows = c.sink.as_mut().finish().await.map_err(|e| c.fail(e))?;
                    tally.rows.fetch_add(rows, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
    scanner.finish()?;
    Ok(tally.report(Mode::Streamed, start))
}
