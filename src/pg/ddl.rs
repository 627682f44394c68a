//! Creating, marking, hiding, publishing, closing, renaming and dropping
//! databases. Callers decide *whether*; this decides *how*.
//!
//! Hidden is by owner, never by `IS_TEMPLATE` (any role with CREATEDB may
//! clone a template database): a database being made belongs to the work
//! role, with `CONNECT` revoked from `PUBLIC`; publishing hands it to `db_user`.
//! Kept templates belong to `db_user` and are closed.

use postgres_protocol::escape::{escape_identifier, escape_literal};
use tokio_postgres::Client;

use super::db::{Db, DbError};
use super::marker::Marker;

impl Db {
    async fn run(&self, client: &Client, sql: &str) -> Result<(), DbError> {
        client.batch_execute(sql).await.map_err(|e| self.sql_err(e))
    }

    /// Creates a hidden database as a file copy of `template` (which nobody may be connected to).
    pub async fn copy_hidden(&self, name: &str, template: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let version: i32 =
            client.query_one("SELECT current_setting('server_version_num')::int", &[]).await.map_err(|e| self.sql_err(e))?.get(0);
        // PostgreSQL 15 copies through the WAL by default; FILE_COPY is the fast whole-file copy of older versions.
        let strategy = if version >= 150000 { "STRATEGY FILE_COPY" } else { "" };
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {} OWNER {} {strategy}",
            escape_identifier(name),
            escape_identifier(template),
            escape_identifier(&self.work_role)
        );
        self.run(&client, &sql).await?;
        self.private_with(&client, name, marker).await
    }

    /// Creates an empty hidden database owned by `owner`: the job role the
    /// backup loads as (see [`super::job_role`]), else the work role.
    pub async fn create_hidden(&self, name: &str, marker: &Marker, owner: Option<&str>) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let template = &self.cfg.template;
        // Odoo's own choice: C collation when built from template0.
        let collate = if template == "template0" { "LC_COLLATE 'C'" } else { "" };
        let sql = format!(
            "CREATE DATABASE {} ENCODING 'unicode' {collate} TEMPLATE {} OWNER {}",
            escape_identifier(name),
            escape_identifier(template),
            escape_identifier(owner.unwrap_or(&self.work_role))
        );
        self.run(&client, &sql).await?;
        self.private_with(&client, name, marker).await
    }

    /// No role but the owner's members may connect; the marker is written.
    async fn private_with(&self, client: &Client, name: &str, marker: &Marker) -> Result<(), DbError> {
        self.run(client, &format!("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC", escape_identifier(name))).await?;
        self.set_marker_with(client, name, marker).await
    }

    /// Writes the marker as the database's comment.
    pub async fn set_marker(&self, name: &str, marker: &Marker) -> Result<(), DbError> {
        let client = self.pooled().await?;
        self.set_marker_with(&client, name, marker).await
    }

    async fn set_marker_with(&self, client: &Client, name: &str, marker: &Marker) -> Result<(), DbError> {
        let sql = format!("COMMENT ON DATABASE {} IS {}", escape_identifier(name), escape_literal(&marker.to_json()));
        self.run(client, &sql).await
    }

    /// Hides a database from Odoo's list: the work role owns it, nobody else may connect.
    pub async fn hide(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let quoted = escape_identifier(name);
        let sql = format!(
            "ALTER DATABASE {quoted} OWNER TO {}; REVOKE CONNECT, TEMPORARY ON DATABASE {quoted} FROM PUBLIC",
            escape_identifier(&self.work_role)
        );
        self.run(&client, &sql).await
    }

    /// Makes a finished copy visible to Odoo (owned by `db_user`) and open to connections.
    pub async fn publish(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let quoted = escape_identifier(name);
        let sql = format!(
            "ALTER DATABASE {quoted} IS_TEMPLATE false; ALTER DATABASE {quoted} OWNER TO {}; ALTER DATABASE {quoted} ALLOW_CONNECTIONS true",
            escape_identifier(&self.role())
        );
        self.run(&client, &sql).await
    }

    /// Makes a database a kept template: `db_user`'s, closed (hidden from Odoo, and nobody inside).
    pub async fn keep_as_template(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let sql = format!("ALTER DATABASE {} OWNER TO {}", escape_identifier(name), escape_identifier(&self.role()));
        self.run(&client, &sql).await?;
        self.close_with(&client, name).await
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
        self.run(client, &format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", escape_identifier(name))).await?;
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
    /// When the rename fails, the database is opened again if it was open.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let was_open = self.allows_connections(&client, from).await?;
        self.close_with(&client, from).await?;
        let sql = format!("ALTER DATABASE {} RENAME TO {}", escape_identifier(from), escape_identifier(to));
        if let Err(e) = self.run(&client, &sql).await {
            if was_open == Some(true) {
                let _ = self.run(&client, &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", escape_identifier(from))).await;
            }
            return Err(e);
        }
        Ok(())
    }

    async fn allows_connections(&self, client: &Client, name: &str) -> Result<Option<bool>, DbError> {
        let row =
            client.query_opt("SELECT datallowconn FROM pg_database WHERE datname = $1", &[&name]).await.map_err(|e| self.sql_err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Drops a database with `DROP DATABASE … WITH (FORCE)`, which terminates
    /// its sessions first. A drop that fails (another role's session, a lock)
    /// leaves the database as it was. Callers decide *whether* it may be
    /// dropped; see the `drop` module.
    pub async fn drop_force(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let row =
            client.query_opt("SELECT datistemplate FROM pg_database WHERE datname = $1", &[&name]).await.map_err(|e| self.sql_err(e))?;
        let Some(row) = row else { return Ok(()) };
        let quoted = escape_identifier(name);
        // A database left IS_TEMPLATE by an earlier version cannot be dropped as such.
        let was_template: bool = row.get(0);
        if was_template {
            self.run(&client, &format!("ALTER DATABASE {quoted} IS_TEMPLATE false")).await?;
        }
        if let Err(e) = self.drop_terminating(&client, &quoted).await {
            if was_template {
                let _ = self.run(&client, &format!("ALTER DATABASE {quoted} IS_TEMPLATE true")).await;
            }
            return Err(e);
        }
        Ok(())
    }

    /// `DROP DATABASE … WITH (FORCE)`; when PostgreSQL refuses to terminate a
    /// session for want of privilege, a plain `DROP DATABASE` once: before
    /// version 16 FORCE refuses to end an autovacuum worker (it belongs to no
    /// role), which the plain drop ends itself; another role's session still
    /// makes it fail, and the first error is the one reported.
    async fn drop_terminating(&self, client: &Client, quoted: &str) -> Result<(), DbError> {
        let Err(forced) = client.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")).await else { return Ok(()) };
        if forced.code() != Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            return Err(self.sql_err(forced));
        }
        match client.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted}")).await {
            Ok(()) => {
                tracing::debug!(db = quoted, "dropped without FORCE (an autovacuum worker was in it)");
                Ok(())
            }
            Err(_) => Err(self.sql_err(forced)),
        }
    }

    /// Converts the databases an earlier version hid with `IS_TEMPLATE`: working
    /// copies go to the work role, kept templates stay `db_user`'s but closed.
    pub async fn convert_legacy_hidden(&self) -> Result<usize, DbError> {
        let rows = self.all(false).await?;
        let mut converted = 0;
        for row in rows.iter().filter(|r| r.is_template && r.marker.is_some() && (r.owned || r.hidden)) {
            let client = self.pooled().await?;
            let quoted = escape_identifier(&row.name);
            if row.is_kept_template() {
                self.run(&client, &format!("ALTER DATABASE {quoted} ALLOW_CONNECTIONS false; ALTER DATABASE {quoted} IS_TEMPLATE false"))
                    .await?;
            } else {
                self.run(&client, &format!("ALTER DATABASE {quoted} IS_TEMPLATE false")).await?;
                self.hide(&row.name).await?;
            }
            tracing::info!(db = %row.name, "hidden by its owner now, no longer IS_TEMPLATE");
            converted += 1;
        }
        Ok(converted)
    }
}
