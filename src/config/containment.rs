//! The keys of docs/contract.md *Containment*: how large a copy may grow while it
//! loads (`numikube_staging_max_copy_size`) and the clients' own tokens
//! (`numikube_staging_client_tokens`).

use std::fmt;

use super::read::Reader;
use super::ConfigError;

/// The most a copy may grow to while it loads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CopySize {
    /// A fixed size in bytes (`50GB`).
    Bytes(u64),
    /// A multiple of the backup's size (`50x`).
    Times(f64),
}

impl CopySize {
    /// docs/contract.md's default: fifty times the backup.
    pub const DEFAULT: CopySize = CopySize::Times(50.0);

    /// The least a multiple allows: an empty Odoo database alone weighs tens
    /// of megabytes, more than fifty times a small backup.
    pub const FLOOR: u64 = 256 << 20;

    /// The bound in bytes for a backup of `backup_size` bytes (a multiple never below [`CopySize::FLOOR`]).
    pub fn bound(self, backup_size: u64) -> u64 {
        match self {
            CopySize::Bytes(b) => b,
            CopySize::Times(x) => ((backup_size as f64 * x).min(u64::MAX as f64) as u64).max(Self::FLOOR),
        }
    }

    fn parse(text: &str) -> Option<CopySize> {
        let text = text.trim();
        if let Some(times) = text.strip_suffix(['x', 'X']) {
            return times.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0).map(CopySize::Times);
        }
        if let Ok(bytes) = text.parse::<u64>() {
            return (bytes > 0).then_some(CopySize::Bytes(bytes));
        }
        text.parse::<bytesize::ByteSize>().ok().map(|b| b.as_u64()).filter(|b| *b > 0).map(CopySize::Bytes)
    }
}

impl fmt::Display for CopySize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopySize::Bytes(b) => write!(f, "{}", bytesize::ByteSize::b(*b)),
            CopySize::Times(x) => write!(f, "{x}x the backup's size"),
        }
    }
}

/// One client's own token.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientToken {
    /// The client it serves, alone.
    pub client: String,
    /// The token.
    pub token: String,
}

impl fmt::Debug for ClientToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientToken").field("client", &self.client).finish_non_exhaustive()
    }
}

impl Reader<'_> {
    /// `numikube_staging_max_copy_size`: a size or a multiple of the backup's.
    pub(super) fn copy_size(&self, key: &str) -> Result<CopySize, ConfigError> {
        match self.get(key) {
            None => Ok(CopySize::DEFAULT),
            Some(text) => CopySize::parse(&text)
                .ok_or_else(|| self.err(key, format!("`{text}` is neither a size like 50GB nor a multiple of the backup's size like 50x"))),
        }
    }

    /// `numikube_staging_client_tokens`: `client:token` pairs, comma separated.
    pub(super) fn client_tokens(&self, key: &str, main_token: &str) -> Result<Vec<ClientToken>, ConfigError> {
        let mut tokens: Vec<ClientToken> = Vec::new();
        // docs/contract.md *Names* (checked again on every request by admission::names).
        let name_rule = regex::Regex::new(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$").expect("a valid pattern");
        for pair in self.list(key) {
            let Some((client, token)) = pair.split_once(':').map(|(c, t)| (c.trim(), t.trim())) else {
                return Err(self.err(key, format!("`{}` is not client:token", pair.split(':').next().unwrap_or(""))));
            };
            if !name_rule.is_match(client) {
                return Err(self.err(key, format!("`{client}` is not a client name (lowercase letters, digits, _ and -)")));
            }
            if token.is_empty() || token == main_token || tokens.iter().any(|t| t.token == token) {
                return Err(self.err(key, format!("the token of {client} must be set, its own, and not numikube_staging_token")));
            }
            if tokens.iter().any(|t| t.client == client) {
                return Err(self.err(key, format!("{client} is given two tokens")));
            }
            tokens.push(ClientToken { client: client.into(), token: token.into() });
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::CopySize;

    #[test]
    fn sizes_and_multiples() {
        assert_eq!(CopySize::parse("50x"), Some(CopySize::Times(50.0)));
        assert_eq!(CopySize::parse("2.5X"), Some(CopySize::Times(2.5)));
        assert_eq!(CopySize::parse("50GB"), Some(CopySize::Bytes(50_000_000_000)));
        assert_eq!(CopySize::parse("1 GiB"), Some(CopySize::Bytes(1 << 30)));
        assert_eq!(CopySize::parse("1048576"), Some(CopySize::Bytes(1 << 20)));
        for bad in ["", "x", "0x", "-3x", "lots", "0"] {
            assert_eq!(CopySize::parse(bad), None, "{bad}");
        }
        assert_eq!(CopySize::Times(50.0).bound(1000), CopySize::FLOOR);
        assert_eq!(CopySize::Times(50.0).bound(1 << 30), 50 << 30);
        assert_eq!(CopySize::Bytes(7).bound(1000), 7);
    }
}
