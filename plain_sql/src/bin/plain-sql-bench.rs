//! Times loading a plain pg_dump of about 200 MB three ways: `psql -f`, this
//! crate's streaming mode and its parallel mode with 2 connections, and prints the
//! ratios. Needs a running PostgreSQL and its `psql`/`pg_dump` on `PATH` (or in
//! `$PG_BIN`):
//!
//! `cargo run --release -p numikube-plain-sql --features bench --bin plain-sql-bench -- PORT [MB] [SPOOL_DIR] [ROUNDS]`
//!
//! It connects to 127.0.0.1:PORT as `postgres` and (re)creates databases named
//! `plain_sql_bench*`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use numikube_plain_sql::{load, LoadOptions};

/// Source database: an Odoo-like shape, dominated by one large table.
fn source_sql(megabytes: u64) -> String {
    // About 200 bytes of dump per row of the large table.
    let rows = megabytes * 1024 * 1024 / 200;
    format!(
        "CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, email varchar, \
           active bool DEFAULT true, create_date timestamp DEFAULT now());
         CREATE TABLE mail_message (id serial PRIMARY KEY, model varchar, res_id int, \
           author_id int REFERENCES res_partner(id), body text, subject varchar, \
           message_type varchar NOT NULL, date timestamp);
         CREATE TABLE ir_attachment (id serial PRIMARY KEY, name varchar, res_model varchar, res_id int, \
           checksum varchar(40), file_size int);
         CREATE INDEX mail_message_model_res_id_idx ON mail_message (model, res_id);
         CREATE INDEX mail_message_author_id_idx ON mail_message (author_id);
         CREATE INDEX mail_message_date_idx ON mail_message (date);
         CREATE INDEX ir_attachment_res_idx ON ir_attachment (res_model, res_id);
         CREATE INDEX res_partner_email_idx ON res_partner (email);
         INSERT INTO res_partner (name, email) SELECT 'Partner ' || i, 'partner' || i || '@example.com' \
           FROM generate_series(1, 50000) i;
         INSERT INTO mail_message (model, res_id, author_id, body, subject, message_type, date) \
           SELECT 'sale.order', i % 20000, 1 + i % 50000, \
             '<p>Message ' || i || ' ' || md5(i::text) || ' ' || md5((i * 7)::text) || '</p>', \
             'Subject ' || i, 'comment', timestamp '2024-01-01' + i * interval '1 minute' \
           FROM generate_series(1, {rows}) i;
         INSERT INTO ir_attachment (name, res_model, res_id, checksum, file_size) \
           SELECT 'file' || i || '.pdf', 'account.move', i % 30000, md5(i::text), i % 100000 \
           FROM generate_series(1, {attachments}) i;",
        attachments = rows / 5
    )
}

fn pg_program(name: &str) -> PathBuf {
    std::env::var_os("PG_BIN").map(|d| Path::new(&d).join(name)).unwrap_or_else(|| name.into())
}

/// Runs `psql` on database `db` with `args`.
fn psql(port: u16, db: &str, args: &[&str]) {
    let status = Command::new(pg_program("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-p", &port.to_string(), "-d", db])
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("psql runs");
    assert!(status.success(), "psql {args:?} failed");
}

fn recreate(port: u16, db: &str) {
    psql(port, "postgres", &["-c", &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"), "-c", &format!("CREATE DATABASE {db}")]);
}

fn counts(port: u16, db: &str) -> String {
    let out = Command::new(pg_program("psql"))
        .args(["-X", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres", "-p", &port.to_string(), "-d", db, "-c"])
        .arg(
            "SELECT (SELECT count(*) FROM mail_message) || ' ' || (SELECT count(*) FROM ir_attachment) || ' ' || \
             (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') || ' ' || \
             (SELECT count(*) FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND convalidated)",
        )
        .output()
        .expect("psql runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("usage: plain-sql-bench PORT [MB] [SPOOL_DIR] [ROUNDS]");
    let megabytes: u64 = args.get(2).and_then(|m| m.parse().ok()).unwrap_or(200);
    let rounds: usize = args.get(4).and_then(|r| r.parse().ok()).unwrap_or(3);
    let spool = PathBuf::from(args.get(3).cloned().unwrap_or_else(|| std::env::temp_dir().to_string_lossy().into()));
    let dump = spool.join(format!("plain_sql_bench_{megabytes}.sql"));
    if !dump.exists() {
        recreate(port, "plain_sql_bench_src");
        psql(port, "plain_sql_bench_src", &["-c", &source_sql(megabytes), "-c", "VACUUM ANALYZE"]);
        let out = Command::new(pg_program("pg_dump"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p", &port.to_string(), "--format=plain", "--no-owner"])
            .arg("-f")
            .arg(&dump)
            .arg("plain_sql_bench_src")
            .status()
            .expect("pg_dump runs");
        assert!(out.success());
    }
    let size = std::fs::metadata(&dump).unwrap().len();
    println!("dump: {} ({:.0} MB)", dump.display(), size as f64 / 1e6);
    let expected = counts(port, "plain_sql_bench_src");

    // The contenders take turns, round after round, and each one's median counts:
    // the machine may be shared.
    const CONTENDERS: [&str; 3] = ["psql -f", "stream (jobs=1)", "parallel (jobs=2)"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); CONTENDERS.len()];
    for round in 1..=rounds {
        for (n, how) in CONTENDERS.iter().enumerate() {
            let db = format!("plain_sql_bench_{n}");
            recreate(port, &db);
            let start = Instant::now();
            let cpu = cpu_seconds();
            if n == 0 {
                psql(port, &db, &["-f", &dump.to_string_lossy()]);
            } else {
                let mut target = tokio_postgres::Config::new();
                target.host("127.0.0.1").port(port).user("postgres").dbname(&db);
                let mut opts = LoadOptions::new(target);
                if n == 2 {
                    opts.jobs = 2;
                    opts.spool_dir = Some(spool.clone());
                }
                let file = tokio::fs::File::open(&dump).await.unwrap();
                let report = load(file, &opts).await.unwrap_or_else(|e| panic!("{how}: {e}"));
                println!("  {report}");
            }
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(counts(port, &db), expected, "{how} loads the same rows, indexes and constraints");
            println!("round {round}: {how:<18} {secs:6.1} s (this process: {:.1} s CPU)", cpu_seconds() - cpu);
            times[n].push(secs);
            recreate(port, &db);
        }
    }
    let medians: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
    println!("peak RSS of this process (the loader's runs; psql is a child): {}", peak.trim_start_matches("VmHWM:").trim());
    for (how, secs) in CONTENDERS.iter().zip(&medians) {
        println!("{how:<18} median {secs:6.1} s  {:.2}x psql -f", secs / medians[0]);
    }
}
