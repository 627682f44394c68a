//! The role that hides databases by owning them (DESIGN.md, *Hidden*): a
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
}
