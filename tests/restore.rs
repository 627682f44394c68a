//! prod2x end to end on real servers: every backup format, the newest backup,
//! refreshes, and every refusal leaving nothing behind.

mod common;

use std::time::Duration;

use common::{code_of, Options, Stage, BUCKET, ROLE, TOKEN};
use numikube_staging_rpc::{codes, JobState, Reach, StagingApiClient};
use numikube_testbed::fixture;

/// Restores `key` for `client` and checks the copy is complete and neutralized.
async fn restore_and_check(stage: &Stage, client: &str, key: &str, file: &std::path::Path, with_filestore: bool) {
    stage.s3.put_file(BUCKET, key, file).unwrap();
    let started = stage.run(stage.prod2x(client, "t1", false)).await.expect("accepted");
    assert_eq!(started.db_name, format!("{client}-lab_t1"));
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{key}: {status:?}\n{}", stage.sidecar_log());
    assert_eq!(status.backup.as_deref(), Some(key));
    let report = status.neutralized.expect("neutralization report");
    assert!(report.scripts.contains(&"mail".to_string()), "{report:?}");
    assert!(!report.modules_not_found.is_empty(), "{report:?}");

    let db = &started.db_name;
    let server = stage.pg.url("postgres");
    let n = fixture::assert_neutralized(&stage.pg.bin_dir, &server, db).expect("neutralized");
    let prod = fixture::inspect_neutralization(&stage.pg.bin_dir, &server, &format!("prod_{client}")).unwrap();
    assert_ne!(n.uuid, prod.uuid, "the copy has its own uuid");
    assert_ne!(n.secret, prod.secret, "the copy has its own secret");
    // Neutralization rewrites the config parameters and mail servers; every other table is whole.
    let counts = |db: &str| {
        let mut c = fixture::table_counts(&stage.pg.bin_dir, &server, db).unwrap();
        c.retain(|t, _| t != "ir_config_parameter" && t != "ir_mail_server");
        c
    };
    assert_eq!(counts(db), counts(&format!("prod_{client}")), "{key}: every row restored");
    let owner = stage.query("postgres", &format!("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{db}'"));
    assert_eq!(owner, ROLE);
    let comment = stage.query("postgres", &format!("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{db}'"));
    assert!(comment.contains(&started.job_id) && comment.contains(key), "marker: {comment}");
    let filestore = stage.data_dir().join("filestore").join(db);
    assert_eq!(filestore.exists(), with_filestore, "{key}: filestore at {}", filestore.display());
    if with_filestore {
        let files = fixture::count_files(&filestore);
        assert_eq!(files, 20, "every filestore file extracted");
    }
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());

    let calls = stage.receiver.wait_for(1, Duration::from_secs(10)).unwrap();
    let last = calls.last().unwrap();
    assert_eq!(last.body["state"], "done");
    assert_eq!(last.body["token"], TOKEN);
    assert_eq!(last.path, "/web/staging/callback/42");
    assert_eq!(last.query_param("db").as_deref(), Some("prod"));
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_dump_restores_into_a_neutralized_copy() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("alpha");
    restore_and_check(&stage, "alpha", "alpha-2026-11-24.dump", &Stage::backup_path(&work, "alpha", "dump"), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odoo_zip_restores_with_its_filestore() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("bravo");
    restore_and_check(&stage, "bravo", "bravo/daily/2026-11-24.zip", &Stage::backup_path(&work, "bravo", "zip"), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_and_gzip_backups_restore() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("charlie");
    restore_and_check(&stage, "charlie", "charlie_2026-11-24.sql.gz", &Stage::backup_path(&work, "charlie", "sql.gz"), false).await;

    // A gzip-compressed custom dump, told apart by content, not name.
    let (work, _) = stage.make_backups("delta");
    let gz = work.join("custom.gz");
    fixture::gzip_file(&Stage::backup_path(&work, "delta", "dump"), &gz).unwrap();
    restore_and_check(&stage, "delta", "delta.backup", &gz, false).await;

    let (work, _) = stage.make_backups("echo");
    restore_and_check(&stage, "echo", "echo-daily-1.sql", &Stage::backup_path(&work, "echo", "sql"), false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_newest_backup_is_used() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("fox");
    // Older and corrupt: if it were chosen the job would fail.
    stage.s3.put_bytes(BUCKET, "fox-2026-11-23.dump", b"PGDMP garbage".to_vec()).unwrap();
    // Another client's key that shares the prefix must not count either.
    std::thread::sleep(Duration::from_millis(1100));
    stage.s3.put_file(BUCKET, "fox-2026-11-24.dump", &Stage::backup_path(&work, "fox", "dump")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    stage.s3.put_bytes(BUCKET, "foxtrot-2026-11-25.dump", b"PGDMP garbage".to_vec()).unwrap();
    let started = stage.run(stage.prod2x("fox", "n", true)).await.unwrap();
    assert!(started.db_name.starts_with("fox-lab_2") && started.db_name.ends_with("_n"), "{}", started.db_name);
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(status.backup.as_deref(), Some("fox-2026-11-24.dump"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_create_nothing_and_call_nobody() {
    let stage = Stage::start(Options { limit: 2, ..Options::default() });
    let before = stage.databases();
    let good = stage.prod2x("golf", "ok", true);

    let mut cases: Vec<(numikube_staging_rpc::RunPayload, i32)> = Vec::new();
    cases.push((numikube_staging_rpc::RunPayload { token: Some("wrong".into()), ..good.clone() }, codes::BAD_TOKEN));
    cases.push((numikube_staging_rpc::RunPayload { token: None, ..good.clone() }, codes::BAD_TOKEN));
    cases.push((numikube_staging_rpc::RunPayload { token: Some(format!("{TOKEN}x")), ..good.clone() }, codes::BAD_TOKEN));
    for suffix in ["David", "a b", "a;drop database postgres", "x'y", "é", "a\"b", "-a", "a%"] {
        cases.push((numikube_staging_rpc::RunPayload { suffix: Some(suffix.into()), ..good.clone() }, codes::INVALID_INPUT));
    }
    cases.push((numikube_staging_rpc::RunPayload { suffix: Some("x".repeat(60)), ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { client: None, ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { client: Some("Golf".into()), ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { level: None, ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { callback: Some("ftp://x/y".into()), ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { kind: Some("prod3x".into()), ..good.clone() }, codes::INVALID_INPUT));
    cases.push((numikube_staging_rpc::RunPayload { kind: None, ..good.clone() }, codes::INVALID_INPUT));
    for (payload, expected) in cases {
        let err = stage.run(payload.clone()).await.expect_err("refused");
        let (code, message) = code_of(err);
        assert_eq!(code, expected, "{payload:?}: {message}");
        assert!(!message.is_empty() && message.ends_with('.'), "a sentence: {message}");
    }

    // The limit: two databases of this instance already exist (one foreign, one ours-shaped).
    stage
        .pg
        .psql("postgres", &format!("CREATE DATABASE \"golf-lab_a\" OWNER {ROLE}; CREATE DATABASE \"golf-lab_b\" OWNER {ROLE};"))
        .unwrap();
    let (code, message) = code_of(stage.run(good.clone()).await.expect_err("limit"));
    assert_eq!(code, codes::LIMIT_REACHED, "{message}");
    assert!(message.contains("limit is 2"), "{message}");

    let mut after = stage.databases();
    after.retain(|d| d != "golf-lab_a" && d != "golf-lab_b");
    assert_eq!(after, before, "nothing was created");
    std::thread::sleep(Duration::from_millis(300));
    assert!(stage.receiver.received().is_empty(), "no callback for a refusal");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_bodies_get_json_rpc_errors() {
    let stage = Stage::start(Options::default());
    let url = format!("http://127.0.0.1:{}", stage.port);
    // A fresh connection per request: the server closes the one that carried an
    // oversized body, and a pooled client could pick it again before it sees the close.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let huge = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"staging_run","params":[{{"token":"{}"}}]}}"#, "x".repeat(2 << 20));
    let answer: serde_json::Value =
        http.post(&url).header("content-type", "application/json").body(huge).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32007, "{answer}");
    let answer: serde_json::Value =
        http.post(&url).header("content-type", "application/json").body("{not json").send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    let wrong_type = r#"{"jsonrpc":"2.0","id":1,"method":"staging_run","params":[{"token":"t","timestamp":"yes"}]}"#;
    let answer: serde_json::Value =
        http.post(&url).header("content-type", "application/json").body(wrong_type).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // The sidecar still serves.
    assert_eq!(stage.client.health().await.unwrap().postgres, Reach::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_jobs_leave_nothing_and_report_the_error() {
    let mut stage = Stage::start(Options::default());
    let before = stage.databases();

    // No backup for the client.
    let s = stage.run(stage.prod2x("hotel", "a", false)).await.unwrap();
    let status = stage.wait_job(&s.job_id).await;
    assert_eq!(status.state, JobState::Error);
    assert!(status.error.as_deref().unwrap().contains("no backup of client \"hotel\""), "{status:?}");

    // A corrupt custom dump (truncated) and a garbage file.
    let (work, _) = stage.make_backups("india");
    let broken = work.join("broken.dump");
    fixture::corrupt_file(&Stage::backup_path(&work, "india", "dump"), &broken, fixture::Corruption::Truncate).unwrap();
    stage.s3.put_file(BUCKET, "india-daily-1.dump", &broken).unwrap();
    let s = stage.run(stage.prod2x("india", "a", false)).await.unwrap();
    let status = stage.wait_job(&s.job_id).await;
    assert_eq!(status.state, JobState::Error, "{status:?}");
    assert!(status.error.as_deref().unwrap().contains("pg_restore"), "{status:?}");

    stage.s3.put_bytes(BUCKET, "juliet.zip", vec![0u8, 1, 2, 3, 200, 201]).unwrap();
    let s = stage.run(stage.prod2x("juliet", "a", false)).await.unwrap();
    let status = stage.wait_job(&s.job_id).await;
    assert!(status.error.as_deref().unwrap().contains("corrupt"), "{status:?}");

    // Storage down.
    stage.s3.stop().unwrap();
    let s = stage.run(stage.prod2x("kilo", "a", false)).await.unwrap();
    let status = stage.wait_job(&s.job_id).await;
    assert!(status.error.as_deref().unwrap().contains("object storage"), "{status:?}");

    let after: Vec<String> = stage.databases().into_iter().filter(|d| !d.starts_with("prod_")).collect();
    let before: Vec<String> = before.into_iter().filter(|d| !d.starts_with("prod_")).collect();
    assert_eq!(after, before, "no database left behind");
    let tmp_filestores: Vec<_> = std::fs::read_dir(stage.data_dir().join("filestore")).map(|d| d.count()).into_iter().collect();
    assert!(tmp_filestores.iter().all(|&n| n == 0), "no filestore left behind");

    let calls = stage.receiver.wait_for(4, Duration::from_secs(10)).unwrap();
    for call in &calls {
        assert_eq!(call.body["state"], "error", "{:?}", call.body);
        assert!(call.body["error"].as_str().unwrap().len() > 10);
        assert_eq!(call.body["traceback"], call.body["stacktrace"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_replaces_only_our_own_copy_and_only_when_ready() {
    let stage = Stage::start(Options::default());
    stage.put_backup("lima", "lima-daily-1.dump", "dump");
    let first = stage.run(stage.prod2x("lima", "keep", false)).await.unwrap();
    assert_eq!(stage.wait_job(&first.job_id).await.state, JobState::Done);
    // Something the user did in the first copy.
    stage.pg.psql("lima-lab_keep", "CREATE TABLE user_work (x int)").unwrap();

    let second = stage.run(stage.prod2x("lima", "keep", false)).await.unwrap();
    assert_eq!(second.db_name, first.db_name);
    // While the refresh runs, the previous copy is still there under its name.
    assert!(stage.databases().contains(&first.db_name));
    assert_eq!(stage.wait_job(&second.job_id).await.state, JobState::Done);
    let comment = stage.query("postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'lima-lab_keep'");
    assert!(comment.contains(&second.job_id), "the new copy took the name: {comment}");
    assert_eq!(stage.query("lima-lab_keep", "SELECT to_regclass('user_work') IS NULL"), "t");
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());

    // A same-named database that the sidecar did not make is never touched.
    stage.pg.psql("postgres", &format!("CREATE DATABASE \"lima-lab_foreign\" OWNER {ROLE}")).unwrap();
    stage.pg.psql("lima-lab_foreign", "CREATE TABLE precious (x int)").unwrap();
    let (code, message) = code_of(stage.run(stage.prod2x("lima", "foreign", false)).await.expect_err("conflict"));
    assert_eq!(code, codes::CONFLICT, "{message}");
    assert_eq!(stage.query("lima-lab_foreign", "SELECT to_regclass('precious') IS NOT NULL"), "t");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_both_backends() {
    let mut stage = Stage::start(Options::default());
    let h = stage.client.health().await.unwrap();
    assert_eq!((&h.postgres, &h.storage), (&Reach::Ok, &Reach::Ok));
    assert_eq!(h.version, env!("CARGO_PKG_VERSION"));
    stage.s3.stop().unwrap();
    let h = stage.client.health().await.unwrap();
    assert!(h.storage.to_string().contains("cannot be read"), "{h:?}");
    // Token-guarded methods refuse a wrong token.
    let err = stage.client.list("nope".into(), None).await.expect_err("bad token");
    assert_eq!(code_of(err).0, codes::BAD_TOKEN);
}
