//! The whole sidecar's state, built once: the services every stage uses, the
//! jobs, the admission, the reporter and the background work; and the
//! orderly shutdown that ties them together.

use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::config::Config;
use crate::job::Jobs;
use crate::report::Reporter;
use crate::services::Services;
use crate::upkeep::prewarm::{self, Prewarm, PrewarmContext};
use crate::upkeep::{recovery, Upkeep};

/// Shared state of the sidecar.
pub struct App {
    /// Configuration, PostgreSQL, the bucket, the stop signal.
    pub services: Arc<Services>,
    /// This process's jobs.
    pub jobs: Arc<Jobs>,
    /// The admission under the limit.
    pub admission: Arc<Admission>,
    /// The journal and the reports.
    pub reporter: Arc<Reporter>,
    /// Pre-warm states, for `staging_health`.
    pub prewarm: Arc<Prewarm>,
    /// The sweep.
    pub upkeep: Arc<Upkeep>,
}

impl App {
    /// Builds the state from a loaded configuration; contacts nothing.
    pub fn new(config: Config) -> anyhow::Result<Arc<App>> {
        let services = Arc::new(Services::new(config)?);
        let jobs = Arc::new(Jobs::default());
        let reporter = Arc::new(Reporter::new(&services.config, services.metrics.clone()));
        let admission = Arc::new(Admission::new(services.clone(), jobs.clone(), reporter.clone()));
        let prewarm = Arc::new(Prewarm::default());
        let upkeep = Arc::new(Upkeep::new(services.clone(), jobs.clone(), reporter.clone(), prewarm.clone()));
        Ok(Arc::new(App { services, jobs, admission, reporter, prewarm, upkeep }))
    }

    /// The staging `odoo.conf`.
    pub fn config(&self) -> &Config {
        &self.services.config
    }

    /// Before serving: reports orphaned jobs and sweeps leftovers, then starts
    /// the periodic sweep and pre-warm.
    pub async fn start_background_work(&self) {
        match self.services.db.convert_legacy_hidden().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} database(s) hidden by IS_TEMPLATE by an earlier version are now hidden by their owner"),
            Err(e) => tracing::warn!("cannot convert the databases an earlier version hid with IS_TEMPLATE: {e}"),
        }
        recovery::recover(&self.upkeep).await;
        prewarm::spawn(PrewarmContext {
            services: self.services.clone(),
            admission: self.admission.clone(),
            jobs: self.jobs.clone(),
            prewarm: self.prewarm.clone(),
        });
        tokio::spawn(recovery::sweep_periodically(self.upkeep.clone()));
    }

    /// Stops the jobs for a shutdown: no more admissions; queued and restoring
    /// jobs stop now (their hidden database is dropped and they are reported as
    /// interrupted), a job in `finishing` completes; then waits up to `grace`
    /// for the reports. Whatever is not reported by then stays in the journal and
    /// is reported at the next start.
    pub async fn shut_down(&self, grace: Duration) {
        self.services.stop();
        // Every job and report runs in a task of `work`: waiting on the last to end, not polling.
        let work = &self.services.work;
        work.close();
        match tokio::time::timeout(grace, work.wait()).await {
            Ok(()) => tracing::info!("every job has ended and was reported"),
            Err(_) => tracing::warn!(
                "{} job(s) or report(s) still under way after {grace:?}; the journal keeps them for the next start",
                work.len()
            ),
        }
    }
}
