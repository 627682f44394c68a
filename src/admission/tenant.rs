//! Whose copies a request may act on (docs/contract.md *Containment*, Tenants):
//! a client's own token (`numikube_staging_client_tokens`) serves that client
//! alone; `numikube_staging_token` serves the clients without a token of
//! their own; the command line on this host serves every client.

use subtle::ConstantTimeEq;

use super::error::AdmissionError;
use crate::config::Config;

/// Whom a request's token serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// The operator's command line on this host: every client.
    Operator,
    /// `numikube_staging_token`: every client without a token of its own.
    Shared,
    /// A client's own token: that client alone.
    Client(String),
}

impl Tenant {
    /// Whom `given` serves; a missing or unknown token is refused (compared in constant time).
    pub fn of_token(config: &Config, given: Option<&str>) -> Result<Tenant, AdmissionError> {
        let given = given.ok_or(AdmissionError::BadToken)?.as_bytes();
        let mut found = None;
        // Every token is compared, so the time taken does not tell which one matched.
        if bool::from(given.ct_eq(config.token.as_bytes())) {
            found = Some(Tenant::Shared);
        }
        for t in &config.client_tokens {
            if bool::from(given.ct_eq(t.token.as_bytes())) {
                found = Some(Tenant::Client(t.client.clone()));
            }
        }
        found.ok_or(AdmissionError::BadToken)
    }

    /// Whether this token may act for `client` (`None`: a database whose client is unknown).
    pub fn serves(&self, config: &Config, client: Option<&str>) -> bool {
        match (self, client) {
            (Tenant::Operator, _) => true,
            (Tenant::Shared, Some(c)) => !config.client_tokens.iter().any(|t| t.client == c),
            (Tenant::Shared, None) => true,
            (Tenant::Client(own), Some(c)) => own == c,
            (Tenant::Client(_), None) => false,
        }
    }

    /// Refuses a request naming a client this token does not serve.
    pub fn check_client(&self, config: &Config, client: &str) -> Result<(), AdmissionError> {
        if self.serves(config, Some(client)) {
            Ok(())
        } else {
            Err(AdmissionError::OtherClient(client.to_string()))
        }
    }
}
