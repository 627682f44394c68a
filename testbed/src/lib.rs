//! Throw-away **real** servers for the tests, the demo and the benchmark of
//! numikube-staging: a PostgreSQL cluster ([`Postgres`]), moto's S3 server ([`S3`]),
//! an aiosmtpd SMTP server ([`Smtp`]) and an in-process HTTP server standing in for
//! production's callback route ([`CallbackReceiver`]).
//!
//! Each helper listens on a free `127.0.0.1` port ([`free_port`]), waits until its
//! server answers before returning, and stops the server and removes its files on
//! `Drop`, also when the test panics. External programs are found as follows:
//! PostgreSQL in `$PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin`; `moto_server` and `python3` on `PATH`, else in the
//! venv made by `scripts/install-deps` (`$NUMIKUBE_VENV`, default
//! `~/.cache/numikube-staging/venv`). Run `scripts/install-deps` once to get them.
//!
//! Beside the servers: [`sidecar`] starts the real `numikube-staging serve` on
//! them (the one launcher of the tests, the demo and the benchmark) and reads
//! its log; [`fixture`] builds Odoo-shaped databases and their backups;
//! [`procfs`] reads a process's memory; [`ident`] and [`literal`] quote SQL.

pub mod callback;
pub mod fixture;
pub mod port;
pub mod postgres;
pub mod procfs;
pub mod s3;
pub mod sidecar;
pub mod smtp;
mod util;

pub use callback::{Answer, CallbackReceiver, ReceivedRequest};
pub use port::free_port;
pub use postgres::{ident, literal, Postgres};
pub use s3::S3;
pub use smtp::Smtp;
