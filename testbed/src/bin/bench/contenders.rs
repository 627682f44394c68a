//! The baselines' timed runs (Odoo's restore path, `pg_restore` with one and
//! with `-j` jobs, and `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` +
//! `cp -al`) and the FILE_COPY template they start from; the sidecar's copies
//! are timed in `sidecars`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use numikube_testbed::fixture::run_quiet;
use numikube_testbed::ident;

use crate::contender::Contender;
use crate::data::Data;
use crate::env::Env;
use crate::names::TEMPLATE_DB;
use crate::probes::Sample;

/// The FILE_COPY template's filestore, copied once from the unpacked zip.
fn template_filestore(env: &Env) -> PathBuf {
    env.work.join("baseline-template-filestore")
}

/// `pg_restore` of the custom dump into `db`, with `jobs` jobs, as the instance's role.
fn pg_restore(env: &Env, jobs: usize, db: &str, data: &Data) -> Command {
    let mut c = env.role_cmd("pg_restore");
    c.args(["--no-owner", "--no-privileges", "--exit-on-error", "-j"]).arg(jobs.to_string()).args(["-d", db]).arg(&data.dump);
    c
}

/// Restores the FILE_COPY contender's template database and filestore, once, untimed.
pub fn make_template(env: &Env, data: &Data) -> Result<()> {
    let t = Instant::now();
    run_quiet(env.role_cmd("createdb").arg(TEMPLATE_DB), "createdb")?;
    run_quiet(&mut pg_restore(env, env.cores, TEMPLATE_DB, data), "pg_restore (template)")?;
    run_quiet(Command::new("cp").arg("-a").arg(&data.unpacked_fs).arg(template_filestore(env)), "cp -a filestore")?;
    env.settle()?;
    env.log.say(format!("FILE_COPY template {TEMPLATE_DB} restored in {:.0}s", t.elapsed().as_secs_f64()));
    Ok(())
}

/// One timed run of a baseline (`tag` names this round's database), cleaned up after;
/// what went wrong but did not fail the run goes to `warnings`.
pub fn run_baseline(env: &Env, data: &Data, c: Contender, tag: &str, warnings: &mut Vec<String>) -> Result<Sample> {
    let machine = &env.machine;
    match c {
        Contender::Odoo => {
            let db = format!("bench_odoo_{tag}");
            let dest = env.work.join("odoo-data/filestore").join(&db);
            fs::create_dir_all(dest.parent().unwrap())?;
            let a = machine.probe();
            run_quiet(env.role_cmd("createdb").args(["-T", "template0", "-E", "UTF8"]).arg(&db), "createdb")?;
            let err = run_quiet(env.role_cmd("psql").args(["-q", "-d", &db, "-f"]).arg(&data.dump_sql), "psql -f dump.sql")?;
            run_quiet(Command::new("cp").arg("-r").arg(&data.unpacked_fs).arg(&dest), "cp -r filestore")?;
            let b = machine.probe();
            if err.contains("ERROR") {
                warnings.push(format!("odoo path: psql said: {}", err.lines().find(|l| l.contains("ERROR")).unwrap_or("")));
            }
            env.drop_db(&db)?;
            fs::remove_dir_all(&dest)?;
            Ok(machine.measure(&a, &b))
        }
        Contender::PgRestore | Contender::PgRestoreJ => {
            let jobs = if c == Contender::PgRestore { 1 } else { env.cores };
            let db = format!("bench_pgr{jobs}_{tag}");
            let a = machine.probe();
            run_quiet(env.role_cmd("createdb").arg(&db), "createdb")?;
            run_quiet(&mut pg_restore(env, jobs, &db, data), "pg_restore")?;
            let b = machine.probe();
            env.drop_db(&db)?;
            Ok(machine.measure(&a, &b))
        }
        Contender::FileCopy => {
            let db = format!("bench_fc_{tag}");
            let dest = env.work.join("fc-data/filestore").join(&db);
            fs::create_dir_all(dest.parent().unwrap())?;
            let a = machine.probe();
            run_quiet(
                env.role_cmd("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"]).arg(format!(
                    "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                    ident(&db),
                    ident(TEMPLATE_DB)
                )),
                "CREATE DATABASE … FILE_COPY",
            )?;
            run_quiet(Command::new("cp").arg("-al").arg(template_filestore(env)).arg(&dest), "cp -al")?;
            let b = machine.probe();
            env.drop_db(&db)?;
            fs::remove_dir_all(&dest)?;
            Ok(machine.measure(&a, &b))
        }
        Contender::SidecarDump
        | Contender::SidecarZip
        | Contender::SidecarDumpCompanion
        | Contender::SidecarRepeat
        | Contender::SidecarAnonymized
        | Contender::SidecarAnonymizedRepeat => {
            unreachable!("{} is not a baseline", c.id())
        }
    }
}
