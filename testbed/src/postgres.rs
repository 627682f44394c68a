//! A throw-away PostgreSQL cluster (`initdb` + `pg_ctl`) on a free loopback port.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};

use crate::util;

/// A throw-away PostgreSQL cluster, listening on `127.0.0.1:`[`port`](Self::port)
/// and on a Unix socket in [`socket_dir`](Self::socket_dir), superuser `postgres`,
/// `trust` authentication, `fsync = off`.
///
/// PostgreSQL refuses to run as root: when the tests run as root, `initdb`,
/// `pg_ctl` and `postgres` run as `nobody` (through `setpriv`) and the cluster's
/// directory belongs to `nobody`. Dropping the value stops the server
/// (`pg_ctl stop -m immediate`) and removes the directory, also when a test panics.
pub struct Postgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Directory of the Unix socket (`-k`); usable as `host` by libpq and tokio-postgres.
    pub socket_dir: PathBuf,
    /// Directory of the PostgreSQL programs used (`initdb`, `pg_ctl`, `psql`, `pg_dump`, …).
    pub bin_dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    /// uid and gid to run the server as (Some when running as root).
    run_as: Option<(u32, u32)>,
    running: bool,
    // Last field: removed after the server is stopped.
    dir: tempfile::TempDir,
}

/// Directory of the PostgreSQL server programs: `$PG_BIN`, else `pg_config --bindir`,
/// else the newest `/usr/lib/postgresql/*/bin`; each only if it holds `initdb`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some((_, dir)) => Ok(dir),
        None => bail!(
            "PostgreSQL server programs not found ($PG_BIN, pg_config --bindir, \
             /usr/lib/postgresql/*/bin): run scripts/install-deps"
        ),
    }
}

/// uid and gid of `nobody`.
fn nobody() -> anyhow::Result<(u32, u32)> {
    // SAFETY: getpwnam returns NULL or a pointer to a static passwd entry, read at once.
    unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        if pw.is_null() {
            bail!("running as root and there is no user `nobody` to run PostgreSQL as");
        }
        Ok(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// Quotes an SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Percent-encodes a URL path segment.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Postgres {
    /// Creates a new cluster in a temporary directory and starts it on a free port;
    /// returns once it accepts connections.
    pub fn start() -> anyhow::Result<Postgres> {
        let bin_dir = find_bin_dir()?;
        // SAFETY: geteuid has no preconditions.
        let run_as = if unsafe { libc::geteuid() } == 0 { Some(nobody()?) } else { None };

        // The unprivileged server must be able to reach its directory.
        let mut base = std::env::temp_dir();
        if run_as.is_some() {
            use std::os::unix::fs::PermissionsExt;
            let traversable = std::fs::metadata(&base).map(|m| m.permissions().mode() & 0o001 != 0);
            if !traversable.unwrap_or(false) {
                base = PathBuf::from("/tmp");
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("numikube-pg-")
            .tempdir_in(&base)
            .with_context(|| format!("cannot create a temporary directory in {}", base.display()))?;
        let socket_dir = dir.path().join("sock");
        std::fs::create_dir(&socket_dir)?;
        if let Some((uid, gid)) = run_as {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&socket_dir, Some(uid), Some(gid))?;
        }
        let mut pg = Postgres {
            port: 0,
            socket_dir,
            bin_dir,
            data_dir: dir.path().join("data"),
            log_file: dir.path().join("postgres.log"),
            run_as,
            running: false,
            dir,
        };

        let out = pg.run(
            "initdb",
            [
                "-D".into(),
                pg.data_dir.clone().into_os_string(),
                "-U".into(),
                "postgres".into(),
                "-A".into(),
                "trust".into(),
                "-E".into(),
                "UTF8".into(),
                "--no-locale".into(),
                "--no-sync".into(),
            ],
        )?;
        if !out.status.success() {
            bail!("initdb failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        let conf = format!(
            "\n# numikube-testbed\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = {}\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 200\nlog_min_messages = warning\n",
            literal(&pg.socket_dir.to_string_lossy())
        );
        std::fs::OpenOptions::new().append(true).open(pg.data_dir.join("postgresql.conf"))?.write_all(conf.as_bytes())?;

        // Another process may take the free port first: retry with a new one.
        let mut last_err = None;
        for _ in 0..5 {
            pg.port = crate::free_port();
            match pg.start_again() {
                Ok(()) => return Ok(pg),
                Err(e) => {
                    let log = util::tail(&pg.log_file, 4000);
                    if !log.contains("already in use") {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap())
    }

    /// Runs one of the PostgreSQL programs, as `nobody` when we are root.
    fn run<I: IntoIterator<Item = OsString>>(&self, program: &str, args: I) -> anyhow::Result<Output> {
        let program = self.bin_dir.join(program);
        let mut cmd = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups").arg("--").arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args).current_dir(self.dir.path()).env("LC_ALL", "C").stdin(Stdio::null());
        cmd.output().with_context(|| format!("cannot run {}", program.display()))
    }

    /// Host to connect to over TCP: always `"127.0.0.1"`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Name of the superuser: `"postgres"` (no password, `trust` authentication).
    pub fn user(&self) -> &'static str {
        "postgres"
    }

    /// URL of database `db` as the superuser, e.g. `postgres://postgres@127.0.0.1:5433/postgres`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{}", self.port, encode(db))
    }

    /// libpq key/value connection string of database `db` over TCP as the superuser
    /// (what `tokio_postgres::connect` and `deadpool-postgres` accept).
    pub fn conninfo(&self, db: &str) -> String {
        let db = db.replace('\\', "\\\\").replace('\'', "\\'");
        format!("host=127.0.0.1 port={} user=postgres dbname='{db}'", self.port)
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log file.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Whether the server was started and not stopped since.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Runs `sql` (one or more statements, fed on standard input) with the `psql`
    /// program in database `db` as the superuser, with `ON_ERROR_STOP`; returns
    /// what psql printed in unaligned, tuples-only form (`-A -t`: one row per line,
    /// columns separated by `|`), without the final newline. Fails with psql's
    /// error message when a statement fails.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let psql = Some(self.bin_dir.join("psql"))
            .filter(|p| p.is_file())
            .or_else(|| util::find_in_path("psql"))
            .context("psql not found: run scripts/install-deps")?;
        let mut child = Command::new(psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .args(["-f", "-"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run psql")?;
        let mut stdin = child.stdin.take().unwrap();
        let sql_owned = sql.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(sql_owned.as_bytes()));
        let out = child.wait_with_output()?;
        let _ = writer.join();
        if !out.status.success() {
            bail!("psql in database {db:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// Creates a login role `name` with `password`, allowed to create databases
    /// when `createdb` is true (e.g. the `db_user` of an Odoo configuration).
    pub fn create_role(&self, name: &str, password: &str, createdb: bool) -> anyhow::Result<()> {
        let sql = format!("CREATE ROLE {} LOGIN PASSWORD {}{};", ident(name), literal(password), if createdb { " CREATEDB" } else { "" });
        self.psql("postgres", &sql).map(drop)
    }

    /// Creates the `db_user` of a staging: a login role that may create
    /// databases and roles (the sidecar makes a login role per restore,
    /// docs/contract.md *Containment*).
    pub fn create_db_user(&self, name: &str, password: &str) -> anyhow::Result<()> {
        let sql = format!("CREATE ROLE {} LOGIN PASSWORD {} CREATEDB CREATEROLE;", ident(name), literal(password));
        self.psql("postgres", &sql).map(drop)
    }

    /// What a superuser runs once for a sidecar whose `db_user` is `db_user`
    /// (docs/contract.md, *Hidden*): the NOLOGIN role `<db_user>_staging` that owns
    /// databases while they are hidden, with `db_user` a member.
    pub fn create_work_role(&self, db_user: &str) -> anyhow::Result<()> {
        let work = ident(&format!("{db_user}_staging"));
        self.psql("postgres", &format!("CREATE ROLE {work} NOLOGIN; GRANT {work} TO {};", ident(db_user))).map(drop)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are terminated, the
    /// cluster is kept) so that a test can see what happens while PostgreSQL is
    /// down; [`start_again`](Self::start_again) brings it back on the same port.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.pg_ctl_stop("fast")
    }

    fn pg_ctl_stop(&mut self, mode: &str) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        let out = self.run(
            "pg_ctl",
            ["stop".into(), "-D".into(), self.data_dir.clone().into_os_string(), "-m".into(), mode.into(), "-w".into(), "-s".into()],
        )?;
        if !out.status.success() {
            bail!("pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        self.running = false;
        Ok(())
    }

    /// Starts the server again (after [`stop`](Self::stop)) on the same port and
    /// returns once it accepts connections. Does nothing when it is running.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.running {
            return Ok(());
        }
        let out = self.run(
            "pg_ctl",
            [
                "start".into(),
                "-D".into(),
                self.data_dir.clone().into_os_string(),
                "-l".into(),
                self.log_file.clone().into_os_string(),
                "-o".into(),
                format!("-p {}", self.port).into(),
                "-w".into(),
                "-t".into(),
                "60".into(),
                "-s".into(),
            ],
        )?;
        if !out.status.success() {
            // pg_ctl may have left a postmaster behind that is still starting.
            let _ = self.run(
                "pg_ctl",
                ["stop".into(), "-D".into(), self.data_dir.clone().into_os_string(), "-m".into(), "immediate".into(), "-s".into()],
            );
            bail!(
                "PostgreSQL did not start on port {}: {}\n{}",
                self.port,
                String::from_utf8_lossy(&out.stderr).trim(),
                util::tail(&self.log_file, 2000)
            );
        }
        self.running = true;
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running && self.pg_ctl_stop("immediate").is_err() {
            // Last resort: kill the postmaster named in postmaster.pid.
            if let Ok(pid) = std::fs::read_to_string(self.data_dir.join("postmaster.pid")) {
                if let Some(pid) = pid.lines().next().and_then(|l| l.trim().parse::<libc::pid_t>().ok()) {
                    // SAFETY: kill(2) on the postmaster of our own cluster.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        // `dir` (a TempDir) removes the directory after this.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(encode("cosmos-lab_1 x"), "cosmos-lab_1%20x");
    }
}
