//! The checks of a request before anything else happens: the token, the
//! fields, the names, the callback URL. A refused request touches nothing.

use numikube_staging_rpc::RunPayload;

use super::error::AdmissionError;
use super::names;
use crate::config::{AnonymizePolicy, Config};
use crate::job::JobRequest;
use crate::report::callback;
use crate::storage::{BackupSource, SourceError};

/// Accepts only absolute http(s) URLs, as production sends them, to a host of
/// `numikube_staging_callback_hosts` when that is set (`*.example.com` allowed).
pub fn check_callback(config: &Config, url: &str) -> Result<String, AdmissionError> {
    let url = callback::check_url(url).map_err(AdmissionError::Invalid)?;
    if config.callback_hosts.is_empty() {
        return Ok(url);
    }
    let host = reqwest::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default();
    let allowed = config.callback_hosts.iter().any(|pattern| match pattern.strip_prefix("*.") {
        Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
        None => host == *pattern,
    });
    if !allowed {
        return Err(AdmissionError::Invalid(format!(
            "The callback host \"{}\" is not one this staging server reports to (numikube_staging_callback_hosts: {}); check the environment URL of production or that key.",
            host.escape_default(),
            config.callback_hosts.join(", ")
        )));
    }
    Ok(url)
}

/// Checks a prod2x payload (token already checked) and builds the request.
pub fn check_prod2x(config: &Config, payload: &RunPayload) -> Result<JobRequest, AdmissionError> {
    let invalid = |m: &str| AdmissionError::Invalid(m.to_string());
    let client = payload.client.as_deref().ok_or_else(|| invalid("The request has no \"client\"."))?;
    let level = payload.level.as_deref().ok_or_else(|| invalid("The request has no \"level\" (lab, test, …)."))?;
    let callback = match payload.callback.as_deref() {
        None | Some("") => None,
        Some(url) => Some(check_callback(config, url)?),
    };
    let timestamped = payload.timestamp.unwrap_or(true);
    let at = timestamped.then(|| names::now_in(config.timezone));
    let db_name = names::staging_name(client, level, payload.suffix.as_deref(), at).map_err(AdmissionError::Invalid)?;
    let anonymize = anonymize(config.anonymize, payload.anonymize == Some(true))?;
    let text = |t: &Option<String>| t.clone().filter(|t| !t.is_empty());
    Ok(JobRequest {
        client: client.into(),
        db_name,
        callback,
        email: text(&payload.email),
        backup: text(&payload.backup),
        timestamped,
        request_id: text(&payload.request_id),
        anonymize,
    })
}

/// The refusal of an anonymized copy by a staging that makes none.
pub const NO_ANONYMIZED_COPIES: &str = "This staging server does not make anonymized copies (numikube_staging_anonymize = never); ask its administrator, or run the job without anonymization.";

/// Whether the copy is anonymized: `always` whatever production asks, `never`
/// refuses a request asking for it (nothing is made), else as asked.
pub fn anonymize(policy: AnonymizePolicy, asked: bool) -> Result<bool, AdmissionError> {
    match policy {
        AnonymizePolicy::Always => Ok(true),
        AnonymizePolicy::Never if asked => Err(AdmissionError::Invalid(NO_ANONYMIZED_COPIES.into())),
        AnonymizePolicy::Never => Ok(false),
        AnonymizePolicy::OnRequest => Ok(asked),
    }
}

/// Why the backup a request asked for is refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupRefused {
    /// The key is not one of the client's backups.
    #[error("The backup \"{key}\" is not one of client \"{client}\"'s backups; pick one of those the environment lists, or leave the backup empty for the newest.")]
    NotTheClients {
        /// The key asked for.
        key: String,
        /// The client.
        client: String,
    },
    /// The bucket cannot be read, so the key cannot be checked.
    #[error("The staging server cannot check the backup asked for: {0}.")]
    Storage(SourceError),
}

/// Refuses a request whose `backup` is not one of the client's backups
/// (none asked: nothing to check); read from the bucket, before registering.
pub async fn check_backup(source: &BackupSource, request: &JobRequest) -> Result<(), BackupRefused> {
    let Some(key) = request.backup.as_deref() else { return Ok(()) };
    let backups = source.backups(&request.client).await.map_err(BackupRefused::Storage)?;
    if backups.iter().any(|b| b.key == key) {
        Ok(())
    } else {
        Err(BackupRefused::NotTheClients { key: key.into(), client: request.client.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: &str) -> Config {
        let text = format!("[options]\nnumikube_staging_token = t\nnumikube_staging_callback_hosts = {hosts}\n");
        Config::parse(std::path::Path::new("x"), &text, &|_| None).unwrap()
    }

    #[test]
    fn callbacks_go_only_to_allowed_hosts() {
        let c = config("prod.example.com, *.numigi.net");
        assert!(check_callback(&c, "https://prod.example.com/web/staging/callback/1?db=p").is_ok());
        assert!(check_callback(&c, "https://a.numigi.net/cb").is_ok());
        assert!(check_callback(&c, "https://PROD.example.com/cb").is_ok());
        for refused in [
            "https://numigi.net/cb",
            "https://evilnumigi.net/cb",
            "http://127.0.0.1:8069/cb",
            "http://169.254.169.254/",
            "https://prod.example.com.evil.org/",
        ] {
            assert!(matches!(check_callback(&c, refused), Err(AdmissionError::Invalid(_))), "{refused}");
        }
        assert!(check_callback(&config(""), "http://127.0.0.1:8069/cb").is_ok(), "empty: any host");
        assert!(check_callback(&config(""), "file:///etc/passwd").is_err(), "never another scheme");
    }

    #[test]
    fn the_staging_decides_whether_a_copy_is_anonymized() {
        use AnonymizePolicy::*;
        assert!(anonymize(OnRequest, true).unwrap());
        assert!(!anonymize(OnRequest, false).unwrap());
        assert!(anonymize(Always, false).unwrap());
        assert!(!anonymize(Never, false).unwrap());
        assert!(matches!(anonymize(Never, true), Err(AdmissionError::Invalid(m)) if m == NO_ANONYMIZED_COPIES));
    }
}
