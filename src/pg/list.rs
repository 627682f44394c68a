//! Reading `pg_database`: every database with what the rules need, and
//! which of them are this instance's (Odoo's own rule).

use tokio_postgres::types::Type;

use super::db::{Db, DbError};
use super::marker::{Marker, MarkerState};
use super::working_name::{WorkKind, WorkingName};

/// A row of `pg_database` with what the rules need.
#[derive(Debug, Clone)]
pub struct DatabaseRow {
    /// Name.
    pub name: String,
    /// Owned by `db_user`.
    pub owned: bool,
    /// Owned by `numikube_staging_work_role`, or by one of this `db_user`'s job roles while a backup loads: hidden.
    pub hidden: bool,
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
        (self.is_template || self.hidden) && self.marker.as_ref().is_some_and(|m| m.state == MarkerState::Done && m.db_name == self.name)
    }

    /// One of our kept templates.
    pub fn is_kept_template(&self) -> bool {
        WorkingName::parse(&self.name).is_some_and(|w| w.kind() == WorkKind::Template)
            && self.marker.as_ref().is_some_and(|m| m.state == MarkerState::Template)
    }

    /// The client it belongs to: its marker's, or, for markers of older
    /// versions that have none and unmarked databases, the name's first part
    /// (`<client>-<level>…`).
    pub fn client(&self) -> Option<String> {
        self.marker.as_ref().and_then(|m| m.client.clone()).or_else(|| self.name.split_once('-').map(|(c, _)| c.to_string()))
    }

    /// Its working name, if it has one.
    pub fn working_name(&self) -> Option<WorkingName> {
        WorkingName::parse(&self.name)
    }
}

impl Db {
    /// Every database of the server, with owner, template flag and marker.
    pub async fn all(&self, with_size: bool) -> Result<Vec<DatabaseRow>, DbError> {
        let client = self.pooled().await?;
        self.all_on(&client, with_size).await
    }

    /// As [`Db::all`], on a given connection (the registry's, in an admission round).
    pub(super) async fn all_on(&self, client: &tokio_postgres::Client, with_size: bool) -> Result<Vec<DatabaseRow>, DbError> {
        let size = if with_size { "pg_database_size(d.oid)" } else { "NULL::bigint" };
        let sql = format!(
            "SELECT d.datname, pg_get_userbyid(d.datdba) = $1, d.datistemplate, d.datallowconn,
                    shobj_description(d.oid, 'pg_database'), {size},
                    pg_get_userbyid(d.datdba) = $2
                    OR (starts_with(pg_get_userbyid(d.datdba), '{job}') AND pg_has_role($1, d.datdba, 'MEMBER'))
             FROM pg_database d ORDER BY d.datname",
            job = super::job_role::PREFIX
        );
        // Typed parameters: one trip, not a prepare then an execute (admission reads this in every round).
        let (role, work_role) = (self.role(), &self.work_role);
        let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] = [(&role, Type::NAME), (work_role, Type::NAME)];
        let rows = client.query_typed(&sql, &params).await.map_err(|e| self.sql_err(e))?;
        Ok(rows
            .iter()
            .map(|r| DatabaseRow {
                name: r.get(0),
                owned: r.get(1),
                is_template: r.get(2),
                allow_conn: r.get(3),
                marker: Marker::parse(r.get::<_, Option<&str>>(4)),
                size: r.get(5),
                hidden: r.get(6),
            })
            .collect())
    }

    /// Whether a database of that name is one of ours, complete: this
    /// instance's, or a finished copy being published, or a kept template.
    pub fn is_ours(&self, row: &DatabaseRow) -> bool {
        row.marker.is_some() && (self.in_instance_list(row) || row.is_being_published() || row.is_kept_template())
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
            .map_err(|e| self.sql_err(e))?;
        Ok(row.get(0))
    }

    /// Whether a database of that name exists.
    pub async fn exists(&self, name: &str) -> Result<bool, DbError> {
        let client = self.pooled().await?;
        let row = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name]).await.map_err(|e| self.sql_err(e))?;
        Ok(row.is_some())
    }
}
