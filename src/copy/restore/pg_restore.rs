//! PostgreSQL's own `pg_restore` for custom dumps: the command, its death
//! with the sidecar, and its progress (the TOC entries `--verbose` reports
//! done against `--list`, and when its data and post-data sections began).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt};
use tokio::process::Command;

use super::{io, RestoreError};

/// How to run PostgreSQL's client programs against the target server.
#[derive(Clone)]
pub struct PgTools {
    /// `pg_restore` program.
    pub pg_restore: PathBuf,
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
        cmd.envs(self.env.iter().map(|(k, v)| (*k, v.as_str()))).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        die_with_parent(&mut cmd, self.low_priority);
        cmd
    }

    /// `pg_restore` reading a custom dump from `file` (verbose, to follow its
    /// progress), or standard input when `None`.
    ///
    /// With `--enable-row-security`: a dump's row-security policies come after
    /// its data, but in parallel a foreign key to a table with forced row
    /// security may be validated after that table's policy; under pg_restore's
    /// default `row_security = off` the validation then fails ("query would be
    /// affected by row-level security policy") or not, by chance. Made
    /// deterministic, the load goes on, and the neutralization's guard refuses
    /// the policy by name when it is on a table the neutralization changes.
    pub fn pg_restore(&self, db: &str, file: Option<&Path>) -> Command {
        let mut cmd = self.command(&self.pg_restore);
        cmd.args(["--no-owner", "--no-privileges", "--exit-on-error", "--enable-row-security", "--dbname", db]);
        if let Some(file) = file {
            cmd.arg("--verbose").arg(format!("--jobs={}", self.jobs)).arg(file).stdin(Stdio::null());
        }
        cmd
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

/// Lines of a tool's error output kept for the job's error detail.
const TAIL_LINES: usize = 8;

/// What a verbose `pg_restore` tells as it goes: the TOC entries done, and
/// when it began the data and the post-data sections.
#[derive(Debug)]
pub struct Followed {
    /// TOC entries restored (the job's progress counter).
    pub done: Arc<AtomicU64>,
    /// When it started.
    started: Instant,
    /// When the first data entry began.
    data: OnceLock<Instant>,
    /// When the last data entry so far finished.
    data_end: Mutex<Option<Instant>>,
}

impl Followed {
    /// Follows a restore starting now, counting entries into `done`.
    pub fn new(done: Arc<AtomicU64>) -> Arc<Followed> {
        Arc::new(Followed { done, started: Instant::now(), data: OnceLock::new(), data_end: Mutex::default() })
    }

    /// Counts `line` if it reports an entry done; notes when the data began and ended.
    fn hear(&self, line: &str) -> bool {
        let data = |kind| matches!(kind, "TABLE DATA" | "SEQUENCE SET" | "BLOB" | "BLOBS" | "LARGE OBJECT" | "BLOB METADATA");
        match entry(line) {
            Some((false, kind)) if data(kind) => {
                let _ = self.data.set(Instant::now());
            }
            Some((true, kind)) if data(kind) => *self.data_end.lock().unwrap() = Some(Instant::now()),
            _ => {}
        }
        let done = is_entry_done(line);
        if done {
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    /// The restore's sections as (name, start, length), the last ending now:
    /// `schema`, `data` (up to its last entry: indexes of tables loaded before
    /// run beside it), `indexes` (what is left after the data, keys too).
    pub fn sections(&self) -> Vec<(&'static str, SystemTime, std::time::Duration)> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let at = |i: Instant| wall - now.duration_since(i);
        let mut marks = vec![("schema", self.started)];
        marks.extend(self.data.get().map(|&i| ("data", i)));
        marks.extend(self.data_end.lock().unwrap().map(|i| ("indexes", i)));
        let ends: Vec<Instant> = marks.iter().skip(1).map(|(_, i)| *i).chain([now]).collect();
        marks.iter().zip(ends).map(|(&(name, from), to)| (name, at(from), to.duration_since(from))).collect()
    }
}

/// Whether a verbose `pg_restore` line says a TOC entry ended (`finished item N
/// KIND …`) or began (`processing item …` serially, `launching item …` in
/// parallel), and the entry's kind.
fn entry(line: &str) -> Option<(bool, &'static str)> {
    let rest = line.strip_prefix("pg_restore: ")?;
    let (ended, item) = match rest.strip_prefix("finished item ") {
        Some(item) => (true, item),
        None => (false, rest.strip_prefix("processing item ").or_else(|| rest.strip_prefix("launching item "))?),
    };
    let kind = item.split_once(' ')?.1;
    ["TABLE DATA", "SEQUENCE SET", "BLOBS", "BLOB METADATA", "BLOB", "LARGE OBJECT", "INDEX", "CONSTRAINT", "FK CONSTRAINT"]
        .into_iter()
        .find(|k| kind.starts_with(k))
        .or(Some("OTHER"))
        .map(|k| (ended, k))
}

/// Reads a tool's error output line by line: counts the TOC entries
/// `pg_restore --verbose` reports done, keeps the last lines for the detail.
async fn watch(stderr: impl AsyncRead + Unpin, followed: Option<Arc<Followed>>) -> String {
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut last: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES + 1);
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(followed) = &followed {
            if followed.hear(&line) {
                continue;
            }
        }
        if line.trim().is_empty() || line.starts_with("pg_restore: launching item") {
            continue;
        }
        last.push_back(line);
        if last.len() > TAIL_LINES {
            last.pop_front();
        }
    }
    error_first(Vec::from(last)).join("\n")
}

/// Puts a tool's first `error:` line first, with the TOC entry it failed on,
/// so that a job's one-line error says what failed and where; drops
/// `pg_restore`'s `while PROCESSING TOC:` header, which says neither.
fn error_first(mut lines: Vec<String>) -> Vec<String> {
    lines.retain(|l| !l.ends_with("while PROCESSING TOC:"));
    let Some(at) = lines.iter().position(|l| l.contains("error: ")) else { return lines };
    let mut error = lines.remove(at);
    if let Some(entry) = lines.iter().position(|l| l.contains("from TOC entry ")) {
        let entry = lines.remove(entry);
        error = format!("{error} ({})", entry.trim_start_matches("pg_restore: "));
    }
    lines.insert(0, error);
    lines
}

/// Whether a `pg_restore --verbose` line reports one TOC entry of `--list`
/// restored: `processing item` in the serial part (but the four header
/// entries `--list` does not show), `finished item` in the parallel one.
fn is_entry_done(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pg_restore: ") else { return false };
    if rest.starts_with("finished item ") {
        return true;
    }
    let Some(item) = rest.strip_prefix("processing item ") else { return false };
    let kind = item.split_whitespace().nth(1).unwrap_or("");
    !matches!(kind, "ENCODING" | "STDSTRINGS" | "SEARCHPATH" | "DATABASE")
}

/// The number of TOC entries in a custom dump (`pg_restore --list`), if it can be read.
pub async fn toc_entries(tools: &PgTools, file: &Path) -> Option<u64> {
    let mut cmd = tools.command(&tools.pg_restore);
    cmd.arg("--list").arg(file).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let out = cmd.output().await.ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().filter(|l| !l.starts_with(';') && !l.trim().is_empty()).count() as u64)
}

/// Feeds `reader` into `cmd`'s standard input and waits for it; with
/// `followed`, hears what a verbose `pg_restore` reports as it goes.
pub async fn pipe_into(
    mut cmd: Command,
    what: &'static str,
    mut reader: impl AsyncRead + Unpin,
    followed: Option<Arc<Followed>>,
) -> Result<(), RestoreError> {
    let mut child = cmd.spawn().map_err(|source| RestoreError::Spawn { tool: what, source })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let errors = tokio::spawn(watch(stderr, followed));
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
        let detail = errors.await.unwrap_or_default();
        if status.map(|s| s.success()).unwrap_or(false) || detail.is_empty() {
            return Err(io("reading the backup failed")(e));
        }
        return Err(RestoreError::Tool { tool: what, status: String::new(), detail });
    }
    let status = child.wait().await.map_err(io(format!("{what} could not be waited for")))?;
    let detail = errors.await.unwrap_or_default();
    if !status.success() {
        return Err(RestoreError::Tool { tool: what, status: format!(" ({status})"), detail });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_split_at_the_first_data_begun_and_the_last_data_finished() {
        let f = Followed::new(Arc::default());
        for line in [
            "pg_restore: processing item 214 TABLE t",
            "pg_restore: processing item 215 SEQUENCE SET s",
            "pg_restore: launching item 3346 TABLE DATA t",
            "pg_restore: finished item 3346 TABLE DATA t",
            "pg_restore: launching item 3203 INDEX t_idx",
            "pg_restore: launching item 3347 TABLE DATA u",
        ] {
            f.hear(line);
        }
        let names: Vec<&str> = f.sections().iter().map(|s| s.0).collect();
        assert_eq!(names, ["schema", "data", "indexes"]);
        assert_eq!(f.done.load(Ordering::Relaxed), 3, "two processed serially, one finished in parallel");
        assert!(f.data_end.lock().unwrap().is_some());
        assert_eq!(entry("pg_restore: launching item 3 FK CONSTRAINT u u_fkey"), Some((false, "FK CONSTRAINT")));
        assert_eq!(entry("pg_restore: finished item 3 INDEX i"), Some((true, "INDEX")));
        assert_eq!(entry("pg_restore: creating TABLE \"public.t\""), None);
    }

    #[test]
    fn the_error_and_its_toc_entry_come_first() {
        let tail = [
            "pg_restore: creating POLICY \"public.ir_mail_server hide\"",
            "pg_restore: while PROCESSING TOC:",
            "pg_restore: from TOC entry 3380; 3256 16789 POLICY public ir_mail_server hide odoo",
            "pg_restore: error: could not execute query: ERROR:  deadlock detected",
            "Command was: CREATE POLICY hide ON public.ir_mail_server;",
        ];
        let lines = error_first(tail.iter().map(|l| l.to_string()).collect());
        assert_eq!(
            lines[0],
            "pg_restore: error: could not execute query: ERROR:  deadlock detected \
             (from TOC entry 3380; 3256 16789 POLICY public ir_mail_server hide odoo)"
        );
        assert_eq!(lines[1..], [tail[0], tail[4]]);
        let plain = vec!["psql: could not connect".to_string()];
        assert_eq!(error_first(plain.clone()), plain);
    }

    #[test]
    fn verbose_lines_count_the_listed_entries_once() {
        for done in [
            "pg_restore: processing item 214 TABLE t",
            "pg_restore: processing item 3354 COMMENT TABLE t",
            "pg_restore: finished item 3346 TABLE DATA t",
            "pg_restore: finished item 3203 FK CONSTRAINT u u_id_fkey",
        ] {
            assert!(is_entry_done(done), "{done}");
        }
        for not in [
            "pg_restore: processing item 3350 ENCODING ENCODING",
            "pg_restore: processing item 3353 DATABASE a",
            "pg_restore: launching item 3346 TABLE DATA t",
            "pg_restore: creating TABLE \"public.t\"",
            "pg_restore: processing data for table \"public.t\"",
            "pg_restore: error: could not execute query",
        ] {
            assert!(!is_entry_done(not), "{not}");
        }
    }
}
