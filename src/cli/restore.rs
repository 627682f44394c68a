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
    let job = app.jobs.find(&started.job_id).expect("an accepted job is known");
    let mut last = None;
    // The job's end is waited on; the timer only refreshes what is shown.
    let mut refresh = tokio::time::interval(Duration::from_millis(200));
    loop {
        let ended = tokio::select! {
            () = job.ended() => true,
            _ = refresh.tick() => false,
        };
        let s = job.status();
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
        if !ended {
            continue;
        }
        if tty {
            eprintln!();
        }
        if s.state != JobState::Done {
            return fail(json, numikube_staging_rpc::error(codes::INTERNAL, s.error.clone().unwrap_or_default(), None));
        }
        // A done job has been published (or tried five times, leaving it to the sweep).
        if !visible(&app, &s.db_name).await {
            let message = format!(
                "{} was restored but is still hidden from Odoo; the sweep of a running `numikube-staging serve` makes it visible, or see the log.",
                s.db_name
            );
            return fail(json, numikube_staging_rpc::error(codes::INTERNAL, message, None));
        }
        return print(json, &s, ready, Exit::Done);
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

/// Whether Odoo's database list shows `db_name`.
async fn visible(app: &App, db_name: &str) -> bool {
    let db = &app.services.db;
    db.all(false).await.is_ok_and(|rows| rows.iter().any(|r| r.name == db_name && db.in_instance_list(r)))
}
