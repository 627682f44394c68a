//! The timed rounds: every contender once per round, each round in a rotated
//! order, the cold sidecar's memory sampled throughout.

use std::collections::BTreeMap;
use std::fs;
use std::time::Instant;

use anyhow::{bail, Result};
use numikube_testbed::procfs;

use crate::contender::{Contender, SidecarKind};
use crate::contenders;
use crate::data::Data;
use crate::env::Env;
use crate::phases::Step;
use crate::probes::{RssSampler, Sample};
use crate::sidecars::{self, Copied, Sidecars};

/// What the rounds measured.
#[derive(Default)]
pub struct Rounds {
    /// The timed runs of each contender that succeeded.
    pub samples: BTreeMap<Contender, Vec<Sample>>,
    /// Where the time of each sidecar copy went, per contender.
    pub steps: BTreeMap<Contender, Vec<Vec<Step>>>,
    /// The errors of those that failed.
    pub failures: BTreeMap<Contender, Vec<String>>,
    /// What went wrong without failing a run.
    pub warnings: Vec<String>,
    /// Seconds the rounds took.
    pub rounds_s: f64,
    /// The cold sidecar's largest sampled VmRSS, KiB.
    pub rss_sampled_kib: Option<u64>,
    /// The cold sidecar's VmHWM after the rounds, KiB.
    pub rss_hwm_kib: Option<u64>,
}

/// Runs `reps` rounds of `contenders`.
pub fn run(env: &Env, data: &Data, sidecars: &Sidecars, contenders: &[Contender], reps: usize) -> Result<Rounds> {
    let mut out = Rounds::default();
    let cold_pid = sidecars.cold.as_ref().and_then(|c| c.process.pid());
    let rss = cold_pid.map(RssSampler::start);
    let rounds_start = Instant::now();
    for rep in 0..reps {
        let n = contenders.len();
        for k in 0..n {
            let c = contenders[(k + rep) % n];
            let tag = format!("r{rep}");
            let res = if c.is_sidecar() {
                sidecar_round(env, data, sidecars, c, &tag, &mut out.warnings).map(|(s, steps)| {
                    out.steps.entry(c).or_default().push(steps);
                    s
                })
            } else {
                contenders::run_baseline(env, data, c, &tag, &mut out.warnings)
            };
            env.settle()?;
            match res {
                Ok(s) => {
                    env.log.say(format!(
                        "round {}/{} {:<22} {:>7.2}s  cpu {:>3.0}% iowait {:>3.0}%, cores: pg {:.2} tools {:.2} other {:.2}; {:.0} MB to disk",
                        rep + 1,
                        reps,
                        c.id(),
                        s.secs,
                        s.cpu_busy * 100.0,
                        s.iowait * 100.0,
                        s.pg_cores,
                        s.own_cores,
                        s.other_cores,
                        s.written_mb
                    ));
                    out.samples.entry(c).or_default().push(s);
                }
                Err(e) => {
                    env.log.say(format!("round {}/{} {} FAILED: {e:#}", rep + 1, reps, c.id()));
                    out.failures.entry(c).or_default().push(format!("{e:#}"));
                }
            }
        }
    }
    out.rounds_s = rounds_start.elapsed().as_secs_f64();
    out.rss_sampled_kib = rss.map(RssSampler::finish);
    out.rss_hwm_kib = cold_pid.and_then(|pid| procfs::status_kib(pid, "VmHWM:"));
    Ok(out)
}

/// One timed copy through the contender's sidecar, then its drop (untimed);
/// the companion's copy fails unless its filestore came from the companion, whole.
fn sidecar_round(
    env: &Env,
    data: &Data,
    sidecars: &Sidecars,
    c: Contender,
    tag: &str,
    warnings: &mut Vec<String>,
) -> Result<(Sample, Vec<Step>)> {
    let (kind, client, anonymize) = c.copy().expect("a sidecar's contender");
    let sc = match kind {
        SidecarKind::Cold => sidecars.cold.as_ref(),
        SidecarKind::Warm => sidecars.warm.as_ref(),
    }
    .expect("its sidecar was started");
    let Copied { sample: s, db, callback, steps } = sidecars::copy(env, sc, client, tag, anonymize).map_err(|e| {
        // Who else was in the sidecar's hidden databases when it failed (e.g. autovacuum
        // blocks a RENAME or a DROP without FORCE).
        let sessions = env
            .pg
            .psql(
                "postgres",
                "SELECT string_agg(datname || ':' || coalesce(backend_type, '') || ':' \
                 || coalesce(nullif(application_name, ''), '-') || ':' || left(coalesce(query, ''), 60), '; ') \
                 FROM pg_stat_activity WHERE datname LIKE 'numikube%'",
            )
            .unwrap_or_default();
        e.context(format!("sessions in numikube_* databases right after: [{sessions}]"))
    })?;
    if let Err(e) = sidecars::drop_copy(env, sc, &db) {
        // Not the timed part: note it, and clean up as the superuser so the rounds go on.
        let row = env
            .pg
            .psql(
                "postgres",
                &format!(
                    "SELECT pg_get_userbyid(datdba) || ' template=' || datistemplate || ' allowconn=' || datallowconn || ' acl=' || coalesce(datacl::text, '<default>') \
                     || ' comment=' || coalesce(shobj_description(oid, 'pg_database'), '<none>') \
                     FROM pg_database WHERE datname = '{}'",
                    db.replace('\'', "''")
                ),
            )
            .unwrap_or_default();
        warnings.push(format!("{}: {e:#} [pg_database: {row}]; dropped by the bench instead", c.id()));
        env.drop_db(&db)?;
        let _ = fs::remove_dir_all(sc.dir.join("data/filestore").join(&db));
    }
    if let (Contender::SidecarDumpCompanion, Some(companion)) = (c, &data.companion) {
        let (origin, missing) = (&callback["filestore"], &callback["missing_attachments"]);
        if origin.as_str() != Some(companion.origin().as_str()) || missing.as_u64() != Some(0) {
            bail!("the copy's filestore is {origin} with {missing} missing attachments, not {:?} with none", companion.origin());
        }
    }
    Ok((s, steps))
}
