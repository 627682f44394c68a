//! What `/proc` says about a process: its memory, as the benchmark and the
//! memory test read it.

/// A `kB` field (e.g. `VmRSS:`, `VmHWM:`) of `/proc/<pid>/status`, in KiB;
/// `None` once the process is gone.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
