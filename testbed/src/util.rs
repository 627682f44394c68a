//! Shared plumbing: finding programs, polling, child processes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The venv made by `scripts/install-deps`.
pub(crate) fn default_venv() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("NUMIKUBE_VENV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/numikube-staging/venv"))
}

/// First `name` on `PATH`.
pub(crate) fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A program of the test venv: `PATH` first (scripts/test puts the venv's bin
/// first), then the venv of `scripts/install-deps`.
pub(crate) fn venv_tool(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = find_in_path(name) {
        return Ok(p);
    }
    if let Some(p) = default_venv().map(|v| v.join("bin").join(name)).filter(|p| is_executable(p)) {
        return Ok(p);
    }
    anyhow::bail!(
        "`{name}` is neither on PATH nor in the venv of scripts/install-deps \
         ($NUMIKUBE_VENV or ~/.cache/numikube-staging/venv): run scripts/install-deps"
    )
}

/// The Python interpreter of the test venv: the first `python3` on `PATH` when it
/// belongs to a venv, else the venv of `scripts/install-deps` when it exists, else
/// the first `python3` on `PATH`.
pub(crate) fn python3() -> anyhow::Result<PathBuf> {
    let on_path = find_in_path("python3");
    if let Some(p) = &on_path {
        if p.parent().and_then(Path::parent).is_some_and(|v| v.join("pyvenv.cfg").is_file()) {
            return Ok(p.clone());
        }
    }
    if let Some(p) = default_venv().map(|v| v.join("bin/python3")).filter(|p| is_executable(p)) {
        return Ok(p);
    }
    on_path.ok_or_else(|| anyhow::anyhow!("no python3 on PATH: run scripts/install-deps"))
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_millis(500)).is_ok()
}

/// Sends `request` to 127.0.0.1:`port` and returns the first bytes of the answer.
pub(crate) fn probe(port: u16, request: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(request).ok()?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).ok()?;
    (n > 0).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Terminates a child: SIGTERM, up to 5 s to exit, then SIGKILL; reaps it.
pub(crate) fn terminate(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if !wait_until(Duration::from_secs(5), || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Last `max` bytes of a log file, for error messages.
pub(crate) fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// Runs an async block to completion on a private current-thread runtime in a
/// scoped thread, so it works both from plain `#[test]`s and from inside a tokio
/// runtime (`#[tokio::test]`), where `block_on` would panic.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(fut))
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
