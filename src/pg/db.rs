//! The PostgreSQL server of `odoo.conf`: the pool on the `postgres`
//! database, one-off connections to others, and its errors.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use numikube_staging_rpc::Reach;
use tokio_postgres::{Client, NoTls};

use crate::config::{Config, DbConfig};

/// How long to wait for PostgreSQL before saying it is unavailable.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL failure, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("the database server {where_}: {detail}")]
pub struct DbError {
    /// Which server, e.g. `at 127.0.0.1:5432 is unavailable`.
    pub where_: String,
    /// What PostgreSQL said.
    pub detail: String,
}

/// Access to the PostgreSQL server of `odoo.conf`.
#[derive(Clone)]
pub struct Db {
    pub(super) pool: Pool,
    pub(super) cfg: DbConfig,
    pub(super) dbfilter: Option<regex::Regex>,
    /// `numikube_staging_work_role`: owns databases while they are hidden.
    pub(super) work_role: String,
}

impl Db {
    /// Prepares the pool; nothing is contacted yet.
    pub fn new(config: &Config) -> anyhow::Result<Db> {
        let pg = pg_config(&config.db, "postgres");
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(4)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        Ok(Db { pool, cfg: config.db.clone(), dbfilter: config.dbfilter.clone(), work_role: config.work_role.clone() })
    }

    /// The role that owns this instance's databases.
    pub fn role(&self) -> String {
        self.cfg.role()
    }

    /// The NOLOGIN role that owns databases while they are hidden.
    pub fn work_role(&self) -> &str {
        &self.work_role
    }

    pub(super) fn err(&self, e: impl std::fmt::Display) -> DbError {
        let host = self.cfg.host.clone().unwrap_or_else(|| "(local socket)".into());
        let port = self.cfg.port.unwrap_or(5432);
        DbError { where_: format!("at {host}:{port}"), detail: e.to_string() }
    }

    pub(super) fn sql_err(&self, e: tokio_postgres::Error) -> DbError {
        self.err(describe(&e))
    }

    pub(super) async fn pooled(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(|e| self.err(format!("is unavailable ({e})")))
    }

    /// Opens a one-off connection to `dbname`; it closes when dropped.
    pub async fn connect(&self, dbname: &str) -> Result<Client, DbError> {
        self.connect_with(&pg_config(&self.cfg, dbname), &format!("a connection to database \"{dbname}\"")).await
    }

    /// Opens a one-off connection with `pg`, its connection driven in the
    /// background until the client is dropped; `what` names it in the error.
    pub(super) async fn connect_with(&self, pg: &tokio_postgres::Config, what: &str) -> Result<Client, DbError> {
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, pg.connect(NoTls))
            .await
            .map_err(|_| self.err("did not answer in time"))?
            .map_err(|e| self.err(format!("refused {what} ({e})")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `ok` if PostgreSQL answers, else why not (for `staging_health`).
    pub async fn health(&self) -> Reach {
        match self.pooled().await {
            Ok(c) => match c.simple_query("SELECT 1").await {
                Ok(_) => Reach::Ok,
                Err(e) => Reach::Down(self.err(e).to_string()),
            },
            Err(e) => Reach::Down(e.to_string()),
        }
    }

    /// Environment for `pg_restore` children, so they reach the same server as we do.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("PGSSLMODE", self.cfg.sslmode.clone()), ("PGUSER", self.role())];
        if let Some(host) = &self.cfg.host {
            env.push(("PGHOST", host.clone()));
        }
        if let Some(port) = self.cfg.port {
            env.push(("PGPORT", port.to_string()));
        }
        if let Some(password) = &self.cfg.password {
            env.push(("PGPASSWORD", password.clone()));
        }
        env
    }

    /// A tokio-postgres configuration for `dbname` on this server.
    pub fn config_for(&self, dbname: &str) -> tokio_postgres::Config {
        pg_config(&self.cfg, dbname)
    }
}

/// PostgreSQL's own message when there is one (tokio-postgres displays just "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

/// A tokio-postgres configuration for `dbname` from Odoo's keys.
pub fn pg_config(cfg: &DbConfig, dbname: &str) -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.dbname(dbname).user(cfg.role()).application_name("numikube-staging").connect_timeout(CONNECT_TIMEOUT);
    match &cfg.host {
        Some(host) => {
            pg.host(host);
        }
        // No db_host: the local socket, where libpq's Debian build looks for it.
        None => {
            let dir = if std::path::Path::new("/var/run/postgresql").exists() { "/var/run/postgresql" } else { "/tmp" };
            pg.host_path(dir);
        }
    }
    if let Some(port) = cfg.port {
        pg.port(port);
    }
    if let Some(password) = &cfg.password {
        pg.password(password);
    }
    pg
}
