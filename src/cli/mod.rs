//! The `numikube-staging` command: the sidecar server and its operator commands.
//!
//! Every command reads the staging `odoo.conf` (`-c`) and applies the same
//! rules as the API: `list`, `drop`, `backups`, `extend` and `restore` call
//! the very methods the JSON-RPC server serves, in this process; `status`,
//! `cancel` and `health` ask the running server ([`remote`]), because jobs
//! and pre-warm live in its memory. `completions` and `man` print what clap
//! generates from this file.
//!
//! Output: readable tables on a terminal, the API's JSON with `--json`
//! (errors then as `{"error": {"code", "message"}}` on stdout too).
//! The exit codes are listed in [`Exit`] and in `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod exit;
mod logging;
mod output;
mod remote;
mod restore;

use clap::{CommandFactory, Parser, Subcommand};
use numikube_staging_rpc::{RunPayload, StagingApiServer};

use crate::api::{server, Api};
use crate::app::App;
use crate::config::Config;
use crate::pg::RoleError;
use exit::{Exit, EXIT_CODES};
use logging::LogFormat;
use output::{backups_table, drop_table, extended_text, fail, list_table, print};

/// Staging copies of a production Odoo, made from its newest backup.
///
/// The log goes to stderr; NUMIKUBE_LOG sets its filter (e.g. `info`,
/// `numikube_staging=debug`; default `info` for serve, `warn` otherwise).
#[derive(Parser)]
#[command(version, about, long_about, after_help = EXIT_CODES)]
struct Cli {
    /// The staging server's odoo.conf.
    #[arg(short = 'c', long = "config", global = true, default_value = "/etc/odoo/odoo.conf", env = "ODOO_RC")]
    config: PathBuf,
    /// Print the API's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// How log lines are written: text, or one JSON object per line (journald, Kubernetes).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "NUMIKUBE_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON-RPC API on numikube_staging_sidecar (default 127.0.0.1:8075).
    Serve,
    /// List this instance's databases (those Odoo's database selector shows).
    #[command(after_help = EXIT_CODES)]
    List,
    /// Drop databases the staging service made (same rules as the API).
    #[command(after_help = EXIT_CODES)]
    Drop {
        /// Database names; each argument may hold several, split on white space.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Show a job of the running sidecar, by job id or database name.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// Job id or database name.
        #[arg(value_name = "JOB_OR_NAME")]
        job_or_db: String,
        /// Ask again every second, printing each change on stderr, until the job ends.
        #[arg(long)]
        follow: bool,
    },
    /// List a client's backups in the bucket, newest first (what `restore --backup` takes).
    #[command(after_help = EXIT_CODES)]
    Backups {
        /// Client technical name.
        client: String,
    },
    /// Stop a queued or restoring job of the running sidecar; its hidden database is dropped.
    #[command(after_help = EXIT_CODES)]
    Cancel {
        /// The job's id.
        job_id: String,
    },
    /// Push a copy's expiry back (numikube_staging_expire_after from now).
    #[command(after_help = EXIT_CODES)]
    Extend {
        /// The copy's name.
        db_name: String,
    },
    /// What the running sidecar says of PostgreSQL, the bucket and pre-warm (exit 3 when one is down).
    #[command(after_help = EXIT_CODES)]
    Health,
    /// Print a shell's completion script (e.g. `numikube-staging completions bash`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `numikube-staging man | man -l -`.
    Man,
    /// Make a staging copy here from the client's newest backup, and wait for it.
    #[command(after_help = EXIT_CODES)]
    Restore {
        /// Client technical name (backups are <client>-…, <client>_…, <client>/… or <client>.…).
        #[arg(long)]
        client: String,
        /// Level: lab, test, ecom, …
        #[arg(long)]
        level: String,
        /// Last part of the name.
        #[arg(long)]
        suffix: Option<String>,
        /// Leave the timestamp out of the name (a refresh of the same name).
        #[arg(long)]
        no_timestamp: bool,
        /// Mask the people in the copy (README, Anonymized copies).
        #[arg(long)]
        anonymize: bool,
        /// The backup to restore (a key listed by `backups`); default: the newest.
        #[arg(long, value_name = "KEY")]
        backup: Option<String>,
    },
}

/// Parses the command line, sets up logging, and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "numikube-staging", &mut std::io::stdout());
            return Exit::Done.into();
        }
        Command::Man => {
            return match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => Exit::Done.into(),
                Err(e) => {
                    eprintln!("error: cannot write the man page: {e}");
                    Exit::Usage.into()
                }
            };
        }
        _ => {}
    }
    logging::init(cli.log_format, if matches!(cli.command, Command::Serve) { "info" } else { "warn" });
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    runtime.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    let app = match App::new(config) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Exit::Usage.into();
        }
    };
    let token = app.config().token.clone();
    let json = cli.json;
    if matches!(cli.command, Command::Serve | Command::Restore { .. }) {
        let db = &app.services.db;
        let checked = match db.check_containment().await {
            Ok(()) => db.ensure_work_role().await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => {}
            Err(e @ (RoleError::Missing { .. } | RoleError::Postgres | RoleError::Containment(_))) => {
                eprintln!("error: {e}");
                return Exit::Usage.into();
            }
            Err(e) => tracing::warn!("cannot check the roles now ({e}); copies fail until PostgreSQL answers"),
        }
    }
    match cli.command {
        Command::Serve => serve(app).await,
        Command::List => match Api::operator(app).list(token, None).await {
            Ok(rows) => print(json, rows.as_slice(), list_table, Exit::Done),
            Err(e) => fail(json, e),
        },
        Command::Drop { names } => match Api::operator(app).drop_databases(token, names.join(" ")).await {
            Ok(result) => {
                let exit = if !result.refused.is_empty() {
                    Exit::Refused
                } else if !result.missing.is_empty() {
                    Exit::NotFound
                } else {
                    Exit::Done
                };
                print(json, &result, drop_table, exit)
            }
            Err(e) => fail(json, e),
        },
        Command::Status { job_or_db, follow } => remote::status(app.config(), json, &job_or_db, follow).await,
        Command::Cancel { job_id } => remote::cancel(app.config(), json, &job_id).await,
        Command::Health => remote::health(app.config(), json).await,
        Command::Backups { client } => match Api::operator(app).backups(token, client).await {
            Ok(found) => print(json, &found, backups_table, Exit::Done),
            Err(e) => fail(json, e),
        },
        Command::Extend { db_name } => match Api::operator(app).extend(token, db_name).await {
            Ok(at) => print(json, &at, extended_text, Exit::Done),
            Err(e) => fail(json, e),
        },
        Command::Restore { client, level, suffix, no_timestamp, anonymize, backup } => {
            let payload = RunPayload {
                client: Some(client),
                level: Some(level),
                suffix,
                timestamp: Some(!no_timestamp),
                anonymize: Some(anonymize),
                backup,
                ..Default::default()
            };
            restore::restore_here(app, json, payload).await
        }
        Command::Completions { .. } | Command::Man => unreachable!("answered before the configuration is read"),
    }
}

async fn serve(app: Arc<App>) -> ExitCode {
    for warning in app.config().warnings() {
        tracing::warn!("{warning}");
    }
    app.start_background_work().await;
    let (addr, handle) = match server::serve(app.clone(), app.config().listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Exit::Usage.into();
        }
    };
    tracing::info!(%addr, config = %app.config().path.display(), "numikube-staging serving JSON-RPC");
    crate::systemd::notify_ready(); // Type=notify: both listeners are bound, the start-up checks passed
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    crate::systemd::notify_stopping();
    // Refuse new jobs before closing the port, so a request in flight gets a
    // clear answer; restores stop at a safe point (or finish their last step),
    // and what is not reported within the grace period is reported at the next start.
    tracing::info!("stopping: no new jobs; interrupting running restores, at most {SHUTDOWN_GRACE:?}");
    // join! polls in order: admissions are closed before the port is.
    let closing_the_port = async {
        let _ = handle.stop();
        handle.stopped().await
    };
    tokio::join!(app.shut_down(SHUTDOWN_GRACE), closing_the_port);
    Exit::Done.into()
}

/// How long a SIGTERM waits for restores to stop and reports to go out
/// (well within systemd's and Kubernetes' default stop timeouts).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
