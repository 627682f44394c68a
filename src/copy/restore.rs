//! Loading a backup into a (hidden) database with PostgreSQL's own tools.
//!
//! A custom dump is streamed into `pg_restore`'s standard input and plain SQL
//! into `psql`'s, so the backup never sits in memory. An Odoo zip needs its
//! central directory, so it is first spooled to a file on disk; its
//! `dump.sql` is then streamed from the file into `psql` and its `filestore/`
//! extracted beside.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::process::Command;

use super::format::{Format, Sniffed};

/// Why loading a backup failed; each says what failed and, where it helps, what to check.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// A client program could not be started.
    #[error("cannot start {tool}: {source}; is the PostgreSQL client installed (pg_path)?")]
    Spawn {
        /// `pg_restore` or `psql`.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A client program failed; `detail` is the end of what it printed.
    #[error("{tool} failed{status}: {detail}")]
    Tool {
        /// `pg_restore` or `psql`.
        tool: &'static str,
        /// ` (exit status: 1)`, or empty when it stopped reading.
        status: String,
        /// The last lines of its error output.
        detail: String,
    },
    /// Reading, spooling or extracting failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. `reading the backup failed`.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The Odoo zip cannot be used.
    #[error("{0}")]
    Zip(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let what = what.into();
    move |source| RestoreError::Io { what, source }
}

/// Counts the bytes read through it, for the job's progress.
pub struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counting<R> {
    /// Wraps `inner`, adding every byte read to `count`.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> Self {
        Counting { inner, count }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.count.fetch_add(read as u64, Ordering::Relaxed);
        poll
    }
}

/// How to run PostgreSQL's client programs against the target server.
#[derive(Clone)]
pub struct PgTools {
    /// `pg_restore` program.
    pub pg_restore: PathBuf,
    /// `psql` program.
    pub psql: PathBuf,
    /// libpq environment (`PGHOST`, `PGUSER`, …).
    pub env: Vec<(&'static str, String)>,
    /// Parallel jobs for `pg_restore` (1 = stream straight into it).
    pub jobs: usize,
    /// Run the client programs niced (pre-warm work gives way to users').
    pub low_priority: bool,
}

impl PgTools {
    /// As [`PgTools::std_command`], for tokio; killed when dropped.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::from(self.std_command(program));
        cmd.kill_on_drop(true);
        cmd
    }

    /// `program` with the libpq environment, piped stdin and stderr, dying with the sidecar.
    fn std_command(&self, program: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(program);
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        die_with_parent(&mut cmd, self.low_priority);
        cmd
    }

    /// `pg_restore` reading a custom dump from `file`, or standard input when `None`.
    fn pg_restore(&self, db: &str, file: Option<&Path>) -> Command {
        let mut cmd = self.command(&self.pg_restore);
        cmd.args(["--no-owner", "--no-privileges", "--exit-on-error", "--dbname", db]);
        if let Some(file) = file {
            cmd.arg(format!("--jobs={}", self.jobs)).arg(file).stdin(Stdio::null());
        }
        cmd
    }

    /// `psql` running SQL from standard input, stopping at the first error.
    fn psql_args(db: &str) -> [&str; 7] {
        ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f-"]
    }
}

/// A child started by the sidecar is killed when the sidecar dies (even by
/// SIGKILL), so that it cannot keep a half-restored database busy.
fn die_with_parent(cmd: &mut std::process::Command, low_priority: bool) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl and setpriority are async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if low_priority {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            Ok(())
        });
    }
}

/// The last lines of a tool's error output, for the job's error detail.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Feeds `reader` into `cmd`'s standard input and waits for it.
async fn pipe_into(mut cmd: Command, what: &'static str, mut reader: impl AsyncRead + Unpin) -> Result<(), RestoreError> {
    let mut child = cmd.spawn().map_err(|source| RestoreError::Spawn { tool: what, source })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = tokio::spawn(async move {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf).await;
        buf
    });
    // A tool reading a file instead has no standard input to feed.
    let copied = match child.stdin.take() {
        Some(mut stdin) => {
            let copied = tokio::io::copy(&mut reader, &mut stdin).await;
            let _ = stdin.shutdown().await;
            copied
        }
        None => Ok(0),
    };
    if let Err(e) = copied {
        // The tool stopped reading (it failed) or the backup stream broke.
        let status = child.wait().await;
        let detail = tail(&errors.await.unwrap_or_default());
        if status.map(|s| s.success()).unwrap_or(false) || detail.is_empty() {
            return Err(io("reading the backup failed")(e));
        }
        return Err(RestoreError::Tool { tool: what, status: String::new(), detail });
    }
    let status = child.wait().await.map_err(io(format!("{what} could not be waited for")))?;
    let detail = tail(&errors.await.unwrap_or_default());
    if !status.success() {
        return Err(RestoreError::Tool { tool: what, status: format!(" ({status})"), detail });
    }
    Ok(())
}

/// Restores `backup` into the existing empty database `db`.
///
/// An Odoo zip's filestore goes to `filestore_dir`; `spool_dir` holds
/// downloads that need a file (removed afterwards, also on error).
/// `restoring` is called when the download ends and loading begins.
pub async fn restore(
    tools: &PgTools,
    backup: Sniffed,
    db: &str,
    filestore_dir: &Path,
    spool_dir: &Path,
    restoring: &(dyn Fn() + Sync),
) -> Result<(), RestoreError> {
    match backup.format {
        Format::Custom if tools.jobs > 1 => {
            // Measured (README, Benchmark): on a multi-core host a parallel
            // restore from a file beats streaming into a single pg_restore by
            // far more than the download costs.
            let mut reader = backup.reader;
            let spool = spool_to_file(&mut reader, spool_dir, ".dump").await?;
            restoring();
            pipe_into(tools.pg_restore(db, Some(spool.path())), "pg_restore", tokio::io::empty()).await
        }
        Format::Custom => {
            restoring();
            pipe_into(tools.pg_restore(db, None), "pg_restore", backup.reader).await
        }
        Format::PlainSql => {
            restoring();
            let mut cmd = tools.command(&tools.psql);
            cmd.args(PgTools::psql_args(db));
            pipe_into(cmd, "psql", backup.reader).await
        }
        Format::OdooZip => restore_zip(tools, backup, db, filestore_dir, spool_dir, restoring).await,
    }
}

/// Writes a stream to a temporary file in `dir` (deleted when dropped).
async fn spool_to_file(reader: &mut BackupReaderRef<'_>, dir: &Path, suffix: &str) -> Result<tempfile::NamedTempFile, RestoreError> {
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let spool = tempfile::Builder::new()
        .prefix("backup-")
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(io(format!("cannot create a spool file in {}", dir.display())))?;
    let mut file = tokio::fs::File::create(spool.path()).await.map_err(io("cannot write the spool file"))?;
    tokio::io::copy(reader, &mut file)
        .await
        .map_err(io(format!("downloading the backup to {} failed", spool.path().display())))?;
    file.flush().await.map_err(io("writing the spool file failed"))?;
    Ok(spool)
}

/// A borrowed backup stream.
type BackupReaderRef<'a> = std::pin::Pin<Box<dyn AsyncRead + Send + 'a>>;

async fn restore_zip(
    tools: &PgTools,
    mut backup: Sniffed,
    db: &str,
    filestore_dir: &Path,
    spool_dir: &Path,
    restoring: &(dyn Fn() + Sync),
) -> Result<(), RestoreError> {
    let spool = spool_to_file(&mut backup.reader, spool_dir, ".zip").await?;
    restoring();
    let tools = tools.clone();
    let db = db.to_string();
    let filestore_dir = filestore_dir.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), RestoreError> {
        let zip_file = std::fs::File::open(spool.path()).map_err(io("cannot reopen the spooled zip"))?;
        let mut archive = zip::ZipArchive::new(std::io::BufReader::new(zip_file))
            .map_err(|e| RestoreError::Zip(format!("the backup zip is unreadable (corrupt or truncated?): {e}")))?;
        load_dump_sql(&tools, &mut archive, &db)?;
        extract_filestore(&mut archive, &filestore_dir)
    })
    .await
    .map_err(|e| RestoreError::Zip(format!("the zip restore task failed: {e}")))?
}

/// Streams the zip's `dump.sql` into `psql` (this runs on a blocking thread,
/// which stays busy until `psql` is done, so the child's death signal cannot
/// fire early).
fn load_dump_sql(tools: &PgTools, archive: &mut zip::ZipArchive<std::io::BufReader<std::fs::File>>, db: &str) -> Result<(), RestoreError> {
    let mut entry = archive
        .by_name("dump.sql")
        .map_err(|_| RestoreError::Zip("the zip has no dump.sql: it is not an Odoo backup".into()))?;
    let mut cmd = tools.std_command(&tools.psql);
    cmd.args(PgTools::psql_args(db));
    let mut child = cmd.spawn().map_err(|source| RestoreError::Spawn { tool: "psql", source })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut buf);
        buf
    });
    let copied = std::io::copy(&mut entry, &mut stdin);
    drop(stdin);
    let status = child.wait().map_err(io("psql could not be waited for"))?;
    let detail = tail(&errors.join().unwrap_or_default());
    match copied {
        Err(e) if status.success() || detail.is_empty() => Err(io("reading dump.sql from the zip failed")(e)),
        _ if !status.success() => Err(RestoreError::Tool { tool: "psql", status: format!(" ({status})"), detail }),
        _ => Ok(()),
    }
}

/// Extracts `filestore/…` entries into `dir`, refusing paths that escape it.
fn extract_filestore(archive: &mut zip::ZipArchive<std::io::BufReader<std::fs::File>>, dir: &Path) -> Result<(), RestoreError> {
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| RestoreError::Zip(format!("the backup zip is corrupt: {e}")))?;
        let Some(path) = entry.enclosed_name() else { continue };
        let Ok(relative) = path.strip_prefix("filestore") else { continue };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = dir.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(io(format!("cannot create {}", target.display())))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
        }
        let mut out = std::fs::File::create(&target).map_err(io(format!("cannot write {}", target.display())))?;
        std::io::copy(&mut entry, &mut out).map_err(io(format!("extracting {} failed", target.display())))?;
    }
    Ok(())
}
