//! The exit codes of the `numikube-staging` command, which scripts rely on.

use std::process::ExitCode;

/// What scripts can rely on; the numbers never change meaning.
#[derive(Debug, Clone, Copy)]
pub enum Exit {
    /// Done: listed, every name dropped, the copy is ready.
    Done = 0,
    /// Refused or failed: a name was refused, the job failed, the request was refused.
    Refused = 1,
    /// Bad usage or configuration (also clap's own usage errors).
    Usage = 2,
    /// PostgreSQL, the bucket or the running sidecar cannot be reached.
    Unavailable = 3,
    /// Not found: a name to drop does not exist (and none was refused), an unknown job.
    NotFound = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// The exit codes, for `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done (every name dropped, the copy is ready, …)
  1  refused or failed: a name was refused, the job failed (the message says why)
  2  bad usage or configuration (e.g. no numikube_staging_token in odoo.conf)
  3  PostgreSQL, the bucket or the running sidecar cannot be reached
  4  not found: a name to drop does not exist (none refused), an unknown job";
