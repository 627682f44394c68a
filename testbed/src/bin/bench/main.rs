//! `bench`: the benchmark of issue 5 — the sidecar against the baselines, in
//! one run, on the testbed's real servers (one throw-away PostgreSQL cluster,
//! moto S3, an HTTP callback receiver) and the release sidecar binary.
//!
//! Run it through `scripts/bench` (which builds the release binaries first).
//! Progress goes to stderr; the table (or `--json`) to stdout.
//!
//! Contenders (alternated round-robin, each round in a rotated order):
//! - `sidecar-dump`: request → callback received, first copy from the custom dump
//!   (template cache off in that sidecar, so every copy is cold);
//! - `sidecar-zip`: the same from the Odoo zip;
//! - `sidecar-dump-companion`: the same from the custom dump with a
//!   `.filestore.tar.gz` companion beside it, made of the zip's filestore
//!   (issue 21: the filestore should cost no more than its download);
//! - `sidecar-repeat`: repeat copy of the custom dump on a sidecar with the
//!   template cache on (one untimed warm-up copy builds the template first);
//! - `sidecar-anonymized`: the cold sidecar's first copy of the custom dump, anonymized;
//! - `sidecar-anonymized-repeat`: the repeat anonymized copy on the warm
//!   sidecar (which has an anonymization key), from its masked template (one
//!   untimed anonymized warm-up copy builds it first);
//! - `odoo`: Odoo's own path: `createdb` + `psql -q -f dump.sql` (the zip's
//!   dump, extracted before the rounds) + copying the filestore (`cp -r`);
//! - `pg_restore`: `createdb` + single-job `pg_restore` from a local file;
//! - `pg_restore-j`: the same with `-j <cores>`;
//! - `file_copy`: `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` + `cp -al`
//!   of the filestore, the template being restored once before the rounds.
//!
//! Plus `latency` (`staging_run` with 50 concurrent clients, refused by the
//! limit and accepted), `rss` (the cold sidecar's peak RSS, measured during
//! the `sidecar-dump`/`sidecar-zip` rounds) and `io` (moto download speed,
//! `dd` disk write speed).
//!
//! Layout, in the order of a run:
//! - `args`: the flags, and what `--only` selects ([`args::Plan`]);
//! - `env`: the servers and the work directory of the run ([`env::Env`]);
//! - `data`: the production database, its backups and their upload;
//! - `io`: moto's and the disk's speed;
//! - `sidecars`: the staging instances (through the testbed's launcher) and
//!   one copy through them;
//! - `contender`: what is timed, by name (imports nothing from the bench);
//! - `contenders`: each baseline's one timed run;
//! - `rounds`: the round-robin of the contenders;
//! - `latency`: `staging_run` under concurrent clients;
//! - `probes`: CPU, disk and memory readings around each run;
//! - `phases`: where each sidecar copy's time went, from its `job timings` log line;
//! - `report`: the JSON report; `table`: its text table;
//! - `names`: the token, roles, bucket and databases every phase shares;
//! - `util`: progress lines, commands, medians.
//!
//! The modules form a DAG: `contender`, `names`, `util` and `probes` import
//! nothing from the bench, `args` only `contender`, `env` `args`, and the
//! phases build on those (no module imports one that imports it back).

mod args;
mod contender;
mod contenders;
mod data;
mod env;
mod io;
mod latency;
mod names;
mod phases;
mod probes;
mod report;
mod rounds;
mod sidecars;
mod table;
mod util;

use std::fs;

use anyhow::Result;
use clap::Parser;
use serde_json::{json, Value};

use crate::args::{Args, Plan};
use crate::contender::Contender;
use crate::env::Env;
use crate::report::Outcome;
use crate::sidecars::Sidecars;
use crate::util::Log;

/// Prints a saved report (`--from-json`) or runs the benchmark; exits 1 on error.
fn main() {
    let args = Args::parse();
    if let Some(path) = &args.from_json {
        match fs::read_to_string(path).map_err(anyhow::Error::from).and_then(|t| Ok(serde_json::from_str::<Value>(&t)?)) {
            // One report per shape (an array), or a single one.
            Ok(Value::Array(reports)) => reports.iter().for_each(table::print),
            Ok(report) => table::print(&report),
            Err(e) => {
                eprintln!("bench: cannot read {}: {e:#}", path.display());
                std::process::exit(1);
            }
        }
        return;
    }
    match run(args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::exit(1);
        }
    }
}

/// One whole run, each shape in turn: the reports on stdout, one per shape
/// (a JSON array with `--json` when there are several).
fn run(args: Args) -> Result<()> {
    let plan = Plan::new(&args)?;
    let bin = args::sidecar_bin(&args)?;
    let mut reports = Vec::new();
    for &shape in &args.shape {
        let report = run_shape(&args, &plan, bin.clone(), shape)?;
        if !args.json {
            table::print(&report);
        }
        reports.push(report);
    }
    if args.json {
        let out = if reports.len() == 1 { reports.remove(0) } else { Value::Array(reports) };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// One shape on fresh servers: data, speeds, sidecars, rounds, latency, then its report.
fn run_shape(args: &Args, plan: &Plan, bin: std::path::PathBuf, shape: args::Shape) -> Result<Value> {
    let log = Log::start();
    let env = Env::start(args, log, bin)?;
    let data = data::prepare(&env, args.size, shape, plan.contenders.contains(&Contender::SidecarDumpCompanion))?;
    let io = if plan.io { io::measure(&env, &data)? } else { json!({}) };
    if plan.contenders.contains(&Contender::FileCopy) {
        contenders::make_template(&env, &data)?;
    }
    let sidecars = Sidecars::start(&env, plan)?;
    let warm_up = |contender| match (&sidecars.warm, plan.contenders.contains(&contender)) {
        (Some(w), true) => sidecars::warm_up(&env, w, contender),
        _ => Ok(json!(null)),
    };
    let warmup = warm_up(Contender::SidecarRepeat)?;
    let anonymized_warmup = warm_up(Contender::SidecarAnonymizedRepeat)?;
    let rounds = rounds::run(&env, &data, &sidecars, &plan.contenders, args.reps)?;
    let latency = latency::run(&env, args, &sidecars)?;
    let outcome = Outcome { data, io, warmup, anonymized_warmup, rounds, latency };
    Ok(report::build(&env, args, &plan.contenders, &outcome))
}
