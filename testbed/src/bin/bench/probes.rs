//! Readings of the machine around each timed run: CPU (`/proc/stat`), the CPU
//! of PostgreSQL's and of the bench's process trees, disk writes
//! (`/proc/diskstats`), and the sidecar's memory while it restores.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use numikube_testbed::{procfs, Postgres};

/// The machine's CPU counters, in clock ticks summed over all cores.
#[derive(Clone, Copy, Default)]
struct CpuTimes {
    /// user+nice+system+idle+iowait+irq+softirq+steal.
    total: u64,
    /// Idle.
    idle: u64,
    /// Waiting on I/O.
    iowait: u64,
}

/// The first (`cpu`) line of `/proc/stat`.
fn read_cpu() -> CpuTimes {
    let s = fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = s.lines().next().unwrap_or("");
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 5 {
        return CpuTimes::default();
    }
    // user nice system idle iowait irq softirq steal (guest is inside user)
    let total: u64 = v.iter().take(8).sum();
    CpuTimes { total, idle: v[3], iowait: v[4] }
}

/// utime+stime+cutime+cstime (clock ticks) of a process from `/proc/<pid>/stat`, and its ppid.
fn proc_stat(pid: i32) -> Option<(i32, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // after ") ": state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
    let ppid = f.get(1)?.parse().ok()?;
    let t: u64 = (11..=14).filter_map(|i| f.get(i)?.parse::<u64>().ok()).sum();
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

/// CPU ticks used so far by `root` and all its descendants, live ones with their
/// own time (a sidecar's `pg_restore -j` workers are its grandchildren).
fn descendants_ticks(root: i32) -> u64 {
    let procs: Vec<(i32, i32, u64)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| proc_stat(pid).map(|(ppid, t)| (pid, ppid, t)))
        .collect();
    let mut tree = vec![root];
    let mut sum = 0;
    while let Some(pid) = tree.pop() {
        for &(child, ppid, t) in &procs {
            if child == pid {
                sum += t;
            }
            if ppid == pid {
                tree.push(child);
            }
        }
    }
    sum
}

/// Clock ticks per second.
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
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram") && !n.starts_with("dm-") && !n.starts_with("zram"))
        .collect()
}

/// Bytes written so far to the whole disks.
fn disk_written(disks: &[String]) -> u64 {
    let s = fs::read_to_string("/proc/diskstats").unwrap_or_default();
    s.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && disks.iter().any(|d| d == f[2])).then(|| f[9].parse::<u64>().unwrap_or(0) * 512)
        })
        .sum()
}

/// The counters at one instant; two of them make a [`Sample`].
pub struct Probe {
    /// When it was read.
    t: Instant,
    /// The machine's CPU.
    cpu: CpuTimes,
    /// PostgreSQL's process tree.
    pg_ticks: u64,
    /// This program's process tree.
    own_ticks: u64,
    /// Bytes written to the disks.
    written: u64,
}

/// What the probes read: the machine and PostgreSQL's postmaster.
pub struct Machine {
    /// The postmaster's pid, root of PostgreSQL's server processes.
    postmaster: i32,
    /// The whole disks whose writes count.
    pub disks: Vec<String>,
    /// Clock ticks per second.
    tck: f64,
    /// Cores of the machine.
    cores: usize,
}

impl Machine {
    /// The machine that `pg` runs on, with `cores` cores.
    pub fn new(pg: &Postgres, cores: usize) -> Result<Machine> {
        let postmaster: i32 = fs::read_to_string(pg.data_dir().join("postmaster.pid"))?
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("postmaster.pid")?;
        Ok(Machine { postmaster, disks: disks(), tck: clk_tck(), cores })
    }

    /// Reads every counter now.
    pub fn probe(&self) -> Probe {
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

    /// What happened between `a` and `b`.
    pub fn measure(&self, a: &Probe, b: &Probe) -> Sample {
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

/// One timed run of a contender and what the machine did meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall-clock seconds.
    pub secs: f64,
    /// Busy share of all cores (user+system), 0..1.
    pub cpu_busy: f64,
    /// iowait share of all cores, 0..1.
    pub iowait: f64,
    /// Cores' worth of CPU used by PostgreSQL's server processes.
    pub pg_cores: f64,
    /// Cores' worth of CPU used by the bench, its tools, moto and the sidecars.
    pub own_cores: f64,
    /// Busy cores not explained by the two above: other work on the machine.
    pub other_cores: f64,
    /// MB written to the disks.
    pub written_mb: f64,
}

/// Samples VmRSS of `pid` every 50 ms until stopped; keeps the maximum (KiB).
pub struct RssSampler {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The largest VmRSS seen.
    max_kib: Arc<AtomicU64>,
    /// The sampling thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pid`.
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max_kib = Arc::new(AtomicU64::new(0));
        let (s, mx) = (stop.clone(), max_kib.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(v) = procfs::status_kib(pid, "VmRSS:") {
                    mx.fetch_max(v, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssSampler { stop, max_kib, thread: Some(thread) }
    }

    /// Stops sampling; the largest VmRSS seen, in KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max_kib.load(Ordering::Relaxed)
    }
}

/// The CPU's model name, as `/proc/cpuinfo` gives it.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default()
}

/// CPU of PostgreSQL's and of one sidecar's process trees, sampled every
/// 100 ms with the wall clock, to tell what each step of a copy used.
pub struct CpuTrack {
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The sampling thread; gives back the samples.
    thread: Option<std::thread::JoinHandle<Vec<CpuAt>>>,
}

/// One reading of [`CpuTrack`].
#[derive(Clone, Copy, Debug)]
pub struct CpuAt {
    /// When, in seconds since the Unix epoch.
    pub at: f64,
    /// PostgreSQL's server processes, in seconds of CPU so far.
    pub pg: f64,
    /// The sidecar and its descendants (`pg_restore` and its workers), in seconds of CPU so far.
    pub sidecar: f64,
}

impl CpuTrack {
    /// Starts sampling PostgreSQL (from the machine's postmaster) and the sidecar `pid`.
    pub fn start(machine: &Machine, pid: u32) -> CpuTrack {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, postmaster, tck) = (stop.clone(), machine.postmaster, machine.tck);
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                let pg = tree_ticks(postmaster) as f64 / tck;
                let sidecar = descendants_ticks(pid as i32) as f64 / tck;
                samples.push(CpuAt { at, pg, sidecar });
                if s.load(Ordering::Relaxed) {
                    return samples;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        CpuTrack { stop, thread: Some(thread) }
    }

    /// Stops sampling (after one last reading); the readings, oldest first.
    pub fn finish(mut self) -> Vec<CpuAt> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}
