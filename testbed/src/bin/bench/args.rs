//! The command line: the flags (`--size`, `--reps`, `--only`, …), what they
//! select ([`Plan`]) and where the sidecar binary is.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::contender::{Contender, ALL};

/// How the production database's bytes are spread over its tables.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Today's fixture: many mid-sized tables (partners, chatter, accounting, attachments).
    Spread,
    /// The same at a sixteenth of the size, beside one message-like table holding the rest.
    OneBigTable,
}

impl Shape {
    /// Its name in `--shape` and the report.
    pub fn id(self) -> &'static str {
        match self {
            Shape::Spread => "spread",
            Shape::OneBigTable => "one-big-table",
        }
    }

    /// What to build for a database of about `bytes`.
    pub fn spec(self, bytes: u64) -> numikube_testbed::fixture::Spec {
        match self {
            Shape::Spread => numikube_testbed::fixture::Spec::bench(bytes),
            Shape::OneBigTable => numikube_testbed::fixture::Spec::one_big_table(bytes),
        }
    }
}

/// Benchmark of the numikube-staging sidecar against PostgreSQL's and Odoo's own restore paths.
#[derive(Parser, Debug)]
#[command(
    about = "Benchmark of the numikube-staging sidecar against Odoo's and PostgreSQL's own restore paths (scripts/bench)",
    long_about = None
)]
pub struct Args {
    /// Size of the Odoo-shaped production database on disk: bytes, or with a suffix K, M, G (powers of 1024).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub size: u64,
    /// The database's shapes, each run in turn on fresh servers: `spread` (many
    /// mid-sized tables), `one-big-table` (one message-like table holds 15/16 of it).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "spread,one-big-table")]
    pub shape: Vec<Shape>,
    /// Timed repetitions of each contender.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Keep the work directory (backups, logs, sidecar configs) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Run only these (comma list): sidecar-dump, sidecar-zip, sidecar-dump-companion,
    /// sidecar-repeat, sidecar-anonymized, sidecar-anonymized-repeat, odoo, pg_restore, pg_restore-j, file_copy, latency, io, rss.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Concurrent clients of the latency test.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Requests per client in the latency test (after one untimed warm-up request each).
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// The sidecar binary (default: `numikube-staging` beside this program, i.e. target/release).
    #[arg(long, env = "NUMIKUBE_SIDECAR_BIN")]
    pub sidecar: Option<PathBuf>,
    /// Parent of the work directory (default: the system's temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print the table of a report saved with --json, and run nothing.
    #[arg(long, value_name = "FILE")]
    pub from_json: Option<PathBuf>,
}

/// A size in bytes, from `1G`, `200M`, `512K`, `1.5GiB` or a plain number.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown unit in {s:?} (use K, M or G)")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("not a size: {s:?}"))?;
    if n.is_nan() || n <= 0.0 {
        return Err(format!("size must be positive: {s:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// What a run measures, as `--only` selects it (everything without it).
pub struct Plan {
    /// The timed contenders, in the order of the first round.
    pub contenders: Vec<Contender>,
    /// Whether to measure `staging_run`'s latency.
    pub latency: bool,
    /// Whether to measure moto's and the disk's speed.
    pub io: bool,
}

impl Plan {
    /// Checks `--only` and `--reps`; `--only rss` brings in the cold sidecar's rounds.
    pub fn new(args: &Args) -> Result<Plan> {
        let wanted = |id: &str| args.only.is_empty() || args.only.iter().any(|o| o == id);
        for o in &args.only {
            if !ALL.iter().any(|c| c.id() == o) && !["latency", "io", "rss"].contains(&o.as_str()) {
                bail!("--only: unknown contender {o:?}");
            }
        }
        if args.reps == 0 {
            bail!("--reps must be at least 1");
        }
        let mut contenders: Vec<Contender> = ALL.iter().copied().filter(|c| wanted(c.id())).collect();
        if args.only.iter().any(|o| o == "rss") && !contenders.contains(&Contender::SidecarDump) {
            contenders.insert(0, Contender::SidecarDump);
        }
        Ok(Plan { contenders, latency: wanted("latency"), io: wanted("io") })
    }
}

/// The sidecar binary: `--sidecar`, else `numikube-staging` beside this program.
pub fn sidecar_bin(args: &Args) -> Result<PathBuf> {
    let p = match &args.sidecar {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.parent().context("no parent dir")?.join("numikube-staging"),
    };
    if !p.is_file() {
        bail!("sidecar binary {} not found: build it with `cargo build --release -p numikube-staging` (scripts/bench does)", p.display());
    }
    Ok(p)
}
