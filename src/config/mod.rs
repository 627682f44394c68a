//! Reading the staging `odoo.conf` the way Odoo reads it.
//!
//! Odoo uses Python's `RawConfigParser`: keys are case-insensitive, values are
//! taken verbatim (no inline comments, no quote handling), and `False`,
//! `None` and the empty string mean "not set" for most keys. We follow that,
//! apply the defaults of docs/contract.md, and refuse to start on a malformed value
//! with a message naming the key and the file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use configparser::ini::Ini;
use regex::Regex;

mod anonymize;
mod containment;
mod error;
mod read;
mod sections;
#[cfg(test)]
mod tests;

pub use anonymize::AnonymizePolicy;
pub use containment::{ClientToken, CopySize};
pub use error::ConfigError;
use read::{compile_dbfilter, default_data_dir, with_scheme, Reader};
pub use sections::{DbConfig, SmtpConfig, StorageConfig};

/// Everything the sidecar reads from `odoo.conf`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// `numikube_staging_max_copy_size`: the most a copy may grow to while it loads.
    pub max_copy_size: CopySize,
    /// `numikube_staging_client_tokens`: clients served by a token of their own, alone.
    pub client_tokens: Vec<ClientToken>,
    /// `numikube_staging_token`: required.
    pub token: String,
    /// `numikube_staging_database_limit`, default 10.
    pub database_limit: usize,
    /// `numikube_staging_sidecar`, default `127.0.0.1:8075`.
    pub listen: SocketAddr,
    /// `numikube_staging_prewarm_clients`, default empty.
    pub prewarm_clients: Vec<String>,
    /// `numikube_staging_callback_timeout`: seconds (`1800`) or a duration (`30m`), default 30 minutes.
    pub callback_timeout: Duration,
    /// `numikube_staging_timezone`, default the host's local time.
    pub timezone: Option<chrono_tz::Tz>,
    /// `numikube_staging_drop_unmarked`, default False.
    pub drop_unmarked: bool,
    /// `numikube_staging_protected_databases`, default empty.
    pub protected_databases: Vec<String>,
    /// `numikube_staging_max_restores`: restores running at once, default 1.
    pub max_restores: usize,
    /// `numikube_staging_url`: the staging Odoo's public URL, for links in the fallback mail.
    pub staging_url: Option<String>,
    /// `numikube_staging_template_cache`: keep a template per client for instant repeat copies, default True.
    pub template_cache: bool,
    /// `numikube_staging_prewarm_interval`: time between looks at the bucket for pre-warm, seconds or a duration, default 5 minutes.
    pub prewarm_interval: Duration,
    /// `numikube_staging_restore_jobs`: parallel `pg_restore` jobs for custom dumps, default the CPU count.
    pub restore_jobs: usize,
    /// `numikube_staging_backup_pattern`: which keys are a client's, a glob with `{client}`; empty: the default rule.
    pub backup_pattern: Option<String>,
    /// `numikube_staging_expire_after`: a copy's life; `None`: copies never expire.
    pub expire_after: Option<Duration>,
    /// `numikube_staging_expire_warning`: how long before expiry the requester is mailed, default 1 day.
    pub expire_warning: Duration,
    /// `numikube_staging_neutralize_skip`: installed modules that may be missing from `addons_path`.
    pub neutralize_skip: Vec<String>,
    /// `numikube_staging_callback_hosts`: hosts callbacks may go to (`*.example.com` allowed); empty: any.
    pub callback_hosts: Vec<String>,
    /// `numikube_staging_work_role`: the NOLOGIN role owning hidden databases, default `<db_user>_staging`.
    pub work_role: String,
    /// `numikube_staging_odoo_path`: Odoo's own source folder (holding `odoo/release.py`); default found from `addons_path`.
    pub odoo_path: Option<PathBuf>,
    /// `numikube_staging_metrics`: the plain-HTTP listener for `/metrics` and `/healthz`; `None`: on the JSON-RPC listener.
    pub metrics: Option<SocketAddr>,
    /// `numikube_staging_filestore_source`: production's filestore mounted on this host, `{client}` replaced; `None`: none.
    pub filestore_source: Option<String>,
    /// `numikube_staging_anonymize`: whether copies are anonymized, default on request.
    pub anonymize: AnonymizePolicy,
    /// `numikube_staging_anonymize_key`: the key of deterministic masking; `None`: a random one per copy.
    pub anonymize_key: Option<String>,
    /// The object storage.
    pub storage: StorageConfig,
    /// PostgreSQL.
    pub db: DbConfig,
    /// `data_dir`: filestores live in `<data_dir>/filestore/<db>`.
    pub data_dir: PathBuf,
    /// `addons_path`, where `<module>/data/neutralize.sql` is looked for.
    pub addons_path: Vec<PathBuf>,
    /// `pg_path`: where `pg_restore` and `psql` are; default `PATH`.
    pub pg_path: Option<PathBuf>,
    /// `dbfilter` as a regex anchored at the start like Python's `re.match`.
    pub dbfilter: Option<Regex>,
    /// The SMTP server.
    pub smtp: SmtpConfig,
}

impl Config {
    /// The token production knows this client's environment by: the client's
    /// own (`numikube_staging_client_tokens`), else the shared one. Callbacks carry it.
    pub fn token_of(&self, client: Option<&str>) -> &str {
        self.client_tokens.iter().find(|t| Some(t.client.as_str()) == client).map_or(self.token.as_str(), |t| t.token.as_str())
    }

    /// Reads and checks `path`; environment variables `MINIO_*` override the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, &|var| std::env::var(var).ok())
    }

    /// As [`Config::load`], with the environment given (for tests).
    pub fn load_with_env(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file_err = |message: String| ConfigError { path: path.to_path_buf(), key: None, message };
        let text = std::fs::read_to_string(path)
            .map_err(|e| file_err(format!("cannot read the configuration file: {e}; give its path with -c")))?;
        Self::parse(path, &text, env)
    }

    /// Parses the text of an `odoo.conf` (`path` is only used in messages).
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file_err = |message: String| ConfigError { path: path.to_path_buf(), key: None, message };
        let mut ini = Ini::new();
        let mut defaults = ini.defaults();
        // Odoo's RawConfigParser has no inline comments: `a = x ; y` is the value `x ; y`.
        defaults.enable_inline_comments = false;
        defaults.multiline = true;
        ini.load_defaults(defaults);
        let map = ini.read(text.to_string()).map_err(|e| file_err(format!("not an INI file: {e}")))?;
        let options = map.get("options").ok_or_else(|| file_err("has no [options] section".into()))?;
        let values = options.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default())).collect();
        let r = Reader { path, values, env };

        let token = r.get("numikube_staging_token").ok_or_else(|| {
            r.err(
                "numikube_staging_token",
                "is not set; the sidecar refuses to start without a token (the same one as production's environment)",
            )
        })?;
        let listen_text = r.string("numikube_staging_sidecar", "127.0.0.1:8075");
        let listen = listen_text
            .parse()
            .map_err(|_| r.err("numikube_staging_sidecar", format!("`{listen_text}` is not an address like 127.0.0.1:8075")))?;
        let timezone = match r.get("numikube_staging_timezone") {
            None => None,
            Some(tz) => Some(
                tz.parse()
                    .map_err(|_| r.err("numikube_staging_timezone", format!("`{tz}` is not a time zone name like Europe/Brussels")))?,
            ),
        };
        let dbfilter = match r.get("dbfilter") {
            None => None,
            Some(f) => Some(compile_dbfilter(&f).map_err(|e| r.err("dbfilter", format!("is not a valid regular expression: {e}")))?),
        };
        let db_port = match r.get("db_port") {
            None => None,
            Some(p) => Some(p.parse().map_err(|_| r.err("db_port", format!("`{p}` is not a port number")))?),
        };
        let max_restores = r.number("numikube_staging_max_restores", 1usize, "a whole number")?;
        let db_user = r.get("db_user");
        let work_role = r.get("numikube_staging_work_role").unwrap_or_else(|| {
            format!("{}_staging", db_user.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".into())))
        });
        let metrics = match r.get("numikube_staging_metrics") {
            None => None,
            Some(a) => {
                Some(a.parse().map_err(|_| r.err("numikube_staging_metrics", format!("`{a}` is not an address like 0.0.0.0:9075")))?)
            }
        };
        if max_restores == 0 {
            return Err(r.err("numikube_staging_max_restores", "must be at least 1"));
        }

        Ok(Config {
            path: path.to_path_buf(),
            max_copy_size: r.copy_size("numikube_staging_max_copy_size")?,
            client_tokens: r.client_tokens("numikube_staging_client_tokens", &token)?,
            token,
            database_limit: r.number("numikube_staging_database_limit", 10, "a whole number")?,
            listen,
            prewarm_clients: r.list("numikube_staging_prewarm_clients"),
            callback_timeout: r.span("numikube_staging_callback_timeout", Duration::from_secs(1800))?,
            timezone,
            drop_unmarked: r.boolean("numikube_staging_drop_unmarked", false)?,
            protected_databases: r.list("numikube_staging_protected_databases"),
            max_restores,
            staging_url: r.get("numikube_staging_url"),
            template_cache: r.boolean("numikube_staging_template_cache", true)?,
            prewarm_interval: r.span("numikube_staging_prewarm_interval", Duration::from_secs(300))?,
            restore_jobs: r
                .number(
                    "numikube_staging_restore_jobs",
                    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
                    "a whole number",
                )?
                .max(1),
            backup_pattern: r.glob("numikube_staging_backup_pattern")?,
            expire_after: r.duration("numikube_staging_expire_after")?,
            expire_warning: r.duration("numikube_staging_expire_warning")?.unwrap_or(Duration::from_secs(86_400)),
            neutralize_skip: r.list("numikube_staging_neutralize_skip"),
            callback_hosts: r.list("numikube_staging_callback_hosts").into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            work_role,
            odoo_path: r.get("numikube_staging_odoo_path").map(PathBuf::from),
            metrics,
            filestore_source: r.get("numikube_staging_filestore_source"),
            anonymize: anonymize::policy(&r)?,
            anonymize_key: r.get("numikube_staging_anonymize_key"),
            storage: StorageConfig {
                endpoint: r.get_or_env("minio_endpoint", "MINIO_ENDPOINT").map(|e| with_scheme(&e, &r)).transpose()?,
                access_key: r.get_or_env("minio_access_key", "MINIO_ACCESS_KEY"),
                secret_key: r.get_or_env("minio_secret_key", "MINIO_SECRET_KEY"),
                region: r.string("minio_region", "us-east-1"),
                bucket: r.string("backups_minio_bucket", "dev-backups"),
            },
            db: DbConfig {
                host: r.get("db_host"),
                port: db_port,
                user: db_user,
                password: r.get("db_password"),
                sslmode: r.string("db_sslmode", "prefer"),
                template: r.string("db_template", "template0"),
            },
            data_dir: r.get("data_dir").map(PathBuf::from).unwrap_or_else(default_data_dir),
            addons_path: r.list("addons_path").into_iter().map(PathBuf::from).collect(),
            pg_path: r.get("pg_path").map(PathBuf::from),
            dbfilter,
            smtp: SmtpConfig {
                server: r.string("smtp_server", "localhost"),
                port: r.number("smtp_port", 25, "a port number")?,
                user: r.get("smtp_user"),
                password: r.get("smtp_password"),
                starttls: r.boolean("smtp_ssl", false)?,
                email_from: r.get("email_from"),
            },
        })
    }

    /// Path of a PostgreSQL client program (`pg_restore`, `psql`), honouring `pg_path`.
    pub fn pg_tool(&self, name: &str) -> PathBuf {
        match &self.pg_path {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    /// What a careful operator would want changed, for warnings at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.token.chars().count() < 16 {
            warnings.push(format!(
                "numikube_staging_token is {} characters long: whoever guesses it can drop databases here; use at least 16 random characters",
                self.token.chars().count()
            ));
        }
        if !self.listen.ip().is_loopback() {
            warnings.push(format!(
                "numikube_staging_sidecar = {} listens beyond loopback: only the staging Odoo's route should reach the sidecar; use 127.0.0.1",
                self.listen
            ));
        }
        warnings
    }

    /// Production's filestore of `client` on this host (`numikube_staging_filestore_source`), if one is configured.
    pub fn filestore_source_for(&self, client: &str) -> Option<PathBuf> {
        self.filestore_source.as_ref().map(|folder| PathBuf::from(folder.replace("{client}", client)))
    }

    /// Where the sidecar keeps its job journal and spooled downloads.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("numikube_staging")
    }
}
