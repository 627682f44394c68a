//! The series themselves: the registry of Prometheus families the sidecar
//! records into, and its text encodings.

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::time::Duration;

use super::labels::{Format, JobState, Swept};

/// `Content-Type` of [`Metrics::encode`]: the Prometheus text format 0.0.4.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// `Content-Type` of [`Metrics::encode_openmetrics`]: OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Restore durations: a small zip restores in about a second, a big custom dump in an hour.
const RESTORE_BUCKETS: [f64; 14] = [1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0];

/// Template copies (`CREATE DATABASE … TEMPLATE`) are file copies: sub-second to minutes.
const TEMPLATE_COPY_BUCKETS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

/// One label, name and value both fixed at compile time: all our labels are enums.
type Label = [(&'static str, &'static str); 1];

/// Every series the sidecar exports; build one at start and share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    copies: Gauge,
    database_limit: Gauge,
    jobs_in_flight: Family<Label, Gauge>,
    jobs_total: Family<Label, Counter>,
    restore_duration: Family<Label, Histogram, fn() -> Histogram>,
    template_copy_duration: Histogram,
    restored_bytes: Family<Label, Counter>,
    callback_attempts: Family<Label, Counter>,
    fallback_mails: Family<Label, Counter>,
    sweeps: Counter,
    swept: Family<Label, Counter>,
}

fn restore_histogram() -> Histogram {
    Histogram::new(RESTORE_BUCKETS)
}

impl Metrics {
    /// Registers every series; `version` is the `numikube_staging_build_info` label.
    pub fn new(version: &str) -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("numikube_staging"),
            copies: Gauge::default(),
            database_limit: Gauge::default(),
            jobs_in_flight: Family::default(),
            jobs_total: Family::default(),
            restore_duration: Family::new_with_constructor(restore_histogram as fn() -> Histogram),
            template_copy_duration: Histogram::new(TEMPLATE_COPY_BUCKETS),
            restored_bytes: Family::default(),
            callback_attempts: Family::default(),
            fallback_mails: Family::default(),
            sweeps: Counter::default(),
            swept: Family::default(),
        };
        let r = &mut m.registry;
        let build = Info::new([("version", version.to_owned())]);
        r.register("build", "Version of the running sidecar (value always 1)", build);
        r.register("copies", "Staging copies of this instance", m.copies.clone());
        r.register("database_limit", "numikube_staging_database_limit: most copies plus jobs in flight", m.database_limit.clone());
        r.register("jobs_in_flight", "Jobs of this process in flight, by state (queued, running)", m.jobs_in_flight.clone());
        r.register("jobs", "Jobs that entered each state since start (queued, running, done, error)", m.jobs_total.clone());
        r.register_with_unit(
            "restore_duration",
            "Time from the start of a restore to the published copy, by backup format",
            Unit::Seconds,
            m.restore_duration.clone(),
        );
        r.register_with_unit(
            "template_copy_duration",
            "Time to copy a kept template into a hidden working database",
            Unit::Seconds,
            m.template_copy_duration.clone(),
        );
        r.register_with_unit(
            "restored",
            "Backup bytes streamed into published copies, by backup format",
            Unit::Bytes,
            m.restored_bytes.clone(),
        );
        r.register("callback_attempts", "Callback POSTs to production, by outcome (delivered, failed)", m.callback_attempts.clone());
        r.register(
            "fallback_mails",
            "Fallback e-mails sent when production stayed unreachable, by outcome (sent, failed)",
            m.fallback_mails.clone(),
        );
        r.register("sweeps", "Periodic sweeps run", m.sweeps.clone());
        r.register("swept", "What the sweeps removed (database, filestore, spool)", m.swept.clone());
        let in_flight = JobState::ALL.into_iter().filter(|s| s.in_flight());
        precreate(&m.jobs_in_flight, "state", in_flight.map(JobState::as_str));
        precreate(&m.jobs_total, "state", JobState::ALL.map(JobState::as_str));
        precreate(&m.restore_duration, "format", Format::ALL.map(Format::as_str));
        precreate(&m.restored_bytes, "format", Format::ALL.map(Format::as_str));
        precreate(&m.callback_attempts, "outcome", ["delivered", "failed"]);
        precreate(&m.fallback_mails, "outcome", ["sent", "failed"]);
        precreate(&m.swept, "what", Swept::ALL.map(Swept::as_str));
        m
    }

    /// Sets the copies of this instance and `numikube_staging_database_limit`.
    pub fn set_copies(&self, copies: u64, limit: u64) {
        self.copies.set(saturating_i64(copies));
        self.database_limit.set(saturating_i64(limit));
    }

    /// Sets `numikube_staging_database_limit` alone, known from the start, before PostgreSQL is read.
    pub fn set_limit(&self, limit: u64) {
        self.database_limit.set(saturating_i64(limit));
    }

    /// Records a job moving from `from` (`None`: a new job) to `to`; prefer [`Metrics::track_job`].
    pub fn job_state(&self, from: Option<JobState>, to: JobState) {
        if let Some(from) = from.filter(|s| s.in_flight()) {
            self.jobs_in_flight.get_or_create(&[("state", from.as_str())]).dec();
        }
        if to.in_flight() {
            self.jobs_in_flight.get_or_create(&[("state", to.as_str())]).inc();
        }
        self.jobs_total.get_or_create(&[("state", to.as_str())]).inc();
    }

    /// Records a restore that ended in a published copy: its format, duration and bytes streamed.
    pub fn restore_finished(&self, format: Format, duration: Duration, bytes: u64) {
        let label = [("format", format.as_str())];
        self.restore_duration.get_or_create(&label).observe(duration.as_secs_f64());
        self.restored_bytes.get_or_create(&label).inc_by(bytes);
    }

    /// Records one copy of a kept template into a working database.
    pub fn template_copied(&self, duration: Duration) {
        self.template_copy_duration.observe(duration.as_secs_f64());
    }

    /// Records one callback POST: `delivered` when production answered success.
    pub fn callback_attempt(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.callback_attempts.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Records one fallback e-mail: `sent` when the SMTP server accepted it.
    pub fn fallback_mail(&self, sent: bool) {
        let outcome = if sent { "sent" } else { "failed" };
        self.fallback_mails.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Records one run of the periodic sweep, whatever it removed.
    pub fn sweep_finished(&self) {
        self.sweeps.inc();
    }

    /// Records that a sweep removed `n` things of kind `what`.
    pub fn swept(&self, what: Swept, n: u64) {
        self.swept.get_or_create(&[("what", what.as_str())]).inc_by(n);
    }

    /// Everything, in the Prometheus text format 0.0.4 ([`PROMETHEUS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; the encoder's only error is fmt::Error from the writer.
        prometheus_text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }

    /// Everything, in OpenMetrics text 1.0.0 ([`OPENMETRICS_CONTENT_TYPE`]), `# EOF` included.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::new();
        text::encode(&mut out, &self.registry).expect("encoding into a String");
        out
    }
}

/// Creates the series of every known label value, so that each shows at 0 from the start.
fn precreate<M, C: MetricConstructor<M>>(family: &Family<Label, M, C>, name: &'static str, values: impl IntoIterator<Item = &'static str>) {
    for value in values {
        drop(family.get_or_create(&[(name, value)]));
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
