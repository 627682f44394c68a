//! `numikube_staging_anonymize`: whether this staging anonymizes the copies
//! it makes (docs/contract.md, *Anonymized copies*).

use super::error::ConfigError;
use super::read::Reader;

/// `numikube_staging_anonymize`: `on_request` (default), `always` or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnonymizePolicy {
    /// A copy is anonymized when the run payload asks for it.
    #[default]
    OnRequest,
    /// Every copy is anonymized, whatever the payload says.
    Always,
    /// No copy is anonymized; a payload asking for it is refused.
    Never,
}

impl AnonymizePolicy {
    /// The value as written in `odoo.conf`.
    pub fn label(self) -> &'static str {
        match self {
            AnonymizePolicy::OnRequest => "on_request",
            AnonymizePolicy::Always => "always",
            AnonymizePolicy::Never => "never",
        }
    }
}

/// Reads `numikube_staging_anonymize` (unset, `False` or empty: `on_request`).
pub(super) fn policy(r: &Reader) -> Result<AnonymizePolicy, ConfigError> {
    const KEY: &str = "numikube_staging_anonymize";
    match r.get(KEY).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("on_request") => Ok(AnonymizePolicy::OnRequest),
        Some("always") => Ok(AnonymizePolicy::Always),
        Some("never") => Ok(AnonymizePolicy::Never),
        Some(other) => Err(r.err(KEY, format!("`{other}` is not one of on_request, always or never"))),
    }
}
