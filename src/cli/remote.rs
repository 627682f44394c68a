//! The commands that ask the running sidecar over JSON-RPC, because what
//! they show lives in its memory: `status` (and `--follow`), `cancel`, `health`.

use std::process::ExitCode;
use std::time::Duration;

use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, JobState, StagingApiClient};

use super::exit::Exit;
use super::output::{cancelled_text, fail, health_table, print, status_table};
use crate::config::Config;

/// How often `status --follow` asks again.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// A client of the running sidecar, and its URL for messages.
struct Remote {
    client: HttpClient,
    url: String,
    token: String,
}

impl Remote {
    fn new(config: &Config) -> Remote {
        let url = format!("http://{}", config.listen);
        let client = HttpClientBuilder::default().build(&url).expect("a valid URL");
        Remote { client, url, token: config.token.clone() }
    }

    /// A call's error as the API's: a refusal as is, an unreachable server said so.
    fn error(&self, e: ClientError) -> ErrorObjectOwned {
        match e {
            ClientError::Call(e) => e,
            e => numikube_staging_rpc::error(
                codes::UNAVAILABLE,
                format!("The sidecar at {} cannot be reached ({e}); is `numikube-staging serve` running?", self.url),
                None,
            ),
        }
    }
}

/// `status`: a job of the running sidecar; with `follow`, again every second until it ends.
pub async fn status(config: &Config, json: bool, job_or_db: &str, follow: bool) -> ExitCode {
    let remote = Remote::new(config);
    let mut last = None;
    loop {
        let s = match remote.client.status(remote.token.clone(), job_or_db.to_string()).await {
            Ok(s) => s,
            Err(e) => return fail(json, remote.error(e)),
        };
        let ended = s.state != JobState::Running;
        if !follow || ended {
            let exit = if s.state == JobState::Error && follow { Exit::Refused } else { Exit::Done };
            return print(json, &s, status_table, exit);
        }
        if last != Some((s.phase, s.progress.map(|p| (p * 100.0) as u32))) {
            let line = match json {
                true => serde_json::to_string(&s).expect("serializable"),
                false => format!("{:?} {}", s.phase, s.progress.map(|p| format!("{:.0}%", p * 100.0)).unwrap_or_default()),
            };
            eprintln!("{line}");
            last = Some((s.phase, s.progress.map(|p| (p * 100.0) as u32)));
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// `cancel`: stops a queued or restoring job of the running sidecar.
pub async fn cancel(config: &Config, json: bool, job_id: &str) -> ExitCode {
    let remote = Remote::new(config);
    match remote.client.cancel(remote.token.clone(), job_id.to_string()).await {
        Ok(c) => print(json, &c, cancelled_text, Exit::Done),
        Err(e) => fail(json, remote.error(e)),
    }
}

/// `health`: what the running sidecar says of PostgreSQL, the bucket and pre-warm.
pub async fn health(config: &Config, json: bool) -> ExitCode {
    let remote = Remote::new(config);
    match remote.client.health().await {
        Ok(h) => {
            let exit = if h.postgres.is_ok() && h.storage.is_ok() { Exit::Done } else { Exit::Unavailable };
            print(json, &h, health_table, exit)
        }
        Err(e) => fail(json, remote.error(e)),
    }
}
