//! The one place where the stages' errors become JSON-RPC errors: a stable
//! code from `rpc/` and the stage's sentence for the Odoo user.

use jsonrpsee::types::ErrorObjectOwned;
use numikube_staging_rpc::{codes, error};

use crate::admission::checks::BackupRefused;
use crate::admission::AdmissionError;
use crate::job::CancelError;
use crate::pg::DbError;
use crate::storage::SourceError;
use crate::upkeep::expiry::ExtendError;

/// An admission refusal as a JSON-RPC error.
pub fn admission(e: AdmissionError) -> ErrorObjectOwned {
    let code = match &e {
        AdmissionError::BadToken | AdmissionError::OtherClient(_) => codes::BAD_TOKEN,
        AdmissionError::Invalid(_) => codes::INVALID_INPUT,
        AdmissionError::Stopping | AdmissionError::Unavailable(_) => codes::UNAVAILABLE,
        AdmissionError::Foreign(_) | AdmissionError::OthersCopy { .. } | AdmissionError::Recent(_) | AdmissionError::InFlight(_) => {
            codes::CONFLICT
        }
        AdmissionError::LimitReached { .. } => codes::LIMIT_REACHED,
        AdmissionError::Journal { .. } => codes::INTERNAL,
    };
    error(code, e.to_string(), None)
}

/// PostgreSQL unavailable, as a JSON-RPC error.
pub fn database(e: DbError) -> ErrorObjectOwned {
    error(codes::UNAVAILABLE, format!("The staging server cannot reach its databases: {e}."), None)
}

/// A malformed request, as a JSON-RPC error.
pub fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(codes::INVALID_INPUT, message, None)
}

/// Something unknown, as a JSON-RPC error.
pub fn not_found(message: impl Into<String>) -> ErrorObjectOwned {
    error(codes::NOT_FOUND, message, None)
}

/// A refused `backup`, as a JSON-RPC error.
pub fn backup(e: BackupRefused) -> ErrorObjectOwned {
    match e {
        BackupRefused::NotTheClients { .. } => invalid(e.to_string()),
        BackupRefused::Storage(_) => error(codes::UNAVAILABLE, e.to_string(), None),
    }
}

/// The bucket unavailable, as a JSON-RPC error.
pub fn storage(e: SourceError) -> ErrorObjectOwned {
    error(codes::UNAVAILABLE, format!("The staging server cannot read its backups: {e}."), None)
}

/// A refused cancel, as a JSON-RPC error.
pub fn cancel(e: CancelError) -> ErrorObjectOwned {
    let code = match e {
        CancelError::Unknown(_) => codes::NOT_FOUND,
        CancelError::Ended { .. } | CancelError::Finished { .. } => codes::CONFLICT,
    };
    error(code, e.to_string(), None)
}

/// A refused extension, as a JSON-RPC error.
pub fn extend(e: ExtendError) -> ErrorObjectOwned {
    match e {
        ExtendError::NoExpiry => invalid(e.to_string()),
        ExtendError::NotACopy(_) => not_found(e.to_string()),
        ExtendError::Db(e) => database(e),
    }
}
