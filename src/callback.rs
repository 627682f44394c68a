//! Telling production how a job ended: POST the wire protocol's callback,
//! retried with exponential back-off and jitter for
//! `numikube_staging_callback_timeout`; when production stays unreachable,
//! e-mail the result instead (see [`crate::mail`]).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use numikube_staging_rpc::JobState;
use serde_json::{json, Value};

use crate::app::App;
use crate::jobs::JournalEntry;
use crate::mail;

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts only absolute http(s) URLs, as production sends them.
pub fn check_url(url: &str) -> Result<String, String> {
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(u.to_string()),
        _ => Err(format!("The callback \"{}\" is not an http(s) URL.", url.escape_default())),
    }
}

/// The callback body of the wire protocol (both `traceback` and `stacktrace` on error).
pub fn body(entry: &JournalEntry, token: &str) -> Value {
    match entry.state {
        JobState::Done => json!({"state": "done", "token": token, "db_name": entry.db_name}),
        _ => {
            let detail = entry.detail.clone().unwrap_or_default();
            json!({
                "state": "error",
                "error": entry.error.clone().unwrap_or_else(|| "The copy failed.".into()),
                "traceback": detail,
                "stacktrace": detail,
                "token": token,
                "db_name": entry.db_name,
            })
        }
    }
}

/// One attempt: success is a 2xx answer that is not an Odoo error envelope.
async fn attempt(http: &reqwest::Client, url: &str, body: &Value) -> Result<(), String> {
    let response = http.post(url).json(body).send().await.map_err(|e| format!("cannot reach production: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
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

/// Delivers the callback with retries for `window`; `Err` with the last failure if it never got through.
pub async fn deliver(url: &str, body: &Value, window: Duration) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200).min(window / 4))
        .with_max_delay(Duration::from_secs(120))
        .with_jitter()
        .without_max_times()
        .with_total_delay(Some(window));
    (|| attempt(&http, url, body))
        .retry(backoff)
        .when(|_| started.elapsed() < window)
        .notify(|e, after| tracing::warn!(url, "callback attempt failed: {e}; next in {after:?}"))
        .await
}

/// Tells production (or, failing that, the requester by mail) how a job ended.
pub async fn report(app: &App, entry: &JournalEntry) {
    let Some(url) = &entry.callback else { return };
    let body = body(entry, &app.config.token);
    match deliver(url, &body, app.config.callback_timeout).await {
        Ok(()) => tracing::info!(job = %entry.job_id, url, "callback delivered"),
        Err(e) => {
            tracing::error!(job = %entry.job_id, url, "callback failed for good: {e}; sending the fallback e-mail");
            if let Err(e) = mail::send_result(&app.config, entry).await {
                tracing::error!(job = %entry.job_id, "fallback e-mail not sent: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
            job_id: "j".into(),
            db_name: "d".into(),
            callback: None,
            email: None,
            state: JobState::Error,
            error: Some("boom".into()),
            detail: Some("detail".into()),
        };
        let b = body(&entry, "t");
        assert_eq!(b["traceback"], "detail");
        assert_eq!(b["stacktrace"], "detail");
        assert_eq!(b["state"], "error");
        assert_eq!(b["token"], "t");
    }
}
