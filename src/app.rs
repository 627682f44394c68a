//! The state every request shares, and the token check.

use std::sync::Arc;

use numikube_staging_rpc::{codes, error};
use jsonrpsee::types::ErrorObjectOwned;
use subtle::ConstantTimeEq;

use crate::backup_source::BackupSource;
use crate::config::Config;
use crate::db::Db;
use crate::jobs::Jobs;
use crate::prewarm::Prewarm;

/// Shared state of the sidecar: configuration, PostgreSQL, the bucket and the jobs.
pub struct App {
    /// The staging `odoo.conf`.
    pub config: Config,
    /// The PostgreSQL server.
    pub db: Db,
    /// The backup bucket.
    pub source: BackupSource,
    /// Accepted jobs and the admission lock.
    pub jobs: Jobs,
    /// Pre-warm states, for `staging_health`.
    pub prewarm: Prewarm,
}

impl App {
    /// Builds the state from a loaded configuration; contacts nothing.
    pub fn new(config: Config) -> anyhow::Result<Arc<App>> {
        let db = Db::new(&config)?;
        let source = BackupSource::new(&config.storage)?;
        let jobs = Jobs::new(&config)?;
        Ok(Arc::new(App { config, db, source, jobs, prewarm: Prewarm::default() }))
    }

    /// Refuses a missing or wrong token, comparing in constant time.
    pub fn check_token(&self, given: Option<&str>) -> Result<(), ErrorObjectOwned> {
        let expected = self.config.token.as_bytes();
        let ok = given.is_some_and(|g| g.as_bytes().ct_eq(expected).into());
        if ok {
            Ok(())
        } else {
            Err(error(
                codes::BAD_TOKEN,
                "The staging token is wrong: the environment's token on production must equal numikube_staging_token of the staging server.",
                None,
            ))
        }
    }
}
