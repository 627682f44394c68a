//! `GET /metrics` and `GET /healthz` of the real sidecar on real servers, on
//! `numikube_staging_metrics` and, when that key is empty, on the JSON-RPC listener.

mod common;
mod wire;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Options, Stage, TOKEN};
use numikube_staging_rpc::{JobState, StagingApiClient};
use numikube_testbed::free_port;
use prometheus_parse::{Scrape, Value};
use wire::{parse_scrape, request};

/// The value of the first sample of `metric` whose labels include `labels` (a histogram's `_count` too).
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape.samples.iter().find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))?;
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
        _ => None,
    }
}

/// Scrapes `addr` until `ready` holds (series move after a job's end), then returns the scrape and its text.
async fn scrape_until(addr: SocketAddr, ready: impl Fn(&Scrape) -> bool) -> (Scrape, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = request(addr, "GET", "/metrics", &[], "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let scrape = parse_scrape(&reply.body);
        if ready(&scrape) || Instant::now() > deadline {
            return (scrape, reply.body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Makes one copy of a custom dump and waits for its job to end.
async fn make_one_copy(stage: &Stage) {
    stage.put_backup("cosmos", "cosmos.dump", "dump");
    let started = stage.run(stage.prod2x("cosmos", "metrics", false)).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listener_shows_the_copy_its_job_and_its_restore() {
    let port = free_port();
    let extra_conf = format!("numikube_staging_metrics = 127.0.0.1:{port}\n");
    let stage = Stage::start(Options { extra_conf, ..Options::default() });
    let probes: SocketAddr = ([127, 0, 0, 1], port).into();
    make_one_copy(&stage).await;

    let done = [("state", "done")];
    let custom = [("format", "custom")];
    let delivered = [("outcome", "delivered")];
    let count = "numikube_staging_restore_duration_seconds_count";
    let (scrape, text) = scrape_until(probes, |s| {
        value(s, "numikube_staging_copies", &[]) >= Some(1.0)
            && value(s, "numikube_staging_jobs_total", &done) == Some(1.0)
            && value(s, "numikube_staging_callback_attempts_total", &delivered) >= Some(1.0)
    })
    .await;
    let log = stage.sidecar_log();
    let copies = value(&scrape, "numikube_staging_copies", &[]).unwrap_or(0.0);
    assert!(copies >= 1.0, "copies {copies}:\n{text}\n{log}");
    assert_eq!(value(&scrape, "numikube_staging_database_limit", &[]), Some(10.0), "{text}");
    assert_eq!(value(&scrape, "numikube_staging_jobs_total", &done), Some(1.0), "{text}");
    assert_eq!(value(&scrape, "numikube_staging_jobs_total", &[("state", "error")]), Some(0.0), "{text}");
    assert_eq!(value(&scrape, "numikube_staging_jobs_in_flight", &[("state", "running")]), Some(0.0), "{text}");
    assert_eq!(value(&scrape, count, &custom), Some(1.0), "one restore sample of a custom dump:\n{text}");
    assert!(value(&scrape, "numikube_staging_restored_bytes_total", &custom) > Some(0.0), "{text}");
    assert!(value(&scrape, "numikube_staging_callback_attempts_total", &delivered) >= Some(1.0), "{text}");
    assert!(value(&scrape, "numikube_staging_sweeps_total", &[]) >= Some(1.0), "the start-up sweep:\n{text}");
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&scrape, "numikube_staging_build_info", &version), Some(1.0), "{text}");

    let health = request(probes, "GET", "/healthz", &[], "").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    // The JSON-RPC listener leaves the probes to their own listener.
    let rpc: SocketAddr = ([127, 0, 0, 1], stage.port).into();
    assert_ne!(request(rpc, "GET", "/metrics", &[], "").await.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_key_the_json_rpc_listener_serves_the_probes() {
    let stage = Stage::start(Options::default());
    let rpc: SocketAddr = ([127, 0, 0, 1], stage.port).into();
    let health = request(rpc, "GET", "/healthz", &[], "").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    make_one_copy(&stage).await;
    let done = [("state", "done")];
    let (scrape, text) = scrape_until(rpc, |s| value(s, "numikube_staging_jobs_total", &done) == Some(1.0)).await;
    assert_eq!(value(&scrape, "numikube_staging_jobs_total", &done), Some(1.0), "{text}");
    let count = "numikube_staging_restore_duration_seconds_count";
    assert_eq!(value(&scrape, count, &[("format", "custom")]), Some(1.0), "{text}");

    // A repeat copy comes from the template the first one left.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stage.client.list(TOKEN.into(), None).await.unwrap().iter().any(|d| d.template) {
        assert!(Instant::now() < deadline, "no template kept:\n{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let started = stage.run(stage.prod2x("cosmos", "again", false)).await.expect("accepted");
    assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
    let (scrape, text) = scrape_until(rpc, |s| value(s, "numikube_staging_jobs_total", &done) == Some(2.0)).await;
    assert_eq!(value(&scrape, count, &[("format", "template")]), Some(1.0), "{text}");
    assert_eq!(value(&scrape, "numikube_staging_template_copy_duration_seconds_count", &[]), Some(1.0), "{text}");
}
