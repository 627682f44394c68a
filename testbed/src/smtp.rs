//! An SMTP server that keeps every message: Python `aiosmtpd` with its `Mailbox`
//! handler writing to a Maildir.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use crate::util;

/// A real SMTP server (`python3 -m aiosmtpd`, no TLS, no authentication) on
/// `127.0.0.1:`[`port`](Self::port) that stores each message it accepts; stopped
/// and its Maildir removed on `Drop`.
pub struct Smtp {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    child: Option<Child>,
    maildir: PathBuf,
    dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts aiosmtpd with the venv's Python (the first `python3` on `PATH` that
    /// belongs to a venv, else the venv of `scripts/install-deps`) on a free port;
    /// returns once it sends its `220` greeting.
    pub fn start() -> anyhow::Result<Smtp> {
        let python = util::python3()?;
        let dir = tempfile::Builder::new().prefix("numikube-smtp-").tempdir()?;
        let mut smtp = Smtp { port: 0, child: None, maildir: dir.path().join("Maildir"), dir };
        let log_path = smtp.dir.path().join("aiosmtpd.log");
        for _ in 0..5 {
            smtp.port = crate::free_port();
            let log = File::options().create(true).append(true).open(&log_path)?;
            let mut child = Command::new(&python)
                .args(["-m", "aiosmtpd", "-n", "-l"])
                .arg(format!("127.0.0.1:{}", smtp.port))
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&smtp.maildir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot run {} -m aiosmtpd", python.display()))?;
            let port = smtp.port;
            let mut exited = false;
            let up = util::wait_until(Duration::from_secs(30), || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited || util::probe(port, b"QUIT\r\n").is_some_and(|a| a.starts_with("220"))
            });
            if up && !exited {
                smtp.child = Some(child);
                return Ok(smtp);
            }
            util::terminate(&mut child);
            let log = util::tail(&log_path, 2000);
            if !log.contains("already in use") {
                bail!("aiosmtpd did not start on port {port} (is it installed? run scripts/install-deps):\n{log}");
            }
        }
        bail!("aiosmtpd found no free port:\n{}", util::tail(&log_path, 2000))
    }

    /// Host to connect to: always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Every message received so far, oldest first, as raw RFC 822 text (aiosmtpd
    /// adds `X-Peer`, `X-MailFrom` and `X-RcptTo` headers).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(self.maildir.join(sub)).into_iter().flatten().flatten())
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, p)| std::fs::read(p).ok()).map(|b| String::from_utf8_lossy(&b).into_owned()).collect()
    }

    /// Waits until at least `n` messages were received and returns them all;
    /// fails after `timeout` saying how many arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> anyhow::Result<Vec<String>> {
        let mut got = Vec::new();
        if util::wait_until(timeout, || {
            got = self.messages();
            got.len() >= n
        }) {
            Ok(got)
        } else {
            bail!("expected {n} mail(s) within {timeout:?}, got {}", got.len())
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            util::terminate(&mut child);
        }
    }
}
