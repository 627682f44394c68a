//! The names every phase of a run shares: the token, the roles and their
//! password, the bucket and the databases.

/// `numikube_staging_token` of every sidecar.
pub const TOKEN: &str = "bench-token";
/// The role of the baselines; each sidecar has its own, `<ROLE>_<name>`.
pub const ROLE: &str = "odoo";
/// The password of every role.
pub const ROLE_PW: &str = "odoo-pw";
/// The bucket of backups.
pub const BUCKET: &str = "prod-backups";
/// The production database the backups are made of.
pub const PROD_DB: &str = "prod_bench";
/// The FILE_COPY contender's template database.
pub const TEMPLATE_DB: &str = "bench_tpl";
