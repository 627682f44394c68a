//! The role that hides databases by owning them (docs/contract.md, *Hidden*): a
//! NOLOGIN role of which `db_user` is a member. Odoo lists only `db_user`'s
//! databases, and only the owner's members and superusers may clone a
//! database that is not a template, so a database owned by this role is
//! invisible to Odoo and closed to every other role.

use postgres_protocol::escape::escape_identifier;

use super::db::{Db, DbError};

/// Why the sidecar cannot start: the work role is missing and cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// PostgreSQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The role or the membership is missing and `db_user` may not make it.
    #[error("the role {role} that hides databases while they are restored is missing, or {user} is not a member of it, and {user} may not create roles. Ask a superuser to run once:\n    CREATE ROLE {role_sql} NOLOGIN;\n    GRANT {role_sql} TO {user_sql};\nor set numikube_staging_work_role to an existing NOLOGIN role {user} is a member of.")]
    Missing {
        /// The work role.
        role: String,
        /// `db_user`.
        user: String,
        /// The work role, quoted for SQL.
        role_sql: String,
        /// `db_user`, quoted for SQL.
        user_sql: String,
    },
    /// `db_user` is `postgres`: refused, as Odoo refuses it.
    #[error("db_user is postgres: numikube-staging refuses to run as PostgreSQL's superuser, as Odoo does. Set db_user to the role the staging Odoo uses (with CREATEDB and CREATEROLE).")]
    Postgres,
    /// What containment needs is missing (CREATEROLE, a job role's login).
    #[error("{0}")]
    Containment(String),
}

impl Db {
    /// Checks the work role and `db_user`'s membership; makes them when `db_user` may (CREATEROLE).
    pub async fn ensure_work_role(&self) -> Result<(), RoleError> {
        let client = self.pooled().await?;
        let (role, user) = (self.work_role.clone(), self.role());
        let row = client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
                        EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND pg_has_role($2::text, oid, 'MEMBER')),
                        (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = $2)",
                &[&role, &user],
            )
            .await
            .map_err(|e| self.sql_err(e))?;
        let (exists, member, may): (bool, bool, Option<bool>) = (row.get(0), row.get(1), row.get(2));
        if member {
            return Ok(());
        }
        let (role_sql, user_sql) = (escape_identifier(&role), escape_identifier(&user));
        let missing =
            || RoleError::Missing { role: role.clone(), user: user.clone(), role_sql: role_sql.clone(), user_sql: user_sql.clone() };
        if may != Some(true) {
            return Err(missing());
        }
        let create = if exists { String::new() } else { format!("CREATE ROLE {role_sql} NOLOGIN; ") };
        client.batch_execute(&format!("{create}GRANT {role_sql} TO {user_sql}")).await.map_err(|e| {
            tracing::error!("could not create the work role {role}: {}", super::db::describe(&e));
            missing()
        })?;
        tracing::info!(role = %role, "created the work role that hides databases while they are restored");
        Ok(())
    }

    /// Checks what running each backup as a role of its own needs (docs/contract.md
    /// *Containment*): not `postgres`, CREATEROLE, and a job role that can log
    /// in over `db_host`; warns when `db_user` is a superuser.
    pub async fn check_containment(&self) -> Result<(), RoleError> {
        let user = self.role();
        if user == "postgres" {
            return Err(RoleError::Postgres);
        }
        let client = self.pooled().await?;
        let row = client
            .query_one("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1", &[&user])
            .await
            .map_err(|e| self.sql_err(e))?;
        let (superuser, createrole): (bool, bool) = (row.get(0), row.get(1));
        if superuser {
            tracing::warn!(
                "db_user {user} is a superuser: a backup still runs as a role of its own, but the staging Odoo, which runs the copies as \
                 {user}, can then reach every database of the server; give Odoo a role with CREATEDB and CREATEROLE only"
            );
        } else if !createrole {
            return Err(RoleError::Containment(format!(
                "db_user {user} may not create roles. numikube-staging runs every backup's SQL as a login role of its own that owns \
                 nothing but the copy being made, so db_user needs CREATEROLE: as a superuser run once\n    ALTER ROLE {} CREATEROLE;",
                escape_identifier(&user)
            )));
        }
        self.check_job_login().await.map_err(RoleError::Containment)
    }
}
