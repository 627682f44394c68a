//! Issue 13, "Plain SQL is data, never commands", on real servers: plain,
//! gzip'ed and Odoo zip backups holding a psql meta-command are refused and
//! nothing of it runs; a real pg_dump plain dump (its `\restrict` pair
//! included) loads, dollar-quoted bodies and backslash lines of COPY data
//! load as they were, harmless failures are reported, and a zip restores to
//! the same rows, indexes, constraints and filestore as its production,
//! streamed (`numikube_staging_restore_jobs = 1`) or in parallel (`= 2`).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::{Options, Stage, BUCKET};
use numikube_staging_rpc::{JobState, JobStatus};
use numikube_testbed::fixture;

/// Runs a prod2x of `client` (no timestamp, suffix `t`) and waits for its end.
async fn run_job(stage: &Stage, client: &str) -> (String, JobStatus) {
    let started = stage.run(stage.prod2x(client, "t", false)).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    (started.db_name, status)
}

/// Asserts that a failed job left nothing: no database (hidden or final), no filestore.
fn assert_nothing_left(stage: &Stage, db_name: &str) {
    assert!(stage.leftovers().is_empty(), "hidden databases left: {:?}", stage.leftovers());
    assert!(stage.working_leftovers().is_empty(), "working leftovers: {:?}", stage.working_leftovers());
    assert!(!stage.databases().iter().any(|d| d == db_name), "{db_name} exists");
    let filestore = stage.data_dir().join("filestore").join(db_name);
    assert!(!filestore.exists(), "{} exists", filestore.display());
}

/// `sql` with `line` inserted before its first `CREATE TABLE` (outside any
/// COPY data, after the header and some statements); and that line's number.
fn inject_before_first_table(sql: &str, line: &str) -> (String, u64) {
    let at = sql.find("\nCREATE TABLE ").expect("the dump creates tables") + 1;
    let line_no = sql[..at].matches('\n').count() as u64 + 1;
    (format!("{}{line}\n{}", &sql[..at], &sql[at..]), line_no)
}

/// Copies the Odoo zip `src` to `out`, every entry as it is (not recompressed)
/// but `dump.sql` and `manifest.json`, which `edit` may replace.
fn rezip(src: &Path, out: &Path, edit: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let name = archive.by_index_raw(i).unwrap().name().to_string();
        if name == "dump.sql" || name == "manifest.json" {
            let mut content = Vec::new();
            archive.by_index(i).unwrap().read_to_end(&mut content).unwrap();
            writer.start_file(name.as_str(), opts).unwrap();
            writer.write_all(&edit(&name, content)).unwrap();
        } else {
            writer.raw_copy_file(archive.by_index_raw(i).unwrap()).unwrap();
        }
    }
    writer.finish().unwrap();
}

// ---------------------------------------------------------------------------
// Meta-commands
// ---------------------------------------------------------------------------

/// What a meta-command would leave if it ran: a file, or (`\connect`) a table in `postgres`.
enum Trace {
    File(PathBuf),
    TableInPostgres(String),
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_commands_are_refused_in_plain_gzip_and_zip_backups_and_never_run_streamed() {
    meta_commands_are_refused(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_commands_are_refused_in_plain_gzip_and_zip_backups_and_never_run_in_parallel() {
    meta_commands_are_refused(2).await;
}

/// 4 meta-commands × plain, gzip and zip, loaded with `jobs` loaders: each refused, none run.
async fn meta_commands_are_refused(jobs: usize) {
    let stage = Stage::start(Options { limit: 20, extra_conf: format!("numikube_staging_restore_jobs = {jobs}\n"), ..Options::default() });
    let (work, _) = stage.make_backups("meta");
    let sql = std::fs::read_to_string(Stage::backup_path(&work, "meta", "sql")).unwrap();
    let zip = Stage::backup_path(&work, "meta", "zip");
    let marker = |n: usize| stage.dir.path().join(format!("marker-{n}"));
    // Each would leave its trace under psql: a file, or the probe table in `postgres`.
    let commands: Vec<(String, &str, Trace)> = (0..3)
        .flat_map(|form| {
            let m = |k: usize| marker(form * 10 + k);
            [
                (format!("\\! touch {}", m(0).display()), "\\!", Trace::File(m(0))),
                (format!("\\o {}", m(1).display()), "\\o", Trace::File(m(1))),
                (format!("\\copy (SELECT 1) to program 'touch {}'", m(2).display()), "\\copy", Trace::File(m(2))),
                (
                    format!("\\connect postgres\nCREATE TABLE numikube_connect_probe_{form} ();"),
                    "\\connect",
                    Trace::TableInPostgres(format!("numikube_connect_probe_{form}")),
                ),
            ]
        })
        .collect();

    // 4 commands × plain, gzip, zip: one client each, all at once.
    let mut jobs = Vec::new();
    for (n, (line, command, _)) in commands.iter().enumerate() {
        let (form, client) = (["sql", "sql.gz", "zip"][n / 4], format!("meta{n}"));
        let (bad, line_no) = inject_before_first_table(&sql, line);
        let path = work.join(format!("{client}.{form}"));
        match form {
            "sql" => std::fs::write(&path, &bad).unwrap(),
            "sql.gz" => {
                let plain = work.join(format!("{client}.plain"));
                std::fs::write(&plain, &bad).unwrap();
                fixture::gzip_file(&plain, &path).unwrap();
            }
            _ => rezip(&zip, &path, |name, content| if name == "dump.sql" { bad.clone().into_bytes() } else { content }),
        }
        stage.s3.put_file(BUCKET, &format!("{client}.{form}"), &path).unwrap();
        let started = stage.run(stage.prod2x(&client, "t", false)).await.expect("accepted");
        jobs.push((form, *command, line_no, started));
    }
    for (form, command, line_no, started) in &jobs {
        let status = stage.wait_job(&started.job_id).await;
        assert_eq!(status.state, JobState::Error, "{form} with {command}: {status:?}\n{}", stage.sidecar_log());
        let error = status.error.clone().unwrap_or_default();
        assert!(
            error.contains(&format!("`{command}`")) && error.contains(&format!("line {line_no}")),
            "{form} with {command}: the error names neither the command nor line {line_no}: {error}"
        );
    }
    for (_, _, _, started) in &jobs {
        assert_nothing_left(&stage, &started.db_name);
    }
    for (line, _, trace) in &commands {
        match trace {
            Trace::File(path) => assert!(!path.exists(), "{line:?} ran: {} exists", path.display()),
            Trace::TableInPostgres(table) => {
                assert_eq!(stage.query("postgres", &format!("SELECT to_regclass('public.{table}') IS NULL")), "t", "{line:?} ran")
            }
        }
    }
}

/// `sql` with `line` inserted after the first line starting with `after`; and that line's number.
fn inject_after(sql: &str, after: &str, line: &str) -> (String, u64) {
    let start = if sql.starts_with(after) { 0 } else { sql.find(&format!("\n{after}")).expect("the marker line") + 1 };
    let at = start + sql[start..].find('\n').unwrap() + 1;
    let line_no = sql[..at].matches('\n').count() as u64 + 1;
    (format!("{}{line}\n{}", &sql[..at], &sql[at..]), line_no)
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_commands_at_the_edges_never_run() {
    let stage = Stage::start(Options { limit: 20, ..Options::default() });
    let (work, _) = stage.make_backups("edge");
    let sql = std::fs::read_to_string(Stage::backup_path(&work, "edge", "sql")).unwrap();
    let key = sql.lines().find_map(|l| l.strip_prefix("\\restrict ")).expect("pg_dump's \\restrict").trim().to_string();
    let m = |n: usize| stage.dir.path().join(format!("edge-marker-{n}"));
    let touch = |n: usize| format!("\\! touch {}", m(n).display());
    // (what, the backup and its injected line, what the error says: the command
    // and the line, counted from the injected one).
    let cases: Vec<(&str, (String, u64), &str, u64)> = vec![
        ("right after COPY data", inject_after(&sql, "\\.", &touch(0)), "the psql command `\\!` at line", 0),
        ("indented", inject_before_first_table(&sql, &format!("   {}", touch(1))), "the psql command `\\!` at line", 0),
        (
            "after an early \\unrestrict",
            inject_before_first_table(&sql, &format!("\\unrestrict {key}\n{}", touch(2))),
            "goes on at line",
            1,
        ),
        (
            "after a second \\restrict",
            inject_before_first_table(&sql, &format!("\\restrict {key}\n{}", touch(3))),
            "the psql command `\\restrict` at line",
            0,
        ),
        (
            "after a statement on its line",
            inject_before_first_table(&sql, &format!("SELECT 1; {}", touch(4))),
            "the psql command `\\!` at line",
            0,
        ),
        ("inside a statement", inject_before_first_table(&sql, &format!("SELECT\n{}\n1;", touch(5))), "the psql command `\\!` at line", 1),
    ];
    let mut jobs = Vec::new();
    for (n, (_, (bad, _), _, _)) in cases.iter().enumerate() {
        let client = format!("edge{n}");
        stage.s3.put_bytes(BUCKET, &format!("{client}.sql"), bad.clone().into_bytes()).unwrap();
        jobs.push(stage.run(stage.prod2x(&client, "t", false)).await.expect("accepted"));
    }
    for (started, (what, (_, line_no), says, later)) in jobs.iter().zip(&cases) {
        let status = stage.wait_job(&started.job_id).await;
        assert_eq!(status.state, JobState::Error, "{what}: {status:?}\n{}", stage.sidecar_log());
        let error = status.error.clone().unwrap_or_default();
        let want = format!("{says} {}", line_no + later);
        assert!(error.contains(&want), "{what}: the error does not say {want:?}: {error}");
    }
    for started in &jobs {
        assert_nothing_left(&stage, &started.db_name);
    }
    for (n, (what, ..)) in cases.iter().enumerate() {
        assert!(!m(n).exists(), "{what}: the command ran");
    }
}

// ---------------------------------------------------------------------------
// What a real dump holds
// ---------------------------------------------------------------------------

/// Row counts of every table of `db`'s `public` schema, in one query, but for the
/// two tables neutralization rewrites (`ir_config_parameter`, `ir_mail_server`).
fn row_counts(stage: &Stage, db: &str) -> String {
    stage.query(
        db,
        "SELECT string_agg(format('%s=%s', c.relname, \
           (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM public.%I', c.relname), false, true, '')))[1]), \
           ' ' ORDER BY c.relname) \
         FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') \
           AND c.relname NOT IN ('ir_config_parameter', 'ir_mail_server')",
    )
}

/// Every index of `db` outside the catalogs, as `pg_indexes` shows it.
fn indexes(stage: &Stage, db: &str) -> String {
    stage.query(
        db,
        "SELECT string_agg(i, E'\\n' ORDER BY i) FROM (SELECT format('%s.%s %s: %s', schemaname, tablename, indexname, indexdef) AS i \
         FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS x",
    )
}

/// Every constraint of `db`'s `public` schema, as `pg_constraint` defines it.
fn constraints(stage: &Stage, db: &str) -> String {
    stage.query(
        db,
        "SELECT string_agg(c, E'\\n' ORDER BY c) FROM (SELECT format('%s %s %s %s', conrelid::regclass, conname, contype, \
         pg_get_constraintdef(oid)) AS c FROM pg_constraint WHERE connamespace = 'public'::regnamespace) AS x",
    )
}

/// The copy `db` has production `prod`'s rows, indexes and constraints.
fn assert_same_database(stage: &Stage, prod: &str, db: &str) {
    let counts = row_counts(stage, prod);
    assert!(counts.contains("res_partner="), "{counts}");
    assert_eq!(row_counts(stage, db), counts, "row counts per table");
    let idx = indexes(stage, prod);
    assert!(idx.lines().count() > 5, "{idx}");
    assert_eq!(indexes(stage, db), idx, "pg_indexes");
    let cons = constraints(stage, prod);
    assert!(cons.lines().any(|l| l.contains(" f FOREIGN KEY")), "{cons}");
    assert_eq!(constraints(stage, db), cons, "pg_constraint");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pg_dump_plain_dump_loads_and_harmless_failures_are_reported() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("real");
    let path = Stage::backup_path(&work, "real", "sql");
    let sql = std::fs::read_to_string(&path).unwrap();
    let version = std::process::Command::new(stage.pg.bin_dir.join("pg_dump")).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    // pg_dump 15.14 and later: one leading `\restrict <key>`, the matching trailing `\unrestrict <key>`.
    let restrict = sql.lines().find(|l| l.starts_with('\\')).unwrap_or_default();
    let last = sql.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(restrict.starts_with("\\restrict "), "{version}: no leading \\restrict: {restrict:?}");
    assert_eq!(last, restrict.replacen("\\restrict", "\\unrestrict", 1), "{version}: no matching trailing \\unrestrict");
    // pg_dump writes COMMENT ON EXTENSION for an extension with a comment (older
    // versions for plpgsql too); a non-superuser cannot run it, harmlessly.
    let sql = if sql.contains("COMMENT ON EXTENSION plpgsql") {
        sql
    } else {
        let (with, _) = inject_before_first_table(
            &sql,
            "CREATE EXTENSION IF NOT EXISTS plpgsql WITH SCHEMA pg_catalog;\n\
             COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';\n",
        );
        with
    };
    stage.s3.put_bytes(BUCKET, "real-daily-1.sql", sql.into_bytes()).unwrap();
    let (db, status) = run_job(&stage, "real").await;
    assert_eq!(status.state, JobState::Done, "{version}: {status:?}\n{}", stage.sidecar_log());
    let tolerated = status.neutralized.as_ref().map(|n| n.tolerated.clone()).unwrap_or_default();
    assert!(tolerated.iter().any(|t| t.contains("COMMENT ON EXTENSION plpgsql")), "not reported: {tolerated:?}");
    assert_same_database(&stage, "prod_real", &db);
}

/// A production table whose COPY data lines start with a backslash (the first
/// column is text: `\N`, `\\…`), and functions whose dollar-quoted bodies hold
/// `;`, other dollar quotes, and a line that reads like a psql command.
fn tricky_sql(marker: &Path) -> String {
    let m = marker.display();
    format!(
        r#"
CREATE TABLE numikube_probe (body text, id integer PRIMARY KEY, note text);
INSERT INTO numikube_probe (body, id, note) VALUES
  (E'\\! touch {m}', 1, 'starts with a backslash'),
  (E'\\.', 2, 'the end-of-data marker as a value'),
  (E'\\\\', 3, 'two backslashes'),
  (E'\\copy (SELECT 1) to program ''touch {m}''', 4, 'a \copy'),
  (E'first\n\\o {m}\n\\.\nlast', 5, 'newlines, then lines like psql commands and the end of data'),
  (E'tab\there', 6, 'a tab'),
  ('a;b;c', 7, 'semicolons'),
  (NULL, 8, 'null: \N'),
  ('', 9, 'empty');
CREATE FUNCTION numikube_semis(a integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text := 'x;y';
BEGIN
  -- a comment; with a semicolon
  IF a > 0 THEN RETURN s || ';' || a; END IF;
  RETURN $q$;'$q$;
END;
$$;
CREATE FUNCTION numikube_tagged() RETURNS text LANGUAGE sql AS $body$ SELECT 'a$$b;' || $$c;d$$ $body$;
CREATE FUNCTION numikube_backslash() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN '
\! touch {m}
;';
END;
$$;
COMMENT ON TABLE numikube_probe IS 'a comment; with ''quotes'' and $$dollars$$';
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn dollar_quoted_bodies_and_backslash_lines_of_copy_data_load_as_they_were() {
    let mut stage = Stage::start(Options::default());
    let marker = stage.dir.path().join("marker");
    let server = stage.pg.url("postgres");
    fixture::create_production_db(&stage.pg.bin_dir, &server, "prod_dq", &fixture::Spec::tiny()).unwrap();
    stage.pg.psql("prod_dq", &tricky_sql(&marker)).expect("production tweaked");
    assert!(!marker.exists(), "the test's own setup ran a command");
    let dump = stage.dir.path().join("dq.sql");
    fixture::dump_plain(&stage.pg.bin_dir, &server, "prod_dq", &dump).unwrap();
    let text = std::fs::read_to_string(&dump).unwrap();
    for line in ["\\\\! touch ", "\\\\.\t2\t", "\\N\t8\t"] {
        assert!(text.lines().any(|l| l.starts_with(line)), "the dump has no COPY line starting with {line:?}");
    }
    assert!(text.lines().any(|l| l.starts_with("\\! touch ")), "the dump has no body line like a psql command");

    // In parallel (the stage's restore_jobs is the CPU count), then streamed.
    for (client, jobs) in [("dqa", None), ("dqb", Some(1))] {
        if let Some(jobs) = jobs {
            stage.kill_sidecar();
            let mut conf = std::fs::OpenOptions::new().append(true).open(stage.conf()).unwrap();
            writeln!(conf, "numikube_staging_restore_jobs = {jobs}").unwrap();
            stage.start_sidecar();
        }
        stage.s3.put_file(BUCKET, &format!("{client}.sql"), &dump).unwrap();
        let (db, status) = run_job(&stage, client).await;
        assert_eq!(status.state, JobState::Done, "{jobs:?}: {status:?}\n{}", stage.sidecar_log());
        let prod = "prod_dq";
        let probe = "SELECT string_agg(format('%s|%s|%s', id, coalesce(quote_literal(body), 'NULL'), note), E'\\n' ORDER BY id) \
                     FROM numikube_probe";
        let want = stage.query(prod, probe);
        assert_eq!(stage.query(&db, probe), want, "COPY data");
        assert_eq!(stage.query(&db, "SELECT body FROM numikube_probe WHERE id = 3"), "\\\\");
        let calls = "SELECT numikube_semis(3) || '|' || numikube_semis(0) || '|' || numikube_tagged() || '|' || numikube_backslash()";
        assert_eq!(stage.query(&db, calls), format!("x;y;3|;'|a$$b;c;d|\n\\! touch {}\n;", marker.display()));
        let bodies = "SELECT string_agg(proname || ':' || md5(prosrc), ' ' ORDER BY proname) FROM pg_proc \
                      WHERE pronamespace = 'public'::regnamespace";
        assert_eq!(stage.query(&db, bodies), stage.query(prod, bodies), "function bodies");
        let comment = "SELECT obj_description('numikube_probe'::regclass, 'pg_class')";
        assert_eq!(stage.query(&db, comment), "a comment; with 'quotes' and $$dollars$$");
        assert_same_database(&stage, prod, &db);
        assert!(!marker.exists(), "a command of the backup ran");
    }
}

// ---------------------------------------------------------------------------
// Odoo zips
// ---------------------------------------------------------------------------

/// Every file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A zip of a production built to `spec` restores to its rows, indexes,
/// constraints and filestore, with `jobs` loaders.
async fn zip_restores_like_its_production(jobs: usize, spec: &fixture::Spec) {
    let stage = Stage::start(Options { extra_conf: format!("numikube_staging_restore_jobs = {jobs}\n"), ..Options::default() });
    let client = format!("zip{jobs}{}", if spec.big_table_rows > 0 { "big" } else { "" });
    let (work, built) = stage.make_backups_of(&client, spec);
    stage.s3.put_file(BUCKET, &format!("{client}_2026-11-24_03-00-00.zip"), &Stage::backup_path(&work, &client, "zip")).unwrap();
    let (db, status) = run_job(&stage, &client).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
    let prod = format!("prod_{client}");
    assert_same_database(&stage, &prod, &db);

    // The filestore, file by file: the same paths (`<2 hex>/<sha1>`) and the same bytes.
    let source = work.join("filestore").join(&prod);
    let copy = stage.data_dir().join("filestore").join(&db);
    let files = files_below(&source);
    assert_eq!(files.len(), built.filestore.files);
    assert!(!files.is_empty());
    assert_eq!(files_below(&copy), files, "filestore file names");
    for f in &files {
        assert!(std::fs::read(copy.join(f)).unwrap() == std::fs::read(source.join(f)).unwrap(), "{} differs", f.display());
    }
    // Every attachment of the copy finds its file.
    let stored =
        stage.query(&db, "SELECT string_agg(store_fname, ' ' ORDER BY store_fname) FROM ir_attachment WHERE store_fname IS NOT NULL");
    for fname in stored.split_whitespace() {
        assert!(copy.join(fname).is_file(), "ir_attachment's {fname} is missing from {}", copy.display());
    }
    assert!(stage.working_leftovers().is_empty(), "{:?}", stage.working_leftovers());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_restores_like_its_production_streamed() {
    zip_restores_like_its_production(1, &fixture::Spec::tiny()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_restores_like_its_production_in_parallel() {
    zip_restores_like_its_production(2, &fixture::Spec::tiny()).await;
}

/// The shape real databases grow to (issue 23): one table holding most of it,
/// whose COPY the loader cuts into chunks loaded side by side as it streams in.
#[tokio::test(flavor = "multi_thread")]
async fn a_zip_of_one_big_table_restores_like_its_production_in_parallel() {
    let spec = fixture::Spec::one_big_table(24 << 20);
    assert!(spec.big_table_rows > 80_000, "{spec:?}");
    zip_restores_like_its_production(2, &spec).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_of_odoo_17_is_refused_and_leaves_nothing() {
    let stage = Stage::start(Options::default());
    let (work, _) = stage.make_backups("seventeen");
    let zip = work.join("seventeen-17.zip");
    rezip(&Stage::backup_path(&work, "seventeen", "zip"), &zip, |name, content| {
        if name != "manifest.json" {
            return content;
        }
        let mut manifest: serde_json::Value = serde_json::from_slice(&content).unwrap();
        manifest["version"] = "17.0".into();
        manifest["major_version"] = "17.0".into();
        manifest["version_info"] = serde_json::json!([17, 0, 0, "final", 0, ""]);
        serde_json::to_vec_pretty(&manifest).unwrap()
    });
    stage.s3.put_file(BUCKET, "seventeen.zip", &zip).unwrap();
    let (db, status) = run_job(&stage, "seventeen").await;
    assert_eq!(status.state, JobState::Error, "{status:?}\n{}", stage.sidecar_log());
    assert_eq!(status.error.as_deref(), Some("The backup is from Odoo 17.0; this staging server runs Odoo 18.0."));
    assert_nothing_left(&stage, &db);
}
