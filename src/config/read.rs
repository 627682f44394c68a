//! Reading single values the way Odoo does: `False`, `None` and the empty
//! string mean "not set"; booleans, numbers and comma lists; `dbfilter`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use regex::Regex;

use super::error::ConfigError;

/// Reads `odoo.conf` values with Odoo's conventions.
pub(super) struct Reader<'a> {
    pub(super) path: &'a Path,
    pub(super) values: HashMap<String, String>,
    pub(super) env: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { path: self.path.to_path_buf(), key: Some(key.into()), message: message.into() }
    }

    /// A value, `None` for Odoo's "unset" spellings.
    pub(super) fn get(&self, key: &str) -> Option<String> {
        let value = self.values.get(key)?.trim();
        match value {
            "" | "False" | "false" | "None" => None,
            v => Some(v.to_string()),
        }
    }

    /// A value that an environment variable overrides.
    pub(super) fn get_or_env(&self, key: &str, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.is_empty()).or_else(|| self.get(key))
    }

    pub(super) fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    pub(super) fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.values.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some("True" | "true" | "1" | "yes" | "on") => Ok(true),
            Some("False" | "false" | "0" | "no" | "off" | "None") => Ok(false),
            Some(other) => Err(self.err(key, format!("`{other}` is not a boolean; write True or False"))),
        }
    }

    pub(super) fn number<T: std::str::FromStr>(&self, key: &str, default: T, what: &str) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.err(key, format!("`{v}` is not {what}"))),
        }
    }

    /// A duration like `14d`, `12h`, `30m` or `90s` (humantime's syntax).
    pub(super) fn duration(&self, key: &str) -> Result<Option<std::time::Duration>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => humantime::parse_duration(&v)
                .map(Some)
                .map_err(|e| self.err(key, format!("`{v}` is not a duration like 14d, 12h, 30m or 90s ({e})"))),
        }
    }

    /// A glob with `{client}` (checked here, matched by the storage), or `None`.
    pub(super) fn glob(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(pattern) = self.get(key) else { return Ok(None) };
        match globset::Glob::new(&pattern.replace("{client}", "client")) {
            Ok(_) => Ok(Some(pattern)),
            Err(e) => Err(self.err(key, format!("{pattern:?} is not a valid glob: {e}; write one like prod/{{client}}/*.dump"))),
        }
    }

    /// A time span written as seconds (`1800`, as existing configurations do)
    /// or like [`Reader::duration`] (`30m`); `default` when empty.
    pub(super) fn span(&self, key: &str, default: std::time::Duration) -> Result<std::time::Duration, ConfigError> {
        match self.get(key) {
            Some(v) if v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse().map(std::time::Duration::from_secs).map_err(|_| self.err(key, format!("`{v}` is too large")))
            }
            _ => Ok(self.duration(key)?.unwrap_or(default)),
        }
    }

    /// A comma list, as Odoo writes `server_wide_modules` or `addons_path`.
    pub(super) fn list(&self, key: &str) -> Vec<String> {
        self.get(key).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default()
    }
}

/// `minio_endpoint` may be `host:port` (then `minio_secure` decides) or a URL.
pub(super) fn with_scheme(endpoint: &str, r: &Reader) -> Result<String, ConfigError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Ok(endpoint.trim_end_matches('/').to_string());
    }
    let secure = r.boolean("minio_secure", true)?;
    Ok(format!("{}://{}", if secure { "https" } else { "http" }, endpoint.trim_end_matches('/')))
}

/// Odoo matches `dbfilter` with `re.match` after replacing `%h` (host) and
/// `%d` (first label of the host). The sidecar serves no host, so both match
/// any label: the filter can only narrow the list, never widen it.
pub(super) fn compile_dbfilter(filter: &str) -> Result<Regex, regex::Error> {
    let pattern = filter.replace("%h", "[^/]*").replace("%d", "[^.]*");
    Regex::new(&format!("^(?:{pattern})"))
}

/// Odoo's default `data_dir`: `~/.local/share/Odoo`.
pub(super) fn default_data_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/odoo"));
    home.join(".local/share/Odoo")
}
