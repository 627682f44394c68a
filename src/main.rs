//! `numikube-staging`: the sidecar server and its operator commands.
//!
//! Every command reads the staging `odoo.conf` (`-c`) and applies the same
//! rules as the API: the commands call the same functions, there is no bypass.
//!
//! Exit codes: 0 done; 1 refused or failed (the message says why);
//! 2 bad usage or configuration; 3 PostgreSQL or the bucket unavailable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging::app::App;
use numikube_staging::config::Config;
use numikube_staging::{api::Api, jobs, server};
use numikube_staging_rpc::{codes, JobState, RunPayload, StagingApiServer};

/// Staging copies of a production Odoo, made from its newest backup.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The staging server's odoo.conf.
    #[arg(short = 'c', long = "config", global = true, default_value = "/etc/odoo/odoo.conf", env = "ODOO_RC")]
    config: PathBuf,
    /// Print JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the JSON-RPC API on numikube_staging_sidecar (default 127.0.0.1:8075).
    Serve,
    /// List this instance's databases.
    List,
    /// Drop databases the staging service made (same rules as the API).
    Drop {
        /// Database names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a job of the running sidecar, by job id or database name.
    Status {
        /// Job id or database name.
        job_or_db: String,
    },
    /// Make a staging copy here and wait for it (prod2x without production).
    Restore {
        /// Client technical name (backups are <client>-…, <client>_…, <client>/… or <client>.…).
        #[arg(long)]
        client: String,
        /// Level: lab, test, ecom, …
        #[arg(long, default_value = "lab")]
        level: String,
        /// Last part of the name.
        #[arg(long)]
        suffix: Option<String>,
        /// Leave the timestamp out of the name (a refresh of the same name).
        #[arg(long)]
        no_timestamp: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NUMIKUBE_LOG").unwrap_or_else(|_| {
                let default = if matches!(cli.command, Command::Serve) { "info" } else { "warn" };
                tracing_subscriber::EnvFilter::new(default)
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
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
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve => serve(app).await,
        Command::List => {
            let token = app.config.token.clone();
            print_or_fail(cli.json, Api::new(app).list(token).await, |rows| {
                let mut out = format!("{:<40} {:>12}  {:<6} {:<26} {}\n", "NAME", "SIZE", "OURS", "CREATED", "BACKUP");
                for r in rows {
                    out += &format!(
                        "{:<40} {:>12}  {:<6} {:<26} {}\n",
                        r.name,
                        human_size(r.size_bytes),
                        if r.made_by_staging { "yes" } else { "no" },
                        r.created_at.as_deref().unwrap_or("-"),
                        r.backup.as_deref().unwrap_or("-")
                    );
                }
                out
            })
        }
        Command::Drop { names } => {
            let token = app.config.token.clone();
            print_or_fail(cli.json, Api::new(app).drop_databases(token, names.join(" ")).await, |r| {
                let mut out = String::new();
                for n in &r.dropped {
                    out += &format!("dropped  {n}\n");
                }
                for n in &r.missing {
                    out += &format!("missing  {n}\n");
                }
                for n in &r.refused {
                    out += &format!("refused  {}: {}\n", n.name, n.reason);
                }
                out
            })
        }
        Command::Status { job_or_db } => status(&app, cli.json, &job_or_db).await,
        Command::Restore { client, level, suffix, no_timestamp } => {
            let payload = RunPayload {
                client: Some(client),
                level: Some(level),
                suffix,
                timestamp: Some(!no_timestamp),
                ..Default::default()
            };
            restore_here(app, cli.json, payload).await
        }
    }
}

async fn serve(app: Arc<App>) -> ExitCode {
    jobs::recover(&app).await;
    let (addr, handle) = match server::serve(app.clone(), app.config.listen).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%addr, config = %app.config.path.display(), "numikube-staging serving JSON-RPC");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("stopping: no new requests; unfinished jobs are reported as interrupted at the next start");
    let _ = handle.stop();
    handle.stopped().await;
    ExitCode::SUCCESS
}

/// The sidecar's status is in the running server's memory: ask it over JSON-RPC.
async fn status(app: &App, json: bool, job_or_db: &str) -> ExitCode {
    use jsonrpsee::http_client::HttpClientBuilder;
    use numikube_staging_rpc::StagingApiClient;
    let url = format!("http://{}", app.config.listen);
    let client = HttpClientBuilder::default().build(&url).expect("a valid URL");
    match client.status(app.config.token.clone(), job_or_db.to_string()).await {
        Ok(s) => print_or_fail::<_>(json, Ok(s), |s| {
            format!(
                "job {}\ndatabase {}\nstate {:?}\nphase {:?}\nprogress {}\nerror {}\n",
                s.job_id,
                s.db_name,
                s.state,
                s.phase,
                s.progress.map(|p| format!("{:.0}%", p * 100.0)).unwrap_or("-".into()),
                s.error.as_deref().unwrap_or("-")
            )
        }),
        Err(jsonrpsee::core::ClientError::Call(e)) => print_or_fail::<()>(json, Err(e), |_| String::new()),
        Err(e) => {
            eprintln!("error: the sidecar at {url} cannot be reached ({e}); is `numikube-staging serve` running?");
            ExitCode::from(3)
        }
    }
}

/// Runs a prod2x here and waits, printing the phases.
async fn restore_here(app: Arc<App>, json: bool, payload: RunPayload) -> ExitCode {
    let started = match jobs::check_prod2x(&app.config, &payload) {
        Ok(request) => jobs::accept(&app, request).await,
        Err(e) => Err(e),
    };
    let started = match started {
        Ok(s) => s,
        Err(e) => return print_or_fail::<()>(json, Err(e), |_| String::new()),
    };
    let tty = std::io::stderr().is_terminal() && !json;
    let mut last = None;
    loop {
        let s = app.jobs.find(&started.job_id).expect("an accepted job is known").status();
        if !json && last != Some(s.phase) {
            if tty && last.is_some() {
                eprintln!();
            }
            eprint!("{:?}", s.phase);
            last = Some(s.phase);
        }
        if tty {
            if let Some(p) = s.progress {
                eprint!("\r{:<13} {:>3.0}% [{:<30}]", format!("{:?}", s.phase), p * 100.0, "#".repeat((p * 30.0) as usize));
            }
        }
        if s.state != JobState::Running {
            if !json {
                eprintln!();
            }
            let ok = s.state == JobState::Done;
            let result: Result<_, ErrorObjectOwned> = if ok {
                Ok(s)
            } else {
                Err(numikube_staging_rpc::error(codes::INTERNAL, s.error.clone().unwrap_or_default(), None))
            };
            return print_or_fail(json, result, |s| format!("{} is ready ({})\n", s.db_name, s.backup.as_deref().unwrap_or("?")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prints a result as JSON or text; errors go to stderr with an exit code by kind.
fn print_or_fail<T: serde::Serialize>(json: bool, result: Result<T, ErrorObjectOwned>, text: impl Fn(&T) -> String) -> ExitCode {
    match result {
        Ok(value) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&value).expect("serializable"));
            } else {
                print!("{}", text(&value));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({"error": {"code": e.code(), "message": e.message()}}));
            }
            eprintln!("error: {}", e.message());
            ExitCode::from(if e.code() == codes::UNAVAILABLE { 3 } else { 1 })
        }
    }
}

fn human_size(bytes: i64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if size < 1024.0 {
            return format!("{size:.0} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.1} TiB")
}
