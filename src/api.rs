//! The JSON-RPC methods: each checks the token and hands over to the module
//! that does the work, so this file reads as a table of contents.

use std::sync::Arc;

use jsonrpsee::core::async_trait;
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{
    codes, error, DatabaseInfo, DropResult, Health, JobStatus, RunPayload, RunResult, StagingApiServer,
};

use crate::app::App;
use crate::{drop, jobs, templates};

/// The server side of [`numikube_staging_rpc::StagingApi`].
pub struct Api {
    app: Arc<App>,
}

impl Api {
    /// Serves the API over the shared state.
    pub fn new(app: Arc<App>) -> Api {
        Api { app }
    }
}

fn unavailable(e: crate::db::DbError) -> ErrorObjectOwned {
    error(codes::UNAVAILABLE, format!("The staging server cannot reach its databases: {e}."), None)
}

#[async_trait]
impl StagingApiServer for Api {
    async fn run(&self, payload: RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        self.app.check_token(payload.token.as_deref())?;
        match payload.kind.as_deref() {
            Some("prod2x") => {
                let request = jobs::check_prod2x(&self.app.config, &payload)?;
                Ok(RunResult::Started(jobs::accept(&self.app, request).await?))
            }
            Some("dropdb") => {
                let names = payload.database_names.as_deref().unwrap_or("");
                Ok(RunResult::Dropped(self.drop_names(names).await?))
            }
            Some(other) => Err(error(
                codes::INVALID_INPUT,
                format!("Unknown job type \"{}\": use prod2x or dropdb.", other.escape_default()),
                None,
            )),
            None => Err(error(codes::INVALID_INPUT, "The request has no \"type\" (prod2x or dropdb).", None)),
        }
    }

    async fn drop_databases(&self, token: String, database_names: String) -> Result<DropResult, ErrorObjectOwned> {
        self.app.check_token(Some(&token))?;
        self.drop_names(&database_names).await
    }

    async fn status(&self, token: String, job_or_db: String) -> Result<JobStatus, ErrorObjectOwned> {
        self.app.check_token(Some(&token))?;
        self.app.jobs.find(&job_or_db).map(|j| j.status()).ok_or_else(|| {
            error(codes::NOT_FOUND, format!("No job or database \"{}\" is known to the staging service since it started.", job_or_db.escape_default()), None)
        })
    }

    async fn list(&self, token: String) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned> {
        self.app.check_token(Some(&token))?;
        let rows = self.app.db.all(true).await.map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter(|r| self.app.db.in_instance_list(r) || templates::is_template(r))
            .map(|r| DatabaseInfo {
                template: templates::is_template(&r),
                size_bytes: r.size.unwrap_or(0),
                created_at: r.marker.as_ref().map(|m| m.created_at.to_rfc3339()),
                made_by_staging: r.marker.is_some(),
                job_id: r.marker.as_ref().map(|m| m.job_id.clone()),
                backup: r.marker.as_ref().and_then(|m| m.backup.clone()),
                name: r.name,
            })
            .collect())
    }

    async fn health(&self) -> Result<Health, ErrorObjectOwned> {
        let (postgres, storage) = tokio::join!(self.app.db.health(), self.app.source.health());
        Ok(Health { version: env!("CARGO_PKG_VERSION").into(), postgres, storage, prewarm: self.app.prewarm.states() })
    }
}

impl Api {
    async fn drop_names(&self, text: &str) -> Result<DropResult, ErrorObjectOwned> {
        let names = drop::split_names(text);
        if names.is_empty() {
            return Err(error(codes::INVALID_INPUT, "No database names were given to drop.", None));
        }
        drop::drop_databases(&self.app, &names).await.map_err(unavailable)
    }
}
