//! The database limit across processes: a `restore` command beside the
//! server, a second sidecar with the same `db_user` on the same cluster, and
//! the registry connection lost while jobs are in flight.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{code_of, Options, Stage, BUCKET, ROLE, TOKEN};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use numikube_staging_rpc::{codes, JobState, RunPayload, RunResult, StagingApiClient};
use numikube_testbed::free_port;
use numikube_testbed::sidecar::{Launch, Sidecar, SidecarConf};

const BIN: &str = env!("CARGO_BIN_EXE_numikube-staging");

/// The instance's databases by Odoo's rule (owned by `db_user`, open, not a template).
const LISTED: &str = "SELECT count(*) FROM pg_database WHERE pg_get_userbyid(datdba) = 'odoo' \
                      AND NOT datistemplate AND datallowconn AND datname <> 'postgres'";

/// The registry's job locks: one per job in flight, whichever process holds it.
const IN_FLIGHT: &str = "SELECT count(DISTINCT objid) FROM pg_locks WHERE locktype = 'advisory' \
                         AND granted AND objsubid = 2 AND objid <> 0";

/// Puts a plain SQL backup of `client` whose restore lasts at least
/// `seconds`: a `pg_sleep` after pg_dump's leading `\restrict` line (15.14
/// and later), which must stay the first command.
fn put_slow_backup(stage: &Stage, client: &str, key: &str, seconds: u32) {
    let (work, _) = stage.make_backups(client);
    let sql = std::fs::read_to_string(Stage::backup_path(&work, client, "sql")).unwrap();
    let at = sql.find("\\restrict").map_or(0, |i| i + sql[i..].find('\n').map_or(sql.len() - i, |n| n + 1));
    let slow = format!("{}SELECT pg_sleep({seconds});\n{}", &sql[..at], &sql[at..]);
    stage.s3.put_bytes(BUCKET, key, slow.into_bytes()).unwrap();
}

fn count(stage: &Stage, sql: &str) -> usize {
    stage.query("postgres", sql).parse().unwrap()
}

/// Waits until `sql` counts `want`.
fn wait_count(stage: &Stage, sql: &str, want: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(stage, sql) != want {
        assert!(Instant::now() < deadline, "{what}: {} != {want}\n{}", count(stage, sql), stage.sidecar_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Samples the listed databases until stopped; returns the highest count seen.
fn sample(stage: &Stage, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let (pg_url, max) = (stage.pg.url("postgres"), Arc::new(AtomicUsize::new(0)));
    let psql = Some(stage.pg.bin_dir.join("psql")).filter(|p| p.is_file()).unwrap_or_else(|| "psql".into());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let out = std::process::Command::new(&psql).args(["-XAtq", &pg_url, "-c", LISTED]).output().unwrap();
            if let Ok(n) = String::from_utf8_lossy(&out.stdout).trim().parse::<usize>() {
                max.fetch_max(n, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        max.load(Ordering::Relaxed)
    })
}

async fn wait_done(client: &HttpClient, job_id: &str) -> JobState {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = client.status(TOKEN.into(), job_id.into()).await.expect("status answers");
        if s.state != JobState::Running {
            return s.state;
        }
        assert!(Instant::now() < deadline, "job {job_id} still running: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A second `numikube-staging serve` on the same cluster, as the same `db_user`.
struct Second {
    sidecar: Sidecar,
    client: HttpClient,
}

fn second_sidecar(stage: &Stage) -> Second {
    let data_dir = stage.dir.path().join("data-b");
    std::fs::create_dir_all(&data_dir).unwrap();
    let mut conf = SidecarConf::new(TOKEN, &stage.pg, (ROLE, "odoo-pw"), &stage.s3, BUCKET, &data_dir);
    conf.port = free_port();
    conf.limit = stage.options.limit;
    conf.extra = stage.options.extra_conf.clone();
    let path = stage.dir.path().join("odoo-b.conf");
    conf.write(&path).unwrap();
    let launch = Launch { fresh_log: true, ..Launch::default() };
    let log = stage.dir.path().join("sidecar-b.log");
    let sidecar = Sidecar::start_with(std::path::Path::new(BIN), &path, conf.port, &log, &launch).expect("second sidecar starts");
    let client = HttpClientBuilder::default().build(sidecar.url()).unwrap();
    Second { sidecar, client }
}

async fn started(client: &HttpClient, stage: &Stage, client_name: &str, suffix: &str) -> Result<String, (i32, String)> {
    run(client, stage.prod2x(client_name, suffix, false)).await
}

async fn run(client: &HttpClient, payload: RunPayload) -> Result<String, (i32, String)> {
    match client.run(payload).await {
        Ok(RunResult::Started(s)) => Ok(s.job_id),
        Ok(other) => panic!("expected a started job, got {other:?}"),
        Err(e) => Err(code_of(e)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cli_restore_and_fifty_api_requests_never_exceed_the_limit() {
    let stage = Stage::start(Options { limit: 10, extra_conf: "numikube_staging_max_restores = 4\n".into(), ..Options::default() });
    put_slow_backup(&stage, "slow", "slow-2026-11-24.sql", 3);
    stage.put_backup("fox", "fox-2026-11-24.dump", "dump");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(&stage, stop.clone());

    // The command line's job, in flight in another process.
    let conf = stage.conf();
    let cli = std::process::Command::new(BIN)
        .args(["restore", "--client", "slow", "--level", "lab", "--suffix", "cli", "--no-timestamp", "--json", "-c"])
        .arg(&conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_count(&stage, IN_FLIGHT, 1, "the command's job holds its place");

    let calls = (0..50).map(|i| run(&stage.client, stage.prod2x("fox", &format!("n{i}"), false)));
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for answer in futures::future::join_all(calls).await {
        match answer {
            Ok(job) => accepted.push(job),
            Err((code, message)) => {
                assert_eq!(code, codes::LIMIT_REACHED, "{message}");
                assert!(message.contains("limit is 10"), "{message}");
                refused += 1;
            }
        }
    }
    assert_eq!((accepted.len(), refused), (9, 41), "the command's job counts");
    for job in &accepted {
        assert_eq!(wait_done(&stage.client, job).await, JobState::Done, "{}", stage.sidecar_log());
    }
    let out = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stop.store(true, Ordering::Relaxed);
    let max = sampler.join().unwrap();
    assert_eq!(count(&stage, LISTED), 10);
    assert!(max <= 10, "{max} databases at one moment");
    wait_count(&stage, IN_FLIGHT, 0, "every job gave its place back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sidecar_shares_the_limit_and_the_names_in_flight() {
    let stage = Stage::start(Options { limit: 3, extra_conf: "numikube_staging_max_restores = 3\n".into(), ..Options::default() });
    put_slow_backup(&stage, "slow", "slow-2026-11-24.sql", 4);
    let second = second_sidecar(&stage);

    let slow = started(&stage.client, &stage, "slow", "x").await.expect("accepted");
    // The same name, in flight in the first process, is refused by the second: to run and to drop.
    let (code, message) = started(&second.client, &stage, "slow", "x").await.expect_err("in flight elsewhere");
    assert_eq!(code, codes::CONFLICT, "{message}");
    assert!(message.contains("already being created"), "{message}");
    let dropped = second.client.drop_databases(TOKEN.into(), "slow-lab_x".into()).await.unwrap();
    assert!(dropped.refused.iter().any(|r| r.name == "slow-lab_x" && r.reason.contains("still being created")), "{dropped:?}");

    // One limit for both: two more jobs, one in each process, and no room is left in either.
    let a = started(&stage.client, &stage, "slow", "a").await.expect("room for a");
    let b = started(&second.client, &stage, "slow", "b").await.expect("room for b");
    for client in [&stage.client, &second.client] {
        let (code, message) = started(client, &stage, "slow", "c").await.expect_err("no room");
        assert_eq!(code, codes::LIMIT_REACHED, "{message}");
        assert!(message.contains("limit is 3"), "{message}");
    }
    for (client, job) in [(&stage.client, &slow), (&stage.client, &a), (&second.client, &b)] {
        assert_eq!(wait_done(client, job).await, JobState::Done, "{}\n{}", stage.sidecar_log(), second.sidecar.log_text());
    }
    assert_eq!(count(&stage, LISTED), 3);
    wait_count(&stage, IN_FLIGHT, 0, "every job gave its place back");

    // Done, the name may go from the other process, and its room with it.
    let dropped = second.client.drop_databases(TOKEN.into(), "slow-lab_x".into()).await.unwrap();
    assert_eq!(dropped.dropped, vec!["slow-lab_x".to_string()], "{dropped:?}");
    started(&stage.client, &stage, "slow", "c").await.expect("room again");
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_hold_their_place_again_after_the_registry_connection_is_lost() {
    let stage = Stage::start(Options { limit: 2, ..Options::default() });
    put_slow_backup(&stage, "slow", "slow-2026-11-24.sql", 6);
    let second = second_sidecar(&stage);
    let job = started(&stage.client, &stage, "slow", "x").await.expect("accepted");
    wait_count(&stage, IN_FLIGHT, 1, "the job holds its place");
    let holder = "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND objid <> 0";
    let pid = stage.query("postgres", holder);
    // As a restart of PostgreSQL would, for this one session.
    stage.query("postgres", &format!("SELECT pg_terminate_backend({pid})"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = stage.query("postgres", holder);
        if !now.is_empty() && now != pid {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was not taken again\n{}", stage.sidecar_log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, message) = started(&second.client, &stage, "slow", "x").await.expect_err("still in flight");
    assert_eq!(code, codes::CONFLICT, "{message}");
    // And the first process admits again on its new connection.
    started(&stage.client, &stage, "slow", "y").await.expect("admitted after the reconnection");
    assert_eq!(wait_done(&stage.client, &job).await, JobState::Done, "{}", stage.sidecar_log());
}
