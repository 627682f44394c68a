//! The operator commands, run as the real binary against a real staging host:
//! the same answers as the API, exit codes scripts can rely on, and help.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{make_marked, Options, Stage, ROLE, TOKEN};
use numikube_staging_rpc::{DatabaseInfo, DropResult, JobState, JobStatus, StagingApiClient};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_numikube-staging");

/// Runs `numikube-staging <args> -c <conf>`.
fn cli(conf: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).arg("-c").arg(conf).env_remove("ODOO_RC").output().expect("the binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of<T: serde::de::DeserializeOwned>(out: &Output) -> T {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", stdout(out), stderr(out)))
}

/// `staging_list` without sizes, which PostgreSQL may change between two calls.
fn without_sizes(mut list: Vec<DatabaseInfo>) -> Vec<DatabaseInfo> {
    for d in &mut list {
        assert!(d.size_bytes > 0, "{d:?}");
        d.size_bytes = 0;
    }
    list
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_and_api_give_the_same_answers() {
    let stage = Stage::start(Options::default());
    let conf = stage.conf();
    make_marked(&stage, "romeo-lab_a");
    stage.pg.psql("postgres", &format!("CREATE DATABASE \"romeo-lab_by_hand\" OWNER {ROLE}; CREATE DATABASE prod_romeo")).unwrap();

    // list
    let out = cli(&conf, &["list", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let api = stage.client.list(TOKEN.into(), None).await.unwrap();
    assert_eq!(without_sizes(json_of(&out)), without_sizes(api));
    let table = cli(&conf, &["list"]);
    assert_eq!(code(&table), 0);
    let text = stdout(&table);
    assert!(text.starts_with("NAME") && text.contains("romeo-lab_a") && text.contains("romeo-lab_by_hand"), "{text}");
    assert!(!text.contains("prod_romeo"), "{text}");

    // drop: the same request in the same state, once through each.
    let names = "romeo-lab_a romeo-lab_by_hand prod_romeo postgres romeo-lab_nope";
    let api = stage.client.drop_databases(TOKEN.into(), names.into()).await.unwrap();
    assert_eq!(api.dropped, vec!["romeo-lab_a"]);
    make_marked(&stage, "romeo-lab_a");
    let args: Vec<&str> = ["drop", "--json"].into_iter().chain(names.split(' ')).collect();
    let out = cli(&conf, &args);
    assert_eq!(json_of::<DropResult>(&out), api);
    assert_eq!(code(&out), 1, "a name was refused");
    assert!(!stage.databases().contains(&"romeo-lab_a".to_string()));

    // Exit codes: all dropped 0, only missing 4, refused 1 (also in table form).
    make_marked(&stage, "romeo-lab_b");
    let out = cli(&conf, &["drop", "romeo-lab_b"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("romeo-lab_b  dropped"), "{}", stdout(&out));
    let out = cli(&conf, &["drop", "romeo-lab_b", "romeo-lab_nope"]);
    assert_eq!(code(&out), 4, "{}", stdout(&out));
    let out = cli(&conf, &["drop", "postgres", "romeo-lab_nope"]);
    assert_eq!(code(&out), 1);
    assert!(stdout(&out).contains("refused  it is not one of this staging server's databases"), "{}", stdout(&out));
    // One argument holding several names, as pasted.
    make_marked(&stage, "romeo-lab_c");
    make_marked(&stage, "romeo-lab_d");
    let out = cli(&conf, &["drop", "--json", "romeo-lab_c\nromeo-lab_d\tromeo-lab_c"]);
    assert_eq!(json_of::<DropResult>(&out).dropped, vec!["romeo-lab_c", "romeo-lab_d"]);
    // Nothing to drop is bad usage.
    let out = cli(&conf, &["drop", " "]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("No database names were given to drop."), "{}", stderr(&out));
    assert!(stage.databases().contains(&"romeo-lab_by_hand".to_string()));
    assert!(stage.databases().contains(&"prod_romeo".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_runs_a_whole_prod2x_here_and_status_asks_the_server() {
    let stage = Stage::start(Options::default());
    let conf = stage.conf();
    stage.put_backup("sierra", "sierra-2026-11-24.dump", "dump");

    let out = cli(&conf, &["restore", "--client", "sierra", "--level", "lab", "--suffix", "cli", "--no-timestamp", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status: JobStatus = json_of(&out);
    assert_eq!((status.state, status.db_name.as_str()), (JobState::Done, "sierra-lab_cli"));
    assert_eq!(status.backup.as_deref(), Some("sierra-2026-11-24.dump"));
    assert!(status.neutralized.is_some());
    // The command waited until Odoo can see the copy: the server lists it at once, as ours.
    let list = stage.client.list(TOKEN.into(), None).await.unwrap();
    let copy = list.iter().find(|d| d.name == "sierra-lab_cli").unwrap_or_else(|| panic!("not listed: {list:?}"));
    assert!(copy.made_by_staging && !copy.template);
    assert_eq!(copy.job_id.as_deref(), Some(status.job_id.as_str()));
    assert!(stage.leftovers().iter().all(|d| !d.starts_with("numikube_tmp_")), "{:?}", stage.leftovers());

    // Text form: the phases on stderr, the result on stdout.
    let out = cli(&conf, &["restore", "--client", "sierra", "--level", "test"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("is ready (from sierra-2026-11-24.dump)"), "{}", stdout(&out));
    assert!(stdout(&out).contains("filestore: none, "), "a custom dump without a companion: {}", stdout(&out));
    assert!(stderr(&out).contains("Done"), "{}", stderr(&out));

    // Refusals: a bad name is bad usage; a missing backup is a failed job.
    let out = cli(&conf, &["restore", "--client", "Sierra", "--level", "lab"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("client"), "{}", stderr(&out));
    let out = cli(&conf, &["restore", "--client", "tango", "--level", "lab", "--json"]);
    assert_eq!(code(&out), 1);
    let error: Value = json_of(&out);
    assert!(error["error"]["message"].as_str().unwrap().contains("tango"), "{error}");

    // status asks the running server: the same answer as the API, by job id or name.
    let started = stage.run(stage.prod2x("sierra", "api", false)).await.unwrap();
    let api = stage.wait_job(&started.job_id).await;
    for key in [&started.job_id, &started.db_name] {
        let out = cli(&conf, &["status", "--json", key]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(json_of::<JobStatus>(&out), api);
    }
    let out = cli(&conf, &["status", &started.db_name]);
    assert!(stdout(&out).contains("state     done"), "{}", stdout(&out));
    // A job of another process, or none: not found.
    let out = cli(&conf, &["status", "no-such-job"]);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    // --follow on an ended job answers at once, like status.
    let out = cli(&conf, &["status", "--follow", "--json", &started.job_id]);
    assert_eq!((code(&out), json_of::<JobStatus>(&out)), (0, api.clone()));

    // backups, health, extend, cancel: the methods that exist, the same answers as the API.
    let work = stage.dir.path().join("backups-sierra");
    stage.s3.put_file(common::BUCKET, "sierra-2026-11-25.dump", &Stage::backup_path(&work, "sierra", "dump")).unwrap();
    let out = cli(&conf, &["backups", "--json", "sierra"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_of::<numikube_staging_rpc::Backups>(&out), stage.client.backups(TOKEN.into(), "sierra".into()).await.unwrap());
    assert!(stdout(&cli(&conf, &["backups", "sierra"])).starts_with("KEY"));
    let out = cli(&conf, &["health", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_of::<Value>(&out)["postgres"], "ok");
    let out = cli(&conf, &["extend", "sierra-lab_cli"]);
    assert_eq!(code(&out), 2, "copies do not expire on this staging: {}", stderr(&out));
    assert!(stderr(&out).contains("nothing to extend"), "{}", stderr(&out));
    let out = cli(&conf, &["cancel", &started.job_id]);
    assert_eq!(code(&out), 1, "an ended job cannot be cancelled: {}", stderr(&out));
    assert!(stderr(&out).contains("already ended"), "{}", stderr(&out));
    // restore --backup restores the one asked for, not the newest.
    let out = cli(
        &conf,
        &["restore", "--client", "sierra", "--level", "lab", "--suffix", "older", "--backup", "sierra-2026-11-24.dump", "--json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_of::<JobStatus>(&out).backup.as_deref(), Some("sierra-2026-11-24.dump"));
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_itself() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(stdout(&out).contains("backups") && stdout(&out).contains("restore"), "{shell}: {}", stdout(&out));
    }
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with(".ie") || stdout(&out).contains(".TH numikube-staging"), "{}", stdout(&out));
}

/// An `odoo.conf` for commands that fail before or while reaching a server.
fn conf_file(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("odoo.conf");
    std::fs::write(&path, format!("[options]\n{body}")).unwrap();
    path
}

#[test]
fn bad_configuration_exits_2_and_says_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_file(dir.path(), "db_host = 127.0.0.1\n");
    for args in [&["list"][..], &["drop", "x"], &["status", "x"], &["restore", "--client", "c", "--level", "lab"], &["serve"]] {
        let out = cli(&conf, args);
        assert_eq!(code(&out), 2, "{args:?}");
        assert!(stderr(&out).contains("numikube_staging_token"), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&conf.display().to_string()), "names the file: {}", stderr(&out));
    }
    let out = cli(&dir.path().join("missing.conf"), &["list"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("give its path with -c"), "{}", stderr(&out));
    let conf = conf_file(dir.path(), "numikube_staging_token = t\ndb_port = five\n");
    let out = cli(&conf, &["list"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("db_port"), "{}", stderr(&out));
    // Usage errors are clap's, with the same code.
    let out = cli(&conf, &["drop"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn unreachable_servers_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let closed = numikube_testbed::free_port();
    let conf = conf_file(
        dir.path(),
        &format!("numikube_staging_token = t\nnumikube_staging_sidecar = 127.0.0.1:{closed}\ndb_host = 127.0.0.1\ndb_port = {closed}\ndb_user = odoo\n"),
    );
    for args in [&["list"][..], &["drop", "x"], &["status", "x"]] {
        let out = cli(&conf, args);
        assert_eq!(code(&out), 3, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
    let out = cli(&conf, &["status", "x", "--json"]);
    let error: Value = json_of(&out);
    assert_eq!(error["error"]["code"], numikube_staging_rpc::codes::UNAVAILABLE);
    assert!(stderr(&out).contains("numikube-staging serve"), "{}", stderr(&out));
}

#[test]
fn help_works_on_every_subcommand() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    for word in [
        "list",
        "drop",
        "status",
        "restore",
        "serve",
        "backups",
        "cancel",
        "extend",
        "health",
        "--json",
        "--config",
        "--log-format",
        "NUMIKUBE_LOG",
        "Exit codes",
    ] {
        assert!(text.contains(word), "{word}: {text}");
    }
    for (sub, words) in [
        ("list", &["--json"][..]),
        ("drop", &["<NAME>...", "Exit codes"]),
        ("status", &["<JOB_OR_NAME>"]),
        ("restore", &["--client", "--level", "--suffix", "--no-timestamp", "--backup"]),
        ("status", &["--follow"]),
        ("backups", &["<CLIENT>"]),
        ("cancel", &["<JOB_ID>"]),
        ("extend", &["<DB_NAME>"]),
        ("health", &["Exit codes"]),
        ("serve", &["--config"]),
    ] {
        let out = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub} --help");
        let text = stdout(&out);
        assert!(text.contains("Usage: numikube-staging"), "{sub}: {text}");
        for word in words {
            assert!(text.contains(word), "{sub}: {word}: {text}");
        }
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
}
