//! The sidecars of the run, each its own staging instance, started through
//! the testbed's launcher; one copy through a sidecar (request → callback)
//! and the untimed copy that builds the repeat contender's template.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use numikube_staging_rpc::{RunPayload, RunResult, StagingApiClient};
use numikube_testbed::sidecar::{self, strip_ansi, Launch, Sidecar, SidecarConf};
use numikube_testbed::{free_port, CallbackReceiver};
use serde_json::{json, Value};

use crate::args::Plan;
use crate::contender::{Contender, SidecarKind};
use crate::env::Env;
use crate::names::{BUCKET, ROLE, ROLE_PW, TOKEN};
use crate::phases::{self, Step};
use crate::probes::{CpuTrack, Sample};

/// One staging instance: its own role, directory, process and client.
pub struct Instance {
    /// `cold`, `warm`, `limit0` or `accept`, in callback paths and messages.
    pub name: &'static str,
    /// `<work>/sidecar-<name>`: its `odoo.conf`, log and `data_dir`.
    pub dir: PathBuf,
    /// The running `numikube-staging serve`.
    pub process: Sidecar,
    /// Its JSON-RPC client.
    pub client: HttpClient,
}

impl Instance {
    /// Writes `<work>/sidecar-<name>/odoo.conf` and starts `numikube-staging serve` on it.
    ///
    /// Each sidecar is its own staging instance with its own `db_user` (role
    /// `odoo_<name>`): sidecars sharing a role would see each other's hidden
    /// working databases as leftovers and sweep them away mid-restore.
    fn start(env: &Env, name: &'static str, limit: usize, extra: &str) -> Result<Instance> {
        let role = format!("{ROLE}_{name}");
        env.pg.create_db_user(&role, ROLE_PW)?;
        env.pg.create_work_role(&role)?;
        let dir = env.work.join(format!("sidecar-{name}"));
        fs::create_dir_all(dir.join("data"))?;
        let mut conf = SidecarConf::new(TOKEN, &env.pg, (&role, ROLE_PW), &env.s3, BUCKET, &dir.join("data"));
        conf.limit = limit;
        conf.callback_timeout = 30;
        conf.extra = extra.into();
        let conf_path = dir.join("odoo.conf");
        conf.write(&conf_path)?;
        let launch = Launch { listen_timeout: Duration::from_secs(30), fresh_log: true, clear_minio_env: true };
        let process = Sidecar::start_with(&env.bin, &conf_path, conf.port, &dir.join("sidecar.log"), &launch)
            .with_context(|| format!("sidecar {name}"))?;
        let client = HttpClientBuilder::default().request_timeout(Duration::from_secs(600)).build(process.url())?;
        Ok(Instance { name, dir, process, client })
    }

    /// What it logged.
    pub fn log(&self) -> String {
        self.process.log_text()
    }
}

/// The sidecars a plan needs (all started before any restore: a start cleans up unfinished work).
pub struct Sidecars {
    /// Template cache off: the first copies (`sidecar-dump`, `sidecar-zip`, `sidecar-dump-companion`, `sidecar-anonymized`).
    pub cold: Option<Instance>,
    /// Template cache on, an anonymization key set: the repeat copies.
    pub warm: Option<Instance>,
    /// Limit 0: every `staging_run` refused (latency).
    pub refuse: Option<Instance>,
    /// No practical limit: every `staging_run` accepted (latency).
    pub accept: Option<Instance>,
}

impl Sidecars {
    /// Starts the sidecars of `plan`.
    pub fn start(env: &Env, plan: &Plan) -> Result<Sidecars> {
        let need = |which| plan.contenders.iter().any(|c| c.copy().is_some_and(|(s, ..)| s == which));
        let start = |need: bool, name, limit, extra| need.then(|| Instance::start(env, name, limit, extra)).transpose();
        let sidecars = Sidecars {
            cold: start(need(SidecarKind::Cold), "cold", 100_000, "numikube_staging_template_cache = False")?,
            warm: start(need(SidecarKind::Warm), "warm", 100_000, "numikube_staging_anonymize_key = bench-key")?,
            refuse: start(plan.latency, "limit0", 0, "")?,
            accept: start(plan.latency, "accept", 1_000_000, "")?,
        };
        env.log.say("sidecars listening");
        Ok(sidecars)
    }
}

/// Waits until `receiver` got a request on `path`; returns when it saw it.
fn wait_callback(receiver: &CallbackReceiver, path: &str, timeout: Duration) -> Result<(Instant, Value)> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = receiver.received();
        if let Some(r) = all.iter().find(|r| r.path == path) {
            return Ok((Instant::now(), r.body.clone()));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no callback on {path} within {timeout:?}");
        }
        let _ = receiver.wait_for(all.len() + 1, left);
    }
}

/// A copy a sidecar made.
pub struct Copied {
    /// The machine's readings from the request to the callback.
    pub sample: Sample,
    /// The copy's database.
    pub db: String,
    /// The callback's body (`state`, `filestore`, `missing_attachments`, …).
    pub callback: Value,
    /// Where its time went, as the sidecar logged it (empty if it did not).
    pub steps: Vec<Step>,
}

/// One copy through a sidecar (anonymized when `anonymize`): request → callback.
pub fn copy(env: &Env, sc: &Instance, client: &str, suffix: &str, anonymize: bool) -> Result<Copied> {
    let path = format!("/cb/{}-{suffix}-{}", sc.name, free_port());
    let p = RunPayload {
        anonymize: Some(anonymize),
        ..sidecar::prod2x(TOKEN, client, suffix, false, env.receiver.url(&format!("{path}?db=prod")))
    };
    let track = sc.process.pid().map(|pid| CpuTrack::start(&env.machine, pid));
    let a = env.machine.probe();
    let answer = env.rt.block_on(sc.client.run(p)).map_err(|e| anyhow::anyhow!("staging_run refused: {e}"))?;
    let (db, job_id) = match answer {
        RunResult::Started(s) => (s.db_name, s.job_id),
        other => bail!("unexpected answer {other:?}"),
    };
    let (_, body) = wait_callback(&env.receiver, &path, Duration::from_secs(1800))
        .with_context(|| format!("sidecar {} log tail:\n{}", sc.name, sc.process.log_tail(3000)))?;
    let b = env.machine.probe();
    let track = track.map(CpuTrack::finish).unwrap_or_default();
    let steps = phases::parse(&strip_ansi(&sc.log()), &job_id).map(|s| phases::attribute(&s, &track)).unwrap_or_default();
    if body.get("state").and_then(Value::as_str) != Some("done") {
        // The sidecar's own account of it: its last warnings and errors, colour codes removed.
        let mut lines: Vec<String> = sc.log().lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).map(strip_ansi).collect();
        let lines = lines.split_off(lines.len().saturating_sub(3));
        bail!(
            "copy {db} failed: {} | detail: {} | sidecar log: {}",
            body.get("error").and_then(Value::as_str).unwrap_or(&body.to_string()),
            body.get("traceback").and_then(Value::as_str).unwrap_or("").replace('\n', " "),
            lines.join(" / ")
        );
    }
    Ok(Copied { sample: env.machine.measure(&a, &b), db, callback: body, steps })
}

/// Drops a copy through the sidecar that made it (`staging_drop`).
pub fn drop_copy(env: &Env, sc: &Instance, db: &str) -> Result<()> {
    let r = env.rt.block_on(sc.client.drop_databases(TOKEN.into(), db.into()))?;
    if !r.dropped.iter().any(|d| d == db) {
        bail!("staging_drop did not drop {db}: {r:?}");
    }
    Ok(())
}

/// Repeat contender `c`'s untimed copy on the warm sidecar `w`, which builds
/// its template; the `repeat_warmup` (or `anonymized_repeat_warmup`) part of the report.
pub fn warm_up(env: &Env, w: &Instance, c: Contender) -> Result<Value> {
    let (_, client, anonymize) = c.copy().expect("a sidecar's contender");
    let what = c.id();
    env.log.say(format!("{what}: one untimed copy to build the template"));
    let Copied { sample: s, db, .. } = copy(env, w, client, if anonymize { "warmup-anon" } else { "warmup" }, anonymize)?;
    let t = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut ready = false;
    // A masked template's marker carries its masking.
    let kind = if anonymize { "LIKE" } else { "NOT LIKE" };
    let query = format!(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'numikube\\_tpl\\_%' \
         AND coalesce(shobj_description(oid, 'pg_database'), '') {kind} '%\"masking\"%'"
    );
    while Instant::now() < deadline {
        if env.pg.psql("postgres", &query)?.trim() != "0" {
            ready = true;
            break;
        }
        if w.log().contains("template") && w.log().contains("failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let template_wait = t.elapsed().as_secs_f64();
    drop_copy(env, w, &db)?;
    env.settle()?;
    log_warm_up(env, what, s.secs, ready, template_wait);
    Ok(json!({"warmup_copy_s": s.secs, "template_ready": ready, "template_ready_after_s": template_wait}))
}

/// The progress line of the warm-up.
fn log_warm_up(env: &Env, what: &str, secs: f64, ready: bool, template_wait: f64) {
    let seen = if ready { "ready" } else { "NOT seen (no template cache in this build?)" };
    env.log.say(format!("{what} warm-up copy {secs:.1}s; template {seen} after {template_wait:.1}s more"));
}
