//! `numikube-staging restore`: a prod2x made in this process, with the same
//! admission as the API, followed until Odoo can open the copy.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use numikube_staging_rpc::{codes, JobState, RunPayload};

use super::exit::Exit;
use super::output::{fail, print};
use crate::admission::checks;
use crate::app::App;

/// Runs a prod2x here and waits, printing the phases (with a progress bar on a terminal).
pub async fn restore_here(app: Arc<App>, json: bool, payload: RunPayload) -> ExitCode {
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
                        "{} was restored but is still hidden from Odoo; the sweep of a running `numikube-staging serve` makes it visible, or see the log.",
                        s.db_name
                    );
                    return fail(json, numikube_staging_rpc::error(codes::INTERNAL, message, None));
                }
                print(json, &s, ready, Exit::Done)
            } else {
                fail(json, numikube_staging_rpc::error(codes::INTERNAL, s.error.clone().unwrap_or_default(), None))
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The line that says a copy is ready: its backup, its filestore's origin and the attachments it lacks.
fn ready(s: &numikube_staging_rpc::JobStatus) -> String {
    let missing = match s.missing_attachments {
        Some(n) if n > 0 => format!(", {n} attachments without their file"),
        _ => String::new(),
    };
    let filestore = s.filestore.as_deref().unwrap_or("?");
    format!("{} is ready (from {}); filestore: {filestore}{missing}\n", s.db_name, s.backup.as_deref().unwrap_or("?"))
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
