//! The checks of a request before anything else happens: the token, the
//! fields, the names, the callback URL. A refused request touches nothing.

use numikube_staging_rpc::RunPayload;
use subtle::ConstantTimeEq;

use super::{names, AdmissionError};
use crate::config::Config;
use crate::job::JobRequest;
use crate::report::callback;

/// Refuses a missing or wrong token, comparing in constant time.
pub fn check_token(config: &Config, given: Option<&str>) -> Result<(), AdmissionError> {
    let expected = config.token.as_bytes();
    if given.is_some_and(|g| g.as_bytes().ct_eq(expected).into()) {
        Ok(())
    } else {
        Err(AdmissionError::BadToken)
    }
}

/// Checks a prod2x payload (token already checked) and builds the request.
pub fn check_prod2x(config: &Config, payload: &RunPayload) -> Result<JobRequest, AdmissionError> {
    let invalid = |m: &str| AdmissionError::Invalid(m.to_string());
    let client = payload.client.as_deref().ok_or_else(|| invalid("The request has no \"client\"."))?;
    let level = payload.level.as_deref().ok_or_else(|| invalid("The request has no \"level\" (lab, test, …)."))?;
    let callback = match payload.callback.as_deref() {
        None | Some("") => None,
        Some(url) => Some(callback::check_url(url).map_err(AdmissionError::Invalid)?),
    };
    let at = payload.timestamp.unwrap_or(true).then(|| names::now_in(config.timezone));
    let db_name = names::staging_name(client, level, payload.suffix.as_deref(), at).map_err(AdmissionError::Invalid)?;
    Ok(JobRequest { client: client.into(), db_name, callback, email: payload.email.clone().filter(|e| !e.is_empty()), backup: None })
}
