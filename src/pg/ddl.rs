//! Creating, marking, hiding, publishing, closing, renaming and dropping
//! databases. Callers decide *whether*; this decides *how*.

use postgres_protocol::escape::{escape_identifier, escape_literal};
use tokio_postgres::Client;

use super::{Db, DbError, Marker};

impl Db {
    /// Creates a hidden database as a file copy of `template` (which nobody may be connected to).
    pub async fn copy_hidden(&self, name: &str, template: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await
            .map_err(|e| self.sql_err(e))?
            .get(0);
        // PostgreSQL 15 copies through the WAL by default; FILE_COPY is the fast whole-file copy of older versions.
        let strategy = if version >= 150000 { "STRATEGY FILE_COPY" } else { "" };
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {} {strategy} IS_TEMPLATE true",
            escape_identifier(name),
            escape_identifier(template)
        );
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
        self.set_marker_with(&client, name, marker).await
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
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
        self.set_marker_with(&client, name, marker).await
    }

    /// Writes the marker as the database's comment.
    pub async fn set_marker(&self, name: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.set_marker_with(&client, name, marker).await
    }

    async fn set_marker_with(&self, client: &Client, name: &str, marker: &Marker) -> Result<(), DbError> {
        let sql = format!("COMMENT ON DATABASE {} IS {}", escape_identifier(name), escape_literal(&marker.to_json()));
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))
    }

    /// Hides a database from Odoo's list (`IS_TEMPLATE`).
    pub async fn hide(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let sql = format!("ALTER DATABASE {} IS_TEMPLATE true", escape_identifier(name));
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))
    }

    /// Makes a finished copy visible to Odoo and open to connections.
    pub async fn publish(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let quoted = escape_identifier(name);
        let sql = format!("ALTER DATABASE {quoted} IS_TEMPLATE false; ALTER DATABASE {quoted} ALLOW_CONNECTIONS true");
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))
    }

    /// Closes a database: no new connections (autovacuum included: it skips
    /// databases that refuse connections), and this role's sessions in it
    /// terminated. Autovacuum workers still inside are stopped by PostgreSQL
    /// itself at the RENAME, DROP or CREATE … TEMPLATE that follows; only a
    /// superuser could terminate them here.
    pub async fn close(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.close_with(&client, name).await
    }

    async fn close_with(&self, client: &Client, name: &str) -> Result<(), DbError> {
        let sql = format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", escape_identifier(name));
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend' AND pg_has_role(usesysid, 'MEMBER')",
                &[&name],
            )
            .await
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Renames a database, closing it first; it stays closed (see [`Db::publish`]).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.close_with(&client, from).await?;
        let sql = format!("ALTER DATABASE {} RENAME TO {}", escape_identifier(from), escape_identifier(to));
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))
    }

    /// Drops a database whatever its sessions (this role's are terminated) or
    /// template flag. Callers decide *whether* it may be dropped; see the `drop` module.
    pub async fn drop_force(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(|e| self.sql_err(e))?
            .is_some();
        if !exists {
            return Ok(());
        }
        let quoted = escape_identifier(name);
        client.batch_execute(&format!("ALTER DATABASE {quoted} IS_TEMPLATE false")).await.map_err(|e| self.sql_err(e))?;
        self.close_with(&client, name).await?;
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted}")).await.map_err(|e| self.sql_err(e))
    }
}
