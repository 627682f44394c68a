//! Telling how a job ended: the journal that keeps the promise to report
//! across restarts, the callback to production, and the fallback e-mail.

pub mod callback;
pub mod journal;
pub mod mail;

use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use callback::Told;
use journal::{Journal, JournalEntry};

/// The journal and the reports.
pub struct Reporter {
    journal: Journal,
    metrics: Arc<Metrics>,
}

impl Reporter {
    /// A reporter whose journal lives in the sidecar's state directory; it counts callbacks and mails in `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Reporter {
        Reporter { journal: Journal::new(config.state_dir().join("jobs")), metrics }
    }

    /// The job journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Reports a job (callback, else mail) and forgets its journal entry once
    /// somebody was told; otherwise the entry waits for the next start.
    pub async fn tell(&self, config: &Config, entry: &JournalEntry) {
        if callback::report(config, entry, &self.metrics).await != Told::Nobody {
            self.journal.forget(&entry.job_id);
        }
    }
}
