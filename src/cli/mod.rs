//! The `numikube-staging` command: the sidecar server and its operator commands.
//!
//! Every command reads the staging `odoo.conf` (`-c`) and applies the same
//! rules as the API: `list`, `drop` and `restore` call the very methods the
//! JSON-RPC server serves, in this process; `status` asks the running server,
//! because jobs live in its memory.
//!
//! Output: readable tables on a terminal, the API's JSON with `--json`
//! (errors then as `{"error": {"code", "message"}}` on stdout too).
//! The exit codes are listed in [`Exit`] and in `--help`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod output;

use clap::{Parser, Subcommand};
use numikube_staging_rpc::{codes, JobState, RunPayload, StagingApiServer};

use crate::admission::checks;
use crate::api::{server, Api};
use crate::app::App;
use crate::config::Config;
use crate::pg::RoleError;
use output::{drop_table, fail, list_table, print, status_table};

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

const EXIT_CODES: &str = "\
Exit codes:
  0  done (every name dropped, the copy is ready, …)
  1  refused or failed: a name was refused, the job failed (the message says why)
  2  bad usage or configuration (e.g. no numikube_staging_token in odoo.conf)
  3  PostgreSQL, the bucket or the running sidecar cannot be reached
  4  not found: a name to drop does not exist (none refused), an unknown job";

/// Staging copies of a production Odoo, made from its newest backup.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = EXIT_CODES)]
struct Cli {
    /// The staging server's odoo.conf.
    #[arg(short = 'c', long = "config", global = true, default_value = "/etc/odoo/odoo.conf", env = "ODOO_RC")]
    config: PathBuf,
    /// Print the API's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
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
    },
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
    },
}

/// Parses the command line, sets up logging, and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NUMIKUBE_LOG").unwrap_or_else(|_| {
                let default = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
                tracing_subscriber::EnvFilter::new(default)
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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
        match app.services.db.ensure_work_role().await {
            Ok(()) => {}
            Err(e @ RoleError::Missing { .. }) => {
                eprintln!("error: {e}");
                return Exit::Usage.into();
            }
            Err(e) => tracing::warn!("cannot check the work role now ({e}); copies fail until PostgreSQL answers"),
        }
    }
    match cli.command {
        Command::Serve => serve(app).await,
        Command::List => match Api::new(app).list(token, None).await {
            Ok(rows) => print(json, rows.as_slice(), list_table, Exit::Done),
            Err(e) => fail(json, e),
        },
        Command::Drop { names } => match Api::new(app).drop_databases(token, names.join(" ")).await {
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
        Command::Status { job_or_db } => status(&app, json, &job_or_db).await,
        Command::Restore { client, level, suffix, no_timestamp } => {
            let payload = RunPayload {
                client: Some(client),
                level: Some(level),
                suffix,
                timestamp: Some(!no_timestamp),
                ..Default::default()
            };
            restore_here(app, json, payload).await
        }
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

/// The sidecar's jobs are in the running server's memory: ask it over JSON-RPC.
async fn status(app: &App, json: bool, job_or_db: &str) -> ExitCode {
    use jsonrpsee::http_client::HttpClientBuilder;
    use numikube_staging_rpc::StagingApiClient;
    let url = format!("http://{}", app.config().listen);
    let client = HttpClientBuilder::default().build(&url).expect("a valid URL");
    match client.status(app.config().token.clone(), job_or_db.to_string()).await {
        Ok(s) => print(json, &s, status_table, Exit::Done),
        Err(jsonrpsee::core::ClientError::Call(e)) => fail(json, e),
        Err(e) => fail(
            json,
            numikube_staging_rpc::error(
                codes::UNAVAILABLE,
                format!("The sidecar at {url} cannot be reached ({e}); is `numikube-staging serve` running?"),
                None,
            ),
        ),
    }
}

/// Runs a prod2x here and waits, printing the phases (with a progress bar on a terminal).
async fn restore_here(app: Arc<App>, json: bool, payload: RunPayload) -> ExitCode {
    let started = match checks::check_prod2x(app.config(), &payload) {
        Ok(request) => app.admission.accept(request).await,
        Err(e) => Err(e),
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => return fail(json, crate::api::errors::admission(e)),
    };
    let tty = std::io::stderr().is_terminal() && !json;
    if !json {
        eprintln!("making {} (job {})", started.db_name, started.job_id);
    }
    let mut last = None;
    loop {
        let s = app.jobs.find(&started.job_id).expect("an accepted job is known").status();
        if !json && last != Some(s.phase) {
            if tty && last.is_some() {
                eprintln!();
            }
            eprint!("{:?}", s.phase);
            if !tty {
                eprintln!();
            }
            last = Some(s.phase);
        }
        if tty {
            if let Some(p) = s.progress {
                eprint!("\r{:<13} {:>3.0}% [{:<30}]", format!("{:?}", s.phase), p * 100.0, "#".repeat((p * 30.0) as usize));
            }
        }
        if s.state != JobState::Running {
            if tty {
                eprintln!();
            }
            return if s.state == JobState::Done {
                if !wait_visible(&app, &s.db_name).await {
                    let message = format!(
                        "{} was restored but is still hidden from Odoo; see the log, or run ALTER DATABASE … IS_TEMPLATE false.",
                        s.db_name
                    );
                    return fail(json, numikube_staging_rpc::error(codes::INTERNAL, message, None));
                }
                print(json, &s, |s| format!("{} is ready (from {})\n", s.db_name, s.backup.as_deref().unwrap_or("?")), Exit::Done)
            } else {
                fail(json, numikube_staging_rpc::error(codes::INTERNAL, s.error.clone().unwrap_or_default(), None))
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A job is done once the copy is complete; it becomes visible to Odoo a
/// moment later (after a template is kept from it, in the background). This
/// process must not exit before, or the copy would stay hidden.
async fn wait_visible(app: &App, db_name: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
    while tokio::time::Instant::now() < deadline {
        if let Ok(rows) = app.services.db.all(false).await {
            if rows.iter().any(|r| r.name == db_name && app.services.db.in_instance_list(r)) {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

