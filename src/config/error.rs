//! A configuration problem, said so that the operator knows what to fix.

use std::fmt;
use std::path::PathBuf;

/// A configuration problem, naming the file and the key so the operator knows what to fix.
#[derive(Debug)]
pub struct ConfigError {
    /// The file that was read.
    pub path: PathBuf,
    /// The key at fault, if one is.
    pub key: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: `{}`: {}", self.path.display(), key, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}
