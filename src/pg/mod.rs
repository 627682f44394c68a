//! PostgreSQL: the one place that knows the working names, the markers, the
//! instance's database list (Odoo's rule) and how databases are created,
//! closed, renamed and dropped.
//!
//! One pool serves the `postgres` maintenance database; work inside another
//! database opens a one-off connection, because an idle pooled session inside
//! a database would block its `DROP DATABASE` or `ALTER DATABASE … RENAME`.
//! Identifiers are always quoted with the driver's escaping, never formatted in.

pub(crate) mod db;
mod ddl;
pub mod job_role;
mod list;
pub mod marker;
pub mod registry;
mod roles;
pub mod working_name;

pub use db::{describe, pg_config, Db, DbError};
pub use job_role::JobRole;
pub use list::DatabaseRow;
pub use marker::{Marker, MarkerState, Masking};
pub use roles::RoleError;
pub use working_name::{WorkKind, WorkingName};
