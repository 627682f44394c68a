//! Prometheus metrics of the sidecar, and the two plain-HTTP endpoints that expose them.
//!
//! # Layout
//!
//! - [`Metrics`] (this file): every series the sidecar exports, one method per event.
//! - [`jobs`]: [`JobState`] and [`JobTracker`], the guard that keeps the in-flight gauge honest.
//! - [`labels`]: [`Format`] and [`Swept`], the label values of the restore and sweep series.
//! - [`http`]: the listener on `numikube_staging_metrics` (`GET /metrics`, `GET /healthz`).
//! - [`layer`]: [`MetricsLayer`], the same two routes on the JSON-RPC listener when that key is empty.
//!
//! Everything is registered once, in [`Metrics::new`]; the registry is never touched again, so
//! recording is lock-free (atomics inside `prometheus-client`) and encoding needs no lock either.
//! Every known label value is created up front so that a fresh sidecar already shows each series
//! at 0: Grafana's `rate()` and "no data" panels behave, and a typo in a query shows at once.

pub mod http;
pub mod jobs;
pub mod labels;
pub mod layer;
mod series;

pub use self::http::{serve, HealthCheck, HealthFuture};
pub use self::jobs::JobTracker;
pub use self::labels::JobState;
pub use self::labels::{Format, Swept};
pub use self::layer::{MetricsLayer, MetricsService};
pub use self::series::{Metrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let m = Metrics::new("1.2.3");
        m.restore_finished(Format::Zip, Duration::from_secs(42), 1000);
        let text = m.encode();
        for line in [
            "numikube_staging_build_info{version=\"1.2.3\"} 1",
            "numikube_staging_restored_bytes_total{format=\"zip\"} 1000",
            "numikube_staging_restore_duration_seconds_count{format=\"zip\"} 1",
            "numikube_staging_jobs_in_flight{state=\"queued\"} 0",
            "numikube_staging_jobs_total{state=\"error\"} 0",
            "numikube_staging_sweeps_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(m.encode_openmetrics().ends_with("# EOF\n"));
    }
}
