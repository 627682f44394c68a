//! `staging_run`'s latency under concurrent clients: against a sidecar whose
//! limit refuses every request, and against one that accepts them all (for a
//! client without a backup, so each job fails fast and makes no database).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClientBuilder;
use numikube_staging_rpc::{codes, RunPayload, StagingApiClient};
use numikube_testbed::sidecar::prod2x;
use serde_json::{json, Value};

use crate::args::Args;
use crate::env::Env;
use crate::names::TOKEN;
use crate::sidecars::Sidecars;
use crate::util::percentile;

/// The answers and timings of one latency test.
#[derive(Default)]
pub struct Latency {
    /// Requests accepted.
    pub ok: usize,
    /// Requests refused with `LIMIT_REACHED`.
    pub refused_by_limit: usize,
    /// Requests that failed otherwise.
    pub other_errors: usize,
    /// The first of those errors.
    pub first_error: Option<String>,
    /// Each request's milliseconds, ascending.
    pub sorted_ms: Vec<f64>,
    /// Seconds from the start signal to the last answer collected.
    pub wall_s: f64,
}

impl Latency {
    /// Its part of the report.
    pub fn json(&self) -> Value {
        json!({
            "requests": self.sorted_ms.len(),
            "accepted": self.ok,
            "refused_by_limit": self.refused_by_limit,
            "other_errors": self.other_errors,
            "first_error": self.first_error,
            "p50_ms": percentile(&self.sorted_ms, 50.0),
            "p99_ms": percentile(&self.sorted_ms, 99.0),
            "max_ms": self.sorted_ms.last().copied(),
            "requests_per_s": self.sorted_ms.len() as f64 / self.wall_s.max(1e-9),
            "wall_s": self.wall_s,
        })
    }
}

/// Both latency tests, and the clean-up after the accepted one.
#[derive(Default)]
pub struct LatencyResults {
    /// Against the sidecar with limit 0.
    pub refused: Option<Latency>,
    /// Against the sidecar that accepts.
    pub accepted: Option<Latency>,
    /// Callbacks received and names dropped after the accepted test.
    pub cleanup: Value,
}

/// Builds the payload of request `i` of client task `t`.
type MakePayload = Arc<dyn Fn(usize, usize) -> RunPayload + Send + Sync>;

/// Runs both tests if the plan started their sidecars.
pub fn run(env: &Env, args: &Args, sidecars: &Sidecars) -> Result<LatencyResults> {
    let mut out = LatencyResults { cleanup: json!(null), ..LatencyResults::default() };
    let (Some(r), Some(a)) = (&sidecars.refuse, &sidecars.accept) else {
        return Ok(out);
    };
    let (log, receiver_lat) = (&env.log, &env.receiver_lat);
    log.say(format!("latency: {} clients × {} requests, refused by the limit (limit 0)", args.clients, args.requests));
    let unused = |t, i| prod2x(TOKEN, "benchdump", &format!("r{t}-{i}"), false, "http://127.0.0.1:1/unused".into());
    out.refused = Some(latency_run(env, r.process.port, args.clients, args.requests, Arc::new(unused))?);
    log.say(format!("latency: {} clients × {} requests, accepted (client without backup)", args.clients, args.requests));
    let cb = receiver_lat.url("/lat?db=prod");
    let accepted = move |t, i| prod2x(TOKEN, "benchnone", &format!("l{t}-{i}"), false, cb.clone());
    let lat = latency_run(env, a.process.port, args.clients, args.requests, Arc::new(accepted))?;
    // Every accepted job fails fast (no backup of that client) and calls back; then drop their names.
    let expected = lat.ok + args.clients;
    out.accepted = Some(lat);
    let t = Instant::now();
    let got = receiver_lat.wait_for(expected, Duration::from_secs(300)).map(|v| v.len()).unwrap_or_else(|_| receiver_lat.received().len());
    let names: Vec<String> = (0..args.clients).flat_map(|t| (0..=args.requests).map(move |i| format!("benchnone-lab_l{t}-{i}"))).collect();
    let dropped = env.rt.block_on(a.client.drop_databases(TOKEN.into(), names.join(" ")))?;
    out.cleanup = json!({
        "jobs_called_back": got, "jobs_expected": expected, "wait_s": t.elapsed().as_secs_f64(),
        "dropped": dropped.dropped.len(), "missing": dropped.missing.len(), "refused": dropped.refused.len(),
    });
    log.say(format!(
        "latency: {got}/{expected} accepted jobs called back (failed fast: no backup) in {:.1}s; drop: {} dropped, {} missing",
        t.elapsed().as_secs_f64(),
        dropped.dropped.len(),
        dropped.missing.len()
    ));
    Ok(out)
}

/// `clients` tasks, each its own HTTP connection, each sending one untimed
/// warm-up request then `per` timed ones, all starting together.
fn latency_run(env: &Env, port: u16, clients: usize, per: usize, make: MakePayload) -> Result<Latency> {
    env.rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
        let mut tasks = Vec::new();
        for task in 0..clients {
            let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(60)).build(format!("http://127.0.0.1:{port}"))?;
            let barrier = barrier.clone();
            let make = make.clone();
            tasks.push(tokio::spawn(async move {
                let _ = client.run(make(task, per)).await; // warm-up: connection, first answer
                barrier.wait().await;
                let mut out = Vec::with_capacity(per);
                for i in 0..per {
                    let t = Instant::now();
                    let r = client.run(make(task, i)).await;
                    out.push((t.elapsed().as_secs_f64() * 1e3, r));
                }
                out
            }));
        }
        barrier.wait().await;
        let t0 = Instant::now();
        let mut lat = Latency::default();
        for t in tasks {
            for (ms, r) in t.await? {
                lat.sorted_ms.push(ms);
                match r {
                    Ok(_) => lat.ok += 1,
                    Err(ClientError::Call(e)) if e.code() == codes::LIMIT_REACHED => lat.refused_by_limit += 1,
                    Err(e) => {
                        lat.other_errors += 1;
                        lat.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }
        lat.wall_s = t0.elapsed().as_secs_f64();
        lat.sorted_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        anyhow::Ok(lat)
    })
}
