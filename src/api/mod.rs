//! The JSON-RPC API: the methods ([`Api`]), each checking the token and
//! handing over to the stage that does the work, so this file reads as a
//! table of contents; the mapping of errors to codes ([`errors`]); the
//! answers given again to repeated requests ([`replay`]); the HTTP server ([`server`]).

pub mod errors;
pub mod replay;
pub mod server;

use std::sync::Arc;

use jsonrpsee::core::async_trait;
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{
    BackupInfo, Backups, Cancelled, DatabaseInfo, DropResult, Extended, Health, JobStatus, RunPayload, RunResult, StagingApiServer,
};

use crate::admission::{checks, names};
use crate::app::App;
use crate::drop;
use crate::upkeep::expiry;
use replay::Replay;

/// The server side of [`numikube_staging_rpc::StagingApi`].
pub struct Api {
    app: Arc<App>,
    replay: Replay,
}

impl Api {
    /// Serves the API over the shared state.
    pub fn new(app: Arc<App>) -> Api {
        let replay = Replay::load(app.config().state_dir(), &app.reporter.journal().entries());
        Api { app, replay }
    }
}

#[async_trait]
impl StagingApiServer for Api {
    async fn run(&self, payload: RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        self.check_token(payload.token.as_deref())?;
        match payload.request_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => self.replay.once(id, self.run_checked(&payload)).await,
            None => self.run_checked(&payload).await,
        }
    }

    async fn drop_databases(&self, token: String, database_names: String) -> Result<DropResult, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        self.drop_names(&database_names).await
    }

    async fn status(&self, token: String, job_or_db: String) -> Result<JobStatus, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        self.app.jobs.find(&job_or_db).map(|j| j.status()).ok_or_else(|| {
            errors::not_found(format!(
                "No job or database \"{}\" is known to the staging service since it started.",
                job_or_db.escape_default()
            ))
        })
    }

    async fn list(&self, token: String, client: Option<String>) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        let db = &self.app.services.db;
        let rows = db.all(true).await.map_err(errors::database)?;
        // A client's copies: marked with that client (markers of older versions
        // have none: then by the name, `<client>-<level>…`); never templates.
        let of_client = |r: &crate::pg::DatabaseRow| match (&client, &r.marker) {
            (None, _) => true,
            (Some(c), Some(m)) if !r.is_kept_template() => m.client.as_ref().map_or(r.name.starts_with(&format!("{c}-")), |mc| mc == c),
            (Some(_), _) => false,
        };
        Ok(rows
            .into_iter()
            .filter(|r| (db.in_instance_list(r) || r.is_kept_template()) && of_client(r))
            .map(|r| DatabaseInfo {
                template: r.is_kept_template(),
                size_bytes: r.size.unwrap_or(0),
                created_at: r.marker.as_ref().map(|m| m.created_at.to_rfc3339()),
                made_by_staging: r.marker.is_some(),
                job_id: r.marker.as_ref().map(|m| m.job_id.clone()),
                backup: r.marker.as_ref().and_then(|m| m.backup.clone()),
                requested_by: r.marker.as_ref().and_then(|m| m.requested_by.clone()),
                expires_at: r.marker.as_ref().and_then(|m| m.expires_at).map(|t| t.to_rfc3339()),
                name: r.name,
            })
            .collect())
    }

    async fn health(&self) -> Result<Health, ErrorObjectOwned> {
        let services = &self.app.services;
        let (postgres, storage) = tokio::join!(services.db.health(), services.source.health());
        Ok(Health { version: env!("CARGO_PKG_VERSION").into(), postgres, storage, prewarm: self.app.prewarm.states() })
    }

    async fn backups(&self, token: String, client: String) -> Result<Backups, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        names::check_part("client", &client).map_err(errors::invalid)?;
        let mut found = self.app.services.source.backups(&client).await.map_err(errors::storage)?;
        found.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| b.key.cmp(&a.key)));
        let backups =
            found.into_iter().map(|b| BackupInfo { last_modified: b.modified.to_rfc3339(), size_bytes: b.size, key: b.key }).collect();
        Ok(Backups { backups })
    }

    async fn cancel(&self, token: String, job_id: String) -> Result<Cancelled, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        let status = self.app.jobs.cancel(&job_id).await.map_err(errors::cancel)?;
        Ok(Cancelled { state: status.state, error: status.error.unwrap_or_default() })
    }

    async fn extend(&self, token: String, db_name: String) -> Result<Extended, ErrorObjectOwned> {
        self.check_token(Some(&token))?;
        let at = expiry::extend(&self.app.services, &db_name).await.map_err(errors::extend)?;
        Ok(Extended { expires_at: at.to_rfc3339() })
    }
}

impl Api {
    fn check_token(&self, given: Option<&str>) -> Result<(), ErrorObjectOwned> {
        checks::check_token(self.app.config(), given).map_err(errors::admission)
    }

    /// A run payload whose token was checked: prod2x admitted (its `backup`
    /// checked in the bucket first), dropdb done.
    async fn run_checked(&self, payload: &RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        match payload.kind.as_deref() {
            Some("prod2x") => {
                let request = checks::check_prod2x(self.app.config(), payload).map_err(errors::admission)?;
                checks::check_backup(&self.app.services.source, &request).await.map_err(errors::backup)?;
                Ok(RunResult::Started(self.app.admission.accept(request).await.map_err(errors::admission)?))
            }
            Some("dropdb") => {
                let names = payload.database_names.as_deref().unwrap_or("");
                Ok(RunResult::Dropped(self.drop_names(names).await?))
            }
            Some(other) => Err(errors::invalid(format!("Unknown job type \"{}\": use prod2x or dropdb.", other.escape_default()))),
            None => Err(errors::invalid("The request has no \"type\" (prod2x or dropdb).")),
        }
    }

    async fn drop_names(&self, text: &str) -> Result<DropResult, ErrorObjectOwned> {
        let names = drop::split_names(text);
        if names.is_empty() {
            return Err(errors::invalid("No database names were given to drop."));
        }
        let app = &self.app;
        drop::drop_databases(&app.services, &app.admission, &app.jobs, &names).await.map_err(errors::database)
    }
}
