//! numikube-staging: the sidecar that gives production Odoo users their own
//! staging copies of production, built from the newest backup.
//!
//! # Layout
//!
//! - [`config`]: reads the staging `odoo.conf` the way Odoo does.
//! - [`names`]: the naming rule and how a staging database is named.
//! - [`backup_source`]: the newest backup of a client in the bucket, streamed.
//! - [`backup_format`]: tells custom dumps, Odoo zips and plain SQL apart (gzip or not).
//! - [`db`]: PostgreSQL: the instance's database list, markers, create/rename/drop.
//! - [`restore`]: feeds a backup to `pg_restore` or `psql` into a hidden database.
//! - [`neutralize`]: makes a copy harmless (`data/neutralize.sql` of each module + built-ins).
//! - [`prewarm`]: builds templates of new backups before anyone asks.
//! - [`filestore`]: the `<data_dir>/filestore/<db>` directories.
//! - [`jobs`]: the checks, the admission under the limit, and the life of a job.
//! - [`copy`]: making one copy: restore or template copy, neutralize, final name.
//! - [`journal`]: the jobs still to report, and who owns which work.
//! - [`recovery`]: after a crash, report orphaned jobs and sweep what they left.
//! - [`callback`]: tells production how a job ended.
//! - [`mail`]: the fallback e-mail when production cannot be reached.
//! - [`drop`]: who may be dropped, and dropping.
//! - [`app`]: the shared state and the token check.
//! - [`api`]: the JSON-RPC methods, each a thin delegate.
//! - [`server`]: the HTTP server around the API.
//! - [`templates`]: kept neutralized templates that make repeat copies instant.

pub mod api;
pub mod app;
pub mod backup_format;
pub mod backup_source;
pub mod callback;
pub mod config;
pub mod copy;
pub mod db;
pub mod drop;
pub mod filestore;
pub mod jobs;
pub mod journal;
pub mod mail;
pub mod names;
pub mod neutralize;
pub mod prewarm;
pub mod recovery;
pub mod restore;
pub mod server;
pub mod templates;
