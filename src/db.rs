//! PostgreSQL: the instance's database list (Odoo's rule), the sidecar's
//! marker on the databases it makes, and create / rename / drop.
//!
//! One pool serves the `postgres` maintenance database; work inside another
//! database opens a one-off connection, because an idle pooled session inside
//! a database would block its `DROP DATABASE` or `ALTER DATABASE … RENAME`.
//! Identifiers are always quoted with the driver's escaping, never formatted in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgres_protocol::escape::{escape_identifier, escape_literal};
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};

use crate::config::{Config, DbConfig};

/// How long to wait for PostgreSQL before saying it is unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL failure, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("the database server {where_}: {detail}")]
pub struct DbError {
    /// Which server, e.g. `at 127.0.0.1:5432 is unavailable`.
    pub where_: String,
    /// What PostgreSQL said.
    pub detail: String,
}

/// The machine-readable marker the sidecar puts on every database it makes,
/// as the database's comment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// Always 1; the key that tells our comments from anyone else's.
    pub numikube_staging: u32,
    /// `restoring` while hidden, `done` once renamed to its final name.
    pub state: String,
    /// The job that made it.
    pub job_id: String,
    /// The final name it was made for.
    pub db_name: String,
    /// Key of the backup it was made from.
    pub backup: Option<String>,
    /// ETag of that backup.
    pub etag: Option<String>,
    /// When the job started.
    pub created_at: DateTime<Utc>,
    /// Client the backup belongs to (templates are kept per client).
    #[serde(default)]
    pub client: Option<String>,
    /// What the neutralization ran (kept on templates for their copies' reports).
    #[serde(default)]
    pub neutralized: Option<numikube_staging_rpc::NeutralizeReport>,
    /// The process working on it, while it is hidden: another live sidecar's
    /// (or `restore` command's) work is never swept away.
    #[serde(default)]
    pub owner: Option<crate::journal::Owner>,
}

impl Marker {
    /// Reads a database comment; `None` if it is not our marker.
    pub fn parse(comment: Option<&str>) -> Option<Marker> {
        serde_json::from_str::<Marker>(comment?).ok().filter(|m| m.numikube_staging == 1)
    }

    /// The marker of a hidden database this process restores `backup` of `client` into.
    pub fn restoring(job_id: String, db_name: String, client: &str, backup: &crate::backup_source::Backup) -> Marker {
        Marker {
            numikube_staging: 1,
            state: "restoring".into(),
            job_id,
            db_name,
            backup: Some(backup.key.clone()),
            etag: Some(backup.etag.clone()),
            created_at: Utc::now(),
            client: Some(client.into()),
            neutralized: None,
            owner: Some(crate::journal::Owner::me()),
        }
    }

    /// Whether it marks a copy still being restored (hidden, but a
    /// rename may show it for a moment).
    pub fn is_being_made(&self) -> bool {
        self.state == "restoring"
    }
}

/// A row of `pg_database` with what the rules need.
#[derive(Debug, Clone)]
pub struct DatabaseRow {
    /// Name.
    pub name: String,
    /// Owned by `db_user`.
    pub owned: bool,
    /// `datistemplate`.
    pub is_template: bool,
    /// `datallowconn`.
    pub allow_conn: bool,
    /// Our marker, if it carries one.
    pub marker: Option<Marker>,
    /// `pg_database_size`, when asked for.
    pub size: Option<i64>,
}

impl DatabaseRow {
    /// A finished copy under its final name, still hidden while a template is
    /// kept from it: already one of this instance's databases for the limit
    /// and the list, not yet for Odoo.
    pub fn is_being_published(&self) -> bool {
        self.is_template && self.marker.as_ref().is_some_and(|m| m.state == "done" && m.db_name == self.name)
    }
}

/// Access to the PostgreSQL server of `odoo.conf`.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    cfg: DbConfig,
    dbfilter: Option<regex::Regex>,
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
        Ok(Db { pool, cfg: config.db.clone(), dbfilter: config.dbfilter.clone() })
    }

    /// The role that owns this instance's databases.
    pub fn role(&self) -> String {
        self.cfg.role()
    }

    fn err(&self, e: impl std::fmt::Display) -> DbError {
        let host = self.cfg.host.clone().unwrap_or_else(|| "(local socket)".into());
        let port = self.cfg.port.unwrap_or(5432);
        DbError { where_: format!("at {host}:{port}"), detail: e.to_string() }
    }

    async fn pooled(&self) -> Result<deadpool_postgres::Object, DbError> {
        self.pool.get().await.map_err(|e| self.err(format!("is unavailable ({e})")))
    }

    /// Opens a one-off connection to `dbname`; it closes when dropped.
    pub async fn connect(&self, dbname: &str) -> Result<Client, DbError> {
        let pg = pg_config(&self.cfg, dbname);
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT, pg.connect(NoTls))
            .await
            .map_err(|_| self.err("did not answer in time"))?
            .map_err(|e| self.err(format!("refused a connection to database \"{dbname}\" ({e})")))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `ok` if PostgreSQL answers, else why not (for `staging_health`).
    pub async fn health(&self) -> String {
        match self.pooled().await {
            Ok(c) => match c.simple_query("SELECT 1").await {
                Ok(_) => "ok".into(),
                Err(e) => self.err(e).to_string(),
            },
            Err(e) => e.to_string(),
        }
    }

    /// Every database of the server, with owner, template flag and marker.
    pub async fn all(&self, with_size: bool) -> Result<Vec<DatabaseRow>, DbError> {
        let client = self.pooled().await?;
        let size = if with_size { "pg_database_size(d.oid)" } else { "NULL::bigint" };
        let sql = format!(
            "SELECT d.datname, pg_get_userbyid(d.datdba) = $1, d.datistemplate, d.datallowconn,
                    shobj_description(d.oid, 'pg_database'), {size}
             FROM pg_database d ORDER BY d.datname"
        );
        let rows = client.query(&sql, &[&self.role()]).await.map_err(|e| self.err(describe(&e)))?;
        Ok(rows
            .iter()
            .map(|r| DatabaseRow {
                name: r.get(0),
                owned: r.get(1),
                is_template: r.get(2),
                allow_conn: r.get(3),
                marker: Marker::parse(r.get::<_, Option<&str>>(4)),
                size: r.get(5),
            })
            .collect())
    }

    /// Whether a row is in this instance's list, by Odoo's own rule
    /// (`odoo.service.db.list_dbs` plus `dbfilter`).
    pub fn in_instance_list(&self, row: &DatabaseRow) -> bool {
        row.owned
            && !row.is_template
            && row.allow_conn
            && row.name != "postgres"
            && row.name != self.cfg.template
            && self.dbfilter.as_ref().is_none_or(|f| f.is_match(&row.name))
    }

    /// This instance's databases (what Odoo's database selector shows).
    pub async fn instance_list(&self, with_size: bool) -> Result<Vec<DatabaseRow>, DbError> {
        Ok(self.all(with_size).await?.into_iter().filter(|r| self.in_instance_list(r)).collect())
    }

    /// Creates a hidden database as a file copy of `template` (which nobody may be connected to).
    pub async fn copy_hidden(&self, name: &str, template: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| self.err(describe(&e)))?
            .get(0);
        // PostgreSQL 15 copies through the WAL by default; FILE_COPY is the fast whole-file copy of older versions.
        let strategy = if version >= 150000 { "STRATEGY FILE_COPY" } else { "" };
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {} {strategy} IS_TEMPLATE true",
            escape_identifier(name),
            escape_identifier(template)
        );
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))?;
        self.set_marker_with(&client, name, marker).await
    }

    /// Where PostgreSQL keeps its files, when this role may know (for the free-space check).
    pub async fn data_directory(&self) -> Option<std::path::PathBuf> {
        let client = self.pooled().await.ok()?;
        let row = client.query_one("SELECT current_setting('data_directory')", &[]).await.ok()?;
        Some(std::path::PathBuf::from(row.get::<_, String>(0)))
    }

    /// Size of one database.
    pub async fn size(&self, name: &str) -> Result<i64, DbError> {
        let client = self.pooled().await?;
        let row = client
            .query_one("SELECT pg_database_size(oid) FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| self.err(describe(&e)))?;
        Ok(row.get(0))
    }

    /// Creates an empty hidden database (a template, so Odoo does not list it), owned by `db_user`.
    pub async fn create_hidden(&self, name: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let template = &self.cfg.template;
        // Odoo's own choice: C collation when built from template0.
        let collate = if template == "template0" { "LC_COLLATE 'C'" } else { "" };
        let sql = format!(
            "CREATE DATABASE {} ENCODING 'unicode' {collate} TEMPLATE {} IS_TEMPLATE true",
            escape_identifier(name),
            escape_identifier(template)
        );
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))?;
        self.set_marker_with(&client, name, marker).await
    }

    /// Writes the marker as the database's comment.
    pub async fn set_marker(&self, name: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.set_marker_with(&client, name, marker).await
    }

    async fn set_marker_with(&self, client: &Client, name: &str, marker: &Marker) -> Result<(), DbError> {
        let json = serde_json::to_string(marker).expect("a marker serializes");
        let sql = format!("COMMENT ON DATABASE {} IS {}", escape_identifier(name), escape_literal(&json));
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))
    }

    /// Hides a database from Odoo's list (`IS_TEMPLATE`).
    pub async fn hide(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let sql = format!("ALTER DATABASE {} IS_TEMPLATE true", escape_identifier(name));
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))
    }

    /// Makes a finished copy visible to Odoo and open to connections.
    pub async fn publish(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let quoted = escape_identifier(name);
        let sql = format!("ALTER DATABASE {quoted} IS_TEMPLATE false; ALTER DATABASE {quoted} ALLOW_CONNECTIONS true");
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))
    }

    /// Closes a database: no new connections (autovacuum included: it skips
    /// databases that refuse connections), and this role's sessions in it
    /// terminated. Autovacuum workers still inside are stopped by PostgreSQL
    /// itself at the RENAME, DROP or CREATE … TEMPLATE that follows; only a
    /// superuser could terminate them here (and `DROP … WITH (FORCE)` fails
    /// on them for any other role).
    pub async fn close(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.close_with(&client, name).await
    }

    async fn close_with(&self, client: &Client, name: &str) -> Result<(), DbError> {
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", escape_identifier(name));
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))?;
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend' AND pg_has_role(usesysid, 'MEMBER')",
                &[&name],
            )
            .await
            .map_err(|e| self.err(describe(&e)))?;
        Ok(())
    }

    /// Renames a database, closing it first; it stays closed (see [`Db::publish`]).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.close_with(&client, from).await?;
        let sql = format!("ALTER DATABASE {} RENAME TO {}", escape_identifier(from), escape_identifier(to));
        client.batch_execute(&sql).await.map_err(|e| self.err(describe(&e)))
    }

    /// Drops a database whatever its sessions (this role's are terminated) or
    /// template flag. Callers decide *whether* it may be dropped; see the `drop` module.
    pub async fn drop_force(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| self.err(describe(&e)))?
            .is_some();
        if !exists {
            return Ok(());
        }
        let quoted = escape_identifier(name);
        client
            .batch_execute(&format!("ALTER DATABASE {quoted} IS_TEMPLATE false"))
            .await
            .map_err(|e| self.err(describe(&e)))?;
        self.close_with(&client, name).await?;
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted}"))
            .await
            .map_err(|e| self.err(describe(&e)))
    }

    /// Whether a database of that name exists.
    pub async fn exists(&self, name: &str) -> Result<bool, DbError> {
        let client = self.pooled().await?;
        let row = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| self.err(describe(&e)))?;
        Ok(row.is_some())
    }

    /// Environment for `pg_restore` / `psql` children, so they reach the same server as we do.
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
