//! Reading the staging `odoo.conf` the way Odoo reads it.
//!
//! Odoo uses Python's `RawConfigParser`: keys are case-insensitive, values are
//! taken verbatim (no inline comments, no quote handling), and `False`,
//! `None` and the empty string mean "not set" for most keys. We follow that,
//! apply the defaults of DESIGN.md, and refuse to start on a malformed value
//! with a message naming the key and the file.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use configparser::ini::Ini;
use regex::Regex;

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

/// Where the backups are: a MinIO or other S3-compatible server.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `http(s)://host:port`; `minio_endpoint` or `MINIO_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `minio_access_key` or `MINIO_ACCESS_KEY`.
    pub access_key: Option<String>,
    /// `minio_secret_key` or `MINIO_SECRET_KEY`.
    pub secret_key: Option<String>,
    /// `minio_region`, default `us-east-1`.
    pub region: String,
    /// `backups_minio_bucket`, default `dev-backups`.
    pub bucket: String,
}

/// How to reach PostgreSQL, with Odoo's meanings.
#[derive(Debug, Clone, PartialEq)]
pub struct DbConfig {
    /// `db_host`; `None` means the local socket.
    pub host: Option<String>,
    /// `db_port`; `None` means libpq's default (5432).
    pub port: Option<u16>,
    /// `db_user`; `None` means the operating system user, as with libpq.
    pub user: Option<String>,
    /// `db_password`.
    pub password: Option<String>,
    /// `db_sslmode`, default `prefer`.
    pub sslmode: String,
    /// `db_template`, default `template0`.
    pub template: String,
}

impl DbConfig {
    /// The role that owns this instance's databases (`db_user`, else the OS user).
    pub fn role(&self) -> String {
        self.user.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "postgres".into()))
    }
}

/// The SMTP server Odoo itself would use, for the fallback mail.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// `smtp_server`, default `localhost`.
    pub server: String,
    /// `smtp_port`, default 25.
    pub port: u16,
    /// `smtp_user`.
    pub user: Option<String>,
    /// `smtp_password`.
    pub password: Option<String>,
    /// `smtp_ssl`: in Odoo this means STARTTLS.
    pub starttls: bool,
    /// `email_from`: sender, and recipient when the payload carries no address.
    pub email_from: Option<String>,
}

/// Everything the sidecar reads from `odoo.conf`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    /// `numikube_staging_token`: required.
    pub token: String,
    /// `numikube_staging_database_limit`, default 10.
    pub database_limit: usize,
    /// `numikube_staging_sidecar`, default `127.0.0.1:8075`.
    pub listen: SocketAddr,
    /// `numikube_staging_prewarm_clients`, default empty.
    pub prewarm_clients: Vec<String>,
    /// `numikube_staging_callback_timeout` in seconds, default 1800.
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
    /// `numikube_staging_prewarm_interval`: seconds between looks at the bucket for pre-warm, default 300.
    pub prewarm_interval: Duration,
    /// `numikube_staging_restore_jobs`: parallel `pg_restore` jobs for custom dumps, default the CPU count.
    pub restore_jobs: usize,
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

/// Reads `odoo.conf` values with Odoo's conventions.
struct Reader<'a> {
    path: &'a Path,
    values: HashMap<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { path: self.path.to_path_buf(), key: Some(key.into()), message: message.into() }
    }

    /// A value, `None` for Odoo's "unset" spellings.
    fn get(&self, key: &str) -> Option<String> {
        let value = self.values.get(key)?.trim();
        match value {
            "" | "False" | "false" | "None" => None,
            v => Some(v.to_string()),
        }
    }

    /// A value that an environment variable overrides.
    fn get_or_env(&self, key: &str, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.is_empty()).or_else(|| self.get(key))
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or_else(|| default.to_string())
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.values.get(key).map(|v| v.trim()) {
            None | Some("") => Ok(default),
            Some("True" | "true" | "1" | "yes" | "on") => Ok(true),
            Some("False" | "false" | "0" | "no" | "off" | "None") => Ok(false),
            Some(other) => Err(self.err(key, format!("`{other}` is not a boolean; write True or False"))),
        }
    }

    fn number<T: std::str::FromStr>(&self, key: &str, default: T, what: &str) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| self.err(key, format!("`{v}` is not {what}"))),
        }
    }

    /// A comma list, as Odoo writes `server_wide_modules` or `addons_path`.
    fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default()
    }
}

impl Config {
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
            r.err("numikube_staging_token", "is not set; the sidecar refuses to start without a token (the same one as production's environment)")
        })?;
        let listen_text = r.string("numikube_staging_sidecar", "127.0.0.1:8075");
        let listen = listen_text
            .parse()
            .map_err(|_| r.err("numikube_staging_sidecar", format!("`{listen_text}` is not an address like 127.0.0.1:8075")))?;
        let timezone = match r.get("numikube_staging_timezone") {
            None => None,
            Some(tz) => Some(tz.parse().map_err(|_| {
                r.err("numikube_staging_timezone", format!("`{tz}` is not a time zone name like Europe/Brussels"))
            })?),
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
        if max_restores == 0 {
            return Err(r.err("numikube_staging_max_restores", "must be at least 1"));
        }

        Ok(Config {
            path: path.to_path_buf(),
            token,
            database_limit: r.number("numikube_staging_database_limit", 10, "a whole number")?,
            listen,
            prewarm_clients: r.list("numikube_staging_prewarm_clients"),
            callback_timeout: Duration::from_secs(r.number("numikube_staging_callback_timeout", 1800, "a number of seconds")?),
            timezone,
            drop_unmarked: r.boolean("numikube_staging_drop_unmarked", false)?,
            protected_databases: r.list("numikube_staging_protected_databases"),
            max_restores,
            staging_url: r.get("numikube_staging_url"),
            template_cache: r.boolean("numikube_staging_template_cache", true)?,
            prewarm_interval: Duration::from_secs(r.number("numikube_staging_prewarm_interval", 300, "a number of seconds")?),
            restore_jobs: r.number(
                "numikube_staging_restore_jobs",
                std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
                "a whole number",
            )?
            .max(1),
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
                user: r.get("db_user"),
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

    /// Where the sidecar keeps its job journal and spooled downloads.
    pub fn state_dir(&self) -> PathBuf {
        self.data_dir.join("numikube_staging")
    }

    /// The filestore directory of database `db`.
    pub fn filestore(&self, db: &str) -> PathBuf {
        self.data_dir.join("filestore").join(db)
    }
}

/// `minio_endpoint` may be `host:port` (then `minio_secure` decides) or a URL.
fn with_scheme(endpoint: &str, r: &Reader) -> Result<String, ConfigError> {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        return Ok(endpoint.trim_end_matches('/').to_string());
    }
    let secure = r.boolean("minio_secure", true)?;
    Ok(format!("{}://{}", if secure { "https" } else { "http" }, endpoint.trim_end_matches('/')))
}

/// Odoo matches `dbfilter` with `re.match` after replacing `%h` (host) and
/// `%d` (first label of the host). The sidecar serves no host, so both match
/// any label: the filter can only narrow the list, never widen it.
fn compile_dbfilter(filter: &str) -> Result<Regex, regex::Error> {
    let pattern = filter.replace("%h", "[^/]*").replace("%d", "[^.]*");
    Regex::new(&format!("^(?:{pattern})"))
}

/// Odoo's default `data_dir`: `~/.local/share/Odoo`.
fn default_data_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/odoo"));
    home.join(".local/share/Odoo")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/odoo.conf"), text, &|_| None)
    }

    fn ok(extra: &str) -> Config {
        parse(&format!("[options]\nnumikube_staging_token = s3cret\n{extra}")).unwrap()
    }

    #[test]
    fn missing_token_names_the_key_and_the_file() {
        let err = parse("[options]\ndb_host = False\n").unwrap_err().to_string();
        assert!(err.contains("numikube_staging_token"), "{err}");
        assert!(err.contains("/etc/odoo.conf"), "{err}");
    }

    #[test]
    fn false_token_counts_as_missing() {
        assert!(parse("[options]\nnumikube_staging_token = False\n").is_err());
        assert!(parse("[options]\nnumikube_staging_token = None\n").is_err());
        assert!(parse("[options]\nnumikube_staging_token =\n").is_err());
    }

    #[test]
    fn no_options_section_is_an_error() {
        let err = parse("[other]\na = 1\n").unwrap_err().to_string();
        assert!(err.contains("[options]"), "{err}");
    }

    #[test]
    fn defaults_of_the_design() {
        let c = ok("");
        assert_eq!(c.storage.bucket, "dev-backups");
        assert_eq!(c.database_limit, 10);
        assert_eq!(c.listen, "127.0.0.1:8075".parse().unwrap());
        assert!(c.prewarm_clients.is_empty());
        assert_eq!(c.callback_timeout, Duration::from_secs(1800));
        assert_eq!(c.db.host, None);
        assert_eq!(c.db.template, "template0");
        assert_eq!(c.smtp.port, 25);
        assert!(!c.drop_unmarked);
        assert_eq!(c.max_restores, 1);
    }

    #[test]
    fn odoo_false_and_none_mean_unset() {
        let c = ok("db_host = False\ndb_port = False\ndb_user = None\ndb_password = False\ndbfilter =\n");
        assert_eq!(c.db.host, None);
        assert_eq!(c.db.port, None);
        assert_eq!(c.db.user, None);
        assert_eq!(c.db.password, None);
        assert!(c.dbfilter.is_none());
    }

    #[test]
    fn keys_are_case_insensitive_and_values_verbatim() {
        let c = ok("DB_Password = a;b#c 'q'\n");
        assert_eq!(c.db.password.as_deref(), Some("a;b#c 'q'"));
    }

    #[test]
    fn comma_lists_are_split_and_trimmed() {
        let c = ok("addons_path = /a/addons, /b/addons,,\nnumikube_staging_prewarm_clients = cosmos,  acme\n");
        assert_eq!(c.addons_path, vec![PathBuf::from("/a/addons"), PathBuf::from("/b/addons")]);
        assert_eq!(c.prewarm_clients, vec!["cosmos", "acme"]);
    }

    #[test]
    fn malformed_values_name_their_key() {
        for (line, key) in [
            ("numikube_staging_database_limit = ten", "numikube_staging_database_limit"),
            ("numikube_staging_sidecar = localhost", "numikube_staging_sidecar"),
            ("numikube_staging_callback_timeout = -1", "numikube_staging_callback_timeout"),
            ("db_port = fivefour", "db_port"),
            ("smtp_ssl = maybe", "smtp_ssl"),
            ("dbfilter = ^(unclosed", "dbfilter"),
            ("numikube_staging_timezone = Mars/Olympus", "numikube_staging_timezone"),
            ("numikube_staging_max_restores = 0", "numikube_staging_max_restores"),
        ] {
            let err = parse(&format!("[options]\nnumikube_staging_token = t\n{line}\n")).unwrap_err();
            assert_eq!(err.key.as_deref(), Some(key), "{line}: {err}");
        }
    }

    #[test]
    fn environment_overrides_minio_secrets() {
        let text = "[options]\nnumikube_staging_token = t\nminio_endpoint = files:9000\nminio_secure = False\nminio_access_key = file\nminio_secret_key = file\n";
        let env = |var: &str| match var {
            "MINIO_ACCESS_KEY" => Some("env-key".to_string()),
            "MINIO_SECRET_KEY" => Some("env-secret".to_string()),
            _ => None,
        };
        let c = Config::parse(Path::new("x"), text, &env).unwrap();
        assert_eq!(c.storage.endpoint.as_deref(), Some("http://files:9000"));
        assert_eq!(c.storage.access_key.as_deref(), Some("env-key"));
        assert_eq!(c.storage.secret_key.as_deref(), Some("env-secret"));
    }

    #[test]
    fn minio_endpoint_is_https_unless_told_otherwise() {
        let c = ok("minio_endpoint = s3.example.com\n");
        assert_eq!(c.storage.endpoint.as_deref(), Some("https://s3.example.com"));
        let c = ok("minio_endpoint = http://127.0.0.1:9000/\n");
        assert_eq!(c.storage.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    }

    #[test]
    fn dbfilter_matches_at_the_start_like_python_re_match() {
        let c = ok("dbfilter = cosmos-.*\n");
        let f = c.dbfilter.unwrap();
        assert!(f.is_match("cosmos-lab"));
        assert!(!f.is_match("x-cosmos-lab"));
        let c = ok("dbfilter = ^%d$\n");
        assert!(c.dbfilter.unwrap().is_match("anything"));
    }

    #[test]
    fn the_example_parses_and_names_every_key_read() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/odoo.conf.example"));
        let example = std::fs::read_to_string(path).unwrap();
        Config::parse(path, &example, &|_| None).expect("odoo.conf.example is valid");
        let source = include_str!("config.rs");
        let key = regex::Regex::new(r#"r\.(?:get|get_or_env|string|boolean|number|list)\("([a-z_]+)""#).unwrap();
        for read in key.captures_iter(source) {
            let name = &read[1];
            assert!(example.contains(&format!("{name} =")), "odoo.conf.example does not document `{name}`");
        }
    }

    #[test]
    fn unknown_keys_are_ignored() {
        ok("workers = 4\nsome_future_key = whatever\n");
    }

    #[test]
    fn unreadable_file_says_which() {
        let err = Config::load(Path::new("/nonexistent/odoo.conf")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/odoo.conf") && err.contains("-c"), "{err}");
    }
}
