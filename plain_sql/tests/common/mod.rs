//! A throw-away PostgreSQL cluster per test and the helpers the test files share.
#![allow(dead_code)]

use std::path::Path;

use numikube_plain_sql::{load, LoadError, LoadOptions, LoadReport};
pub use numikube_testbed::Postgres;

/// Starts a cluster.
pub fn cluster() -> Postgres {
    Postgres::start().expect("PostgreSQL starts (run scripts/install-deps)")
}

/// Creates an empty database `name` (owned by `owner` when given).
pub fn create_db(pg: &Postgres, name: &str, owner: Option<&str>) {
    let owner = owner.map(|o| format!(" OWNER \"{o}\"")).unwrap_or_default();
    pg.psql("postgres", &format!("CREATE DATABASE \"{name}\"{owner};")).unwrap();
}

/// Connection settings of database `db` as `user`.
pub fn target(pg: &Postgres, db: &str, user: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1").port(pg.port).user(user).dbname(db);
    c
}

/// How to load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum How {
    /// One connection, no spool.
    Stream,
    /// Spooled, over this many connections.
    Parallel(usize),
}

/// Both modes, for tests that must hold in each.
pub const BOTH: [How; 2] = [How::Stream, How::Parallel(2)];

/// Loads `sql` into a new database `db` as the superuser.
pub async fn load_new(pg: &Postgres, db: &str, sql: &[u8], how: How) -> Result<LoadReport, LoadError> {
    create_db(pg, db, None);
    load_as(pg, db, "postgres", sql, how).await
}

/// Loads `sql` into the existing database `db` as `user`.
pub async fn load_as(pg: &Postgres, db: &str, user: &str, sql: &[u8], how: How) -> Result<LoadReport, LoadError> {
    let spool = tempfile::tempdir().unwrap();
    let mut opts = LoadOptions::new(target(pg, db, user));
    if let How::Parallel(jobs) = how {
        opts.jobs = jobs;
        opts.spool_dir = Some(spool.path().to_owned());
    }
    let report = load(sql, &opts).await;
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0, "the spool file is gone");
    report
}

/// The result of `sql` in `db`, one row per line, columns separated by `|`.
pub fn query(pg: &Postgres, db: &str, sql: &str) -> String {
    pg.psql(db, sql).unwrap()
}

/// Whether table `name` exists in `db`.
pub fn has_table(pg: &Postgres, db: &str, name: &str) -> bool {
    query(pg, db, &format!("SELECT count(*) FROM pg_class WHERE relname = '{name}';")) == "1"
}

/// Runs `pg_dump --format=plain` of `db`.
pub fn pg_dump(pg: &Postgres, db: &str, extra: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(pg.bin_dir.join("pg_dump"))
        .args(["-h", "127.0.0.1", "-U", "postgres", "--format=plain"])
        .arg("-p")
        .arg(pg.port.to_string())
        .args(extra)
        .arg(db)
        .output()
        .expect("pg_dump runs");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A path for a marker file that a refused command would have created.
pub fn marker(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}
