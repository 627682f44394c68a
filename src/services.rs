//! What every stage below the API works with: the configuration, the
//! PostgreSQL server, the bucket, the metrics, the stop signal, the work a
//! shutdown waits for and the request for an early sweep. Built once, shared behind an `Arc`, passed down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::pg::Db;
use crate::storage::{BackupSource, Ownership};

/// The shared services.
pub struct Services {
    /// The staging `odoo.conf`.
    pub config: Config,
    /// The PostgreSQL server.
    pub db: Db,
    /// The backup bucket.
    pub source: BackupSource,
    /// The Prometheus series every stage records into.
    pub metrics: Arc<Metrics>,
    /// Cancelled on SIGTERM: no more admissions; queued and restoring jobs stop.
    stopping: CancellationToken,
    /// Jobs and reports under way: a shutdown waits for them to end.
    pub work: TaskTracker,
    /// A cleanup failed (PostgreSQL down?): sweep as soon as the server answers again.
    sweep_wanted: AtomicBool,
    /// Wakes the periodic sweep early.
    sweep_now: Notify,
}

impl Services {
    /// Builds the services from a loaded configuration; contacts nothing.
    pub fn new(config: Config) -> anyhow::Result<Services> {
        let db = Db::new(&config)?;
        let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
        metrics.set_limit(config.database_limit as u64);
        let source = BackupSource::new(&config.storage, Ownership::new(config.backup_pattern.clone()))?;
        Ok(Services {
            config,
            db,
            source,
            metrics,
            stopping: CancellationToken::new(),
            work: TaskTracker::new(),
            sweep_wanted: AtomicBool::new(false),
            sweep_now: Notify::new(),
        })
    }

    /// Starts the shutdown: admissions stop, running jobs are interrupted.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Whether the sidecar is stopping (SIGTERM).
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves once the sidecar is stopping.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await
    }

    /// Notes that a cleanup failed, so that a sweep runs once PostgreSQL answers again.
    pub fn cleanup_failed(&self) {
        self.sweep_wanted.store(true, Ordering::Relaxed);
    }

    /// PostgreSQL answered: if a cleanup had failed, wake the sweep now.
    pub fn database_answered(&self) {
        if self.sweep_wanted.swap(false, Ordering::Relaxed) {
            self.sweep_now.notify_one();
        }
    }

    /// Sets the copies gauge from Odoo's list of this instance, and the limit; kept as is when PostgreSQL is down.
    pub async fn refresh_copies(&self) {
        // Called after each job end, each drop and each sweep (every 10 s), not per scrape:
        // `Metrics::encode` is synchronous, and a scrape should never wait for PostgreSQL.
        if let Ok(rows) = self.db.all(false).await {
            let copies = rows.iter().filter(|r| self.db.in_instance_list(r)).count();
            self.metrics.set_copies(copies as u64, self.config.database_limit as u64);
        }
    }

    /// Resolves when a sweep is wanted before its next turn.
    pub async fn sweep_requested(&self) {
        self.sweep_now.notified().await
    }
}
