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

use crate::admission::tenant::Tenant;
use crate::admission::{checks, names};
use crate::app::App;
use crate::drop;
use crate::upkeep::expiry;
use replay::Replay;

/// The server side of [`numikube_staging_rpc::StagingApi`].
pub struct Api {
    app: Arc<App>,
    replay: Replay,
    /// The command line on this host: `numikube_staging_token` serves every client.
    operator: bool,
}

impl Api {
    /// Serves the API over the shared state.
    pub fn new(app: Arc<App>) -> Api {
        let replay = Replay::load(app.config().state_dir(), &app.reporter.journal().entries());
        Api { app, replay, operator: false }
    }

    /// The API as the operator's command line on this host uses it, in process.
    pub fn operator(app: Arc<App>) -> Api {
        Api { operator: true, ..Api::new(app) }
    }
}

#[async_trait]
impl StagingApiServer for Api {
    async fn run(&self, payload: RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        let tenant = self.tenant(payload.token.as_deref())?;
        if let Some(client) = payload.client.as_deref() {
            tenant.check_client(self.app.config(), client).map_err(errors::admission)?;
        }
        // Replays are kept per client: one client's request id never answers another's.
        let replay_id = payload.request_id.as_deref().filter(|id| !id.is_empty()).map(|id| replay::key(payload.client.as_deref(), id));
        match replay_id {
            Some(id) => self.replay.once(&id, self.run_checked(&tenant, &payload)).await,
            None => self.run_checked(&tenant, &payload).await,
        }
    }

    async fn drop_databases(&self, token: String, database_names: String) -> Result<DropResult, ErrorObjectOwned> {
        let tenant = self.tenant(Some(&token))?;
        self.drop_names(&tenant, None, &database_names).await
    }

    async fn status(&self, token: String, job_or_db: String) -> Result<JobStatus, ErrorObjectOwned> {
        let tenant = self.tenant(Some(&token))?;
        // Another client's job is as unknown as one that never was.
        self.app.jobs.find(&job_or_db).filter(|j| tenant.serves(self.app.config(), Some(&j.request.client))).map(|j| j.status()).ok_or_else(
            || {
                errors::not_found(format!(
                    "No job or database \"{}\" is known to the staging service since it started.",
                    job_or_db.escape_default()
                ))
            },
        )
    }

    async fn list(&self, token: String, client: Option<String>) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned> {
        let tenant = self.tenant(Some(&token))?;
        let config = self.app.config();
        if let Some(c) = client.as_deref() {
            tenant.check_client(config, c).map_err(errors::admission)?;
        }
        let db = &self.app.services.db;
        let rows = db.all(true).await.map_err(errors::database)?;
        // A client's copies: marked with that client (markers of older versions
        // have none: then by the name, `<client>-<level>…`); never templates.
        // A client's own token sees nothing else.
        let of_client = |r: &crate::pg::DatabaseRow| match (&client, &r.marker) {
            (None, _) => tenant == Tenant::Operator || tenant.serves(config, r.client().as_deref()),
            (Some(c), Some(_)) if !r.is_kept_template() => r.client().as_deref() == Some(c.as_str()),
            (Some(_), _) => false,
        };
        Ok(rows
            .into_iter()
            .filter(|r| (db.in_instance_list(r) || r.is_kept_template()) && of_client(r))
            .map(|r| DatabaseInfo {
                template: r.is_kept_template(),
                size_bytes: r.size.unwrap_or(0),
                created_at: r.marker.as_ref().map(|m| m.created_at),
                made_by_staging: r.marker.is_some(),
                job_id: r.marker.as_ref().map(|m| m.job_id.clone()),
                backup: r.marker.as_ref().and_then(|m| m.backup.clone()),
                requested_by: r.marker.as_ref().and_then(|m| m.requested_by.clone()),
                expires_at: r.marker.as_ref().and_then(|m| m.expires_at),
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
        let tenant = self.tenant(Some(&token))?;
        names::check_part("client", &client).map_err(errors::invalid)?;
        tenant.check_client(self.app.config(), &client).map_err(errors::admission)?;
        let mut found = self.app.services.source.backups(&client).await.map_err(errors::storage)?;
        found.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| b.key.cmp(&a.key)));
        let backups = found.into_iter().map(|b| BackupInfo { last_modified: b.modified, size_bytes: b.size, key: b.key }).collect();
        Ok(Backups { backups })
    }

    async fn cancel(&self, token: String, job_id: String) -> Result<Cancelled, ErrorObjectOwned> {
        let tenant = self.tenant(Some(&token))?;
        if let Some(job) = self.app.jobs.find(&job_id).filter(|j| !tenant.serves(self.app.config(), Some(&j.request.client))) {
            return Err(errors::not_found(format!("No job \"{}\" is known to the staging service.", job.id().escape_default())));
        }
        let status = self.app.jobs.cancel(&job_id).await.map_err(errors::cancel)?;
        Ok(Cancelled { state: status.state, error: status.error.unwrap_or_default() })
    }

    async fn extend(&self, token: String, db_name: String) -> Result<Extended, ErrorObjectOwned> {
        let tenant = self.tenant(Some(&token))?;
        if tenant != Tenant::Operator {
            let rows = self.app.services.db.all(false).await.map_err(errors::database)?;
            if rows.iter().any(|r| r.name == db_name && !tenant.serves(self.app.config(), r.client().as_deref())) {
                return Err(errors::not_found(format!("No copy named \"{}\" on this staging server.", db_name.escape_default())));
            }
        }
        let at = expiry::extend(&self.app.services, &db_name).await.map_err(errors::extend)?;
        Ok(Extended { expires_at: at })
    }
}

impl Api {
    /// Whom the token serves; the command line's `numikube_staging_token` serves everyone.
    fn tenant(&self, given: Option<&str>) -> Result<Tenant, ErrorObjectOwned> {
        match Tenant::of_token(self.app.config(), given).map_err(errors::admission)? {
            Tenant::Shared if self.operator => Ok(Tenant::Operator),
            tenant => Ok(tenant),
        }
    }

    /// A run payload whose token was checked: prod2x admitted (its `backup`
    /// checked in the bucket first), dropdb done.
    async fn run_checked(&self, tenant: &Tenant, payload: &RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        match payload.kind.as_deref() {
            Some("prod2x") => {
                let request = checks::check_prod2x(self.app.config(), payload).map_err(errors::admission)?;
                checks::check_backup(&self.app.services.source, &request).await.map_err(errors::backup)?;
                Ok(RunResult::Started(self.app.admission.accept(request).await.map_err(errors::admission)?))
            }
            Some("dropdb") => {
                let names = payload.database_names.as_deref().unwrap_or("");
                let client = payload.client.as_deref().filter(|c| !c.is_empty());
                Ok(RunResult::Dropped(self.drop_names(tenant, client, names).await?))
            }
            Some(other) => Err(errors::invalid(format!("Unknown job type \"{}\": use prod2x or dropdb.", other.escape_default()))),
            None => Err(errors::invalid("The request has no \"type\" (prod2x or dropdb).")),
        }
    }

    /// Drops what `tenant` may among the names: only copies of `client` when
    /// the payload names one (a dropdb), else of the clients the token serves.
    async fn drop_names(&self, tenant: &Tenant, client: Option<&str>, text: &str) -> Result<DropResult, ErrorObjectOwned> {
        let names = drop::split_names(text);
        if names.is_empty() {
            return Err(errors::invalid("No database names were given to drop."));
        }
        let (app, config) = (&self.app, self.app.config());
        let whose = |row: &crate::pg::DatabaseRow| -> Result<(), String> {
            let of = row.client();
            match client {
                Some(c) if of.as_deref() != Some(c) => Err(format!("it is not a copy of {c}")),
                _ if !tenant.serves(config, of.as_deref()) => match tenant {
                    Tenant::Client(own) => Err(format!("it is not a copy of {own}")),
                    _ => Err("it is a copy of a client served by a token of its own".into()),
                },
                _ => Ok(()),
            }
        };
        drop::drop_databases(&app.services, &app.admission, &app.jobs, &names, &whose).await.map_err(errors::database)
    }
}
