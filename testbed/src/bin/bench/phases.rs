//! Where a sidecar copy's time goes (issue 23): the steps the sidecar logs
//! once per job (`job timings`), each with the CPU PostgreSQL and the
//! sidecar used meanwhile, and their means over the rounds.

use serde_json::{json, Value};

use crate::probes::CpuAt;

/// One step of one copy.
#[derive(Clone, Debug)]
pub struct Step {
    /// `download`, `schema`, `data`, `indexes`, `neutralize`, …
    pub name: String,
    /// Seconds it took.
    pub secs: f64,
    /// Cores' worth of CPU PostgreSQL used meanwhile.
    pub pg_cores: f64,
    /// Cores' worth of CPU the sidecar and its children used meanwhile.
    pub sidecar_cores: f64,
}

/// The shortest step whose CPU is shown, in seconds (the readings are 100 ms apart).
const SHORTEST: f64 = 0.3;

/// Steps that run beside others (not counted in the sum of a copy's steps).
const BESIDE: [&str; 1] = ["filestore"];

/// The steps of job `job_id` from a sidecar's log: its `job timings` line
/// (`steps=download=1.203s@1764719400.125 schema=…`); `None` until logged.
pub fn parse(log: &str, job_id: &str) -> Option<Vec<(String, f64, f64)>> {
    let line = log.lines().rev().find(|l| l.contains("job timings") && l.contains(job_id))?;
    let steps = line.split_once("steps=")?.1;
    let mut out = Vec::new();
    for token in steps.split_whitespace() {
        let Some((name, rest)) = token.split_once('=') else { break };
        let Some((secs, at)) = rest.split_once("s@") else { break };
        let (Ok(secs), Ok(at)) = (secs.parse::<f64>(), at.parse::<f64>()) else { break };
        out.push((name.to_string(), at, secs));
    }
    Some(out)
}

/// The CPU readings just before `at` and just after `at + secs`, as cores used in between.
fn cores(track: &[CpuAt], at: f64, secs: f64) -> (f64, f64) {
    let before = track.iter().rev().find(|s| s.at <= at).or(track.first());
    let after = track.iter().find(|s| s.at >= at + secs).or(track.last());
    match (before, after) {
        (Some(a), Some(b)) if b.at > a.at => {
            let span = b.at - a.at;
            ((b.pg - a.pg) / span, (b.sidecar - a.sidecar) / span)
        }
        _ => (0.0, 0.0),
    }
}

/// The steps of one copy with the CPU each used.
pub fn attribute(steps: &[(String, f64, f64)], track: &[CpuAt]) -> Vec<Step> {
    steps
        .iter()
        .map(|(name, at, secs)| {
            let (pg_cores, sidecar_cores) = cores(track, *at, *secs);
            Step { name: name.clone(), secs: *secs, pg_cores, sidecar_cores }
        })
        .collect()
}

/// The mean of each step over `copies` (steps of one name in a copy added
/// up, cores weighted by time), in the order they first appear, with their
/// share of the mean sum of the steps that do not run beside others.
pub fn summarize(copies: &[Vec<Step>]) -> Value {
    if copies.is_empty() {
        return Value::Null;
    }
    let mut names: Vec<&str> = Vec::new();
    for copy in copies {
        for s in copy {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
    }
    let n = copies.len() as f64;
    let mut rows = Vec::new();
    let mut total = 0.0;
    for name in &names {
        let (mut secs, mut pg, mut sc) = (0.0, 0.0, 0.0);
        for s in copies.iter().flatten().filter(|s| s.name == *name) {
            secs += s.secs;
            pg += s.pg_cores * s.secs;
            sc += s.sidecar_cores * s.secs;
        }
        let beside = BESIDE.contains(name);
        if !beside {
            total += secs / n;
        }
        // Below three readings the cores say more about the sampling than the step.
        let per_core = |x: f64| (secs / n >= SHORTEST).then(|| x / secs);
        rows.push((name.to_string(), secs / n, per_core(pg), per_core(sc), beside));
    }
    let steps: Vec<Value> = rows
        .into_iter()
        .map(|(name, s, pg, sc, beside)| {
            json!({"step": name, "s": s, "share": if beside || total == 0.0 { Value::Null } else { json!(s / total) },
                   "postgres_cores": pg, "sidecar_cores": sc, "beside": beside})
        })
        .collect();
    json!({"copies": copies.len(), "sum_s": total, "steps": steps})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_line_gives_its_steps() {
        let log = "2026-12-02T00:00:00Z  INFO numikube_staging::job::run: job timings job=j1 db=x state=Done \
                   steps=download=1.250s@100.000 data=2.000s@101.250\n";
        assert_eq!(parse(log, "j1").unwrap(), vec![("download".into(), 100.0, 1.25), ("data".into(), 101.25, 2.0)]);
        assert!(parse(log, "j2").is_none());
        let track = [CpuAt { at: 99.9, pg: 0.0, sidecar: 0.0 }, CpuAt { at: 101.3, pg: 1.4, sidecar: 0.7 }];
        let (pg, sc) = cores(&track, 100.0, 1.25);
        assert!((pg - 1.0).abs() < 1e-9 && (sc - 0.5).abs() < 1e-9);
    }
}
