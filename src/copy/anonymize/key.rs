//! The key of deterministic masking: `numikube_staging_anonymize_key`, else
//! a random one made for this copy. It never comes from the backup and is
//! never written into the copy: it reaches PostgreSQL as a parameter and
//! lives in a transaction-local setting that ends with the transaction.

/// The name of the transaction-local setting the masking functions read.
pub const SETTING: &str = "numikube.anonymize_key";

/// The configured key, or 64 random hex digits (two v4 UUIDs' worth of the OS's randomness).
pub fn key_for_copy(configured: Option<&str>) -> String {
    match configured.filter(|k| !k.is_empty()) {
        Some(key) => key.to_string(),
        None => format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_key_is_kept_and_a_missing_one_is_random() {
        assert_eq!(key_for_copy(Some("k")), "k");
        let (a, b) = (key_for_copy(None), key_for_copy(Some("")));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
