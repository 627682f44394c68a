//! The Odoo-shaped fixture database: it builds fast, its filestore matches
//! `ir_attachment`, every backup kind restores with PostgreSQL's own tools
//! into a database with the same row counts, the fixture addons' neutralize
//! scripts neutralize it, and corrupted backups fail to restore.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use numikube_testbed::fixture::{self, Compressor, Corruption, Spec};
use numikube_testbed::Postgres;
use sha1::{Digest, Sha1};

fn createdb(pg: &Postgres, db: &str) {
    pg.psql("postgres", &format!("CREATE DATABASE \"{db}\"")).unwrap();
}

fn pg_restore(pg: &Postgres, db: &str, file: &Path) -> Result<(), String> {
    let out = Command::new(pg.bin_dir.join("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(pg.url(db))
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Feeds `input` to `psql -v ON_ERROR_STOP=1` in `db`.
fn psql_stream(pg: &Postgres, db: &str, mut input: impl Read) -> Result<(), String> {
    let mut child = Command::new(pg.bin_dir.join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname"])
        .arg(pg.url(db))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let copied = io::copy(&mut input, &mut stdin);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    match (out.status.success(), copied) {
        (true, Ok(_)) => Ok(()),
        (_, Err(e)) => Err(format!("reading the backup: {e}; psql: {}", String::from_utf8_lossy(&out.stderr))),
        (false, _) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn check_odoo_zip(pg: &Postgres, zip_path: &Path, fs_dir: &Path, spec: &Spec, db: &str) -> zip::ZipArchive<File> {
    let mut zip = zip::ZipArchive::new(File::open(zip_path).unwrap()).unwrap();
    let names: Vec<String> = (0..zip.len()).map(|i| zip.by_index(i).unwrap().name().to_string()).collect();
    assert_eq!(names[0], "dump.sql");
    assert_eq!(names[1], "manifest.json");
    assert_eq!(names.len(), 2 + spec.filestore_files);
    for n in &names[2..] {
        let rel = n.strip_prefix("filestore/").expect(n);
        let mut content = Vec::new();
        zip.by_name(n).unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, fs::read(fs_dir.join(rel)).unwrap());
        assert_eq!(zip.by_name(n).unwrap().compression(), zip::CompressionMethod::Deflated);
    }
    let manifest: serde_json::Value = serde_json::from_reader(zip.by_name("manifest.json").unwrap()).unwrap();
    assert_eq!(manifest["odoo_dump"], "1");
    assert_eq!(manifest["db_name"], db);
    assert_eq!(manifest["version"], "18.0");
    assert_eq!(manifest["major_version"], "18.0");
    assert!(manifest["pg_version"].as_str().unwrap().starts_with(&pg.psql("postgres", "SHOW server_version_num").unwrap()[..2]));
    assert_eq!(manifest["modules"]["base"], "18.0.1.3");
    assert_eq!(manifest["modules"].as_object().unwrap().len(), spec.modules.len(), "installed modules only");
    zip
}

#[test]
fn tiny_db_filestore_and_every_backup_kind_restore_with_the_same_counts() {
    let pg = Postgres::start().expect("start PostgreSQL");
    let bin = pg.bin_dir.clone();
    let server = pg.url("postgres");
    let work = tempfile::tempdir().unwrap();
    let spec = Spec::tiny();
    let db = "cosmos-prod";

    let t = Instant::now();
    fixture::create_production_db(&bin, &server, db, &spec).unwrap();
    let took = t.elapsed();
    eprintln!("tiny DB built in {took:?}, {} bytes", fixture::database_size(&bin, &server, db).unwrap());
    // ~0.3 s on an idle 2-core machine; generous bound for a loaded one.
    assert!(took.as_secs_f64() < 5.0, "Spec::tiny must build in well under 2 s, took {took:?}");

    // Shape of production.
    let counts = fixture::table_counts(&bin, &server, db).unwrap();
    let plan = spec.plan();
    assert_eq!(counts["mail_message"] as u64, plan.messages);
    assert_eq!(counts["account_move_line"] as u64, plan.moves * plan.lines_per_move);
    assert_eq!(counts["res_partner"] as u64, plan.partners + 3);
    assert_eq!(counts["ir_attachment"] as u64, plan.attachments);
    let total: i64 = counts.values().sum();
    assert!((300..3000).contains(&total), "a few hundred rows: {total}");
    let prod = fixture::inspect_neutralization(&bin, &server, db).unwrap();
    assert_eq!(prod.active_crons_except_autovacuum, 4);
    assert!(prod.autovacuum_active);
    assert_eq!(prod.active_mail_servers, 2);
    assert_eq!(prod.active_fetchmail_servers, 2);
    assert_eq!(prod.enabled_payment_providers, 2);
    assert!(!prod.is_neutralized && prod.uuid.is_some() && prod.secret.is_some() && prod.enterprise_code.is_some());
    assert!(fixture::assert_neutralized(&bin, &server, db).is_err());
    let modules = pg.psql(db, "SELECT string_agg(name || ':' || state, ',' ORDER BY id) FROM ir_module_module").unwrap();
    assert_eq!(
        modules,
        "base:installed,web:installed,mail:installed,contacts:installed,account:installed,\
         payment_x:installed,website:uninstalled"
    );
    let params = pg
        .psql(db, "SELECT string_agg(key, ',' ORDER BY key) FROM ir_config_parameter WHERE key LIKE 'database.%' OR key = 'web.base.url'")
        .unwrap();
    for k in ["database.uuid", "database.secret", "database.create_date", "database.enterprise_code", "web.base.url"] {
        assert!(params.split(',').any(|p| p == k), "{k} missing from {params}");
    }

    // Filestore: Odoo layout, matches ir_attachment.
    let fs_dir = work.path().join("filestore").join(db);
    let summary = fixture::write_filestore(&fs_dir, &spec, db).unwrap();
    assert_eq!(summary.files, spec.filestore_files);
    let fnames = pg
        .psql(db, "SELECT DISTINCT store_fname || ' ' || checksum || ' ' || file_size FROM ir_attachment WHERE store_fname IS NOT NULL")
        .unwrap();
    assert_eq!(fnames.lines().count(), spec.filestore_files);
    for line in fnames.lines() {
        let mut it = line.split(' ');
        let (fname, checksum, size) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert_eq!(fname.len(), 2 + 1 + 40);
        assert_eq!(&fname[..2], &checksum[..2]);
        let content = fs::read(fs_dir.join(fname)).unwrap();
        assert_eq!(sha1_hex(&content), checksum);
        assert_eq!(content.len().to_string(), size);
    }

    // Custom dump.
    let custom = work.path().join("prod.dump");
    fixture::dump_custom(&bin, &server, db, &custom).unwrap();
    let mut magic = [0u8; 5];
    File::open(&custom).unwrap().read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"PGDMP");
    createdb(&pg, "from-custom");
    pg_restore(&pg, "from-custom", &custom).unwrap();
    assert_eq!(fixture::table_counts(&bin, &server, "from-custom").unwrap(), counts);

    // Plain SQL.
    let plain = work.path().join("prod.sql");
    fixture::dump_plain(&bin, &server, db, &plain).unwrap();
    let head = fs::read_to_string(&plain).unwrap();
    assert!(head.starts_with("--\n-- PostgreSQL database dump"), "{}", &head[..60]);
    assert!(!head.contains("OWNER TO"), "--no-owner");
    createdb(&pg, "from-plain");
    psql_stream(&pg, "from-plain", File::open(&plain).unwrap()).unwrap();
    assert_eq!(fixture::table_counts(&bin, &server, "from-plain").unwrap(), counts);

    // gzip of the plain dump, by each compressor.
    for (i, how) in [Compressor::Auto, Compressor::Rust].into_iter().enumerate() {
        let gz = work.path().join(format!("prod{i}.sql.gz"));
        fixture::gzip_file_with(&plain, &gz, how).unwrap();
        let target = format!("from-gzip{i}");
        createdb(&pg, &target);
        psql_stream(&pg, &target, flate2::read::GzDecoder::new(File::open(&gz).unwrap())).unwrap();
        assert_eq!(fixture::table_counts(&bin, &server, &target).unwrap(), counts, "{how:?}");
    }

    // Odoo zip: dump.sql first, manifest.json, filestore/; by each compressor.
    let rust_zip = work.path().join("prod-rust.zip");
    fixture::make_odoo_zip_with(&bin, &server, db, &fs_dir, &rust_zip, Compressor::Rust).unwrap();
    let zip_path = work.path().join("prod.zip");
    fixture::make_odoo_zip(&bin, &server, db, &fs_dir, &zip_path).unwrap();
    check_odoo_zip(&pg, &rust_zip, &fs_dir, &spec, db);
    let mut zip = check_odoo_zip(&pg, &zip_path, &fs_dir, &spec, db);
    createdb(&pg, "from-zip");
    psql_stream(&pg, "from-zip", zip.by_name("dump.sql").unwrap()).unwrap();
    assert_eq!(fixture::table_counts(&bin, &server, "from-zip").unwrap(), counts);

    // The fixture addons neutralize a restored copy, as a neutralizer would:
    // installed modules' scripts in module order (from the addons, then from
    // Odoo's own addons, as Odoo searches), then new uuid and secret.
    let addons = fixture::fixture_addons_dir();
    let odoo_addons = fixture::fixture_odoo_dir().join("odoo/addons");
    let mut ran = Vec::new();
    let mut script = String::from("BEGIN;\n");
    for m in modules.split(',').filter_map(|m| m.strip_suffix(":installed")) {
        let f = [&addons, &odoo_addons].iter().map(|dir| dir.join(m).join("data/neutralize.sql")).find(|f| f.is_file());
        if let Some(f) = f {
            script.push_str(&fs::read_to_string(f).unwrap());
            script.push('\n');
            ran.push(m);
        } else if ![&addons, &odoo_addons].iter().any(|dir| dir.join(m).join("__manifest__.py").is_file()) {
            assert!(fixture::MODULES_MISSING_FROM_ADDONS.contains(&m), "{m}");
        }
    }
    assert_eq!(ran, fixture::MODULES_WITH_NEUTRALIZE_SCRIPT);
    assert!(addons.join(fixture::UNINSTALLED_MODULE).join("data/neutralize.sql").is_file());
    script.push_str(
        "UPDATE ir_config_parameter SET value = gen_random_uuid()::text WHERE key IN ('database.uuid', 'database.secret');\n\
         DELETE FROM ir_config_parameter WHERE key = 'database.enterprise_code';\nCOMMIT;\n",
    );
    psql_stream(&pg, "from-zip", script.as_bytes()).unwrap();
    let n = fixture::assert_neutralized(&bin, &server, "from-zip").unwrap();
    assert!(n.problems_against(&prod).is_empty(), "{:?}", n.problems_against(&prod));
    assert_eq!(n.enabled_payment_providers, 0);
    assert!(!n.uninstalled_module_script_ran);
    // ...and the uninstalled module's script would be noticed.
    let website = fs::read_to_string(addons.join("website/data/neutralize.sql")).unwrap();
    psql_stream(&pg, "from-plain", website.as_bytes()).unwrap();
    let bad = fixture::inspect_neutralization(&bin, &server, "from-plain").unwrap();
    assert!(bad.uninstalled_module_script_ran);
    assert!(bad.problems().iter().any(|p| p.contains("website")));
}

#[test]
fn corrupted_backups_fail_to_restore() {
    let pg = Postgres::start().expect("start PostgreSQL");
    let bin = pg.bin_dir.clone();
    let server = pg.url("postgres");
    let work = tempfile::tempdir().unwrap();
    let spec = Spec::tiny();
    let db = "prod";
    fixture::create_production_db(&bin, &server, db, &spec).unwrap();
    let fs_dir = work.path().join("fs");
    fixture::write_filestore(&fs_dir, &spec, db).unwrap();
    let p = |n: &str| work.path().join(n);
    fixture::dump_custom(&bin, &server, db, &p("c.dump")).unwrap();
    fixture::dump_plain(&bin, &server, db, &p("p.sql")).unwrap();
    fixture::gzip_file(&p("p.sql"), &p("p.sql.gz")).unwrap();
    fixture::make_odoo_zip(&bin, &server, db, &fs_dir, &p("o.zip")).unwrap();

    let mut n = 0;
    for how in [Corruption::Truncate, Corruption::Garble] {
        let mut target = || {
            n += 1;
            let name = format!("bad{n}");
            createdb(&pg, &name);
            name
        };
        // custom
        fixture::corrupt_file(&p("c.dump"), &p("bad.dump"), how).unwrap();
        let mut head = [0u8; 5];
        File::open(p("bad.dump")).unwrap().read_exact(&mut head).unwrap();
        assert_eq!(&head, b"PGDMP", "magic kept");
        assert!(pg_restore(&pg, &target(), &p("bad.dump")).is_err(), "{how:?} custom dump restored");
        // plain
        fixture::corrupt_file(&p("p.sql"), &p("bad.sql"), how).unwrap();
        assert!(psql_stream(&pg, &target(), File::open(p("bad.sql")).unwrap()).is_err(), "{how:?} plain SQL restored");
        // gzip
        fixture::corrupt_file(&p("p.sql.gz"), &p("bad.sql.gz"), how).unwrap();
        let gz = flate2::read::GzDecoder::new(File::open(p("bad.sql.gz")).unwrap());
        assert!(psql_stream(&pg, &target(), gz).is_err(), "{how:?} gzip restored");
        // zip: either the archive or its dump.sql entry is unreadable
        fixture::corrupt_file(&p("o.zip"), &p("bad.zip"), how).unwrap();
        let ok = match zip::ZipArchive::new(File::open(p("bad.zip")).unwrap()) {
            Err(_) => false,
            Ok(mut z) => match z.by_name("dump.sql") {
                Err(_) => false,
                Ok(entry) => psql_stream(&pg, &target(), entry).is_ok(),
            },
        };
        assert!(!ok, "{how:?} zip restored");
    }
}

#[test]
fn the_filestore_companion_holds_the_filestore_at_its_root() {
    let tmp = tempfile::tempdir().unwrap();
    let (spec, db) = (Spec::tiny(), "prod_companion");
    let fs_dir = tmp.path().join("filestore").join(db);
    fixture::write_filestore(&fs_dir, &spec, db).unwrap();
    let out = tmp.path().join("prod-1.filestore.tar.gz");
    fixture::make_filestore_companion(&fs_dir, &out).unwrap();
    let listing = Command::new("tar").arg("-tzf").arg(&out).output().unwrap();
    assert!(listing.status.success(), "{listing:?}");
    let mut files: Vec<String> =
        String::from_utf8(listing.stdout).unwrap().lines().filter(|l| !l.ends_with('/')).map(str::to_string).collect();
    files.sort();
    let mut expected: Vec<String> = fixture::filestore_files(&spec, db).map(|(f, _)| f.store_fname).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(files, expected);
    assert!(fixture::make_filestore_companion(&tmp.path().join("none"), &tmp.path().join("x.tar.gz")).is_err());
}

#[test]
fn demo_spec_is_about_20_mb() {
    let pg = Postgres::start().expect("start PostgreSQL");
    let server = pg.url("postgres");
    let t = Instant::now();
    fixture::create_production_db(&pg.bin_dir, &server, "demo", &Spec::demo()).unwrap();
    let size = fixture::database_size(&pg.bin_dir, &server, "demo").unwrap();
    eprintln!("demo DB: {size} bytes in {:?}", t.elapsed());
    let target = Spec::demo().rows_scale as f64;
    assert!((0.7..1.3).contains(&(size as f64 / target)), "demo DB is {size} bytes, wanted ~{target}");
}

/// The benchmark's data at its default size (or `NUMIKUBE_FIXTURE_BYTES`),
/// timing each step: `cargo test -p numikube-testbed --test fixture --release
/// -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_sized_db_and_backups() {
    let bytes: u64 = std::env::var("NUMIKUBE_FIXTURE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(1 << 30);
    let pg = Postgres::start().expect("start PostgreSQL");
    let server = pg.url("postgres");
    let work = tempfile::tempdir_in(std::env::var("NUMIKUBE_FIXTURE_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let spec = Spec::bench(bytes);
    eprintln!("spec {spec:?}\nplan {:?}", spec.plan());
    let built = fixture::build_all(&pg.bin_dir, &server, "bench", &spec, work.path()).unwrap();
    let mut out = io::stderr().lock();
    writeln!(out, "database: {} bytes (target {bytes}), filestore: {:?}", built.db_bytes, built.filestore).unwrap();
    for (kind, _, size, secs) in &built.steps {
        writeln!(out, "{kind:10} {:>12} bytes {:>8.1} MB {secs:>7.1} s", size, *size as f64 / 1e6).unwrap();
    }
    let target = bytes as f64;
    assert!((0.7..1.3).contains(&(built.db_bytes as f64 / target)));
}
