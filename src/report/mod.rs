//! Telling how a job ended: the journal that keeps the promise to report
//! across restarts, the callback to production, and the fallback e-mail.

pub mod callback;
pub mod journal;
pub mod mail;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::Metrics;
use callback::Told;
use journal::{Journal, JournalEntry};

/// The journal and the reports under way.
pub struct Reporter {
    journal: Journal,
    under_way: AtomicUsize,
    metrics: Arc<Metrics>,
}

impl Reporter {
    /// A reporter whose journal lives in the sidecar's state directory; it counts callbacks and mails in `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Reporter {
        Reporter { journal: Journal::new(config.state_dir().join("jobs")), under_way: AtomicUsize::new(0), metrics }
    }

    /// The job journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// How many reports (callback, then mail) are under way.
    pub fn under_way(&self) -> usize {
        self.under_way.load(Ordering::SeqCst)
    }

    /// Reports a job (callback, else mail) and forgets its journal entry once
    /// somebody was told; otherwise the entry waits for the next start.
    pub async fn tell(&self, config: &Config, entry: &JournalEntry) {
        struct UnderWay<'a>(&'a AtomicUsize);
        impl Drop for UnderWay<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.under_way.fetch_add(1, Ordering::SeqCst);
        let _under_way = UnderWay(&self.under_way);
        if callback::report(config, entry, &self.metrics).await != Told::Nobody {
            self.journal.forget(&entry.job_id);
        }
    }
}
