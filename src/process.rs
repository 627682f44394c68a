//! Who is working on what: this process's identity (host, pid, start time),
//! written into journal entries and markers so that a live process's work is
//! never taken over, and a reused pid is not mistaken for its owner.

use serde::{Deserialize, Serialize};

/// The process that owns a journal entry or a hidden database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat`), 0 if unknown.
    pub started: u64,
    /// Host name (`/proc/sys/kernel/hostname`); empty in journals of older versions.
    #[serde(default)]
    pub host: String,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        let pid = std::process::id();
        Owner { pid, started: process_start(pid).unwrap_or(0), host: this_host() }
    }

    /// Whether the owner still runs. A process of another host (sharing the
    /// database server) cannot be checked and counts as alive: its own
    /// sidecar cleans up after it.
    pub fn is_alive(&self) -> bool {
        if !self.host.is_empty() && self.host != this_host() {
            return true;
        }
        self.started != 0 && process_start(self.pid) == Some(self.started)
    }
}

/// This host's name as the kernel knows it (empty when it cannot be read).
pub fn this_host() -> String {
    hostname::get().map(|h| h.to_string_lossy().trim().to_string()).unwrap_or_default()
}

/// The start time of process `pid` (`/proc/<pid>/stat`, read by procfs).
fn process_start(pid: u32) -> Option<u64> {
    procfs::process::Process::new(i32::try_from(pid).ok()?).ok()?.stat().ok().map(|s| s.starttime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Owner::me();
        assert!(me.is_alive());
        assert!(!Owner { started: me.started + 1, ..me.clone() }.is_alive());
        assert!(!Owner { pid: u32::MAX, started: 1, host: me.host.clone() }.is_alive());
        assert!(Owner { pid: u32::MAX, started: 1, host: "another-host".into() }.is_alive(), "another host's process is not ours to judge");
    }
}
