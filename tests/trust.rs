//! Issue 11, "Trust the copy", on real servers: exactly the client's backup,
//! of the staging's Odoo version; a fresh copy never silently replaced;
//! "done" only once the copy opens; private while hidden (by owner, never
//! `IS_TEMPLATE`); neutralized for certain (fail closed); a new identity.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{code_of, ident, literal, Options, Stage, ROLE, TOKEN, WORK_ROLE};
use numikube_staging_rpc::{codes, JobState, JobStatus, RunStarted, StagingApiClient};
use numikube_testbed::sidecar::strip_ansi;
use numikube_testbed::{fixture, Answer};

/// A tiny production with these installed modules.
fn spec(modules: &[&str]) -> fixture::Spec {
    fixture::Spec { modules: modules.iter().map(|m| m.to_string()).collect(), ..fixture::Spec::tiny() }
}

/// SQL that marks `module` installed in a production database.
fn install(module: &str) -> String {
    format!(
        "INSERT INTO ir_module_module (id, name, state, latest_version, shortdesc, author, license, \
         application, demo, auto_install, sequence, create_date, write_date) \
         SELECT max(id) + 1, {m}, 'installed', '18.0.1.0', '{{\"en_US\": \"x\"}}', 'Test', 'LGPL-3', \
         false, false, false, 100, now(), now() FROM ir_module_module;\n",
        m = literal(module)
    )
}

/// A table of staging environments holding tokens, as the addon makes it on production.
const STAGING_ENVIRONMENTS: &str = "
CREATE TABLE staging_environment (id serial PRIMARY KEY, name varchar, client varchar,
    url varchar, token varchar, create_date timestamp, write_date timestamp);
INSERT INTO staging_environment (name, client, url, token, create_date, write_date) VALUES
  ('Lab', 'kilo', 'https://lab.example.com', 'lab-token-0123456789abcdef', now(), now()),
  ('Test', 'kilo', 'https://test.example.com', 'test-token-0123456789abcdef', now(), now());
";

/// A folder of fake addons: `(module, Some(script))` gets a `data/neutralize.sql`.
fn addons(modules: &[(&str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (module, script) in modules {
        let m = dir.path().join(module);
        std::fs::create_dir_all(m.join("data")).unwrap();
        std::fs::write(m.join("__manifest__.py"), format!("{{'name': '{module}', 'version': '18.0.1.0', 'depends': ['base']}}\n")).unwrap();
        if let Some(script) = script {
            std::fs::write(m.join("data/neutralize.sql"), script).unwrap();
        }
    }
    dir
}

/// `addons_path` = the fixture's addons, then `more`.
fn addons_path_conf(more: &[&Path]) -> String {
    let mut path = vec![fixture::fixture_addons_dir()];
    path.extend(more.iter().map(|p| p.to_path_buf()));
    let joined: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
    format!("addons_path = {}\n", joined.join(","))
}

/// This repository's addon folder (`odoo_addon/`, holding `numikube_staging`).
fn repo_addons() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("odoo_addon")
}

/// Runs a prod2x for `client` and waits for its end.
async fn copy(stage: &Stage, client: &str, suffix: &str, timestamp: bool) -> (RunStarted, JobStatus) {
    let started = stage.run(stage.prod2x(client, suffix, timestamp)).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    (started, status)
}

fn assert_done(stage: &Stage, status: &JobStatus) {
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
}

/// The job failed; returns its error.
fn assert_failed(stage: &Stage, status: &JobStatus) -> String {
    assert_eq!(status.state, JobState::Error, "{status:?}\n{}", stage.sidecar_log());
    status.error.clone().unwrap_or_default()
}

/// Neither the final name, nor a hidden or half-made database, nor a template is left.
fn assert_nothing_left(stage: &Stage, db_name: &str) {
    let dbs = stage.databases();
    assert!(!dbs.iter().any(|d| d == db_name), "{db_name} left: {dbs:?}");
    assert!(
        stage.working_leftovers().is_empty() && templates(stage).is_empty(),
        "left behind: {dbs:?}, filestore {:?}\n{}",
        stage.filestore_leftovers(),
        stage.sidecar_log()
    );
}

fn templates(stage: &Stage) -> Vec<String> {
    stage.databases().into_iter().filter(|d| d.starts_with("numikube_tpl_")).collect()
}

/// Waits (a few seconds at most) until a template is kept, and returns its name.
async fn wait_template(stage: &Stage) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(t) = templates(stage).pop() {
            return t;
        }
        assert!(Instant::now() < deadline, "no template kept\n{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The marker (the database comment) of `db`, parsed.
fn marker(stage: &Stage, db: &str) -> serde_json::Value {
    let comment =
        stage.query("postgres", &format!("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = {}", literal(db)));
    serde_json::from_str(&comment).unwrap_or_else(|e| panic!("marker of {db}: {e}: {comment:?}"))
}

/// `datallowconn|owner|datistemplate` of `db`.
fn state_of(stage: &Stage, db: &str) -> String {
    stage.query(
        "postgres",
        &format!("SELECT datallowconn, pg_get_userbyid(datdba), datistemplate FROM pg_database WHERE datname = {}", literal(db)),
    )
}

fn param(stage: &Stage, db: &str, key: &str) -> String {
    stage.query(db, &format!("SELECT value FROM ir_config_parameter WHERE key = {}", literal(key)))
}

// ---------------------------------------------------------------------------
// 1. Exactly the client's backup
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_client_gets_its_own_backup_never_a_newer_one_of_a_longer_named_client() {
    let stage = Stage::start(Options::default());
    let tiny = fixture::Spec::tiny();
    stage.put_custom_dump("prod_cosmos", "cosmos-daily-1.dump", &tiny, "");
    // Newer (S3 times have a resolution of a second), of other databases.
    std::thread::sleep(Duration::from_millis(1100));
    stage.put_custom_dump("prod_cosmos_eu", "cosmos-eu-daily-1.dump", &tiny, "");
    stage.put_custom_dump("prod_cosmos_2", "cosmos-2-daily-1.dump", &tiny, "");

    let listed = stage.client.backups(TOKEN.into(), "cosmos".into()).await.unwrap();
    let keys: Vec<&str> = listed.backups.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(keys, ["cosmos-daily-1.dump"]);

    let (started, status) = copy(&stage, "cosmos", "own", false).await;
    assert_done(&stage, &status);
    assert_eq!(status.backup.as_deref(), Some("cosmos-daily-1.dump"));
    assert_eq!(marker(&stage, &started.db_name)["backup"], "cosmos-daily-1.dump");
    // The kept template is cosmos's, of cosmos's backup.
    let template = wait_template(&stage).await;
    let m = marker(&stage, &template);
    assert_eq!((m["backup"].as_str(), m["client"].as_str()), (Some("cosmos-daily-1.dump"), Some("cosmos")), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backup_pattern_replaces_the_default_rule() {
    let stage =
        Stage::start(Options { extra_conf: "numikube_staging_backup_pattern = prod/{client}/*.dump\n".into(), ..Options::default() });
    stage.put_custom_dump("prod_cosmos", "prod/cosmos/x.dump", &fixture::Spec::tiny(), "");
    let dump = stage.dir.path().join("prod_cosmos.dump");
    std::thread::sleep(Duration::from_millis(1100));
    // Newer, and none of them cosmos's by the pattern.
    for key in ["cosmos-daily-1.dump", "prod/cosmos/sub/y.dump", "prod/cosmos-eu/z.dump", "prod/cosmos/x.zip"] {
        stage.s3.put_file(common::BUCKET, key, &dump).unwrap();
    }

    let listed = stage.client.backups(TOKEN.into(), "cosmos".into()).await.unwrap();
    let keys: Vec<&str> = listed.backups.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(keys, ["prod/cosmos/x.dump"]);
    let (_, status) = copy(&stage, "cosmos", "pat", false).await;
    assert_done(&stage, &status);
    assert_eq!(status.backup.as_deref(), Some("prod/cosmos/x.dump"));
}

// ---------------------------------------------------------------------------
// 2. The staging's Odoo version
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_of_another_odoo_version_fails_and_leaves_nothing() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump(
        "prod_oscar",
        "oscar-daily-1.dump",
        &fixture::Spec::tiny(),
        "UPDATE ir_module_module SET latest_version = regexp_replace(latest_version, '^18\\.0', '17.0');",
    );
    assert_eq!(stage.query("prod_oscar", "SELECT latest_version FROM ir_module_module WHERE name = 'base'"), "17.0.1.3");
    let (started, status) = copy(&stage, "oscar", "v17", false).await;
    let error = assert_failed(&stage, &status);
    assert_eq!(error, "The backup is from Odoo 17.0; this staging server runs Odoo 18.0.");
    assert_nothing_left(&stage, &started.db_name);
}

// ---------------------------------------------------------------------------
// 3. A fresh copy never silently replaced
// ---------------------------------------------------------------------------

/// Waits until the current minute has at least `secs` seconds left.
fn wait_for_room_in_the_minute(secs: u64) {
    loop {
        let s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() % 60;
        if 60 - s >= secs {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_timestamped_run_in_the_same_minute_is_refused_and_replaces_nothing() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_papa", "papa-daily-1.dump", &fixture::Spec::tiny(), "");
    // Both runs in one minute (a tiny restore takes a few seconds).
    wait_for_room_in_the_minute(20);
    let (first, status) = copy(&stage, "papa", "same", true).await;
    assert_done(&stage, &status);
    let oid = stage.oid(&first.db_name);
    assert!(!oid.is_empty());

    let second = stage.run(stage.prod2x("papa", "same", true)).await;
    let (code, message) = code_of(second.expect_err("the second run is refused"));
    assert_eq!(code, codes::CONFLICT, "{message}");
    assert!(message.contains("was made less than a minute ago") && message.contains(&first.db_name), "{message}");
    assert_eq!(stage.oid(&first.db_name), oid, "the first copy is kept");
    assert_eq!(state_of(&stage, &first.db_name), format!("t|{ROLE}|f"));
    assert!(stage.working_leftovers().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_timestamped_run_while_the_first_loads_gets_the_same_refusal() {
    let stage = Stage::start(Options::default());
    stage.put_slow_backup("romeo", "romeo-daily-1.sql", 4);
    wait_for_room_in_the_minute(20);
    let first = stage.run(stage.prod2x("romeo", "same", true)).await.expect("accepted");
    let (code, message) = code_of(stage.run(stage.prod2x("romeo", "same", true)).await.expect_err("refused"));
    assert_eq!(code, codes::CONFLICT, "{message}");
    assert!(message.contains("was made less than a minute ago") && message.contains(&first.db_name), "{message}");
    assert_done(&stage, &stage.wait_job(&first.job_id).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_timestamp_refreshes_the_copy() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_quebec", "quebec-daily-1.dump", &fixture::Spec::tiny(), "");
    let (first, status) = copy(&stage, "quebec", "again", false).await;
    assert_done(&stage, &status);
    let oid = stage.oid(&first.db_name);

    let (second, status) = copy(&stage, "quebec", "again", false).await;
    assert_done(&stage, &status);
    assert_eq!(second.db_name, first.db_name);
    let new_oid = stage.oid(&first.db_name);
    assert!(!new_oid.is_empty() && new_oid != oid, "{oid} → {new_oid}");
    assert_eq!(state_of(&stage, &first.db_name), format!("t|{ROLE}|f"));
    stage.wait_no_leftovers(Duration::from_secs(10));
}

// ---------------------------------------------------------------------------
// 4. "Done" means open
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_done_callback_comes_once_the_copy_opens() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_romeo", "romeo-daily-1.dump", &fixture::Spec::tiny(), "");
    // Production takes its time to answer: the sidecar is held inside the callback.
    stage.receiver.respond_with(vec![Answer::Delay(Duration::from_secs(5), Box::new(Answer::Ok))]);
    let started = stage.run(stage.prod2x("romeo", "open", false)).await.unwrap();
    let calls = tokio::task::block_in_place(|| stage.receiver.wait_for(1, Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("{e}\n{}", stage.sidecar_log()));
    // At once, as production's mail link would be followed.
    let seen = state_of(&stage, &started.db_name);
    let mut pg = numikube_staging::pg::pg_config(&numikube_staging::config::Config::load(&stage.conf()).unwrap().db, &started.db_name);
    pg.application_name("odoo opening the copy");
    let opened = pg.connect(tokio_postgres::NoTls).await;
    assert_eq!(calls[0].body["state"], "done", "{:?}", calls[0].body);
    assert_eq!(seen, format!("t|{ROLE}|f"), "allowconn|owner|template");
    let (client, connection) = opened.expect("db_user connects to the copy as the callback arrives");
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
}

// ---------------------------------------------------------------------------
// 5. Private while hidden
// ---------------------------------------------------------------------------

/// Tries `CREATE DATABASE … TEMPLATE <db>` as `role`, expecting a permission error.
async fn assert_cannot_clone(stage: &Stage, role: &str, db: &str) {
    let session = stage.connect_as(role, "postgres").await.unwrap();
    let clone = format!("stolen_{}", &db[db.len() - 8..]);
    let err = session
        .batch_execute(&format!("CREATE DATABASE {} TEMPLATE {}", ident(&clone), ident(db)))
        .await
        .expect_err("another role cannot clone it");
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{db}: {err:?}");
    assert!(!stage.databases().contains(&clone));
}

#[tokio::test(flavor = "multi_thread")]
async fn another_role_with_createdb_cannot_clone_or_enter_hidden_databases() {
    let stage = Stage::start(Options::default());
    // Another client's staging on a shared cluster.
    stage.pg.create_role("neighbour", "pw", true).unwrap();
    stage.put_slow_backup("sierra", "sierra-daily-1.sql", 6);
    let started = stage.run(stage.prod2x("sierra", "hid", false)).await.unwrap();

    // During the restore.
    let deadline = Instant::now() + Duration::from_secs(30);
    let hidden = loop {
        if let Some(d) = stage.leftovers().into_iter().find(|d| d.starts_with("numikube_tmp_")) {
            break d;
        }
        assert!(Instant::now() < deadline, "no hidden database\n{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let state = state_of(&stage, &hidden);
    // While the backup loads, its database belongs to the job's own role (docs/contract.md *Containment*).
    assert!(state.contains("|numikube_job_") && state.ends_with("|f"), "hidden by owner, not IS_TEMPLATE: {state}");
    assert_cannot_clone(&stage, "neighbour", &hidden).await;
    let entered = stage.connect_as("neighbour", &hidden).await;
    assert_eq!(entered.expect_err("CONNECT is revoked from PUBLIC").code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE));
    assert_done(&stage, &stage.wait_job(&started.job_id).await);

    // After it: the kept template.
    let template = wait_template(&stage).await;
    assert_eq!(state_of(&stage, &template), format!("f|{ROLE}|f"));
    assert_cannot_clone(&stage, "neighbour", &template).await;
    assert!(stage.connect_as("neighbour", &template).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn databases_hidden_by_is_template_are_converted_at_start() {
    let mut stage = Stage::start(Options::default());
    let template = "numikube_tpl_0123456789abcdef0123456789abcdef";
    let working = "numikube_tmp_fedcba9876543210fedcba9876543210";
    for (name, state, client) in [(template, "template", "tango"), (working, "restoring", "tango")] {
        let marker = serde_json::json!({
            "numikube_staging": 1, "state": state, "job_id": if state == "template" { "" } else { "fedcba98-7654-3210-fedc-ba9876543210" },
            "db_name": if state == "template" { name } else { "tango-lab_x" },
            "backup": "tango-daily-1.dump", "etag": "e", "created_at": "2026-11-24T10:00:00Z", "client": client,
        });
        // As the previous version left them: db_user's, IS_TEMPLATE, open.
        stage
            .pg
            .psql(
                "postgres",
                &format!(
                    "CREATE DATABASE {q} OWNER {ROLE}; ALTER DATABASE {q} IS_TEMPLATE true; COMMENT ON DATABASE {q} IS {m};",
                    q = ident(name),
                    m = literal(&marker.to_string())
                ),
            )
            .unwrap();
    }
    stage.kill_sidecar();
    stage.start_sidecar();

    let log = strip_ansi(&stage.sidecar_log());
    let still_template =
        stage.query("postgres", "SELECT string_agg(datname, ',') FROM pg_database WHERE datistemplate AND datname LIKE 'numikube%'");
    assert_eq!(still_template, "", "{log}");
    // The template: db_user's and closed.
    assert_eq!(state_of(&stage, template), format!("f|{ROLE}|f"), "{log}");
    // The working copy: hidden by its owner, or already swept away (its job is gone).
    let working_state = state_of(&stage, working);
    assert!(working_state.is_empty() || working_state.ends_with(&format!("|{WORK_ROLE}|f")), "{working_state}\n{log}");
    let converted: Vec<&str> = log.lines().filter(|l| l.contains("no longer IS_TEMPLATE")).collect();
    for name in [template, working] {
        assert!(converted.iter().any(|l| l.contains(name)), "{name}'s conversion is not logged:\n{log}");
    }
}

// ---------------------------------------------------------------------------
// 6. Neutralization that cannot silently miss
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_addons_own_script_blanks_the_staging_tokens() {
    let addon = repo_addons().join("numikube_staging");
    assert!(addon.join("data/neutralize.sql").is_file(), "{} has no data/neutralize.sql", addon.display());
    let stage = Stage::start(Options { extra_conf: addons_path_conf(&[&repo_addons()]), ..Options::default() });
    let tweak = format!("{STAGING_ENVIRONMENTS}{}", install("numikube_staging"));
    stage.put_custom_dump("prod_kilo", "kilo-daily-1.dump", &fixture::Spec::tiny(), &tweak);

    let (started, status) = copy(&stage, "kilo", "tok", false).await;
    assert_done(&stage, &status);
    let left = stage.query(&started.db_name, "SELECT count(*) FROM staging_environment WHERE coalesce(token, '') <> ''");
    assert_eq!(left, "0", "tokens left in the copy");
    assert_eq!(stage.query("prod_kilo", "SELECT count(*) FROM staging_environment WHERE token <> ''"), "2", "production keeps its tokens");
    let report = status.neutralized.expect("a report");
    assert!(report.scripts.contains(&"numikube_staging".to_string()), "{report:?}");
    assert!(report.verified.iter().any(|v| v.contains("staging environment token")), "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_addon_installed_but_found_nowhere_fails_the_job_naming_it() {
    // The default addons_path: the addon is on no path and not skipped.
    let stage = Stage::start(Options::default());
    let tweak = format!("{STAGING_ENVIRONMENTS}{}", install("numikube_staging"));
    stage.put_custom_dump("prod_kilo", "kilo-daily-1.dump", &fixture::Spec::tiny(), &tweak);
    let (started, status) = copy(&stage, "kilo", "nowhere", false).await;
    let error = assert_failed(&stage, &status);
    assert!(error.contains("numikube_staging"), "{error}");
    assert_nothing_left(&stage, &started.db_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_surviving_an_addon_without_its_script_fail_the_copy() {
    // The addon is on the path, but its script is not there: the check after the scripts catches the tokens.
    let fake = addons(&[("numikube_staging", None)]);
    let stage = Stage::start(Options { extra_conf: addons_path_conf(&[fake.path()]), ..Options::default() });
    let tweak = format!("{STAGING_ENVIRONMENTS}{}", install("numikube_staging"));
    stage.put_custom_dump("prod_kilo", "kilo-daily-1.dump", &fixture::Spec::tiny(), &tweak);
    let (started, status) = copy(&stage, "kilo", "noscript", false).await;
    let error = assert_failed(&stage, &status);
    assert!(error.contains("staging_environment"), "{error}");
    assert_nothing_left(&stage, &started.db_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_installed_module_found_nowhere_fails_the_job_naming_it() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_lima", "lima-daily-1.dump", &fixture::Spec::tiny(), &install("sale_x"));
    let (started, status) = copy(&stage, "lima", "miss", false).await;
    let error = assert_failed(&stage, &status);
    assert!(error.contains("sale_x"), "{error}");
    // Only the module nowhere is named, not those skipped by the configuration.
    assert!(!error.contains("contacts"), "{error}");
    assert_nothing_left(&stage, &started.db_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_module_listed_in_neutralize_skip_is_reported_not_fatal() {
    let stage =
        Stage::start(Options { extra_conf: "numikube_staging_neutralize_skip = contacts, account, sale_x\n".into(), ..Options::default() });
    stage.put_custom_dump("prod_lima", "lima-daily-1.dump", &fixture::Spec::tiny(), &install("sale_x"));
    let (_, status) = copy(&stage, "lima", "skip", false).await;
    assert_done(&stage, &status);
    let report = status.neutralized.expect("a report");
    assert!(report.modules_not_found.contains(&"sale_x".to_string()), "{report:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payment_provider_left_enabled_fails_the_copy() {
    // payment_y is installed and on the path, without a script: its enabled providers stay.
    let fake = addons(&[("payment_y", None)]);
    let stage = Stage::start(Options { extra_conf: addons_path_conf(&[fake.path()]), ..Options::default() });
    stage.put_custom_dump("prod_mike", "mike-daily-1.dump", &spec(&["base", "web", "mail", "payment_y"]), "");
    assert_ne!(stage.query("prod_mike", "SELECT count(*) FROM payment_provider WHERE state = 'enabled'"), "0");
    let (started, status) = copy(&stage, "mike", "pay", false).await;
    let error = assert_failed(&stage, &status);
    assert!(error.contains("payment_provider") && error.contains("enabled"), "{error}");
    assert_nothing_left(&stage, &started.db_name);
}

#[tokio::test(flavor = "multi_thread")]
async fn bases_script_runs_from_odoos_own_addons() {
    assert!(!fixture::fixture_addons_dir().join("base").exists(), "base must not be on addons_path for this test");
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_nov", "nov-daily-1.dump", &fixture::Spec::tiny(), "");
    let (started, status) = copy(&stage, "nov", "base", false).await;
    assert_done(&stage, &status);
    let report = status.neutralized.expect("a report");
    assert_eq!(report.scripts.first().map(String::as_str), Some("base"), "{report:?}");
    // What base's script does and the built-in set does not: the dummy mail
    // server, webhooks pointed nowhere.
    assert_eq!(stage.query(&started.db_name, "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host = 'invalid'"), "1");
    assert_eq!(
        stage.query(
            &started.db_name,
            "SELECT count(*) FROM ir_act_server WHERE state = 'webhook' AND webhook_url IS DISTINCT FROM 'neutralization - disable webhook'"
        ),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn odoos_own_tree_is_found_beside_addons_path() {
    // A source install: /opt/odoo/{addons, odoo/release.py, odoo/addons/base}.
    let src = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(fixture::fixture_odoo_dir().join("odoo"), src.path().join("odoo")).unwrap();
    std::os::unix::fs::symlink(fixture::fixture_addons_dir(), src.path().join("addons")).unwrap();
    let stage = Stage::start(Options {
        extra_conf: format!("addons_path = {}\nnumikube_staging_odoo_path = False\n", src.path().join("addons").display()),
        ..Options::default()
    });
    stage.put_custom_dump("prod_oak", "oak-daily-1.dump", &fixture::Spec::tiny(), "");
    let (_, status) = copy(&stage, "oak", "tree", false).await;
    assert_done(&stage, &status);
    let report = status.neutralized.expect("a report");
    assert!(report.scripts.contains(&"base".to_string()), "{report:?}");
}

// ---------------------------------------------------------------------------
// 7. A new identity
// ---------------------------------------------------------------------------

const STAGING_URL: &str = "https://lab.staging.example.com";

#[tokio::test(flavor = "multi_thread")]
async fn the_copy_gets_a_new_identity_and_the_stagings_url() {
    let stage = Stage::start(Options { extra_conf: format!("numikube_staging_url = {STAGING_URL}\n"), ..Options::default() });
    stage.put_custom_dump(
        "prod_papa",
        "papa-daily-1.dump",
        &fixture::Spec::tiny(),
        "INSERT INTO ir_config_parameter (key, value, create_date, write_date) VALUES ('web.base.url.freeze', 'True', now(), now());",
    );
    let (started, status) = copy(&stage, "papa", "id", false).await;
    assert_done(&stage, &status);
    let copy = &started.db_name;
    assert_eq!(param(&stage, copy, "web.base.url"), STAGING_URL);
    assert_eq!(param(&stage, copy, "web.base.url.freeze"), "");
    assert_eq!(param(&stage, "prod_papa", "web.base.url.freeze"), "True");
    let created = param(&stage, copy, "database.create_date");
    assert!(!created.is_empty() && created != param(&stage, "prod_papa", "database.create_date"), "{created}");
    let server = stage.pg.url("postgres");
    let n = fixture::inspect_neutralization(&stage.pg.bin_dir, &server, copy).unwrap();
    let prod = fixture::inspect_neutralization(&stage.pg.bin_dir, &server, "prod_papa").unwrap();
    assert_eq!(n.problems_against(&prod), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_from_the_template_gets_its_own_identity_too() {
    let stage = Stage::start(Options { extra_conf: format!("numikube_staging_url = {STAGING_URL}\n"), ..Options::default() });
    stage.put_custom_dump("prod_quartz", "quartz-daily-1.dump", &fixture::Spec::tiny(), "");
    let (first, status) = copy(&stage, "quartz", "one", false).await;
    assert_done(&stage, &status);
    wait_template(&stage).await;
    let (second, status) = copy(&stage, "quartz", "two", false).await;
    assert_done(&stage, &status);
    for key in ["database.uuid", "database.secret"] {
        let (a, b) = (param(&stage, &first.db_name, key), param(&stage, &second.db_name, key));
        assert!(!a.is_empty() && a != b, "{key}: {a} / {b}");
    }
    assert_eq!(param(&stage, &second.db_name, "web.base.url"), STAGING_URL);
}
