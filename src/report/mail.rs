//! The e-mails, sent through the SMTP server of `odoo.conf`: the fallback
//! when production cannot be told by its callback, and the notice that a
//! copy expires soon.
//!
//! It goes to the requester when the run payload carried an `email`, else to
//! `email_from` (the instance's admin address). Any failure (no address at
//! all, SMTP server down or refusing) is returned as a sentence for the log;
//! the caller keeps the job's journal entry so nothing is lost.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use numikube_staging_rpc::JobState;

use super::journal::JournalEntry;
use crate::config::Config;

/// How long to wait for the SMTP server before giving up.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Subject and text of the result mail.
/// `staging_url` (`numikube_staging_url`) makes the database selector a full link.
pub fn compose(entry: &JournalEntry, staging_url: Option<&str>) -> (String, String) {
    let selector = match staging_url {
        Some(url) => format!("{}/web/database/selector", url.trim_end_matches('/')),
        None => "/web/database/selector on the staging server".to_string(),
    };
    let footer = "(This e-mail replaces the notice in production, which could not be reached.)";
    match entry.state {
        JobState::Done => (
            format!("Staging database {} is ready", entry.db_name),
            format!(
                "Your staging database {db} is ready (state: done).\n\n{attachments}\
                 Open it from the database selector: {selector} (database {db}).\n\n{footer}\n",
                db = entry.db_name,
                attachments = attachments_note(entry),
            ),
        ),
        _ => (
            format!("Staging database {} failed", entry.db_name),
            format!(
                "The staging database {} could not be made (state: error).\n\nReason: {}\n\nDetail:\n{}\n\n\
                 Run the job again, or open a ticket if it fails again.\n{footer}\n",
                entry.db_name,
                entry.error.clone().unwrap_or_default(),
                entry.detail.clone().unwrap_or_default()
            ),
        ),
    }
}

/// A paragraph when attachments of the copy lack their file; empty otherwise.
fn attachments_note(entry: &JournalEntry) -> String {
    match (entry.filestore.as_deref(), entry.missing_attachments) {
        (Some("none"), Some(missing)) if missing > 0 => format!(
            "This copy has no attachments: its backup has no filestore, and none was found beside it in the bucket \
             (<backup>.filestore.tar.gz) nor on the staging server (numikube_staging_filestore_source); \
             {missing} attachments point to a missing file.\n\n"
        ),
        (origin, Some(missing)) if missing > 0 => {
            format!("{missing} attachments of this copy point to a file missing from its filestore (from {}).\n\n", origin.unwrap_or("?"))
        }
        _ => String::new(),
    }
}

/// Subject and text of the notice that copy `db_name` is dropped at `expires_at`.
pub fn compose_expiry_warning(db_name: &str, expires_at: DateTime<Utc>, staging_url: Option<&str>) -> (String, String) {
    let open = match staging_url {
        Some(url) => format!("{}/web/login?db={db_name}", url.trim_end_matches('/')),
        None => "the database selector of the staging server".to_string(),
    };
    let when = expires_at.format("%Y-%m-%d %H:%M UTC");
    (
        format!("Staging database {db_name} will be dropped on {when}"),
        format!(
            "Your staging database {db_name} expires on {when}: it will then be dropped, with its filestore.\n\n\
             To keep it longer, click \"Keep longer\" beside it on the staging environment's form in production.\n\
             If you no longer need it, there is nothing to do.\n\nOpen it: {open}\n"
        ),
    )
}

/// Mails the requester of `db_name` (or `email_from` when none is known)
/// that it expires at `expires_at`; returns the recipient.
pub async fn send_expiry_warning(
    config: &Config,
    requested_by: Option<&str>,
    db_name: &str,
    expires_at: DateTime<Utc>,
) -> Result<String, String> {
    let to = recipient(config, requested_by.map(String::from))?;
    let (subject, text) = compose_expiry_warning(db_name, expires_at, config.staging_url.as_deref());
    send(config, &to, subject, text).await?;
    Ok(to)
}

/// The requester, else `email_from`.
fn recipient(config: &Config, requested_by: Option<String>) -> Result<String, String> {
    requested_by.or_else(|| config.smtp.email_from.clone()).ok_or_else(|| {
        "nobody to write to: the request carried no e-mail address and odoo.conf has no email_from; set email_from".to_string()
    })
}

/// Sends the result of a job to its requester, or to `email_from` when the
/// payload had no address; returns the recipient.
pub async fn send_result(config: &Config, entry: &JournalEntry) -> Result<String, String> {
    let to = recipient(config, entry.email.clone())?;
    let (subject, text) = compose(entry, config.staging_url.as_deref());
    send(config, &to, subject, text).await?;
    Ok(to)
}

/// Sends one mail to `to` through the SMTP server of `odoo.conf`.
async fn send(config: &Config, to: &str, subject: String, text: String) -> Result<(), String> {
    let smtp = &config.smtp;
    // Without email_from, send as the service itself, as Odoo falls back to a default sender.
    let from = smtp.email_from.clone().unwrap_or_else(|| format!("numikube-staging@{}", host_name()));
    let parse = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("\"{a}\" is not an e-mail address: {e}"));
    let message = Message::builder()
        .from(parse(&from)?)
        .to(parse(to)?)
        .subject(subject)
        .body(text)
        .map_err(|e| format!("cannot build the e-mail: {e}"))?;

    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.server).port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    if smtp.starttls {
        // Odoo's smtp_ssl means STARTTLS.
        let tls = TlsParameters::new(smtp.server.clone()).map_err(|e| format!("TLS setup failed: {e}"))?;
        transport = transport.tls(Tls::Required(tls));
    }
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport.build().send(message).await.map_err(|e| {
        format!(
            "the SMTP server {}:{} (smtp_server, smtp_port in odoo.conf) refused the e-mail to {to} or could not be reached: {e}",
            smtp.server, smtp.port
        )
    })?;
    Ok(())
}

/// This host's name, for a sender address when `email_from` is not set.
fn host_name() -> String {
    Some(crate::process::this_host())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mail_names_the_database_and_the_state() {
        let entry = JournalEntry::new("j", "cosmos-lab_x", None, None);
        let (subject, text) = compose(&JournalEntry { state: JobState::Error, error: Some("boom".into()), ..entry.clone() }, None);
        assert!(subject.contains("cosmos-lab_x") && subject.contains("failed"));
        assert!(text.contains("state: error") && text.contains("boom"));
        let (_, linked) = compose(&JournalEntry { state: JobState::Done, ..entry.clone() }, Some("https://staging.example.com/"));
        assert!(linked.contains("https://staging.example.com/web/database/selector"), "{linked}");
        let (subject, text) = compose(&JournalEntry { state: JobState::Done, ..entry }, None);
        assert!(subject.contains("ready") && text.contains("state: done") && text.contains("/web/database/selector"));
    }

    #[test]
    fn the_done_mail_says_when_attachments_lack_their_file() {
        let done = JournalEntry { state: JobState::Done, ..JournalEntry::new("j", "cosmos-lab_x", None, None) };
        let (_, text) = compose(&JournalEntry { filestore: Some("none".into()), missing_attachments: Some(25), ..done.clone() }, None);
        assert!(text.contains("This copy has no attachments") && text.contains("25 attachments"), "{text}");
        let (_, text) = compose(&JournalEntry { filestore: Some("zip".into()), missing_attachments: Some(0), ..done }, None);
        assert!(!text.contains("attachments"), "{text}");
    }

    #[test]
    fn the_expiry_notice_says_when_and_how_to_keep_the_copy() {
        let at = DateTime::parse_from_rfc3339("2026-12-15T09:30:00Z").unwrap().with_timezone(&Utc);
        let (subject, text) = compose_expiry_warning("cosmos-lab_x", at, Some("https://staging.example.com/"));
        assert!(subject.contains("cosmos-lab_x") && subject.contains("2026-12-15 09:30 UTC"), "{subject}");
        assert!(text.contains("Keep longer") && text.contains("https://staging.example.com/web/login?db=cosmos-lab_x"), "{text}");
    }
}
