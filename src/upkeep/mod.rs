//! Work nobody asked for: the sweep that reports orphaned jobs and drops
//! what dead processes left ([`recovery`], [`spool`]), and templates built
//! before anyone asks ([`prewarm`]).

pub mod expiry;
pub mod prewarm;
pub mod recovery;
mod spool;

use std::sync::Arc;

use crate::job::Jobs;
use crate::report::Reporter;
use crate::services::Services;
use prewarm::Prewarm;

/// What the sweep works with.
pub struct Upkeep {
    /// Configuration, PostgreSQL, the bucket.
    pub services: Arc<Services>,
    /// This process's jobs (never swept).
    pub jobs: Arc<Jobs>,
    /// The journal and the reports.
    pub reporter: Arc<Reporter>,
    /// Pre-warm builds (never swept).
    pub prewarm: Arc<Prewarm>,
    /// One sweep at a time, so an entry is never adopted twice.
    sweeping: tokio::sync::Mutex<()>,
}

impl Upkeep {
    /// The sweep over the shared state.
    pub fn new(services: Arc<Services>, jobs: Arc<Jobs>, reporter: Arc<Reporter>, prewarm: Arc<Prewarm>) -> Upkeep {
        Upkeep { services, jobs, reporter, prewarm, sweeping: tokio::sync::Mutex::new(()) }
    }
}
