//! numikube-staging: the sidecar that gives production Odoo users their own
//! staging copies of production, built from a production backup.
//!
//! # Layout
//!
//! A request is **admitted**, its **job** makes a **copy**, the result is
//! **reported**; data flows down that line and never back up.
//!
//! - [`api`]: the JSON-RPC methods, the mapping of errors to codes, the HTTP server.
//! - [`cli`]: the `numikube-staging` command (`serve`, `list`, `drop`, `status`, `restore`).
//! - [`app`]: the whole state, built once; start-up and shutdown.
//! - [`admission`]: token and field checks, names, the limit, admission of a job.
//! - [`drop`]: who may be dropped, and dropping (a Drop job).
//! - [`job`]: a job's state and progress, the registry, its life from slot to report.
//! - [`copy`]: one copy, a folder per stage: `restore/` (format, pg_restore, zip, plain SQL), `filestore/` (zip, companion,
//!   production's folder), `neutralize/`, `anonymize/`, `life/` (final name, publish, templates, discard).
//! - [`report`]: the journal, the callback to production, the fallback mail.
//! - [`upkeep`]: the sweep of leftovers and orphaned jobs, and pre-warm.
//! - [`services`]: configuration, PostgreSQL and the bucket, handed down to every stage.
//! - [`pg`]: PostgreSQL: working names, markers, the instance's list, create/close/rename/drop.
//! - [`storage`]: the bucket: which backups are a client's (never a companion archive), their companions, streamed.
//! - [`config`]: reads the staging `odoo.conf` the way Odoo does.
//! - [`process`]: this process's identity, to tell whose work is whose.
//! - [`durable`]: a small file written so that a crash leaves its old or its new content.
//! - [`metrics`]: the Prometheus series, `GET /metrics` and `GET /healthz` (own listener or JSON-RPC's).
//! - [`systemd`]: `Type=notify` readiness and stopping (sd_notify).

pub mod admission;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod copy;
pub mod drop;
pub mod durable;
pub mod job;
pub mod metrics;
pub mod pg;
pub mod process;
pub mod report;
pub mod services;
pub mod storage;
pub mod systemd;
pub mod upkeep;
