//! `numikube-staging restore`: a prod2x made in this process, with the same
//! admission as the API, followed until Odoo can open the copy.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use numikube_staging_rpc::{codes, JobState, JobStatus, Phase, RunPayload};

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
    let job = app.jobs.find(&started.job_id).expect("an accepted job is known");
    let mut shown = Shown::new(json, &started.db_name, &started.job_id);
    // The job's end is waited on; the timer only refreshes what is shown.
    let mut refresh = tokio::time::interval(Duration::from_millis(200));
    let mut interrupted = false;
    loop {
        let ended = tokio::select! {
            () = job.ended() => true,
            _ = refresh.tick() => false,
            // Ctrl-C: the job stops as a cancel does (its hidden database and role are dropped), then this exits.
            _ = tokio::signal::ctrl_c(), if !interrupted => {
                interrupted = true;
                eprintln!("interrupted: stopping the job and dropping what it made");
                job.cancel();
                false
            }
        };
        let s = job.status();
        shown.update(&s);
        if !ended {
            continue;
        }
        shown.finish();
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

/// What the command shows while the job runs: a progress bar on a terminal
/// (indicatif: phase, percentage, elapsed, ETA), a line per phase otherwise,
/// a JSON line per change with `--json` (all on stderr; stdout keeps the answer).
struct Shown {
    json: bool,
    bar: Option<ProgressBar>,
    last: Option<(Phase, Option<u32>)>,
}

impl Shown {
    fn new(json: bool, db_name: &str, job_id: &str) -> Shown {
        let tty = std::io::stderr().is_terminal() && !json;
        if !json {
            eprintln!("making {db_name} (job {job_id})");
        }
        let bar = tty.then(|| {
            let bar = ProgressBar::new(1000);
            let style = ProgressStyle::with_template("{msg:<13} [{bar:30}] {percent:>3}%  {elapsed_precise}  ETA {eta}")
                .expect("a valid template")
                .progress_chars("#>-");
            bar.set_style(style);
            bar
        });
        Shown { json, bar, last: None }
    }

    fn update(&mut self, s: &JobStatus) {
        let percent = s.progress.map(|p| (p * 100.0) as u32);
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{:?}", s.phase));
            bar.set_position(s.progress.map_or(0, |p| (p * 1000.0) as u64));
            return;
        }
        if self.json && self.last != Some((s.phase, percent)) {
            let line = serde_json::json!({"phase": s.phase, "progress": s.progress, "backup": s.backup});
            eprintln!("{line}");
        } else if !self.json && self.last.map(|(p, _)| p) != Some(s.phase) {
            eprintln!("{:?}", s.phase);
        }
        self.last = Some((s.phase, percent));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
