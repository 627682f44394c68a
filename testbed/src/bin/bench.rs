//! `bench`: the benchmark of issue 5 — the sidecar against the baselines, in
//! one run, on the testbed's real servers (one throw-away PostgreSQL cluster,
//! moto S3, an HTTP callback receiver) and the release sidecar binary.
//!
//! Run it through `scripts/bench` (which builds the release binaries first).
//! Progress goes to stderr; the table (or `--json`) to stdout.
//!
//! Contenders (alternated round-robin, each round in a rotated order):
//! - `sidecar-dump`: request → callback received, first copy from the custom dump
//!   (template cache off in that sidecar, so every copy is cold);
//! - `sidecar-zip`: the same from the Odoo zip;
//! - `sidecar-repeat`: repeat copy of the custom dump on a sidecar with the
//!   template cache on (one untimed warm-up copy builds the template first);
//! - `odoo`: Odoo's own path: `createdb` + `psql -q -f dump.sql` (the zip's
//!   dump, extracted before the rounds) + copying the filestore (`cp -r`);
//! - `pg_restore`: `createdb` + single-job `pg_restore` from a local file;
//! - `pg_restore-j`: the same with `-j <cores>`;
//! - `file_copy`: `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` + `cp -al`
//!   of the filestore, the template being restored once before the rounds.
//!
//! Plus `latency` (`staging_run` with 50 concurrent clients, refused by the
//! limit and accepted), `rss` (the cold sidecar's peak RSS, measured during
//! the `sidecar-dump`/`sidecar-zip` rounds) and `io` (moto download speed,
//! `dd` disk write speed).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use numikube_staging_rpc::{codes, RunPayload, RunResult, StagingApiClient};
use numikube_testbed::{fixture, free_port, CallbackReceiver, Postgres, S3};
use serde_json::{json, Value};

const TOKEN: &str = "bench-token";
const ROLE: &str = "odoo";
const ROLE_PW: &str = "odoo-pw";
const BUCKET: &str = "prod-backups";
const PROD_DB: &str = "prod_bench";
const TEMPLATE_DB: &str = "bench_tpl";

/// Benchmark of the numikube-staging sidecar against PostgreSQL's and Odoo's own restore paths.
#[derive(Parser, Debug)]
#[command(
    about = "Benchmark of the numikube-staging sidecar against Odoo's and PostgreSQL's own restore paths (scripts/bench)",
    long_about = None
)]
struct Args {
    /// Size of the Odoo-shaped production database on disk: bytes, or with a suffix K, M, G (powers of 1024).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    size: u64,
    /// Timed repetitions of each contender.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Keep the work directory (backups, logs, sidecar configs) and print its path.
    #[arg(long)]
    keep: bool,
    /// Run only these (comma list): sidecar-dump, sidecar-zip, sidecar-repeat, odoo,
    /// pg_restore, pg_restore-j, file_copy, latency, io.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Concurrent clients of the latency test.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Requests per client in the latency test (after one untimed warm-up request each).
    #[arg(long, default_value_t = 20)]
    requests: usize,
    /// The sidecar binary (default: `numikube-staging` beside this program, i.e. target/release).
    #[arg(long, env = "NUMIKUBE_SIDECAR_BIN")]
    sidecar: Option<PathBuf>,
    /// Parent of the work directory (default: the system's temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Print the table of a report saved with --json, and run nothing.
    #[arg(long, value_name = "FILE")]
    from_json: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown unit in {s:?} (use K, M or G)")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {s:?}"))?;
    if !(n > 0.0) {
        return Err(format!("size must be positive: {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

// ---------------------------------------------------------------------------
// Contenders
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Contender {
    SidecarDump,
    SidecarZip,
    SidecarRepeat,
    Odoo,
    PgRestore,
    PgRestoreJ,
    FileCopy,
}

const ALL: [Contender; 7] = [
    Contender::SidecarDump,
    Contender::SidecarZip,
    Contender::SidecarRepeat,
    Contender::Odoo,
    Contender::PgRestore,
    Contender::PgRestoreJ,
    Contender::FileCopy,
];

impl Contender {
    fn id(self) -> &'static str {
        match self {
            Contender::SidecarDump => "sidecar-dump",
            Contender::SidecarZip => "sidecar-zip",
            Contender::SidecarRepeat => "sidecar-repeat",
            Contender::Odoo => "odoo",
            Contender::PgRestore => "pg_restore",
            Contender::PgRestoreJ => "pg_restore-j",
            Contender::FileCopy => "file_copy",
        }
    }

    fn label(self, cores: usize) -> String {
        match self {
            Contender::SidecarDump => "sidecar, first copy, custom dump".into(),
            Contender::SidecarZip => "sidecar, first copy, Odoo zip".into(),
            Contender::SidecarRepeat => "sidecar, repeat copy (template)".into(),
            Contender::Odoo => "Odoo path: createdb+psql -f+filestore cp".into(),
            Contender::PgRestore => "pg_restore (1 job), local file".into(),
            Contender::PgRestoreJ => format!("pg_restore -j{cores}, local file"),
            Contender::FileCopy => "TEMPLATE … FILE_COPY + cp -al".into(),
        }
    }
}

// ---------------------------------------------------------------------------
// Machine probes: CPU (/proc/stat), PostgreSQL's CPU, disk writes
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct CpuTimes {
    total: u64,
    idle: u64,
    iowait: u64,
}

fn read_cpu() -> CpuTimes {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().next().unwrap_or("");
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return CpuTimes::default();
    }
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let total: u64 = v.iter().take(8).sum();
    CpuTimes {
        total,
        idle: v[3],
        iowait: v[4],
    }
}

/// utime+stime+cutime+cstime (clock ticks) of a process from /proc/<pid>/stat, and its ppid.
fn proc_stat(pid: i32) -> Option<(i32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ") ": state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    let ppid = f.get(1)?.parse().ok()?;
    let t: u64 = (11..=14)
        .filter_map(|i| f.get(i)?.parse::<u64>().ok())
        .sum();
    Some((ppid, t))
}

/// CPU ticks used so far by a process tree: the root and its direct children
/// (live ones with their own time; exited ones through the root's cutime/cstime).
fn tree_ticks(root: i32) -> u64 {
    let mut sum = proc_stat(root).map(|(_, t)| t).unwrap_or(0);
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
                if let Some((ppid, t)) = proc_stat(pid) {
                    if ppid == root {
                        sum += t;
                    }
                }
            }
        }
    }
    sum
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as f64
    } else {
        100.0
    }
}

/// Whole disks (not loop, ram, dm) as /sys/block lists them.
fn disks() -> Vec<String> {
    fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            !n.starts_with("loop")
                && !n.starts_with("ram")
                && !n.starts_with("dm-")
                && !n.starts_with("zram")
        })
        .collect()
}

/// Bytes written so far to the whole disks.
fn disk_written(disks: &[String]) -> u64 {
    let s = fs::read_to_string("/proc/diskstats").unwrap_or_default();
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && disks.iter().any(|d| d == f[2]))
                .then(|| f[9].parse::<u64>().unwrap_or(0) * 512)
        })
        .sum()
}

struct Probe {
    t: Instant,
    cpu: CpuTimes,
    pg_ticks: u64,
    own_ticks: u64,
    written: u64,
}

struct Machine {
    postmaster: i32,
    disks: Vec<String>,
    tck: f64,
    cores: usize,
}

impl Machine {
    fn probe(&self) -> Probe {
        Probe {
            t: Instant::now(),
            cpu: read_cpu(),
            pg_ticks: tree_ticks(self.postmaster),
            // this program, its reaped children (psql, pg_restore, cp), moto and the sidecars
            // (with their reaped pg_restore/psql children)
            own_ticks: tree_ticks(std::process::id() as i32),
            written: disk_written(&self.disks),
        }
    }

    fn measure(&self, a: &Probe, b: &Probe) -> Sample {
        let secs = (b.t - a.t).as_secs_f64();
        let total = b.cpu.total.saturating_sub(a.cpu.total).max(1) as f64;
        let idle = b.cpu.idle.saturating_sub(a.cpu.idle) as f64;
        let iowait = b.cpu.iowait.saturating_sub(a.cpu.iowait) as f64;
        let cpu_busy = (total - idle - iowait) / total;
        let pg_cores = b.pg_ticks.saturating_sub(a.pg_ticks) as f64 / self.tck / secs.max(1e-9);
        let own_cores = b.own_ticks.saturating_sub(a.own_ticks) as f64 / self.tck / secs.max(1e-9);
        Sample {
            secs,
            cpu_busy,
            iowait: iowait / total,
            pg_cores,
            own_cores,
            other_cores: (cpu_busy * self.cores as f64 - pg_cores - own_cores).max(0.0),
            written_mb: b.written.saturating_sub(a.written) as f64 / 1e6,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    secs: f64,
    /// Busy share of all cores (user+system), 0..1.
    cpu_busy: f64,
    /// iowait share of all cores, 0..1.
    iowait: f64,
    /// Cores' worth of CPU used by PostgreSQL's server processes.
    pg_cores: f64,
    /// Cores' worth of CPU used by the bench, its tools, moto and the sidecars.
    own_cores: f64,
    /// Busy cores not explained by the two above: other work on the machine.
    other_cores: f64,
    /// MB written to the disks.
    written_mb: f64,
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

struct Log {
    start: Instant,
}

impl Log {
    fn say(&self, msg: impl AsRef<str>) {
        eprintln!(
            "[bench {:>7.1}s] {}",
            self.start.elapsed().as_secs_f64(),
            msg.as_ref()
        );
    }
}

fn run_cmd(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("starting {what}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{what} failed: {}: {}", out.status, err.trim());
    }
    Ok(err)
}

fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // nearest-rank
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

// ---------------------------------------------------------------------------
// Sidecars
// ---------------------------------------------------------------------------

struct Sidecar {
    name: &'static str,
    port: u16,
    dir: PathBuf,
    child: Child,
    client: HttpClient,
}

impl Sidecar {
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sidecar.log")).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Env<'a> {
    pg: &'a Postgres,
    s3: &'a S3,
    bin: PathBuf,
    work: PathBuf,
}

impl Env<'_> {
    /// Writes `<work>/<name>/odoo.conf` and starts `numikube-staging serve` on it.
    ///
    /// Each sidecar is its own staging instance with its own `db_user` (role
    /// `odoo_<name>`): sidecars sharing a role would see each other's hidden
    /// working databases as leftovers and sweep them away mid-restore.
    fn start_sidecar(&self, name: &'static str, limit: usize, extra: &str) -> Result<Sidecar> {
        let role = format!("{ROLE}_{name}");
        self.pg.create_role(&role, ROLE_PW, true)?;
        let dir = self.work.join(format!("sidecar-{name}"));
        fs::create_dir_all(dir.join("data"))?;
        let port = free_port();
        let conf = format!(
            "[options]\n\
             numikube_staging_token = {TOKEN}\n\
             numikube_staging_sidecar = 127.0.0.1:{port}\n\
             numikube_staging_database_limit = {limit}\n\
             numikube_staging_callback_timeout = 30\n\
             backups_minio_bucket = {BUCKET}\n\
             minio_endpoint = {endpoint}\n\
             minio_access_key = {ak}\n\
             minio_secret_key = {sk}\n\
             db_host = 127.0.0.1\n\
             db_port = {pgport}\n\
             db_user = {role}\n\
             db_password = {ROLE_PW}\n\
             pg_path = {bin}\n\
             data_dir = {data}\n\
             addons_path = {addons}\n\
             smtp_server = 127.0.0.1\n\
             smtp_port = 1\n\
             {extra}\n",
            endpoint = self.s3.endpoint(),
            ak = self.s3.access_key,
            sk = self.s3.secret_key,
            pgport = self.pg.port,
            bin = self.pg.bin_dir.display(),
            data = dir.join("data").display(),
            addons = fixture::fixture_addons_dir().display(),
        );
        let conf_path = dir.join("odoo.conf");
        fs::write(&conf_path, conf)?;
        let log = fs::File::create(dir.join("sidecar.log"))?;
        let child = Command::new(&self.bin)
            .args(["serve", "-c"])
            .arg(&conf_path)
            .env("NUMIKUBE_LOG", "info")
            .env_remove("MINIO_ENDPOINT")
            .env_remove("MINIO_ACCESS_KEY")
            .env_remove("MINIO_SECRET_KEY")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let client = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(600))
            .build(format!("http://127.0.0.1:{port}"))?;
        let mut sc = Sidecar {
            name,
            port,
            dir,
            child,
            client,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = sc.child.try_wait()? {
                bail!("sidecar {name} exited with {status}:\n{}", sc.log());
            }
            if Instant::now() > deadline {
                bail!(
                    "sidecar {name} does not listen on {port} after 30 s:\n{}",
                    sc.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(sc)
    }

    /// libpq environment for the instance's role (what the sidecar uses).
    fn role_cmd(&self, program: &str) -> Command {
        let mut c = Command::new(self.pg.bin_dir.join(program));
        c.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.pg.port.to_string())
            .env("PGUSER", ROLE)
            .env("PGPASSWORD", ROLE_PW)
            .env("PGDATABASE", "postgres")
            .env_remove("PGSERVICE");
        c
    }

    fn drop_db(&self, db: &str) -> Result<()> {
        self.pg.psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE);", ident(db)),
        )?;
        Ok(())
    }

    /// After every timed run: the same clean state for the next contender.
    fn settle(&self) -> Result<()> {
        self.pg.psql("postgres", "CHECKPOINT;")?;
        Ok(())
    }
}

fn payload(client: &str, suffix: &str, callback: String) -> RunPayload {
    RunPayload {
        token: Some(TOKEN.into()),
        client: Some(client.into()),
        kind: Some("prod2x".into()),
        timestamp: Some(false),
        callback: Some(callback),
        level: Some("lab".into()),
        suffix: Some(suffix.into()),
        ..Default::default()
    }
}

/// Waits until `receiver` got a request on `path`; returns when it saw it.
fn wait_callback(
    receiver: &CallbackReceiver,
    path: &str,
    timeout: Duration,
) -> Result<(Instant, Value)> {
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

/// One copy through a sidecar: request → callback; returns (seconds, db name).
fn sidecar_copy(
    rt: &tokio::runtime::Runtime,
    sc: &Sidecar,
    receiver: &CallbackReceiver,
    client: &str,
    suffix: &str,
    m: &Machine,
) -> Result<(Sample, String)> {
    let path = format!("/cb/{}-{suffix}-{}", sc.name, free_port());
    let p = payload(client, suffix, receiver.url(&format!("{path}?db=prod")));
    let a = m.probe();
    let answer = rt
        .block_on(sc.client.run(p))
        .map_err(|e| anyhow::anyhow!("staging_run refused: {e}"))?;
    let db = match answer {
        RunResult::Started(s) => s.db_name,
        other => bail!("unexpected answer {other:?}"),
    };
    let (_, body) = wait_callback(receiver, &path, Duration::from_secs(1800))
        .with_context(|| format!("sidecar {} log tail:\n{}", sc.name, tail(&sc.log(), 3000)))?;
    let b = m.probe();
    if body.get("state").and_then(Value::as_str) != Some("done") {
        // The sidecar's own account of it: its last warnings and errors, colour codes removed.
        let mut lines: Vec<String> = sc
            .log()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(strip_ansi)
            .collect();
        let lines = lines.split_off(lines.len().saturating_sub(3));
        bail!(
            "copy {db} failed: {} | detail: {} | sidecar log: {}",
            body.get("error")
                .and_then(Value::as_str)
                .unwrap_or(&body.to_string()),
            body.get("traceback")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', " "),
            lines.join(" / ")
        );
    }
    Ok((m.measure(&a, &b), db))
}

fn sidecar_drop(rt: &tokio::runtime::Runtime, sc: &Sidecar, db: &str) -> Result<()> {
    let r = rt.block_on(sc.client.drop_databases(TOKEN.into(), db.into()))?;
    if !r.dropped.iter().any(|d| d == db) {
        bail!("staging_drop did not drop {db}: {r:?}");
    }
    Ok(())
}

fn strip_ansi(l: &str) -> String {
    let mut out = String::with_capacity(l.len());
    let mut esc = false;
    for ch in l.chars() {
        match (esc, ch) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}

/// Samples VmRSS of `pid` every 50 ms until stopped; keeps the maximum (KiB).
struct RssSampler {
    stop: Arc<AtomicBool>,
    max_kib: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl RssSampler {
    fn start(pid: i32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, mx) = (stop.clone(), max_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(v) = status_kib(pid, "VmRSS:") {
                    mx.fetch_max(v, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler {
            stop,
            max_kib,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Latency {
    ok: usize,
    refused_by_limit: usize,
    other_errors: usize,
    first_error: Option<String>,
    sorted_ms: Vec<f64>,
    wall_s: f64,
}

impl Latency {
    fn json(&self) -> Value {
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

/// `clients` tasks, each its own HTTP connection, each sending one untimed
/// warm-up request then `per` timed ones, all starting together.
fn latency_run(
    rt: &tokio::runtime::Runtime,
    port: u16,
    clients: usize,
    per: usize,
    make: Arc<dyn Fn(usize, usize) -> RunPayload + Send + Sync>,
) -> Result<Latency> {
    rt.block_on(async move {
        let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
        let mut tasks = Vec::new();
        for task in 0..clients {
            let client = HttpClientBuilder::default()
                .request_timeout(Duration::from_secs(60))
                .build(format!("http://127.0.0.1:{port}"))?;
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
                    Err(ClientError::Call(e)) if e.code() == codes::LIMIT_REACHED => {
                        lat.refused_by_limit += 1
                    }
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

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

fn main() {
    let args = Args::parse();
    if let Some(path) = &args.from_json {
        match fs::read_to_string(path)
            .map_err(anyhow::Error::from)
            .and_then(|t| Ok(serde_json::from_str::<Value>(&t)?))
        {
            Ok(report) => print_text(&report),
            Err(e) => {
                eprintln!("bench: cannot read {}: {e:#}", path.display());
                std::process::exit(1);
            }
        }
        return;
    }
    match run(args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn sidecar_bin(args: &Args) -> Result<PathBuf> {
    let p = match &args.sidecar {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no parent dir")?
            .join("numikube-staging"),
    };
    if !p.is_file() {
        bail!("sidecar binary {} not found: build it with `cargo build --release -p numikube-staging` (scripts/bench does)", p.display());
    }
    Ok(p)
}

fn run(args: Args) -> Result<()> {
    let log = Log {
        start: Instant::now(),
    };
    let wanted = |id: &str| args.only.is_empty() || args.only.iter().any(|o| o == id);
    for o in &args.only {
        if !ALL.iter().any(|c| c.id() == o) && !["latency", "io", "rss"].contains(&o.as_str()) {
            bail!("--only: unknown contender {o:?}");
        }
    }
    if args.reps == 0 {
        bail!("--reps must be at least 1");
    }
    let mut contenders: Vec<Contender> = ALL.iter().copied().filter(|c| wanted(c.id())).collect();
    if args.only.iter().any(|o| o == "rss") && !contenders.contains(&Contender::SidecarDump) {
        contenders.insert(0, Contender::SidecarDump);
    }
    let do_latency = wanted("latency");
    let do_io = wanted("io");
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let bin = sidecar_bin(&args)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()?;

    // --- servers ---------------------------------------------------------------
    log.say("starting PostgreSQL, moto S3 and the callback receiver");
    let pg = Postgres::start().context("PostgreSQL (run scripts/install-deps)")?;
    pg.create_role(ROLE, ROLE_PW, true)?;
    let s3 = S3::start().context("moto_server (run scripts/install-deps)")?;
    s3.create_bucket(BUCKET)?;
    let receiver = CallbackReceiver::start()?;
    let receiver_lat = CallbackReceiver::start()?;
    let pg_settings = pg.psql(
        "postgres",
        "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings \
         WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers','max_wal_size','server_version')",
    )?;
    let postmaster: i32 = fs::read_to_string(pg.data_dir().join("postmaster.pid"))?
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("postmaster.pid")?;
    let machine = Machine {
        postmaster,
        disks: disks(),
        tck: clk_tck(),
        cores,
    };

    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    fs::create_dir_all(&parent)?;
    let work_tmp = tempfile::Builder::new()
        .prefix("numikube-bench-")
        .tempdir_in(&parent)?;
    let work = work_tmp.path().to_path_buf();
    let _keep_guard = if args.keep {
        log.say(format!("work dir kept: {}", work.display()));
        std::mem::forget(work_tmp);
        None
    } else {
        Some(work_tmp)
    };
    let env = Env {
        pg: &pg,
        s3: &s3,
        bin: bin.clone(),
        work: work.clone(),
    };

    // --- the data ----------------------------------------------------------------
    let spec = fixture::Spec::bench(args.size);
    log.say(format!(
        "building the production database ({} target, {} filestore files) and its backups",
        mb(args.size),
        spec.filestore_files
    ));
    let t = Instant::now();
    let server_url = pg.url("postgres");
    fixture::create_production_db(&pg.bin_dir, &server_url, PROD_DB, &spec)?;
    let db_bytes = fixture::database_size(&pg.bin_dir, &server_url, PROD_DB)?;
    let t_db = t.elapsed().as_secs_f64();
    let prod_fs = work.join("prod-filestore");
    let fs_sum = fixture::write_filestore(&prod_fs, &spec, PROD_DB)?;
    let dump = work.join(format!("{PROD_DB}.dump"));
    let zip = work.join(format!("{PROD_DB}.zip"));
    let t2 = Instant::now();
    fixture::dump_custom(&pg.bin_dir, &server_url, PROD_DB, &dump)?;
    let t_dump = t2.elapsed().as_secs_f64();
    let t2 = Instant::now();
    fixture::make_odoo_zip(&pg.bin_dir, &server_url, PROD_DB, &prod_fs, &zip)?;
    let t_zip = t2.elapsed().as_secs_f64();
    let dump_bytes = fs::metadata(&dump)?.len();
    let zip_bytes = fs::metadata(&zip)?.len();
    log.say(format!(
        "database {} in {t_db:.0}s; filestore {} files {}; custom dump {} in {t_dump:.0}s; zip {} in {t_zip:.0}s",
        mb(db_bytes),
        fs_sum.files,
        mb(fs_sum.bytes),
        mb(dump_bytes),
        mb(zip_bytes)
    ));
    // The production lives elsewhere: keep only its backups.
    env.drop_db(PROD_DB)?;
    fs::remove_dir_all(&prod_fs)?;

    // The zip as Odoo unpacks it, for the Odoo baseline and the FILE_COPY template's filestore.
    let unpacked = work.join("odoo-unpacked");
    {
        let t = Instant::now();
        let mut z = zip::ZipArchive::new(fs::File::open(&zip)?)?;
        z.extract(&unpacked)?;
        log.say(format!(
            "zip unpacked for the baselines in {:.0}s",
            t.elapsed().as_secs_f64()
        ));
    }
    let dump_sql = unpacked.join("dump.sql");
    let unpacked_fs = unpacked.join("filestore");

    // --- uploads ---------------------------------------------------------------------
    let stamp = chrono_like_stamp();
    let key_dump = format!("benchdump-{stamp}.dump");
    let key_zip = format!("benchzip-{stamp}.zip");
    let t = Instant::now();
    s3.put_file(BUCKET, &key_dump, &dump)?;
    let up_dump = t.elapsed().as_secs_f64();
    let t = Instant::now();
    s3.put_file(BUCKET, &key_zip, &zip)?;
    let up_zip = t.elapsed().as_secs_f64();
    log.say(format!(
        "uploaded {key_dump} in {up_dump:.1}s and {key_zip} in {up_zip:.1}s (multipart, streamed)"
    ));

    // --- io figures ------------------------------------------------------------------------
    let mut io = json!({});
    if do_io {
        let (bytes, secs) = s3_get_to_null(&rt, &s3, BUCKET, &key_dump)?;
        io["moto_download_mb_s"] = json!(bytes as f64 / 1e6 / secs);
        io["moto_download_bytes"] = json!(bytes);
        let ddf = work.join("dd.bin");
        let t = Instant::now();
        run_cmd(
            Command::new("dd")
                .arg("if=/dev/zero")
                .arg(format!("of={}", ddf.display()))
                .args(["bs=1M", "count=1024", "conv=fdatasync"]),
            "dd",
        )?;
        let dd_s = t.elapsed().as_secs_f64();
        let _ = fs::remove_file(&ddf);
        io["disk_write_mb_s"] = json!((1u64 << 30) as f64 / 1e6 / dd_s);
        let durable = durable_write_ms(&work.join("fsync-probe"), 100)?;
        io["durable_small_write_ms"] = json!(durable);
        log.say(format!(
            "moto GET of the dump: {:.0} MB/s; dd 1 GiB conv=fdatasync: {:.0} MB/s; \
             small durable write (write, fsync, rename, fsync dir): {durable:.2} ms",
            io["moto_download_mb_s"].as_f64().unwrap_or(0.0),
            io["disk_write_mb_s"].as_f64().unwrap_or(0.0)
        ));
    }

    // --- the FILE_COPY template ---------------------------------------------------------
    let tpl_fs = work.join("baseline-template-filestore");
    if contenders.contains(&Contender::FileCopy) {
        let t = Instant::now();
        run_cmd(env.role_cmd("createdb").arg(TEMPLATE_DB), "createdb")?;
        run_cmd(
            env.role_cmd("pg_restore")
                .args(["--no-owner", "--no-privileges", "--exit-on-error", "-j"])
                .arg(cores.to_string())
                .args(["-d", TEMPLATE_DB])
                .arg(&dump),
            "pg_restore (template)",
        )?;
        run_cmd(
            Command::new("cp").arg("-a").arg(&unpacked_fs).arg(&tpl_fs),
            "cp -a filestore",
        )?;
        env.settle()?;
        log.say(format!(
            "FILE_COPY template {TEMPLATE_DB} restored in {:.0}s",
            t.elapsed().as_secs_f64()
        ));
    }

    // --- sidecars (all started before any restore: a start cleans up unfinished work) ---
    let need_cold = contenders
        .iter()
        .any(|c| matches!(c, Contender::SidecarDump | Contender::SidecarZip));
    let need_warm = contenders.contains(&Contender::SidecarRepeat);
    let cold = if need_cold {
        Some(env.start_sidecar("cold", 100_000, "numikube_staging_template_cache = False")?)
    } else {
        None
    };
    let warm = if need_warm {
        Some(env.start_sidecar("warm", 100_000, "")?)
    } else {
        None
    };
    let refuse = if do_latency {
        Some(env.start_sidecar("limit0", 0, "")?)
    } else {
        None
    };
    let accept = if do_latency {
        Some(env.start_sidecar("accept", 1_000_000, "")?)
    } else {
        None
    };
    log.say("sidecars listening");

    // --- warm-up of the repeat contender ----------------------------------------------------
    let mut warmup = json!(null);
    if let Some(w) = &warm {
        log.say("repeat contender: one untimed copy to build the template");
        let (s, db) = sidecar_copy(&rt, w, &receiver, "benchdump", "warmup", &machine)?;
        let t = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut ready = false;
        while Instant::now() < deadline {
            let in_log = w.log().contains("template kept");
            let in_db = pg
                .psql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'numikube\\_tpl\\_%' AND datistemplate")?
                .trim()
                != "0";
            if in_log || in_db {
                ready = true;
                break;
            }
            if w.log().contains("template") && w.log().contains("failed") {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let template_wait = t.elapsed().as_secs_f64();
        sidecar_drop(&rt, w, &db)?;
        env.settle()?;
        log.say(format!(
            "warm-up copy {:.1}s; template {} after {template_wait:.1}s more",
            s.secs,
            if ready {
                "ready"
            } else {
                "NOT seen (no template cache in this build?)"
            }
        ));
        warmup = json!({"warmup_copy_s": s.secs, "template_ready": ready, "template_ready_after_s": template_wait});
    }

    // --- the rounds -------------------------------------------------------------------------
    let mut samples: BTreeMap<Contender, Vec<Sample>> = BTreeMap::new();
    let mut failures: BTreeMap<Contender, Vec<String>> = BTreeMap::new();
    let mut warnings: Vec<String> = Vec::new();
    let rss = cold.as_ref().map(|c| RssSampler::start(c.pid()));
    let rounds_start = Instant::now();
    for rep in 0..args.reps {
        let n = contenders.len();
        for k in 0..n {
            let c = contenders[(k + rep) % n];
            let tag = format!("r{rep}");
            let res: Result<Sample> = (|| match c {
                Contender::SidecarDump | Contender::SidecarZip | Contender::SidecarRepeat => {
                    let (sc, client) = match c {
                        Contender::SidecarDump => (cold.as_ref().unwrap(), "benchdump"),
                        Contender::SidecarZip => (cold.as_ref().unwrap(), "benchzip"),
                        _ => (warm.as_ref().unwrap(), "benchdump"),
                    };
                    let (s, db) = sidecar_copy(&rt, sc, &receiver, client, &tag, &machine).map_err(|e| {
                        // Who else was in the sidecar's hidden databases when it failed (e.g. autovacuum
                        // blocks a RENAME or a DROP without FORCE).
                        let sessions = pg
                            .psql(
                                "postgres",
                                "SELECT string_agg(datname || ':' || coalesce(backend_type, '') || ':' \
                                 || coalesce(nullif(application_name, ''), '-') || ':' || left(coalesce(query, ''), 60), '; ') \
                                 FROM pg_stat_activity WHERE datname LIKE 'numikube%'",
                            )
                            .unwrap_or_default();
                        e.context(format!("sessions in numikube_* databases right after: [{sessions}]"))
                    })?;
                    if let Err(e) = sidecar_drop(&rt, sc, &db) {
                        // Not the timed part: note it, and clean up as the superuser so the rounds go on.
                        let row = pg
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
                        warnings.push(format!(
                            "{}: {e:#} [pg_database: {row}]; dropped by the bench instead",
                            c.id()
                        ));
                        env.drop_db(&db)?;
                        let _ = fs::remove_dir_all(sc.dir.join("data/filestore").join(&db));
                    }
                    Ok(s)
                }
                Contender::Odoo => {
                    let db = format!("bench_odoo_{tag}");
                    let dest = work.join("odoo-data/filestore").join(&db);
                    fs::create_dir_all(dest.parent().unwrap())?;
                    let a = machine.probe();
                    run_cmd(
                        env.role_cmd("createdb")
                            .args(["-T", "template0", "-E", "UTF8"])
                            .arg(&db),
                        "createdb",
                    )?;
                    let err = run_cmd(
                        env.role_cmd("psql")
                            .args(["-q", "-d", &db, "-f"])
                            .arg(&dump_sql),
                        "psql -f dump.sql",
                    )?;
                    run_cmd(
                        Command::new("cp").arg("-r").arg(&unpacked_fs).arg(&dest),
                        "cp -r filestore",
                    )?;
                    let b = machine.probe();
                    if err.contains("ERROR") {
                        warnings.push(format!(
                            "odoo path: psql said: {}",
                            err.lines().find(|l| l.contains("ERROR")).unwrap_or("")
                        ));
                    }
                    env.drop_db(&db)?;
                    fs::remove_dir_all(&dest)?;
                    Ok(machine.measure(&a, &b))
                }
                Contender::PgRestore | Contender::PgRestoreJ => {
                    let jobs = if c == Contender::PgRestore { 1 } else { cores };
                    let db = format!("bench_pgr{jobs}_{tag}");
                    let a = machine.probe();
                    run_cmd(env.role_cmd("createdb").arg(&db), "createdb")?;
                    run_cmd(
                        env.role_cmd("pg_restore")
                            .args(["--no-owner", "--no-privileges", "--exit-on-error", "-j"])
                            .arg(jobs.to_string())
                            .args(["-d", &db])
                            .arg(&dump),
                        "pg_restore",
                    )?;
                    let b = machine.probe();
                    env.drop_db(&db)?;
                    Ok(machine.measure(&a, &b))
                }
                Contender::FileCopy => {
                    let db = format!("bench_fc_{tag}");
                    let dest = work.join("fc-data/filestore").join(&db);
                    fs::create_dir_all(dest.parent().unwrap())?;
                    let a = machine.probe();
                    run_cmd(
                        env.role_cmd("psql")
                            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
                            .arg(format!(
                                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                                ident(&db),
                                ident(TEMPLATE_DB)
                            )),
                        "CREATE DATABASE … FILE_COPY",
                    )?;
                    run_cmd(
                        Command::new("cp").arg("-al").arg(&tpl_fs).arg(&dest),
                        "cp -al",
                    )?;
                    let b = machine.probe();
                    env.drop_db(&db)?;
                    fs::remove_dir_all(&dest)?;
                    Ok(machine.measure(&a, &b))
                }
            })();
            env.settle()?;
            match res {
                Ok(s) => {
                    log.say(format!(
                        "round {}/{} {:<15} {:>7.2}s  cpu {:>3.0}% iowait {:>3.0}%, cores: pg {:.2} tools {:.2} other {:.2}; {:.0} MB to disk",
                        rep + 1,
                        args.reps,
                        c.id(),
                        s.secs,
                        s.cpu_busy * 100.0,
                        s.iowait * 100.0,
                        s.pg_cores,
                        s.own_cores,
                        s.other_cores,
                        s.written_mb
                    ));
                    samples.entry(c).or_default().push(s);
                }
                Err(e) => {
                    log.say(format!(
                        "round {}/{} {} FAILED: {e:#}",
                        rep + 1,
                        args.reps,
                        c.id()
                    ));
                    failures.entry(c).or_default().push(format!("{e:#}"));
                }
            }
        }
    }
    let rounds_s = rounds_start.elapsed().as_secs_f64();
    let rss_sampled_kib = rss.map(RssSampler::finish);
    let rss_hwm_kib = cold.as_ref().and_then(|c| status_kib(c.pid(), "VmHWM:"));

    // --- latency --------------------------------------------------------------------------
    let mut lat_refused = None;
    let mut lat_accepted = None;
    let mut lat_cleanup = json!(null);
    if let (Some(r), Some(a)) = (&refuse, &accept) {
        log.say(format!(
            "latency: {} clients × {} requests, refused by the limit (limit 0)",
            args.clients, args.requests
        ));
        lat_refused = Some(latency_run(
            &rt,
            r.port,
            args.clients,
            args.requests,
            Arc::new(|t, i| {
                payload(
                    "benchdump",
                    &format!("r{t}-{i}"),
                    "http://127.0.0.1:1/unused".into(),
                )
            }),
        )?);
        log.say(format!(
            "latency: {} clients × {} requests, accepted (client without backup)",
            args.clients, args.requests
        ));
        let cb = receiver_lat.url("/lat?db=prod");
        lat_accepted = Some(latency_run(
            &rt,
            a.port,
            args.clients,
            args.requests,
            Arc::new(move |t, i| payload("benchnone", &format!("l{t}-{i}"), cb.clone())),
        )?);
        // Every accepted job fails fast (no backup of that client) and calls back; then drop their names.
        let expected = lat_accepted.as_ref().map(|l| l.ok).unwrap_or(0) + args.clients;
        let t = Instant::now();
        let got = receiver_lat
            .wait_for(expected, Duration::from_secs(300))
            .map(|v| v.len())
            .unwrap_or_else(|_| receiver_lat.received().len());
        let names: Vec<String> = (0..args.clients)
            .flat_map(|t| (0..=args.requests).map(move |i| format!("benchnone-lab_l{t}-{i}")))
            .collect();
        let dropped = rt.block_on(a.client.drop_databases(TOKEN.into(), names.join(" ")))?;
        lat_cleanup = json!({
            "jobs_called_back": got, "jobs_expected": expected, "wait_s": t.elapsed().as_secs_f64(),
            "dropped": dropped.dropped.len(), "missing": dropped.missing.len(), "refused": dropped.refused.len(),
        });
        log.say(format!("latency: {got}/{expected} accepted jobs called back (failed fast: no backup) in {:.1}s; drop: {} dropped, {} missing", t.elapsed().as_secs_f64(), dropped.dropped.len(), dropped.missing.len()));
    }

    // --- report -----------------------------------------------------------------------------
    let total_s = log.start.elapsed().as_secs_f64();
    let stats = |c: Contender| -> Option<(f64, f64, f64, usize)> {
        let v: Vec<f64> = samples.get(&c)?.iter().map(|s| s.secs).collect();
        if v.is_empty() {
            return None;
        }
        let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = v.iter().cloned().fold(0.0, f64::max);
        Some((median(&v), min, max, v.len()))
    };
    let med = |c: Contender| stats(c).map(|s| s.0);
    let avg = |c: Contender, f: fn(&Sample) -> f64| -> Option<f64> {
        let v = samples.get(&c)?;
        (!v.is_empty()).then(|| v.iter().map(f).sum::<f64>() / v.len() as f64)
    };

    let mut rows = Vec::new();
    for &c in &contenders {
        let s = stats(c);
        rows.push(json!({
            "id": c.id(),
            "contender": c.label(cores),
            "median_s": s.map(|s| s.0),
            "min_s": s.map(|s| s.1),
            "max_s": s.map(|s| s.2),
            "n": s.map(|s| s.3).unwrap_or(0),
            "samples_s": samples.get(&c).map(|v| v.iter().map(|s| s.secs).collect::<Vec<_>>()),
            "cpu_busy_pct": avg(c, |s| s.cpu_busy * 100.0),
            "iowait_pct": avg(c, |s| s.iowait * 100.0),
            "postgres_cores": avg(c, |s| s.pg_cores),
            "tools_cores": avg(c, |s| s.own_cores),
            "other_cores": avg(c, |s| s.other_cores),
            "written_mb": avg(c, |s| s.written_mb),
            "failures": failures.get(&c),
        }));
    }

    let sidecars = [
        Contender::SidecarDump,
        Contender::SidecarZip,
        Contender::SidecarRepeat,
    ];
    let baselines = [
        Contender::Odoo,
        Contender::PgRestore,
        Contender::PgRestoreJ,
        Contender::FileCopy,
    ];
    let mut ratios = Vec::new();
    for s in sidecars {
        for b in baselines {
            if let (Some(x), Some(y)) = (med(s), med(b)) {
                ratios.push(json!({"sidecar": s.id(), "baseline": b.id(), "ratio": x / y}));
            }
        }
    }

    let mut targets = Vec::new();
    let mut ratio_target = |name: String, s: Contender, b: Contender, max: f64| {
        let ratio = match (med(s), med(b)) {
            (Some(x), Some(y)) => Some(x / y),
            _ => None,
        };
        targets.push(
            json!({"target": name, "value": ratio, "limit": max, "unit": "×",
            "met": ratio.map(|r| r <= max)}),
        );
    };
    ratio_target(
        format!("cold first copy (custom dump) ≤ 1.1× pg_restore -j{cores}"),
        Contender::SidecarDump,
        Contender::PgRestoreJ,
        1.1,
    );
    ratio_target(
        "cold first copy (custom dump) ≤ 0.7× Odoo path".into(),
        Contender::SidecarDump,
        Contender::Odoo,
        0.7,
    );
    ratio_target(
        "repeat copy ≤ 1.2× FILE_COPY + cp -al".into(),
        Contender::SidecarRepeat,
        Contender::FileCopy,
        1.2,
    );
    for (what, l) in [
        ("refused by the limit", &lat_refused),
        ("accepted", &lat_accepted),
    ] {
        let p99 = l.as_ref().map(|l| percentile(&l.sorted_ms, 99.0));
        targets.push(json!({"target": format!("staging_run p99 < 25 ms, {} concurrent clients, {what}", args.clients),
            "value": p99, "limit": 25.0, "unit": "ms", "met": p99.map(|v| v < 25.0)}));
    }
    let rss_mib = rss_hwm_kib.map(|k| k as f64 / 1024.0);
    targets.push(json!({"target": "sidecar peak RSS (VmHWM) < 64 MiB during the cold restores", "value": rss_mib,
        "limit": 64.0, "unit": "MiB", "met": rss_mib.map(|v| v < 64.0)}));

    let cpu_model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let report = json!({
        "machine": {"cores": cores, "cpu": cpu_model, "disks": machine.disks,
                    "mem_total_kib": status_meminfo()},
        "postgres": {"settings": pg_settings,
                     "note": "the testbed's cluster settings (fsync off etc.), the same for every contender"},
        "data": {"size_arg": args.size, "database_bytes": db_bytes, "filestore_files": fs_sum.files,
                 "filestore_bytes": fs_sum.bytes, "custom_dump_bytes": dump_bytes, "zip_bytes": zip_bytes,
                 "build_db_s": t_db, "dump_s": t_dump, "zip_s": t_zip,
                 "upload_dump_s": up_dump, "upload_zip_s": up_zip, "keys": [key_dump, key_zip]},
        "io": io,
        "repeat_warmup": warmup,
        "reps": args.reps,
        "results": rows,
        "ratios": ratios,
        "targets": targets,
        "latency": {"clients": args.clients, "requests_per_client": args.requests,
                    "refused_by_limit": lat_refused.as_ref().map(Latency::json),
                    "accepted": lat_accepted.as_ref().map(Latency::json),
                    "accepted_cleanup": lat_cleanup,
                    "note": "accepted requests use a client with no backup in the bucket: each job fails fast, so no database is made and none needs dropping"},
        "rss": {"vmhwm_kib": rss_hwm_kib, "sampled_max_vmrss_kib": rss_sampled_kib,
                "note": "of the sidecar process alone (pg_restore/psql children not counted), after the cold rounds"},
        "warnings": warnings,
        "rounds_s": rounds_s,
        "total_s": total_s,
        "work_dir": if args.keep { Some(work.display().to_string()) } else { None },
    });

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(())
}

fn status_meminfo() -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    s.lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn f(v: &Value, d: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.d$}"),
        None => "-".into(),
    }
}

fn print_text(r: &Value) {
    let mut o = String::new();
    let d = &r["data"];
    o.push_str(&format!(
        "numikube-staging benchmark — {} cores ({}), {} reps each, run took {:.0} s (rounds {:.0} s)\n",
        r["machine"]["cores"], r["machine"]["cpu"].as_str().unwrap_or(""), r["reps"], r["total_s"].as_f64().unwrap_or(0.0),
        r["rounds_s"].as_f64().unwrap_or(0.0)
    ));
    o.push_str(&format!(
        "data: database {} MB on disk, filestore {} files / {} MB, custom dump {} MB, Odoo zip {} MB\n",
        f(&json!(d["database_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        d["filestore_files"],
        f(&json!(d["filestore_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        f(&json!(d["custom_dump_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
        f(&json!(d["zip_bytes"].as_f64().unwrap_or(0.0) / 1e6), 0),
    ));
    o.push_str(&format!(
        "PostgreSQL: {} — {}\n",
        r["postgres"]["settings"].as_str().unwrap_or(""),
        r["postgres"]["note"].as_str().unwrap_or("")
    ));
    if r["io"].get("moto_download_mb_s").is_some() {
        o.push_str(&format!(
            "io: moto GET of the dump {} MB/s; disk write (dd 1 GiB, conv=fdatasync) {} MB/s; \
             small durable write (write+fsync+rename+fsync dir) {} ms\n",
            f(&r["io"]["moto_download_mb_s"], 0),
            f(&r["io"]["disk_write_mb_s"], 0),
            f(&r["io"]["durable_small_write_ms"], 2)
        ));
    }
    if !r["repeat_warmup"].is_null() {
        o.push_str(&format!(
            "repeat: warm-up copy {} s, template ready: {} ({} s after its callback)\n",
            f(&r["repeat_warmup"]["warmup_copy_s"], 1),
            r["repeat_warmup"]["template_ready"],
            f(&r["repeat_warmup"]["template_ready_after_s"], 1)
        ));
    }
    o.push('\n');
    o.push_str(&format!(
        "{:<42} {:>9} {:>15} {:>2} {:>5} {:>7} {:>5} {:>5} {:>5} {:>6}\n",
        "contender",
        "median s",
        "min–max s",
        "n",
        "cpu%",
        "iowait%",
        "pg",
        "tools",
        "other",
        "MB→disk"
    ));
    for row in r["results"].as_array().into_iter().flatten() {
        o.push_str(&format!(
            "{:<42} {:>9} {:>15} {:>2} {:>5} {:>7} {:>5} {:>5} {:>5} {:>6}\n",
            row["contender"].as_str().unwrap_or(""),
            f(&row["median_s"], 2),
            format!("{}–{}", f(&row["min_s"], 2), f(&row["max_s"], 2)),
            row["n"],
            f(&row["cpu_busy_pct"], 0),
            f(&row["iowait_pct"], 0),
            f(&row["postgres_cores"], 2),
            f(&row["tools_cores"], 2),
            f(&row["other_cores"], 2),
            f(&row["written_mb"], 0),
        ));
        if let Some(fl) = row["failures"].as_array() {
            for e in fl {
                o.push_str(&format!(
                    "    failed: {}\n",
                    e.as_str().unwrap_or("").lines().next().unwrap_or("")
                ));
            }
        }
    }
    o.push_str(
        "(averages over the runs: cpu% = busy share of all cores, iowait% = share of all cores waiting on I/O;\n \
         pg / tools / other = cores used by PostgreSQL's server processes / by this bench, its pg_restore, psql,\n \
         cp, moto and the sidecars / by anything else on the machine; MB→disk = written to the disks during the run)\n\n",
    );
    let l = &r["latency"];
    for (k, what) in [
        ("refused_by_limit", "refused by the limit"),
        ("accepted", "accepted"),
    ] {
        let x = &l[k];
        if !x.is_null() {
            o.push_str(&format!(
                "staging_run, {} clients × {} requests, {what}: p50 {} ms, p99 {} ms, max {} ms, {} req/s ({} accepted, {} refused by limit, {} other errors)\n",
                l["clients"], l["requests_per_client"], f(&x["p50_ms"], 1), f(&x["p99_ms"], 1), f(&x["max_ms"], 1),
                f(&x["requests_per_s"], 0), x["accepted"], x["refused_by_limit"], x["other_errors"]
            ));
            // If the sidecar serves these one at a time, each waits for the others: clients / throughput.
            let per = 1e3 / x["requests_per_s"].as_f64().unwrap_or(f64::NAN);
            o.push_str(&format!(
                "    {} ms per request served one after the other; × {} clients = {} ms\n",
                f(&json!(per), 2),
                l["clients"],
                f(&json!(per * l["clients"].as_f64().unwrap_or(0.0)), 1)
            ));
            if let Some(e) = x["first_error"].as_str() {
                o.push_str(&format!("    first error: {e}\n"));
            }
        }
    }
    if !r["rss"]["vmhwm_kib"].is_null() {
        o.push_str(&format!(
            "sidecar RSS during the cold restores: VmHWM {} MiB, sampled max VmRSS {} MiB (sidecar process only)\n",
            f(&json!(r["rss"]["vmhwm_kib"].as_f64().unwrap_or(0.0) / 1024.0), 1),
            f(&json!(r["rss"]["sampled_max_vmrss_kib"].as_f64().unwrap_or(0.0) / 1024.0), 1),
        ));
    }
    o.push_str("\nratios of the sidecar to each baseline (medians):\n");
    for x in r["ratios"].as_array().into_iter().flatten() {
        o.push_str(&format!(
            "  {:<15} / {:<13} = {}×\n",
            x["sidecar"].as_str().unwrap_or(""),
            x["baseline"].as_str().unwrap_or(""),
            f(&x["ratio"], 2)
        ));
    }
    o.push_str("\ntargets (issue 5 item 5):\n");
    for t in r["targets"].as_array().into_iter().flatten() {
        let status = match t["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        o.push_str(&format!(
            "  [{status:^12}] {}: {} {}\n",
            t["target"].as_str().unwrap_or(""),
            f(&t["value"], 2),
            t["unit"].as_str().unwrap_or("")
        ));
    }
    for w in r["warnings"].as_array().into_iter().flatten() {
        o.push_str(&format!("warning: {}\n", w.as_str().unwrap_or("")));
    }
    if let Some(wd) = r["work_dir"].as_str() {
        o.push_str(&format!("work dir kept: {wd}\n"));
    }
    print!("{o}");
}

/// `YYYYmmdd_HHMMSS` (UTC) without a date crate.
fn chrono_like_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}_{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Mean time of a small durable file write as a job journal does it: write
/// 1 KiB to a temporary file, fsync it, rename it, fsync the directory.
fn durable_write_ms(dir: &std::path::Path, n: usize) -> Result<f64> {
    use std::io::Write;
    fs::create_dir_all(dir)?;
    let t = Instant::now();
    for i in 0..n {
        let tmp = dir.join(format!("{i}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&[b'x'; 1024])?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(format!("{i}.json")))?;
        fs::File::open(dir)?.sync_all()?;
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    let _ = fs::remove_dir_all(dir);
    Ok(ms)
}

/// GET of an object from moto through the minio crate (the sidecar's client), bytes dropped; (bytes, seconds).
fn s3_get_to_null(
    rt: &tokio::runtime::Runtime,
    s3: &S3,
    bucket: &str,
    key: &str,
) -> Result<(u64, f64)> {
    use futures::StreamExt;
    use minio::s3::types::S3Api;
    let client = s3.client()?;
    rt.block_on(async move {
        let t = Instant::now();
        let response = client.get_object(bucket, key)?.build().send().await?;
        let (mut stream, _size) = response.into_boxed_stream()?;
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            total += chunk?.len() as u64;
        }
        anyhow::Ok((total, t.elapsed().as_secs_f64()))
    })
}
