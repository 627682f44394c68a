//! The command's log: to stderr, filtered by `NUMIKUBE_LOG` (tracing's
//! `EnvFilter` syntax, e.g. `info` or `numikube_staging=debug`), as text or
//! as one JSON object per line (`--log-format json`, for journald and Kubernetes).

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line, values as fields.
    Json,
}

/// Sets up the log; `default` is the level when `NUMIKUBE_LOG` is unset.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_env("NUMIKUBE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let log = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => log.json().flatten_event(true).init(),
    }
}
