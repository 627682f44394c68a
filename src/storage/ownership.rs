//! Which objects of the bucket are a client's backups.

/// Whether `key` is a backup of `client` (and not of `client2` or `clientx`).
pub fn belongs_to(key: &str, client: &str) -> bool {
    key.strip_prefix(client)
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| matches!(c, '-' | '_' | '/' | '.'))
}

#[cfg(test)]
mod tests {
    use super::belongs_to;

    #[test]
    fn keys_of_a_client() {
        assert!(belongs_to("cosmos-2026-11-24.dump", "cosmos"));
        assert!(belongs_to("cosmos_2026.zip", "cosmos"));
        assert!(belongs_to("cosmos/daily/x.dump", "cosmos"));
        assert!(belongs_to("cosmos.zip", "cosmos"));
        assert!(!belongs_to("cosmos2-2026.zip", "cosmos"));
        assert!(!belongs_to("cosmosx.zip", "cosmos"));
        assert!(!belongs_to("cosmos", "cosmos"));
    }
}
