//! Tests of reading `odoo.conf`.

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
        ("numikube_staging_expire_after = soon", "numikube_staging_expire_after"),
        ("numikube_staging_metrics = here", "numikube_staging_metrics"),
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
    let source = concat!(include_str!("mod.rs"), include_str!("read.rs"));
    let key = regex::Regex::new(r#"r\.(?:get|get_or_env|string|boolean|number|list|duration)\("([a-z_]+)""#).unwrap();
    for read in key.captures_iter(source) {
        let name = &read[1];
        assert!(example.contains(&format!("{name} =")), "odoo.conf.example does not document `{name}`");
    }
}

#[test]
fn the_filestore_source_names_each_clients_folder() {
    assert!(ok("").filestore_source_for("cosmos").is_none());
    assert!(ok("numikube_staging_filestore_source = False\n").filestore_source_for("cosmos").is_none());
    let c = ok("numikube_staging_filestore_source = /mnt/production/filestore/{client}\n");
    assert_eq!(c.filestore_source_for("cosmos").unwrap(), PathBuf::from("/mnt/production/filestore/cosmos"));
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

#[test]
fn short_tokens_and_open_listeners_are_warned_about() {
    let c = ok("");
    assert_eq!(c.warnings().len(), 1, "{:?}", c.warnings());
    let c = parse("[options]\nnumikube_staging_token = 0123456789abcdef\nnumikube_staging_sidecar = 0.0.0.0:8075\n").unwrap();
    let w = c.warnings();
    assert!(w.len() == 1 && w[0].contains("beyond loopback"), "{w:?}");
}

#[test]
fn anonymize_policy_and_key() {
    let c = ok("");
    assert_eq!(c.anonymize, AnonymizePolicy::OnRequest);
    assert_eq!(c.anonymize_key, None);
    assert_eq!(ok("numikube_staging_anonymize = always\n").anonymize, AnonymizePolicy::Always);
    assert_eq!(ok("numikube_staging_anonymize = Never\n").anonymize, AnonymizePolicy::Never);
    assert_eq!(ok("numikube_staging_anonymize = False\n").anonymize, AnonymizePolicy::OnRequest);
    assert_eq!(ok("numikube_staging_anonymize_key = k3y\n").anonymize_key.as_deref(), Some("k3y"));
    let err = parse("[options]\nnumikube_staging_token = t\nnumikube_staging_anonymize = sometimes\n").unwrap_err().to_string();
    assert!(err.contains("numikube_staging_anonymize") && err.contains("sometimes"), "{err}");
}

#[test]
fn a_backup_pattern_that_is_not_a_glob_is_refused_at_start() {
    assert_eq!(ok("numikube_staging_backup_pattern = prod/{client}/*.dump").backup_pattern.as_deref(), Some("prod/{client}/*.dump"));
    let err =
        parse("[options]\nnumikube_staging_token = s\nnumikube_staging_backup_pattern = prod/{client}/[*.dump\n").unwrap_err().to_string();
    assert!(err.contains("numikube_staging_backup_pattern") && err.contains("not a valid glob"), "{err}");
}

#[test]
fn time_spans_read_as_seconds_or_durations() {
    assert_eq!(ok("numikube_staging_callback_timeout = 1800").callback_timeout, Duration::from_secs(1800));
    assert_eq!(ok("numikube_staging_callback_timeout = 30m").callback_timeout, Duration::from_secs(1800));
    assert_eq!(ok("numikube_staging_prewarm_interval = 90s").prewarm_interval, Duration::from_secs(90));
    assert_eq!(ok("").prewarm_interval, Duration::from_secs(300));
    let err = parse("[options]\nnumikube_staging_token = s\nnumikube_staging_prewarm_interval = soon\n").unwrap_err().to_string();
    assert!(err.contains("numikube_staging_prewarm_interval") && err.contains("not a duration"), "{err}");
}
