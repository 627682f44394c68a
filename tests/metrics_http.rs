//! The listener on `numikube_staging_metrics`, over real TCP, read with a real Prometheus parser.

mod wire;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use numikube_staging::metrics::{
    self, Format, HealthCheck, HealthFuture, Metrics, Swept, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE,
};
use prometheus_parse::Value;

use wire::{parse_scrape, request};

/// A health check that fails while `down` is set.
fn switchable_health(down: Arc<AtomicBool>) -> HealthCheck {
    Arc::new(move || -> HealthFuture {
        let down = down.load(Ordering::SeqCst);
        Box::pin(async move {
            if down {
                Err("postgres: connection refused".to_owned())
            } else {
                Ok(())
            }
        })
    })
}

/// A sidecar that made one copy from a custom dump, and did a bit of everything else.
fn busy_metrics() -> Arc<Metrics> {
    let m = Arc::new(Metrics::new("0.1.0-test"));
    let mut job = m.track_job();
    job.running();
    m.restore_finished(Format::Custom, Duration::from_secs(90), 123_456);
    job.finished(true);
    m.set_copies(1, 10);
    m.template_copied(Duration::from_millis(1500));
    m.callback_attempt(false);
    m.callback_attempt(true);
    m.fallback_mail(true);
    m.sweep_finished();
    m.swept(Swept::Database, 2);
    m
}

async fn start(m: Arc<Metrics>, health: HealthCheck) -> SocketAddr {
    let any_port: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (addr, _task) = metrics::serve(any_port, m, health).await.expect("bind");
    addr
}

fn value(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no sample {metric} {label:?}"));
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        _ => panic!("{metric} is a histogram"),
    }
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_every_family() {
    let addr = start(busy_metrics(), switchable_health(Arc::default())).await;
    let reply = request(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    let scrape = parse_scrape(&reply.body);

    for family in [
        "numikube_staging_build_info",
        "numikube_staging_copies",
        "numikube_staging_database_limit",
        "numikube_staging_jobs_in_flight",
        "numikube_staging_jobs_total",
        "numikube_staging_restore_duration_seconds",
        "numikube_staging_template_copy_duration_seconds",
        "numikube_staging_restored_bytes_total",
        "numikube_staging_callback_attempts_total",
        "numikube_staging_fallback_mails_total",
        "numikube_staging_sweeps_total",
        "numikube_staging_swept_total",
    ] {
        assert!(scrape.docs.contains_key(family), "no HELP for {family}:\n{}", reply.body);
    }
    let build = [("version", "0.1.0-test")];
    assert_eq!(value(&scrape, "numikube_staging_build_info", Some(build[0])), 1.0);
    assert_eq!(value(&scrape, "numikube_staging_copies", None), 1.0);
    assert_eq!(value(&scrape, "numikube_staging_database_limit", None), 10.0);
    let done = Some(("state", "done"));
    assert_eq!(value(&scrape, "numikube_staging_jobs_total", done), 1.0);
    let running = Some(("state", "running"));
    assert_eq!(value(&scrape, "numikube_staging_jobs_in_flight", running), 0.0);
    let custom = Some(("format", "custom"));
    assert_eq!(value(&scrape, "numikube_staging_restored_bytes_total", custom), 123_456.0);
    let failed = Some(("outcome", "failed"));
    assert_eq!(value(&scrape, "numikube_staging_callback_attempts_total", failed), 1.0);
    let sent = Some(("outcome", "sent"));
    assert_eq!(value(&scrape, "numikube_staging_fallback_mails_total", sent), 1.0);
    assert_eq!(value(&scrape, "numikube_staging_sweeps_total", None), 1.0);
    let db = Some(("what", "database"));
    assert_eq!(value(&scrape, "numikube_staging_swept_total", db), 2.0);

    // The recorded restore: one sample of 90 s, in the le=120 bucket and not in le=60.
    let restore = "numikube_staging_restore_duration_seconds";
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == restore && s.labels.get("format") == Some("custom"))
        .expect("a custom restore histogram");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("{restore} is not a histogram");
    };
    let count = |le: f64| buckets.iter().find(|b| b.less_than == le).unwrap().count;
    assert_eq!((count(60.0), count(120.0), count(3600.0)), (0.0, 1.0, 1.0));
    assert!(buckets.iter().any(|b| b.less_than.is_infinite()));
    assert_eq!(value(&scrape, &format!("{restore}_count"), custom), 1.0);
    assert_eq!(value(&scrape, &format!("{restore}_sum"), custom), 90.0);
    // Formats never restored are there too, at zero, so dashboards show them from the start.
    let zip = Some(("format", "zip"));
    assert_eq!(value(&scrape, &format!("{restore}_count"), zip), 0.0);
}

#[tokio::test]
async fn openmetrics_is_served_to_who_asks_for_it() {
    let addr = start(busy_metrics(), switchable_health(Arc::default())).await;
    // What Prometheus sends by default.
    let accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                  version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let reply = request(addr, "GET", "/metrics", &[("Accept", accept)], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(OPENMETRICS_CONTENT_TYPE));
    assert!(reply.body.ends_with("# EOF\n"));
    let scrape = parse_scrape(&reply.body);
    let custom = Some(("format", "custom"));
    let sum = "numikube_staging_restore_duration_seconds_sum";
    assert_eq!(value(&scrape, sum, custom), 90.0);
}

#[tokio::test]
async fn healthz_follows_the_health_check() {
    let down = Arc::new(AtomicBool::new(false));
    let addr = start(busy_metrics(), switchable_health(down.clone())).await;
    let reply = request(addr, "GET", "/healthz", &[], "").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok"));

    down.store(true, Ordering::SeqCst);
    let reply = request(addr, "GET", "/healthz", &[], "").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, "postgres: connection refused");
}

#[tokio::test]
async fn other_paths_and_methods_are_refused() {
    let addr = start(busy_metrics(), switchable_health(Arc::default())).await;
    let reply = request(addr, "GET", "/", &[], "").await;
    assert_eq!(reply.status, 404);
    let reply = request(addr, "POST", "/metrics", &[], "{}").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = request(addr, "DELETE", "/healthz", &[], "").await;
    assert_eq!(reply.status, 405);
    let reply = request(addr, "HEAD", "/healthz", &[], "").await;
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
}

#[tokio::test]
async fn a_taken_address_names_the_key_to_fix() {
    let addr = start(busy_metrics(), switchable_health(Arc::default())).await;
    let err = metrics::serve(addr, busy_metrics(), switchable_health(Arc::default())).await.expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains("numikube_staging_metrics"), "{err}");
}

/// Python's parsers from the Prometheus project's own client: the strict OpenMetrics one and the
/// text 0.0.4 one. Run with `PYTHON=/path/to/python cargo test -- --ignored` where that Python
/// has `prometheus-client` (pip); the parsers raise on any malformed line or duplicate family.
#[tokio::test]
#[ignore = "needs a python3 with prometheus-client installed (set PYTHON)"]
async fn metrics_pass_the_reference_python_parsers() {
    let addr = start(busy_metrics(), switchable_health(Arc::default())).await;
    let plain = request(addr, "GET", "/metrics", &[], "").await.body;
    let accept = [("Accept", "application/openmetrics-text; version=1.0.0")];
    let open = request(addr, "GET", "/metrics", &accept, "").await.body;
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as plain
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
for name, parse in (("PLAIN", plain), ("OPENMETRICS", om)):
    text = open(sys.argv[1 if name == "PLAIN" else 2]).read()
    families = {f.name: f for f in parse(text)}
    h = families["numikube_staging_restore_duration_seconds"]
    assert h.type == "histogram", h.type
    count = [s for s in h.samples if s.name.endswith("_count") and s.labels["format"] == "custom"]
    assert count[0].value == 1, count
    print(name, len(families), "families", sorted(families))
"#;
    let dir = std::env::temp_dir().join(format!("metrics-parse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (p, o) = (dir.join("plain.txt"), dir.join("openmetrics.txt"));
    std::fs::write(&p, plain).unwrap();
    std::fs::write(&o, open).unwrap();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python).args(["-c", script]).arg(&p).arg(&o).output().expect("run python");
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("OPENMETRICS 12 families"), "{stdout}");
}
