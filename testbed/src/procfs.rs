//! What `/proc` says about memory: a process's (`/proc/<pid>/status`), as the
//! benchmark and the memory test read it, and the machine's (`/proc/meminfo`).

/// A `kB` field (e.g. `VmRSS:`, `VmHWM:`) of `/proc/<pid>/status`, in KiB;
/// `None` once the process is gone.
pub fn status_kib(pid: u32, key: &str) -> Option<u64> {
    kib_field(&format!("/proc/{pid}/status"), key)
}

/// A field (e.g. `MemTotal:`) of `/proc/meminfo`, in KiB.
pub fn meminfo_kib(key: &str) -> Option<u64> {
    kib_field("/proc/meminfo", key)
}

/// The number after `key` on its line of the `key  value kB` file at `path`.
fn kib_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}
