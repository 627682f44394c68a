//! Telling production how a job ended: POST the wire protocol's callback,
//! retried with exponential back-off and jitter for
//! `numikube_staging_callback_timeout`; when production stays unreachable,
//! e-mail the result instead (see [`super::mail`]).

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use numikube_staging_rpc::{Callback, JobState};
use serde_json::Value;

use super::journal::JournalEntry;
use super::mail;
use crate::config::Config;
use crate::metrics::Metrics;

/// How long one attempt may take at most (less when the window is nearly over).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause between attempts; it doubles (with jitter) up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(120);

/// Accepts only absolute http(s) URLs, as production sends them.
pub fn check_url(url: &str) -> Result<String, String> {
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(u.to_string()),
        _ => Err(format!("The callback \"{}\" is not an http(s) URL.", url.escape_default())),
    }
}

/// The callback body of the wire protocol ([`Callback`]: both `traceback`
/// and `stacktrace` on error), as the JSON that is POSTed.
pub fn body(entry: &JournalEntry, token: &str) -> Value {
    let (token, db_name, job_id) = (token.to_string(), entry.db_name.clone(), entry.job_id.clone());
    let callback = match entry.state {
        JobState::Done => Callback::Done {
            token,
            db_name,
            job_id,
            filestore: entry.filestore.clone(),
            missing_attachments: entry.missing_attachments,
            anonymized: entry.anonymized.clone(),
        },
        _ => {
            let detail = entry.detail.clone().unwrap_or_default();
            Callback::Error {
                error: entry.error.clone().unwrap_or_else(|| "The copy failed.".into()),
                traceback: detail.clone(),
                stacktrace: detail,
                token,
                db_name,
                job_id,
            }
        }
    };
    serde_json::to_value(callback).expect("a callback body is plain JSON")
}

/// One attempt: success is a 2xx answer that is not an Odoo error envelope.
///
/// Redirects are not followed: a redirected POST arrives as a GET without its
/// body, so a 3xx is a failure that names the likely cause.
async fn attempt(http: &reqwest::Client, url: &str, body: &Value, timeout: Duration) -> Result<(), String> {
    let response = http.post(url).json(body).timeout(timeout).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("production did not answer within {timeout:?}")
        } else {
            format!("cannot reach production: {}", error_chain(&e))
        }
    })?;
    let status = response.status();
    if status.is_redirection() {
        let to = response.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("?").to_string();
        return Err(format!("production answered HTTP {status} (a redirect to {to}); check the environment URL on production"));
    }
    let text = response.text().await.map_err(|e| format!("production's answer broke off: {}", error_chain(&e)))?;
    if !status.is_success() {
        return Err(format!("production answered HTTP {status}"));
    }
    if let Ok(answer) = serde_json::from_str::<Value>(&text) {
        if let Some(err) = answer.get("error") {
            let message = err.pointer("/data/message").or_else(|| err.get("message")).cloned().unwrap_or(Value::Null);
            return Err(format!("production refused the callback: {message}"));
        }
    }
    Ok(())
}

/// An error with its sources, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

/// Delivers the callback, retrying for `window` in total with exponential
/// back-off and jitter; `Err` with the last failure if it never got through.
///
/// Every attempt is logged and counted with its outcome. The pauses come from backon's
/// exponential schedule, cut short so that no attempt starts after the window.
pub async fn deliver(job_id: &str, url: &str, body: &Value, window: Duration, metrics: &Metrics) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut pauses =
        ExponentialBuilder::default().with_min_delay(FIRST_PAUSE).with_max_delay(MAX_PAUSE).with_jitter().without_max_times().build();
    let mut number = 0u32;
    loop {
        number += 1;
        let left = window.saturating_sub(started.elapsed());
        let timeout = ATTEMPT_TIMEOUT.min(left).max(Duration::from_secs(1));
        let outcome = attempt(&http, url, body, timeout).await;
        metrics.callback_attempt(outcome.is_ok());
        let left = window.saturating_sub(started.elapsed());
        match outcome {
            Ok(()) => {
                tracing::info!(job = %job_id, url, attempt = number, "callback attempt {number}: delivered");
                return Ok(());
            }
            Err(e) if left.is_zero() => {
                tracing::warn!(job = %job_id, url, attempt = number, "callback attempt {number} failed: {e}; the retry window of {window:?} is over");
                return Err(format!("{e} (after {number} attempts in {:.0?})", started.elapsed()));
            }
            Err(e) => {
                let pause = pauses.next().unwrap_or(MAX_PAUSE).min(left);
                tracing::warn!(job = %job_id, url, attempt = number, "callback attempt {number} failed: {e}; next in {pause:.1?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// What became of a job's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// Production accepted the callback, or the job has no callback to make.
    Production,
    /// Production stayed unreachable; the fallback e-mail went out.
    ByMail,
    /// Neither got through; the journal keeps the entry for the next start.
    Nobody,
}

/// Tells production (or, failing that, the requester by mail) how a job ended.
pub async fn report(config: &Config, entry: &JournalEntry, metrics: &Metrics) -> Told {
    let Some(url) = &entry.callback else { return Told::Production };
    let body = body(entry, config.token_of(entry.client.as_deref()));
    match deliver(&entry.job_id, url, &body, config.callback_timeout, metrics).await {
        Ok(()) => {
            tracing::info!(job = %entry.job_id, db = %entry.db_name, state = ?entry.state, url, "production was told how the job ended");
            Told::Production
        }
        Err(e) => {
            tracing::error!(job = %entry.job_id, url, "callback failed for good: {e}; sending the fallback e-mail");
            let mailed = mail::send_result(config, entry).await;
            metrics.fallback_mail(mailed.is_ok());
            match mailed {
                Ok(to) => {
                    tracing::info!(job = %entry.job_id, %to, "fallback e-mail sent instead of the callback");
                    Told::ByMail
                }
                Err(e) => {
                    tracing::error!(
                        job = %entry.job_id, db = %entry.db_name, state = ?entry.state,
                        "NOBODY WAS TOLD how this job ended: the callback failed and the fallback e-mail was not sent: {e}; \
                         it is tried again at the next start of the sidecar"
                    );
                    Told::Nobody
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_http_urls_are_callbacks() {
        assert!(check_url("https://prod.example.com/web/staging/callback/42?db=prod").is_ok());
        assert!(check_url("http://127.0.0.1:8069/cb").is_ok());
        for bad in ["ftp://x/y", "javascript:alert(1)", "/relative", "", "http://"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_body_carries_both_traceback_keys() {
        let entry = JournalEntry {
            state: JobState::Error,
            error: Some("boom".into()),
            detail: Some("detail".into()),
            ..JournalEntry::new("j", "d", None, None)
        };
        let b = body(&entry, "t");
        assert_eq!(b["traceback"], "detail");
        assert_eq!(b["stacktrace"], "detail");
        assert_eq!(b["state"], "error");
        assert_eq!(b["token"], "t");
        assert_eq!(b["job_id"], "j");
        assert_eq!(body(&JournalEntry::new("j", "d", None, None), "t")["job_id"], "j");
    }

    #[test]
    fn done_body_says_where_the_filestore_came_from() {
        let entry = JournalEntry {
            state: JobState::Done,
            filestore: Some("companion cosmos-daily-1.filestore.tar.gz".into()),
            missing_attachments: Some(3),
            ..JournalEntry::new("j", "d", None, None)
        };
        let b = body(&entry, "t");
        assert_eq!(b["filestore"], "companion cosmos-daily-1.filestore.tar.gz");
        assert_eq!(b["missing_attachments"], 3);
        let old: JournalEntry =
            serde_json::from_str(r#"{"job_id":"j","db_name":"d","callback":null,"email":null,"state":"done","error":null,"detail":null}"#)
                .unwrap();
        assert!(body(&old, "t")["filestore"].is_null());
    }

    #[test]
    fn a_done_body_says_what_was_anonymized() {
        let plain = JournalEntry { state: JobState::Done, ..JournalEntry::new("j", "d", None, None) };
        assert!(body(&plain, "t").get("anonymized").is_none());
        let report = numikube_staging_rpc::AnonymizeReport { scripts: vec!["x".into()], tables: vec!["res_partner".into()], values: 3 };
        let masked = JournalEntry { anonymize: true, anonymized: Some(report), ..plain };
        let b = body(&masked, "t");
        assert_eq!(b["anonymized"], json!({"scripts": ["x"], "tables": ["res_partner"], "values": 3}));
    }

    #[tokio::test]
    async fn delivery_gives_up_after_the_window_with_the_last_failure() {
        // Nothing listens on port 1: every attempt is refused at once.
        let started = Instant::now();
        let metrics = Metrics::new("test");
        let err = deliver("j", "http://127.0.0.1:1/cb", &json!({}), Duration::from_secs(1), &metrics).await.unwrap_err();
        assert!(err.contains("cannot reach production") && err.contains("attempts"), "{err}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");
    }
}
