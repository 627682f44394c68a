//! Jobs that survive faults, on real servers: callback retries and the
//! fallback mail, a crash (SIGKILL) and a stop (SIGTERM) of the sidecar in the
//! middle of a restore, PostgreSQL going away, the database limit under 200
//! simultaneous requests, and restores waiting their turn.

mod common;

use std::time::Duration;

use common::{code_of, Options, Stage, ROLE, TOKEN};
use numikube_staging_rpc::{codes, JobState, Phase, Reach, RunPayload, StagingApiClient};
use numikube_testbed::sidecar::strip_ansi;
use numikube_testbed::Answer;

/// A stage whose callbacks are retried for `seconds` before the fallback mail.
fn stage_with_window(seconds: u64, smtp: bool) -> Stage {
    Stage::start(Options { smtp, extra_conf: format!("numikube_staging_callback_timeout = {seconds}\n"), ..Options::default() })
}

/// Puts the tiny fixture's custom dump as `client`'s newest backup.
fn put_tiny_dump(stage: &Stage, client: &str) {
    stage.put_backup(client, &format!("{client}-daily-1.dump"), "dump");
}

/// The mails' recipient, as aiosmtpd records it.
fn rcpt_to(mail: &str) -> String {
    mail.lines().find_map(|l| l.strip_prefix("X-RcptTo: ")).unwrap_or_default().trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_gets_through_503_odoo_error_and_a_dropped_connection() {
    let stage = stage_with_window(60, true);
    put_tiny_dump(&stage, "alpha");
    stage.receiver.respond_with(vec![Answer::Status(503), Answer::OdooError("Odoo is upgrading".into()), Answer::Close, Answer::Ok]);
    let started = stage.run(stage.prod2x("alpha", "cb", false)).await.unwrap();
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");

    let calls = stage.receiver.wait_for(4, Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let calls_after = stage.receiver.received();
    assert_eq!(calls_after.len(), 4, "no attempt after the successful one: {calls_after:?}");
    for call in &calls {
        assert_eq!(call.body["state"], "done");
        assert_eq!(call.body["token"], TOKEN);
        assert_eq!(call.query_param("db").as_deref(), Some("prod"));
    }
    // The job's state agrees with what production was told, and nobody got a mail.
    let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.unwrap();
    assert_eq!((status.state, status.phase), (JobState::Done, Phase::Done));
    assert!(stage.databases().contains(&started.db_name));
    assert!(stage.smtp.as_ref().unwrap().messages().is_empty());
    let log = stage.sidecar_log();
    for (n, outcome) in [(1, "HTTP 503"), (2, "Odoo is upgrading"), (3, "failed"), (4, "delivered")] {
        let line =
            log.lines().find(|l| l.contains(&format!("callback attempt {n}"))).unwrap_or_else(|| panic!("attempt {n} logged\n{log}"));
        assert!(line.contains(outcome), "attempt {n}: {line}");
    }
    assert!(!std::path::Path::new(&stage.data_dir().join("numikube_staging/jobs").join(format!("{}.json", started.job_id))).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn production_down_for_the_whole_window_means_one_mail_to_the_requester_or_the_admin() {
    // The stage's own window: numikube_staging_callback_timeout = 3.
    let mut stage = Stage::start(Options { smtp: true, ..Options::default() });
    put_tiny_dump(&stage, "bravo");
    stage.receiver.stop().unwrap();

    let with_email = RunPayload { email: Some("david@example.com".into()), ..stage.prod2x("bravo", "mine", false) };
    let a = stage.run(with_email).await.unwrap();
    // No backup for this client: the job fails, and the mail says so.
    let b = stage.run(stage.prod2x("nobackup", "x", false)).await.unwrap();
    assert_eq!(stage.wait_job(&a.job_id).await.state, JobState::Done);
    assert_eq!(stage.wait_job(&b.job_id).await.state, JobState::Error);

    let smtp = stage.smtp.as_ref().unwrap();
    let mails = smtp.wait_for(2, Duration::from_secs(30)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let mails_after = smtp.messages();
    assert_eq!(mails_after.len(), 2, "exactly one mail per job: {mails_after:#?}");
    let to_david: Vec<&String> = mails.iter().filter(|m| rcpt_to(m) == "david@example.com").collect();
    let to_admin: Vec<&String> = mails.iter().filter(|m| rcpt_to(m) == "staging@example.com").collect();
    assert_eq!((to_david.len(), to_admin.len()), (1, 1), "{mails:#?}");
    assert!(to_david[0].contains(&a.db_name) && to_david[0].contains("state: done"), "{}", to_david[0]);
    assert!(to_admin[0].contains(&b.db_name) && to_admin[0].contains("state: error"), "{}", to_admin[0]);
    assert!(to_admin[0].contains("no backup"), "the reason is in the mail: {}", to_admin[0]);
    assert!(stage.receiver.received().is_empty());
    // Told by mail: the journal forgets both.
    let journal = stage.data_dir().join("numikube_staging/jobs");
    assert_eq!(std::fs::read_dir(journal).map(|d| d.count()).unwrap_or(0), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_smtp_the_failure_is_logged_and_the_sidecar_keeps_serving() {
    // No SMTP server: the stage points smtp_port at 1 and sets no email_from.
    let mut stage = Stage::start(Options::default());
    stage.receiver.stop().unwrap();
    let payload = RunPayload { email: Some("david@example.com".into()), ..stage.prod2x("charlie", "x", false) };
    let a = stage.run(payload).await.unwrap();
    let b = stage.run(stage.prod2x("charlie", "y", false)).await.unwrap();
    assert_eq!(stage.wait_job(&a.job_id).await.state, JobState::Error);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stage.sidecar_log().matches("NOBODY WAS TOLD").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = stage.sidecar_log();
    assert!(log.contains("127.0.0.1:1"), "the log names the SMTP server: {log}");
    assert!(log.contains("no e-mail address and odoo.conf has no email_from"), "{log}");
    assert_eq!(stage.client.health().await.unwrap().postgres, Reach::Ok);
    // Nobody was told: the journal keeps both for the next start.
    let journal = stage.data_dir().join("numikube_staging/jobs");
    for id in [&a.job_id, &b.job_id] {
        assert!(journal.join(format!("{id}.json")).exists(), "{id} kept");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_pg_restore_leaves_nothing_and_reports_the_interruption() {
    let mut stage = Stage::start(Options::default());
    stage.put_large_dump("delta", "delta-daily-1.dump", 150 << 20);
    let started = stage.run(stage.prod2x("delta", "big", false)).await.unwrap();
    stage.wait_phase(&started.job_id, Phase::Restoring).await;
    // pg_restore is at work in the hidden database.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let sessions = "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'numikube_tmp_%'";
    while stage.query("postgres", sessions) == "0" {
        assert!(std::time::Instant::now() < deadline, "no restore session seen\n{}", stage.sidecar_log());
        std::thread::sleep(Duration::from_millis(20));
    }
    stage.kill_sidecar();
    assert!(!stage.working_leftovers().is_empty(), "the crash left a half-made database to clean");
    let job_roles = "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'numikube_job_')";
    assert_eq!(stage.query("postgres", job_roles), "1", "the crash left the role the backup ran as");
    let spooled = std::fs::read_dir(stage.data_dir().join("numikube_staging/spool")).map(|d| d.count()).unwrap_or(0);

    stage.start_sidecar();
    let calls = stage.receiver.wait_for(1, Duration::from_secs(30)).unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["state"], "error");
    assert!(calls[0].body["error"].as_str().unwrap().contains("interrupted by a restart of the staging service"), "{:?}", calls[0].body);
    assert_eq!(calls[0].body["traceback"], calls[0].body["stacktrace"]);
    stage.wait_no_leftovers(Duration::from_secs(5));
    assert!(!stage.databases().contains(&started.db_name), "no half-made copy under the final name");
    let spool: Vec<_> = std::fs::read_dir(stage.data_dir().join("numikube_staging/spool")).into_iter().flatten().flatten().collect();
    assert!(spool.is_empty(), "the killed sidecar's download ({spooled} file(s)) is removed: {spool:?}");
    assert_eq!(stage.sidecar_log().contains("spooled by a process that no longer runs"), spooled > 0);
    // No orphan pg_restore keeps a session (children die with the sidecar; the drop forces them out anyway).
    let orphans =
        stage.query("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' OR datname LIKE 'numikube_%'");
    assert_eq!(orphans, "0");
    let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.unwrap();
    assert_eq!(status.state, JobState::Error, "known after the restart, and not running: {status:?}");
    // The sweep after the one that dropped the database drops its role.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stage.query("postgres", job_roles) != "0" {
        assert!(std::time::Instant::now() < deadline, "the job's role is left\n{}", stage.sidecar_log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_job_whose_callback_was_pending_is_delivered_after_a_restart() {
    let mut stage = stage_with_window(120, false);
    put_tiny_dump(&stage, "echo");
    stage.receiver.stop().unwrap();
    let started = stage.run(stage.prod2x("echo", "p", false)).await.unwrap();
    assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stage.kill_sidecar();

    stage.receiver.start_again().unwrap();
    stage.start_sidecar();
    let calls = stage.receiver.wait_for(1, Duration::from_secs(30)).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stage.receiver.received().len(), 1);
    assert_eq!(calls[0].body["state"], "done");
    assert_eq!(calls[0].body["token"], TOKEN);
    assert!(stage.databases().contains(&started.db_name));
    let status = stage.client.status(TOKEN.into(), started.job_id.clone()).await.unwrap();
    assert_eq!(status.state, JobState::Done);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_simultaneous_runs_admit_exactly_the_free_slots() {
    let stage = Stage::start(Options { limit: 10, ..Options::default() });
    put_tiny_dump(&stage, "fox");
    for name in ["fox-lab_a", "fox-lab_b", "fox-test"] {
        stage.pg.psql("postgres", &format!("CREATE DATABASE \"{name}\" OWNER {ROLE}")).unwrap();
    }
    // All 200 at once; every one reaches the admission (the server takes
    // up to 1024 connections) and gets a job or the limit message.
    let calls = (0..200).map(|i| stage.client.run(stage.prod2x("fox", &format!("n{i}"), false)));
    let mut accepted = Vec::new();
    let mut refused = 0;
    for answer in futures::future::join_all(calls).await {
        match answer {
            Ok(numikube_staging_rpc::RunResult::Started(s)) => accepted.push(s),
            Ok(other) => panic!("unexpected answer {other:?}"),
            Err(e) => {
                let (code, message) = code_of(e);
                assert_eq!(code, codes::LIMIT_REACHED, "{message}");
                assert!(message.contains("limit is 10"), "{message}");
                refused += 1;
            }
        }
    }
    assert_eq!((accepted.len(), refused), (7, 193));
    // While the accepted jobs end (each copy becomes visible only after its
    // job ended), the limit has no gap: every further request is refused.
    let mut n = 200;
    loop {
        let mut running = 0;
        for s in &accepted {
            if stage.client.status(TOKEN.into(), s.job_id.clone()).await.unwrap().state == JobState::Running {
                running += 1;
            }
        }
        let batch = (0..10).map(|i| stage.client.run(stage.prod2x("fox", &format!("late{}", n + i), false)));
        for answer in futures::future::join_all(batch).await {
            match answer {
                Err(jsonrpsee::core::ClientError::Call(e)) => {
                    assert_eq!(e.code(), codes::LIMIT_REACHED, "{}", e.message())
                }
                other => {
                    let log = strip_ansi(&stage.sidecar_log());
                    let trouble: Vec<&str> = log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect();
                    panic!("a request beyond the limit got {other:?} with {running} job(s) running\n{}", trouble.join("\n"))
                }
            }
        }
        n += 10;
        if running == 0 {
            break;
        }
    }
    for s in &accepted {
        let status = stage.wait_job(&s.job_id).await;
        assert_eq!(status.state, JobState::Done, "{status:?}");
    }
    let listed = stage.client.list(TOKEN.into(), None).await.unwrap();
    assert_eq!(listed.iter().filter(|d| d.name.starts_with("fox-")).count(), 10, "{listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn restores_wait_their_turn_with_phase_queued() {
    // numikube_staging_max_restores defaults to 1.
    let stage = Stage::start(Options::default());
    stage.put_slow_backup("golf", "golf-daily-1.sql", 3);
    let first = stage.run(stage.prod2x("golf", "one", false)).await.unwrap();
    let second = stage.run(stage.prod2x("golf", "two", false)).await.unwrap();
    stage.wait_phase(&first.job_id, Phase::Restoring).await;
    let waiting = stage.client.status(TOKEN.into(), second.job_id.clone()).await.unwrap();
    assert_eq!((waiting.state, waiting.phase, waiting.progress), (JobState::Running, Phase::Queued, None));
    let done_first = stage.wait_job(&first.job_id).await;
    assert_eq!(done_first.state, JobState::Done, "{done_first:?}");
    let done_second = stage.wait_job(&second.job_id).await;
    assert_eq!(done_second.state, JobState::Done, "{done_second:?}");
    // The second started only once the first had reached its last step.
    let log = strip_ansi(&stage.sidecar_log());
    let line = |id: &str, phase: &str| log.lines().position(|l| l.contains(id) && l.contains(&format!("phase={phase}")));
    let (first_finishing, second_downloading) = (line(&first.job_id, "Finishing"), line(&second.job_id, "Downloading"));
    assert!(first_finishing.is_some() && second_downloading > first_finishing, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_during_a_restore_fails_the_job_and_the_sidecar_recovers() {
    let mut stage = Stage::start(Options::default());
    stage.put_slow_backup("hotel", "hotel-daily-1.sql", 30);
    put_tiny_dump(&stage, "india");
    let started = stage.run(stage.prod2x("hotel", "x", false)).await.unwrap();
    stage.wait_phase(&started.job_id, Phase::Restoring).await;
    stage.pg.stop().unwrap();

    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Error);
    let message = status.error.unwrap();
    assert!(message.contains("database server at 127.0.0.1"), "{message}");
    let health = stage.client.health().await.unwrap();
    assert!(health.postgres.to_string().contains("database server") && !health.postgres.is_ok(), "{health:?}");
    let (code, _) = code_of(stage.run(stage.prod2x("india", "down", false)).await.expect_err("no admission without PostgreSQL"));
    assert_eq!(code, codes::UNAVAILABLE);
    let calls = stage.receiver.wait_for(1, Duration::from_secs(10)).unwrap();
    assert_eq!(calls[0].body["state"], "error");

    stage.pg.start_again().unwrap();
    assert_eq!(stage.client.health().await.unwrap().postgres, Reach::Ok);
    let again = stage.run(stage.prod2x("india", "back", false)).await.unwrap();
    let status = stage.wait_job(&again.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    // The hidden database the failed job could not drop while PostgreSQL was down is gone too.
    stage.wait_no_leftovers(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_restore_reports_it_and_the_next_start_is_clean() {
    let mut stage = Stage::start(Options::default());
    stage.put_slow_backup("juliet", "juliet-daily-1.sql", 60);
    let started = stage.run(stage.prod2x("juliet", "x", false)).await.unwrap();
    stage.wait_phase(&started.job_id, Phase::Restoring).await;
    let exit = stage.sigterm_sidecar(Duration::from_secs(30));
    assert!(exit.success(), "{exit}");
    let log = stage.sidecar_log();
    assert!(log.contains("stopping: no new jobs"), "{log}");

    let calls = stage.receiver.wait_for(1, Duration::from_secs(5)).unwrap();
    assert_eq!(calls[0].body["state"], "error");
    assert!(calls[0].body["error"].as_str().unwrap().contains("interrupted by a restart"), "{:?}", calls[0].body);
    assert!(stage.working_leftovers().is_empty(), "{:?}", stage.working_leftovers());

    stage.start_sidecar();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(stage.receiver.received().len(), 1, "reported once");
    match stage.client.status(TOKEN.into(), started.job_id.clone()).await {
        Ok(s) => assert_ne!(s.state, JobState::Running, "{s:?}"),
        Err(e) => assert_eq!(code_of(e).0, codes::NOT_FOUND),
    }
    assert!(!stage.databases().contains(&started.db_name));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_spares_the_work_of_another_live_sidecar_on_the_same_server() {
    use numikube_testbed::sidecar::{Sidecar, SidecarConf};
    let mut stage = Stage::start(Options::default());
    stage.put_slow_backup("golf", "golf-daily-1.sql", 4);
    // A second staging instance on the same PostgreSQL server and role, with its own data_dir.
    let other_dir = stage.dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let conf = SidecarConf::new(TOKEN, &stage.pg, (common::ROLE, "odoo-pw"), &stage.s3, common::BUCKET, &other_dir);
    conf.write(&other_dir.join("odoo.conf")).unwrap();
    let other = Sidecar::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_numikube-staging")),
        &other_dir.join("odoo.conf"),
        conf.port,
        &other_dir.join("sidecar.log"),
    )
    .unwrap();
    let other_client = jsonrpsee::http_client::HttpClientBuilder::default().build(other.url()).unwrap();
    let payload = stage.prod2x("golf", "shared", false);
    let started = match other_client.run(payload).await.unwrap() {
        numikube_staging_rpc::RunResult::Started(s) => s,
        r => panic!("{r:?}"),
    };
    // While the other instance restores, this one restarts and sweeps.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stage.working_leftovers().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the other sidecar never started restoring");
        std::thread::sleep(Duration::from_millis(20));
    }
    stage.kill_sidecar();
    stage.start_sidecar();
    let status = loop {
        let s = other_client.status(TOKEN.into(), started.job_id.clone()).await.unwrap();
        if s.state != JobState::Running {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "still running: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", other.log_text());
    assert!(!stage.sidecar_log().contains(&format!("dropping numikube_tmp_{}", started.job_id.replace('-', ""))));
}
