//! Managing copies from production, on real servers: the client's backups and
//! the choice of one, the client's copies, cancelling a job, repeated
//! requests, and the callback's `job_id` (a copy's life: `tests/expiry.rs`).

mod common;

use std::time::{Duration, Instant};

use common::{code_of, make_marked, Options, Stage, BUCKET, TOKEN};
use numikube_staging_rpc::{codes, JobState, Phase, RunPayload, RunResult, StagingApiClient};

/// Puts the tiny fixture's custom dump of `client` under each of `keys`, one
/// second apart, so that the last is the newest.
fn put_dumps(stage: &Stage, client: &str, keys: &[&str]) {
    let (work, _) = stage.make_backups(client);
    for key in keys {
        stage.s3.put_file(BUCKET, key, &Stage::backup_path(&work, client, "dump")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clients_backups_newest_first_and_an_older_one_restored_and_echoed() {
    let stage = Stage::start(Options::default());
    put_dumps(&stage, "cosmos", &["cosmos-daily-2.dump", "cosmos-daily-1.dump"]);
    put_dumps(&stage, "other", &["other-daily-1.dump"]);
    stage.s3.put_bytes(BUCKET, "cosmos-eu-daily-1.dump", b"not cosmos's".to_vec()).unwrap();

    let listed = stage.client.backups(TOKEN.into(), "cosmos".into()).await.unwrap();
    let keys: Vec<&str> = listed.backups.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(keys, ["cosmos-daily-1.dump", "cosmos-daily-2.dump"], "only cosmos's, newest first");
    assert!(listed.backups.iter().all(|b| b.size_bytes > 0));
    assert!(listed.backups[0].last_modified > listed.backups[1].last_modified);
    let bad = stage.client.backups(TOKEN.into(), "Cosmos!".into()).await.unwrap_err();
    assert_eq!(code_of(bad).0, codes::INVALID_INPUT);

    // Another client's backup is refused at once and makes nothing.
    let foreign = RunPayload { backup: Some("other-daily-1.dump".into()), ..stage.prod2x("cosmos", "foreign", false) };
    let (code, message) = code_of(stage.run(foreign).await.unwrap_err());
    assert_eq!(code, codes::INVALID_INPUT, "{message}");
    assert!(message.contains("other-daily-1.dump") && message.contains("cosmos"), "{message}");
    assert!(!stage.databases().contains(&"cosmos-lab_foreign".to_string()));

    // The older of the client's two backups, asked for, is restored and echoed.
    let older = RunPayload {
        backup: Some("cosmos-daily-2.dump".into()),
        email: Some("david@example.com".into()),
        ..stage.prod2x("cosmos", "older", false)
    };
    let answer = stage.client.run(older).await.unwrap();
    let RunResult::Started(started) = answer.clone() else { panic!("{answer:?}") };
    assert_eq!(started.backup.as_deref(), Some("cosmos-daily-2.dump"));
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["backup"], "cosmos-daily-2.dump", "{json}");
    let done = stage.wait_job(&started.job_id).await;
    assert_eq!((done.state, done.progress), (JobState::Done, Some(1.0)), "{done:?}");
    assert_eq!(done.backup.as_deref(), Some("cosmos-daily-2.dump"));

    // Without `backup`, the newest, and the answer has no `backup` key.
    let newest = stage.client.run(stage.prod2x("cosmos", "newest", false)).await.unwrap();
    assert!(serde_json::to_value(&newest).unwrap().get("backup").is_none(), "{newest:?}");
    let RunResult::Started(newest) = newest else { panic!() };
    assert_eq!(stage.wait_job(&newest.job_id).await.backup.as_deref(), Some("cosmos-daily-1.dump"));

    // The callback names the job it is about.
    let calls = stage.receiver.wait_for(2, Duration::from_secs(30)).unwrap();
    let ours = calls.iter().find(|c| c.body["job_id"] == started.job_id.as_str()).expect("a callback with the job's id");
    assert_eq!(ours.body["state"], "done");

    // The client's copies, with who asked and from which backup; they do not expire here.
    let copies = stage.client.list(TOKEN.into(), Some("cosmos".into())).await.unwrap();
    let names: Vec<&str> = copies.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["cosmos-lab_newest", "cosmos-lab_older"], "{copies:?}");
    let copy = &copies[1];
    assert_eq!(copy.requested_by.as_deref(), Some("david@example.com"));
    assert_eq!(copy.backup.as_deref(), Some("cosmos-daily-2.dump"));
    assert_eq!(copy.job_id.as_deref(), Some(started.job_id.as_str()));
    assert!(copy.size_bytes > 0 && copy.made_by_staging && !copy.template);
    assert_eq!(copy.expires_at, None);
    let every = stage.client.list(TOKEN.into(), None).await.unwrap();
    for copy in &copies {
        assert!(every.contains(copy), "the whole list holds {copy:?}: {every:?}");
    }
    assert!(stage.client.list(TOKEN.into(), Some("other".into())).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_a_restore_leaves_nothing_and_the_callback_says_error() {
    let stage = Stage::start(Options::default());
    stage.put_slow_backup("juliet", "juliet-daily-1.sql", 60);
    let started = stage.run(stage.prod2x("juliet", "stop", false)).await.unwrap();
    let restoring = stage.wait_phase(&started.job_id, Phase::Restoring).await;
    assert!(restoring.progress.is_some_and(|p| p < 1.0), "{restoring:?}");
    assert!(!stage.working_leftovers().is_empty(), "the hidden database exists while it restores");

    let took = Instant::now();
    let cancelled = stage.client.cancel(TOKEN.into(), started.job_id.clone()).await.unwrap();
    assert!(took.elapsed() < Duration::from_secs(20), "cancelled at once, not after the restore");
    assert_eq!(cancelled.state, JobState::Error);
    assert!(cancelled.error.starts_with("Cancelled"), "{cancelled:?}");
    let json = serde_json::to_value(&cancelled).unwrap();
    assert_eq!(json, serde_json::json!({"state": "error", "error": cancelled.error}));

    // Nothing is left: no copy, no hidden database, no filestore.
    assert!(stage.working_leftovers().is_empty(), "{:?}", stage.working_leftovers());
    assert!(!stage.databases().contains(&started.db_name));
    let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.unwrap();
    assert_eq!((status.state, status.phase), (JobState::Error, Phase::Error));
    assert_eq!(status.error.as_deref(), Some(cancelled.error.as_str()));

    // Reported like any failed job.
    let calls = stage.receiver.wait_for(1, Duration::from_secs(30)).unwrap();
    assert_eq!(calls[0].body["state"], "error");
    assert_eq!(calls[0].body["job_id"], started.job_id.as_str());
    assert!(calls[0].body["error"].as_str().unwrap().starts_with("Cancelled"), "{:?}", calls[0].body);

    // An ended job cannot be cancelled, nor an unknown one.
    let ended = stage.client.cancel(TOKEN.into(), started.job_id.clone()).await.unwrap_err();
    assert_eq!(code_of(ended).0, codes::CONFLICT);
    let unknown = stage.client.cancel(TOKEN.into(), "no-such-job".into()).await.unwrap_err();
    assert_eq!(code_of(unknown).0, codes::NOT_FOUND);
    // Copies do not expire on this staging: there is nothing to extend.
    make_marked(&stage, "juliet-lab_kept");
    let (code, message) = code_of(stage.client.extend(TOKEN.into(), "juliet-lab_kept".into()).await.unwrap_err());
    assert_eq!(code, codes::INVALID_INPUT, "{message}");
    assert!(message.contains("numikube_staging_expire_after"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_request_id_gets_the_first_answer_and_makes_one_copy() {
    let mut stage = Stage::start(Options::default());
    put_dumps(&stage, "kilo", &["kilo-daily-1.dump"]);
    let payload = RunPayload { request_id: Some("uuid-of-prod:42:1".into()), ..stage.prod2x("kilo", "once", true) };
    // A double click: both at once.
    let (a, b) = tokio::join!(stage.client.run(payload.clone()), stage.client.run(payload.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    let RunResult::Started(first) = a.clone() else { panic!("{a:?}") };
    assert_eq!(stage.wait_job(&first.job_id).await.state, JobState::Done);
    // Later, and after a restart (once the job was reported): still the first answer.
    assert_eq!(stage.client.run(payload.clone()).await.unwrap(), a);
    let calls = stage.receiver.wait_for(1, Duration::from_secs(30)).unwrap();
    assert_eq!(calls.len(), 1, "one job, one report: {calls:?}");
    stage.kill_sidecar();
    stage.start_sidecar();
    assert_eq!(stage.client.run(payload.clone()).await.unwrap(), a);
    let copies: Vec<String> = stage.databases().into_iter().filter(|d| d.starts_with("kilo-lab_")).collect();
    assert_eq!(copies.len(), 1, "one copy: {copies:?}");
    assert_eq!(copies[0], first.db_name);
    // Another run of the same job (its count raised) is a new request.
    let next = RunPayload { request_id: Some("uuid-of-prod:42:2".into()), suffix: Some("twice".into()), ..payload };
    let RunResult::Started(second) = stage.client.run(next).await.unwrap() else { panic!() };
    assert_ne!(second.job_id, first.job_id);
    assert_eq!(stage.wait_job(&second.job_id).await.state, JobState::Done);
}
