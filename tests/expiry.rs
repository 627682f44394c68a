//! A copy's life on real servers (`numikube_staging_expire_after`): its
//! expiry in the list, pushed back by `staging_extend`, announced to the
//! requester, then the copy dropped; copies made before expiry was set.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::{code_of, make_marked, Options, Stage, BUCKET, TOKEN};
use numikube_staging_rpc::{codes, JobState, RunPayload, StagingApiClient};

/// A stage whose copies live `life` and are announced `warning` before.
fn expiring_stage(life: &str, warning: &str, smtp: bool) -> Stage {
    Stage::start(Options {
        smtp,
        extra_conf: format!("numikube_staging_expire_after = {life}\nnumikube_staging_expire_warning = {warning}\n"),
        ..Options::default()
    })
}

/// Puts the tiny fixture's custom dump as `client`'s backup `key`.
fn put_dump(stage: &Stage, client: &str, key: &str) {
    let (work, _) = stage.make_backups(client);
    stage.s3.put_file(BUCKET, key, &Stage::backup_path(&work, client, "dump")).unwrap();
}

/// Waits until `done` holds, or fails after `timeout` with `what` and the log.
fn wait_until(stage: &Stage, timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}\n{}", stage.sidecar_log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn extend_pushes_a_copys_expiry_back_from_now() {
    let stage = expiring_stage("1h", "10m", false);
    put_dump(&stage, "cosmos", "cosmos-daily-1.dump");
    let before = Utc::now();
    let started = stage.run(stage.prod2x("cosmos", "older", false)).await.unwrap();
    assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
    let copies = stage.client.list(TOKEN.into(), Some("cosmos".into())).await.unwrap();
    let expires = copies[0].expires_at.expect("copies expire on this staging");
    assert!(expires > before + TimeDelta::minutes(59) && expires < Utc::now() + TimeDelta::minutes(61), "{expires}");

    // Keep longer: the expiry moves to an hour from now, and the list says so.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let extended = stage.client.extend(TOKEN.into(), "cosmos-lab_older".into()).await.unwrap();
    assert!(extended.expires_at > expires, "{extended:?} after {expires}");
    let again = stage.client.list(TOKEN.into(), Some("cosmos".into())).await.unwrap();
    assert_eq!(again[0].expires_at, Some(extended.expires_at));
    for name in ["cosmos-lab_nothing", "postgres"] {
        let (code, message) = code_of(stage.client.extend(TOKEN.into(), name.into()).await.unwrap_err());
        assert_eq!(code, codes::NOT_FOUND, "{name}: {message}");
    }
    assert!(extended.expires_at > Utc::now() + TimeDelta::minutes(59));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expiring_copy_is_announced_to_its_requester_then_dropped() {
    let stage = expiring_stage("3s", "2s", true);
    // A copy made before copies expired: it gets an expiry from the first sweep on.
    make_marked(&stage, "lima-lab_before");
    put_dump(&stage, "lima", "lima-daily-1.dump");
    let payload = RunPayload { email: Some("david@example.com".into()), ..stage.prod2x("lima", "short", false) };
    let started = stage.run(payload).await.unwrap();
    assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
    let made = Utc::now();
    let copies = stage.client.list(TOKEN.into(), Some("lima".into())).await.unwrap();
    let copy = copies.iter().find(|c| c.name == started.db_name).expect("listed");
    let expires = copy.expires_at.expect("an expiry");
    assert!(expires > made - TimeDelta::seconds(5) && expires < made + TimeDelta::seconds(5), "{expires}");

    // The requester is told first, once, then the copy and its filestore go.
    let smtp = stage.smtp.as_ref().unwrap();
    wait_until(&stage, Duration::from_secs(40), "the notice is mailed", || {
        smtp.messages().iter().any(|m| m.contains("X-RcptTo: david@example.com") && m.contains(&started.db_name))
    });
    assert!(stage.databases().contains(&started.db_name), "told before it is dropped");
    wait_until(&stage, Duration::from_secs(40), "the expired copy is dropped", || !stage.databases().contains(&started.db_name));
    assert!(!stage.data_dir().join("filestore").join(&started.db_name).exists());
    let log = stage.sidecar_log();
    assert!(log.lines().any(|l| l.contains("dropped the expired copy") && l.contains(&started.db_name)), "{log}");
    let notices = smtp.messages().iter().filter(|m| m.contains("X-RcptTo: david@example.com")).count();
    assert_eq!(notices, 1, "one notice");

    // The older copy got its expiry from the upgrade, was announced to the admin, then dropped.
    assert!(log.contains("a copy made before copies expired gets its expiry"), "{log}");
    wait_until(&stage, Duration::from_secs(40), "the older copy is dropped", || {
        !stage.databases().contains(&"lima-lab_before".to_string())
    });
    assert!(smtp.messages().iter().any(|m| m.contains("X-RcptTo: staging@example.com") && m.contains("lima-lab_before")));
}
