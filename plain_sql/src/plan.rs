//! Orders an indexed dump into steps the way `pg_restore -j` would: pre-data in
//! order; the COPY blocks side by side, a large one cut into chunks of whole lines;
//! then indexes and primary/unique constraints side by side, index attachments in
//! order, foreign keys (added `NOT VALID` in order, then validated side by side),
//! and the rest in order.

use std::ops::Range;

use crate::classify::Kind;
use crate::index::{Block, Item, Stmt};
use crate::tolerate::Tolerance;

/// Where a job's SQL comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Source {
    /// The statement as in the dump, at this range of the spool file.
    Dump(Range<u64>),
    /// A foreign key from the dump (range of the spool file) between these two tables,
    /// added `NOT VALID` unless one of them is partitioned or inherited.
    NotValid(Range<u64>, [String; 2]),
    /// SQL of our own, e.g. `VALIDATE CONSTRAINT`.
    Text(String),
    /// A COPY statement (range of the spool file) and a range of its data.
    Copy(Range<u64>, Range<u64>),
}

/// One thing to run on one connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Job {
    /// 1-based line of the dump it comes from.
    pub line: u64,
    /// Its SQL.
    pub source: Source,
    /// Whether its failure may be tolerated.
    pub tolerance: Option<Tolerance>,
    /// How many session statements must be applied before it.
    pub session: usize,
    /// Tables it locks, and whether exclusively (against any other job on the table).
    pub locks: Vec<(String, bool)>,
}

/// A group of jobs.
#[derive(Debug, PartialEq)]
pub(crate) struct Step {
    /// What it does, for the report's timings.
    pub name: &'static str,
    /// Side by side over all connections as their locks allow, else one after the
    /// other on one connection.
    pub parallel: bool,
    /// Its jobs.
    pub jobs: Vec<Job>,
}

impl Step {
    fn new(name: &'static str, parallel: bool, jobs: Vec<Job>) -> Self {
        Step { name, parallel, jobs }
    }
}

/// What the plan holds, for the report.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Counts {
    pub statements: u64,
    pub copy_blocks: u64,
    pub copy_chunks: u64,
}

fn job(s: &Stmt, source: Source, locks: Vec<(String, bool)>) -> Job {
    Job { line: s.line, source, tolerance: s.class.tolerance, session: s.session, locks }
}

fn range(s: &Stmt) -> Range<u64> {
    s.offset..s.offset + s.len as u64
}

/// Whether a statement starts the post-data section.
fn is_post(item: &Item) -> bool {
    matches!(item, Item::Stmt(s) if matches!(s.class.kind, Kind::Index { .. } | Kind::AfterIndex | Kind::ForeignKey { .. } | Kind::PostData))
}

/// Size of the chunks a block is cut into for `jobs` connections, from the total
/// COPY data: about four chunks per connection, 1 to 64 MiB each.
pub(crate) fn chunk_size(copy_bytes: u64, jobs: usize) -> u64 {
    (copy_bytes / (jobs as u64 * 4)).clamp(1 << 20, 64 << 20)
}

/// The data ranges of a block, cut at its line starts into chunks of about `size`.
fn chunks(b: &Block, size: u64, cut: bool) -> Vec<Range<u64>> {
    let lines = matches!(b.stmt.class.kind, Kind::Copy { lines: true });
    let mut out = Vec::new();
    let mut start = b.data.start;
    if cut && lines {
        for &c in &b.cuts {
            if c - start >= size && b.data.end - c >= size / 2 {
                out.push(start..c);
                start = c;
            }
        }
    }
    out.push(start..b.data.end);
    out
}

/// The steps of a load over `jobs` connections.
pub(crate) fn plan(items: &[Item], jobs: usize) -> (Vec<Step>, Counts) {
    let mut counts = Counts::default();
    let copy_bytes: u64 = items.iter().map(|i| if let Item::Copy(b) = i { b.data.end - b.data.start } else { 0 }).sum();
    let size = chunk_size(copy_bytes, jobs);
    let last_copy = items.iter().rposition(|i| matches!(i, Item::Copy(_))).map_or(0, |i| i + 1);
    let post = items[last_copy..].iter().position(is_post).map_or(items.len(), |p| last_copy + p);
    let mut steps = Vec::new();
    for item in &items[..post] {
        counts.statements += 1;
        match item {
            Item::Stmt(s) => match steps.last_mut() {
                Some(Step { parallel: false, jobs, .. }) => jobs.push(job(s, Source::Dump(range(s)), vec![])),
                _ => steps.push(Step::new("statements", false, vec![job(s, Source::Dump(range(s)), vec![])])),
            },
            Item::Copy(b) => {
                counts.copy_blocks += 1;
                let new: Vec<Job> =
                    chunks(b, size, jobs > 1).into_iter().map(|r| job(&b.stmt, Source::Copy(range(&b.stmt), r), vec![])).collect();
                counts.copy_chunks += new.len() as u64;
                match steps.last_mut() {
                    Some(Step { parallel: true, jobs, .. }) => jobs.extend(new),
                    _ => steps.push(Step::new("COPY data", true, new)),
                }
            }
        }
    }
    for step in &mut steps {
        if step.parallel {
            // Largest first, so that the last one to finish is a small one.
            step.jobs.sort_by_key(|j| match &j.source {
                Source::Copy(_, r) => std::cmp::Reverse(r.end - r.start),
                _ => std::cmp::Reverse(0),
            });
        }
    }
    let (mut indexes, mut after, mut fk_add, mut fk_check, mut rest) = (vec![], vec![], vec![], vec![], vec![]);
    for item in &items[post..] {
        counts.statements += 1;
        let Item::Stmt(s) = item else { unreachable!("no COPY after the last one") };
        let dump = Source::Dump(range(s));
        match &s.class.kind {
            Kind::Index { table, exclusive } => indexes.push(job(s, dump, vec![(table.clone(), *exclusive)])),
            Kind::AfterIndex => after.push(job(s, dump, vec![])),
            Kind::ForeignKey { table, validate: Some((v, tables)) } => {
                fk_add.push(job(s, Source::NotValid(range(s), tables.clone()), vec![]));
                fk_check.push(job(s, Source::Text(v.clone()), vec![(table.clone(), true)]));
            }
            Kind::ForeignKey { .. } => fk_add.push(job(s, dump, vec![])),
            _ => rest.push(job(s, dump, vec![])),
        }
    }
    let post_steps = [
        Step::new("indexes and keys", true, indexes),
        Step::new("index attachments", false, after),
        Step::new("foreign keys", false, fk_add),
        Step::new("foreign key checks", true, fk_check),
        Step::new("post-data", false, rest),
    ];
    steps.extend(post_steps.into_iter().filter(|s| !s.jobs.is_empty()));
    (steps, counts)
}
