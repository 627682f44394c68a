//! Orders a dump's post-data into steps the way `pg_restore -j` would: indexes
//! and primary/unique constraints side by side, index attachments in order,
//! foreign keys (added `NOT VALID` in order, then validated side by side), and
//! the rest in order. (What comes before runs as it streams in: [`crate::overlap`].)

use std::ops::Range;

use crate::classify::Kind;
use crate::index::Stmt;
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

/// A job running statement `s` as `source`, taking `locks`.
pub(crate) fn job(s: &Stmt, source: Source, locks: Vec<(String, bool)>) -> Job {
    Job { line: s.line, source, tolerance: s.class.tolerance, session: s.session, locks }
}

/// Whether a statement belongs to the post-data section (after the COPY data).
pub(crate) fn is_post(kind: &Kind) -> bool {
    matches!(kind, Kind::Index { .. } | Kind::AfterIndex | Kind::ForeignKey { .. } | Kind::PostData)
}

/// The steps of the post-data: `stmts`, from the first post-data statement after
/// the last COPY to the end of the dump.
pub(crate) fn post(stmts: &[Stmt]) -> Vec<Step> {
    let (mut indexes, mut after, mut fk_add, mut fk_check, mut rest) = (vec![], vec![], vec![], vec![], vec![]);
    for s in stmts {
        let dump = Source::Dump(s.range());
        match &s.class.kind {
            Kind::Index { table, exclusive } => indexes.push(job(s, dump, vec![(table.clone(), *exclusive)])),
            Kind::AfterIndex => after.push(job(s, dump, vec![])),
            Kind::ForeignKey { table, validate: Some((v, tables)) } => {
                fk_add.push(job(s, Source::NotValid(s.range(), tables.clone()), vec![]));
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
    post_steps.into_iter().filter(|s| !s.jobs.is_empty()).collect()
}
