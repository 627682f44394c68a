//! The login role a backup runs as (docs/contract.md, *Containment*): made for one
//! hidden database alone, it owns that database while the backup loads and
//! is neutralized, and nothing else. No CREATEDB, no CREATEROLE, member of no
//! role: whatever a backup's SQL (or a function it brings) does runs with the
//! power of the owner of its own copy, and cannot reach another database, a
//! role or another session. When the copy is complete its objects go to
//! `db_user`, the database to the work role, and the role is dropped.
//!
//! `db_user` is made a member of the job role (so it may create the database
//! for it, take its objects back, and end its sessions); the job role gains
//! nothing from that, since membership gives the member's power only to the member.

use postgres_protocol::escape::{escape_identifier, escape_literal};
use tokio_postgres::Client;

use super::db::{pg_config, Db, DbError, CONNECT_TIMEOUT};
use super::working_name::WorkingName;

/// The prefix of every job role; the rest is the hidden database's 32 hex digits.
pub const PREFIX: &str = "numikube_job_";

/// A job's login role: its name and the password made for it (never stored).
#[derive(Clone)]
pub struct JobRole {
    name: String,
    password: String,
}

impl std::fmt::Debug for JobRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRole").field("name", &self.name).finish_non_exhaustive()
    }
}

impl JobRole {
    /// The role's name for the hidden database `db`.
    pub fn name_for(db: &WorkingName) -> String {
        format!("{PREFIX}{}", db.id())
    }

    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// libpq's environment for a client program (`pg_restore`) that logs in as this role.
    pub fn libpq_env(&self, db: &Db) -> Vec<(&'static str, String)> {
        let mut env: Vec<_> = db.libpq_env().into_iter().filter(|(k, _)| *k != "PGUSER" && *k != "PGPASSWORD").collect();
        env.push(("PGUSER", self.name.clone()));
        env.push(("PGPASSWORD", self.password.clone()));
        env
    }

    /// A tokio-postgres configuration that logs in to `dbname` as this role.
    pub fn config_for(&self, db: &Db, dbname: &str) -> tokio_postgres::Config {
        let mut pg = pg_config(&db.cfg, dbname);
        pg.user(&self.name).password(&self.password);
        pg
    }
}

impl Db {
    /// Opens a one-off connection to `dbname` as the job role, for the steps
    /// after loading; it closes when dropped. What the backup set on its role
    /// or database cannot make that session read-only.
    pub async fn connect_as(&self, role: &JobRole, dbname: &str) -> Result<Client, DbError> {
        let mut config = role.config_for(self, dbname);
        config.options("-c default_transaction_read_only=off");
        self.connect_with(&config, &format!("the restore's role {} a connection to database \"{dbname}\"", role.name)).await
    }

    /// Makes the job role of the hidden database `db`: a login role with a
    /// random password and no power but what its database will give it.
    pub async fn create_job_role(&self, db: &WorkingName) -> Result<JobRole, DbError> {
        let role = JobRole { name: JobRole::name_for(db), password: random_password() };
        let client = self.pooled().await?;
        let quoted = escape_identifier(&role.name);
        let sql = format!(
            "CREATE ROLE {quoted} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; \
             GRANT {quoted} TO {}",
            escape_literal(&role.password),
            escape_identifier(&self.role())
        );
        client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
        Ok(role)
    }

    /// Hands a complete copy over: its objects to `db_user`, the database to
    /// the work role (still hidden), and whatever the backup set on the
    /// database itself undone (settings, connection flags, privileges); then
    /// the job role is dropped.
    pub async fn hand_over(&self, db: &str, role: &JobRole) -> Result<(), DbError> {
        let (quoted_db, quoted_role) = (escape_identifier(db), escape_identifier(&role.name));
        {
            let client = self.pooled().await?;
            self.end_sessions_of(&client, &role.name).await?;
            let sql = format!(
                "ALTER DATABASE {quoted_db} OWNER TO {work}; ALTER DATABASE {quoted_db} RESET ALL; \
                 ALTER DATABASE {quoted_db} WITH ALLOW_CONNECTIONS true IS_TEMPLATE false CONNECTION LIMIT -1; \
                 REVOKE ALL ON DATABASE {quoted_db} FROM PUBLIC",
                work = escape_identifier(&self.work_role)
            );
            client.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
            // The backup owned the database: whatever it granted on it to other roles goes too.
            let grantees = client
                .query(
                    "SELECT DISTINCT pg_get_userbyid(a.grantee)::text FROM pg_database d, aclexplode(d.datacl) a
                     WHERE d.datname = $1 AND a.grantee <> 0 AND a.grantee <> d.datdba",
                    &[&db],
                )
                .await
                .map_err(|e| self.sql_err(e))?;
            for grantee in grantees.iter().map(|r| r.get::<_, String>(0)) {
                let revoke = format!("REVOKE ALL ON DATABASE {quoted_db} FROM {} CASCADE", escape_identifier(&grantee));
                client.batch_execute(&revoke).await.map_err(|e| self.sql_err(e))?;
            }
        }
        let inside = self.connect(db).await?;
        let sql = format!("REASSIGN OWNED BY {quoted_role} TO {}; DROP OWNED BY {quoted_role}", escape_identifier(&self.role()));
        inside.batch_execute(&sql).await.map_err(|e| self.sql_err(e))?;
        drop(inside);
        self.drop_job_role(&role.name).await
    }

    /// Drops a job role (its sessions ended first); nothing if it is gone.
    /// Fails while the role still owns a database: drop that first.
    pub async fn drop_job_role(&self, name: &str) -> Result<(), DbError> {
        let client = self.pooled().await?;
        let exists = client.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name]).await.map_err(|e| self.sql_err(e))?;
        if exists.is_none() {
            return Ok(());
        }
        self.end_sessions_of(&client, name).await?;
        client.batch_execute(&format!("DROP ROLE IF EXISTS {}", escape_identifier(name))).await.map_err(|e| self.sql_err(e))
    }

    /// The job roles of this `db_user` (those it is a member of), for the sweep.
    pub async fn job_roles(&self) -> Result<Vec<String>, DbError> {
        let client = self.pooled().await?;
        let rows = client
            .query(
                "SELECT rolname::text FROM pg_roles
                 WHERE starts_with(rolname, $1) AND pg_has_role($2::text, oid, 'MEMBER') AND NOT rolsuper",
                &[&PREFIX, &self.role()],
            )
            .await
            .map_err(|e| self.sql_err(e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn end_sessions_of(&self, client: &Client, role: &str) -> Result<(), DbError> {
        client
            .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()", &[&role])
            .await
            .map_err(|e| self.sql_err(e))?;
        Ok(())
    }

    /// Proves at start that a job role can be made and can log in over
    /// `db_host` as the restore will; says what to change when it cannot.
    pub async fn check_job_login(&self) -> Result<(), String> {
        let probe = WorkingName::fresh(super::WorkKind::Temp);
        let role = self.create_job_role(&probe).await.map_err(|e| {
            format!(
                "{} cannot create the login role a restore runs as ({}). numikube-staging runs every backup's SQL as a role of \
                 its own that owns nothing but the copy being made, so db_user needs CREATEROLE: as a superuser run\n    \
                 ALTER ROLE {} CREATEROLE;",
                self.role(),
                e.detail,
                escape_identifier(&self.role())
            )
        })?;
        let config = role.config_for(self, "postgres");
        let login = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(tokio_postgres::NoTls)).await;
        let outcome = match login {
            Ok(Ok(_)) => Ok(()),
            // Logged in, but kept out of the postgres database: the login itself works.
            Ok(Err(e)) if e.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => Ok(()),
            Ok(Err(e)) => Err(super::describe(&e)),
            Err(_) => Err("no answer in time".into()),
        };
        if let Err(e) = self.drop_job_role(role.name()).await {
            tracing::warn!("could not drop the probe role {}: {e}", role.name());
        }
        outcome.map_err(|detail| {
            format!(
                "a restore's own login role ({PREFIX}…) could not log in to PostgreSQL {} with its password: {detail}. \
                 Let roles named {PREFIX}* log in with a password from this host in pg_hba.conf (e.g. \
                 `host all all 127.0.0.1/32 scram-sha-256`, before any line that rejects them; see docs/install.md), then reload PostgreSQL.",
                self.err("").where_
            )
        })
    }
}

/// 256 random bits as hex (two v4 uuids come from the OS's generator).
fn random_password() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}
