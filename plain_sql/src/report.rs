//! What a load did, gathered from every connection, and its one-paragraph summary.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A statement whose failure was tolerated (see the crate's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tolerated {
    /// 1-based line where it starts.
    pub line: u64,
    /// Its first words.
    pub head: String,
    /// PostgreSQL's message.
    pub message: String,
}

/// How the backup was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read once and run as it came, on one connection.
    Streamed,
    /// Spooled and indexed, then run over this many connections.
    Parallel {
        /// Connections used.
        jobs: usize,
    },
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// How it was loaded.
    pub mode: Mode,
    /// Statements run (COPY statements included, session settings counted once).
    pub statements: u64,
    /// `COPY … FROM stdin` blocks of the backup.
    pub copy_blocks: u64,
    /// COPY commands sent: one per block, more for the blocks cut into chunks.
    pub copy_chunks: u64,
    /// Rows loaded by COPY.
    pub rows: u64,
    /// Bytes of SQL and COPY data sent to the server.
    pub bytes: u64,
    /// Statements whose failure was tolerated, in line order.
    pub tolerated: Vec<Tolerated>,
    /// Wall time of each phase of a parallel load, in order (steps of the same
    /// name added up); empty when streamed.
    pub phases: Vec<(&'static str, Duration)>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.mode {
            Mode::Streamed => "streamed over one connection".to_owned(),
            Mode::Parallel { jobs } => format!("in parallel over {jobs} connection{}", if jobs == 1 { "" } else { "s" }),
        };
        write!(
            f,
            "loaded {} statements and {} COPY blocks ({} rows, {} chunks, {:.1} MiB) {how}",
            self.statements,
            self.copy_blocks,
            self.rows,
            self.copy_chunks,
            self.bytes as f64 / (1024.0 * 1024.0)
        )?;
        if !self.phases.is_empty() {
            let phases: Vec<String> = self.phases.iter().map(|(n, d)| format!("{n} {:.1} s", d.as_secs_f64())).collect();
            write!(f, " ({})", phases.join(", "))?;
        }
        if !self.tolerated.is_empty() {
            write!(f, "; {} failed harmlessly:", self.tolerated.len())?;
            for t in &self.tolerated {
                write!(f, "\n  line {} `{}`: {}", t.line, t.head, t.message)?;
            }
        }
        Ok(())
    }
}

/// Counters shared by the connections of one load.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub statements: AtomicU64,
    pub copy_blocks: AtomicU64,
    pub copy_chunks: AtomicU64,
    pub rows: AtomicU64,
    /// Bytes sent: the caller's progress counter.
    pub bytes: Arc<AtomicU64>,
    /// Tolerated failures by line (a session setting replayed on several connections
    /// is reported once).
    tolerated: Mutex<BTreeMap<u64, Tolerated>>,
    phases: Mutex<Vec<(&'static str, Duration)>>,
}

impl Tally {
    /// Counters that add the bytes sent to `progress`.
    pub(crate) fn new(progress: Arc<AtomicU64>) -> Self {
        Tally { bytes: progress, ..Default::default() }
    }

    /// Counts `n` bytes sent.
    pub(crate) fn sent(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Relaxed);
    }

    /// Records a tolerated failure.
    pub(crate) fn tolerate(&self, t: Tolerated) {
        self.tolerated.lock().unwrap().entry(t.line).or_insert(t);
    }

    /// Adds `took` to the time of phase `name`.
    pub(crate) fn phase(&self, name: &'static str, took: Duration) {
        let mut phases = self.phases.lock().unwrap();
        match phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, d)) => *d += took,
            None => phases.push((name, took)),
        }
    }

    /// The report; `start` is the progress counter's value when the load began.
    pub(crate) fn report(&self, mode: Mode, start: u64) -> LoadReport {
        LoadReport {
            mode,
            statements: self.statements.load(Relaxed),
            copy_blocks: self.copy_blocks.load(Relaxed),
            copy_chunks: self.copy_chunks.load(Relaxed),
            rows: self.rows.load(Relaxed),
            bytes: self.bytes.load(Relaxed) - start,
            tolerated: self.tolerated.lock().unwrap().values().cloned().collect(),
            phases: self.phases.lock().unwrap().clone(),
        }
    }
}
