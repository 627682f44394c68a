//! The fallback e-mail, sent through the SMTP server of `odoo.conf` when
//! production cannot be told by its callback.

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use numikube_staging_rpc::JobState;

use crate::config::Config;
use crate::jobs::JournalEntry;

/// Sends the result of a job to its requester, or to `email_from` when the payload had no address.
pub async fn send_result(config: &Config, entry: &JournalEntry) -> Result<(), String> {
    let smtp = &config.smtp;
    let from = smtp
        .email_from
        .clone()
        .ok_or("no email_from in odoo.conf: nobody to send from; set email_from")?;
    let to = entry.email.clone().unwrap_or_else(|| from.clone());
    let (subject, text) = match entry.state {
        JobState::Done => (
            format!("Staging database {} is ready", entry.db_name),
            format!(
                "Your staging database {} is ready.\n\nOpen it from the staging server's database selector (/web/database/selector).\n\n(This e-mail replaces the notice in production, which could not be reached.)\n",
                entry.db_name
            ),
        ),
        _ => (
            format!("Staging database {} failed", entry.db_name),
            format!(
                "The staging database {} could not be made.\n\nReason: {}\n\nDetail:\n{}\n\nRun the job again, or open a ticket if it fails again.\n(This e-mail replaces the notice in production, which could not be reached.)\n",
                entry.db_name,
                entry.error.clone().unwrap_or_default(),
                entry.detail.clone().unwrap_or_default()
            ),
        ),
    };
    let parse = |a: &str| a.parse::<Mailbox>().map_err(|e| format!("\"{a}\" is not an e-mail address: {e}"));
    let message = Message::builder()
        .from(parse(&from)?)
        .to(parse(&to)?)
        .subject(subject)
        .body(text)
        .map_err(|e| format!("cannot build the e-mail: {e}"))?;

    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.server).port(smtp.port);
    if smtp.starttls {
        // Odoo's smtp_ssl means STARTTLS.
        let tls = TlsParameters::new(smtp.server.clone()).map_err(|e| format!("TLS setup failed: {e}"))?;
        transport = transport.tls(Tls::Required(tls));
    }
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map_err(|e| format!("the SMTP server {}:{} refused or could not be reached: {e}", smtp.server, smtp.port))?;
    tracing::info!(job = %entry.job_id, to = %to, "fallback e-mail sent");
    Ok(())
}
