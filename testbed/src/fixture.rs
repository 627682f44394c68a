//! An Odoo-shaped "production" database, its filestore and its backups.
//!
//! Used by the integration tests ([`Spec::tiny`]), the README demo
//! ([`Spec::demo`]) and the benchmark ([`Spec::bench`]). Everything goes
//! through PostgreSQL's own client programs (`psql`, `pg_dump`) found in a
//! given bin directory, and through a libpq connection URI such as
//! `postgresql://user@127.0.0.1:5432` (a database name in the URI is replaced
//! by the one each function works on).
//!
//! The schema (`testbed/sql/`) is our own, shaped like Odoo 18's: the tables a
//! restorer and neutralizer care about (`ir_module_module`, `ir_cron`,
//! `ir_mail_server`, `fetchmail_server`, `ir_config_parameter`,
//! `ir_model_data`, ...) with Odoo's column names, and the big tables
//! (`mail_message`, `account_move`, `account_move_line`, `res_partner`,
//! `ir_attachment`) filled with `generate_series` to the requested size, with
//! their indexes and foreign keys.
//!
//! Backups are written to disk by the PostgreSQL tools or streamed through
//! small buffers; no backup is ever held whole in memory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use sha1::{Digest, Sha1};

use crate::postgres::{ident, literal};

const SCHEMA_SQL: &str = include_str!("../sql/schema.sql");
const SMALL_SQL: &str = include_str!("../sql/small.sql");
const DATA_PEOPLE_SQL: &str = include_str!("../sql/data_people.sql");
const DATA_ACCOUNTING_SQL: &str = include_str!("../sql/data_accounting.sql");
const CONSTRAINTS_SQL: &str = include_str!("../sql/constraints.sql");

/// Odoo version written in the backup zip's `manifest.json`.
pub const ODOO_VERSION: &str = "18.0";

/// The module that [`create_production_db`] always adds in state
/// `uninstalled` (unless [`Spec::modules`] lists it). The fixture addons
/// carry a `data/neutralize.sql` for it that must *not* run; if it runs it
/// sets the config parameter [`UNINSTALLED_SCRIPT_MARKER`].
pub const UNINSTALLED_MODULE: &str = "website";

/// Config parameter set by the uninstalled module's neutralize script (see
/// [`UNINSTALLED_MODULE`]): present only if a neutralizer ran a script it
/// should not have.
pub const UNINSTALLED_SCRIPT_MARKER: &str = "numikube_fixture.uninstalled_script_ran";

/// Installed modules of the default [`Spec`]s, in installation order.
/// `mail` and `payment_x` have a `data/neutralize.sql` in
/// [`fixture_addons_dir`], `base` in [`fixture_odoo_dir`]'s `odoo/addons`;
/// `web` is there without a script; `contacts` and
/// `account` are missing from it (a neutralizer reports them "not found on
/// addons_path").
pub const DEFAULT_MODULES: &[&str] = &["base", "web", "mail", "contacts", "account", "payment_x"];

/// Installed modules of [`DEFAULT_MODULES`] that have no directory in
/// [`fixture_addons_dir`].
pub const MODULES_MISSING_FROM_ADDONS: &[&str] = &["contacts", "account"];

/// Installed modules of [`DEFAULT_MODULES`] whose `data/neutralize.sql` is in
/// [`fixture_addons_dir`] or Odoo's own addons of [`fixture_odoo_dir`], in module order.
pub const MODULES_WITH_NEUTRALIZE_SCRIPT: &[&str] = &["base", "mail", "payment_x"];

/// The tables of the fixture database, small ones first.
pub const TABLES: &[&str] = &[
    "res_currency",
    "res_country",
    "res_company",
    "res_users",
    "ir_module_module",
    "ir_model_data",
    "ir_act_server",
    "ir_cron",
    "ir_mail_server",
    "fetchmail_server",
    "ir_config_parameter",
    "mail_template",
    "payment_provider",
    "account_journal",
    "account_account",
    "res_partner",
    "mail_message",
    "account_move",
    "account_move_line",
    "ir_attachment",
];

/// What to build: size of the database, number of filestore files and the
/// installed modules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Approximate target size of the database on disk, in bytes (as
    /// `pg_database_size` reports it, indexes included). Values below a few
    /// MB give the minimum: a few hundred rows in the big tables.
    pub rows_scale: u64,
    /// Number of distinct files in the filestore (each referenced by at least
    /// one `ir_attachment` row through `store_fname`).
    pub filestore_files: usize,
    /// Installed modules (`ir_module_module.state = 'installed'`), in order.
    /// Names must match `^[a-z0-9_]+$`. [`UNINSTALLED_MODULE`] is added in
    /// state `uninstalled` unless listed here.
    pub modules: Vec<String>,
}

/// Row counts [`create_production_db`] puts in the big tables for a [`Spec`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `res_partner` rows (plus 3 fixed ones).
    pub partners: u64,
    /// `mail_message` rows.
    pub messages: u64,
    /// `account_move` rows.
    pub moves: u64,
    /// `account_move_line` rows per move.
    pub lines_per_move: u64,
    /// `ir_attachment` rows (at least one per filestore file; the rest share
    /// files, as Odoo deduplicates by checksum).
    pub attachments: u64,
    /// Distinct filestore files.
    pub files: u64,
}

/// Size on disk of an empty fixture database (the template's catalogs).
const BASE_BYTES: u64 = 10 << 20;
/// Bytes on disk (heap + indexes) of one "unit" of [`Plan`] (1 partner, 5
/// messages, 1 move, 4 lines, 0.5 attachment), calibrated on PostgreSQL 15:
/// `Spec::demo()` gives 20.9 MB for 21.0 MB asked, `Spec::bench(1 << 30)`
/// 1.057 GB for 1.074 GB asked.
const BYTES_PER_UNIT: u64 = 6_600;
const MIN_UNITS: u64 = 50;

impl Spec {
    /// For integration tests: a few hundred rows, 20 filestore files; builds
    /// in a fraction of a second.
    pub fn tiny() -> Spec {
        Spec { rows_scale: 0, filestore_files: 20, modules: default_modules() }
    }

    /// For the README demo: about 20 MB on disk, 200 filestore files.
    pub fn demo() -> Spec {
        Spec { rows_scale: 20 << 20, filestore_files: 200, modules: default_modules() }
    }

    /// For the benchmark: about `bytes` on disk (e.g. `1 << 30`), and a
    /// filestore of many small files (one per 100 KiB of database, at least
    /// 20, about 6 KiB each on average).
    pub fn bench(bytes: u64) -> Spec {
        let files = (bytes / (100 << 10)).clamp(20, 1_000_000) as usize;
        Spec { rows_scale: bytes, filestore_files: files, modules: default_modules() }
    }

    /// The row counts this spec leads to.
    pub fn plan(&self) -> Plan {
        let units = (self.rows_scale.saturating_sub(BASE_BYTES) / BYTES_PER_UNIT).max(MIN_UNITS);
        let files = self.filestore_files as u64;
        Plan { partners: units, messages: units * 5, moves: units, lines_per_move: 4, attachments: (units / 2).max(files), files }
    }
}

/// [`DEFAULT_MODULES`] as owned strings.
pub fn default_modules() -> Vec<String> {
    DEFAULT_MODULES.iter().map(|m| m.to_string()).collect()
}

/// The committed fake `addons_path` directory (`testbed/fixture_addons`):
/// `<module>/__manifest__.py` and, for some, `<module>/data/neutralize.sql`.
/// See [`DEFAULT_MODULES`], [`MODULES_WITH_NEUTRALIZE_SCRIPT`],
/// [`MODULES_MISSING_FROM_ADDONS`] and [`UNINSTALLED_MODULE`].
pub fn fixture_addons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixture_addons")
}

/// A stand-in for Odoo's own source folder: `odoo/release.py` (Odoo 18.0)
/// and `odoo/addons`, which holds `base` (not on [`fixture_addons_dir`]: Odoo
/// always adds its own addons, and so must the neutralization).
pub fn fixture_odoo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixture_odoo")
}

/// Module versions written in `ir_module_module.latest_version` (and thus in
/// the zip manifest); unknown modules get `18.0.1.0`.
fn module_version(name: &str) -> &'static str {
    match name {
        "base" => "18.0.1.3",
        "mail" => "18.0.1.15",
        "account" => "18.0.1.3",
        "payment_x" => "18.0.2.0",
        _ => "18.0.1.0",
    }
}

// ---------------------------------------------------------------------------
// Connection URIs and client programs
// ---------------------------------------------------------------------------

/// `server_url` with its database replaced by `db` (percent-encoded); the
/// query string (`?host=/tmp&...`) is kept. `server_url` must be a
/// `postgresql://` or `postgres://` URI.
pub fn db_url(server_url: &str, db: &str) -> String {
    let (scheme, rest) = match server_url.find("://") {
        Some(i) => (&server_url[..i + 3], &server_url[i + 3..]),
        None => ("postgresql://", server_url),
    };
    let end_auth = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end_auth];
    let query = rest[end_auth..].find('?').map(|q| &rest[end_auth + q..]).unwrap_or("");
    let mut enc = String::new();
    for b in db.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{scheme}{authority}/{enc}{query}")
}

fn tool(bin_dir: &Path, name: &str) -> Command {
    let mut c = Command::new(bin_dir.join(name));
    c.env("PGAPPNAME", "numikube-testbed-fixture").env_remove("PGDATABASE");
    c
}

fn psql_cmd(bin_dir: &Path, url: &str) -> Command {
    let mut c = tool(bin_dir, "psql");
    c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname", url]);
    c
}

/// A running `psql` reading a script on its stdin; stderr collected by a
/// thread so that it can never block the script.
struct PsqlSession {
    child: Child,
    stdin: Option<BufWriter<std::process::ChildStdin>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    what: String,
}

impl PsqlSession {
    fn start(bin_dir: &Path, url: &str, vars: &[(&str, String)], what: &str) -> Result<PsqlSession> {
        let mut cmd = psql_cmd(bin_dir, url);
        for (k, v) in vars {
            cmd.arg("-v").arg(format!("{k}={v}"));
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin_dir.join("psql").display()))?;
        let stdin = child.stdin.take().map(|s| BufWriter::with_capacity(1 << 16, s));
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Ok(PsqlSession { child, stdin, stderr: Some(stderr), what: what.to_string() })
    }

    fn w(&mut self) -> &mut BufWriter<std::process::ChildStdin> {
        self.stdin.as_mut().unwrap()
    }

    fn finish(mut self) -> Result<()> {
        let write_res = self.stdin.take().map(|mut s| s.flush()).unwrap_or(Ok(()));
        let status = self.child.wait()?;
        let err = self.stderr.take().unwrap().join().unwrap_or_default();
        if !status.success() {
            bail!("psql ({}) failed: {status}: {}", self.what, err.trim());
        }
        write_res.with_context(|| format!("writing the script to psql ({})", self.what))?;
        Ok(())
    }
}

fn run_script(bin_dir: &Path, url: &str, vars: &[(&str, String)], what: &str, script: &str) -> Result<()> {
    let mut s = PsqlSession::start(bin_dir, url, vars, what)?;
    let r = s.w().write_all(script.as_bytes());
    s.finish()?;
    r.map_err(Into::into)
}

/// Runs one query with `psql` and returns its rows, columns split on tabs.
fn query(bin_dir: &Path, url: &str, sql: &str) -> Result<Vec<Vec<String>>> {
    let out = psql_cmd(bin_dir, url).args(["-A", "-t", "-F", "\t", "-c", sql]).stdin(Stdio::null()).output().context("starting psql")?;
    if !out.status.success() {
        bail!("psql failed on {sql:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect())
}

fn query_one(bin_dir: &Path, url: &str, sql: &str) -> Result<String> {
    let rows = query(bin_dir, url, sql)?;
    Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()).unwrap_or_default())
}

// ---------------------------------------------------------------------------
// Filestore
// ---------------------------------------------------------------------------

/// One filestore file as `ir_attachment` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilestoreFile {
    /// `<2 hex>/<40 hex sha1>`, relative to the database's filestore.
    pub store_fname: String,
    /// The sha1 of the content, hex.
    pub checksum: String,
    /// Size in bytes.
    pub size: usize,
    /// MIME type.
    pub mimetype: &'static str,
    /// Attachment name.
    pub name: String,
}

/// Totals of a written filestore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FilestoreSummary {
    /// Number of files.
    pub files: usize,
    /// Total bytes.
    pub bytes: u64,
}

struct Rng(u64);
impl Rng {
    fn new(db: &str, i: usize) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in db.bytes().chain((i as u64).to_le_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: &[&str] = &[
    "invoice",
    "order",
    "delivery",
    "customer",
    "payment",
    "quantity",
    "warehouse",
    "desk",
    "chair",
    "cabinet",
    "Brussels",
    "Antwerp",
    "reference",
    "total",
    "VAT",
    "due",
    "date",
    "signed",
    "terms",
];

/// The content of file `i` of the filestore of `db` (deterministic).
fn file_content(db: &str, i: usize) -> (Vec<u8>, &'static str, String) {
    let mut r = Rng::new(db, i);
    let size = 256 + (r.next() % 12_000) as usize;
    let header = format!("numikube fixture {db} file {i}\n");
    let mut v = Vec::with_capacity(size + 64);
    match i % 3 {
        0 => {
            // a text document: compressible
            v.extend_from_slice(header.as_bytes());
            while v.len() < size {
                v.extend_from_slice(WORDS[(r.next() % WORDS.len() as u64) as usize].as_bytes());
                v.push(if r.next().is_multiple_of(12) { b'\n' } else { b' ' });
            }
            (v, "text/plain", format!("note_{i}.txt"))
        }
        1 => {
            // an image: incompressible
            v.extend_from_slice(b"\x89PNG\r\n\x1a\n");
            v.extend_from_slice(header.as_bytes());
            while v.len() < size {
                v.extend_from_slice(&r.next().to_le_bytes());
            }
            (v, "image/png", format!("photo_{i}.png"))
        }
        _ => {
            // a PDF-ish mix
            v.extend_from_slice(b"%PDF-1.7\n");
            v.extend_from_slice(header.as_bytes());
            while v.len() < size {
                if r.next().is_multiple_of(2) {
                    v.extend_from_slice(&r.next().to_le_bytes());
                } else {
                    v.extend_from_slice(b"BT /F1 12 Tf 72 712 Td (Invoice line) Tj ET\n");
                }
            }
            (v, "application/pdf", format!("INV_{i:07}.pdf"))
        }
    }
}

fn describe(content: &[u8], mimetype: &'static str, name: String) -> FilestoreFile {
    let sha: String = Sha1::digest(content).iter().map(|b| format!("{b:02x}")).collect();
    FilestoreFile { store_fname: format!("{}/{}", &sha[..2], sha), checksum: sha, size: content.len(), mimetype, name }
}

/// How many files (anything but a directory) are below `dir`, at any depth;
/// 0 where it cannot be read.
pub fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()).unwrap_or(0)
}

/// The filestore files of `db` for `spec`, with their content, one at a
/// time (file `n` is `ir_attachment` row `n`'s file).
pub fn filestore_files<'a>(spec: &Spec, db: &'a str) -> impl Iterator<Item = (FilestoreFile, Vec<u8>)> + 'a {
    (1..=spec.filestore_files).map(move |i| {
        let (content, mime, name) = file_content(db, i);
        (describe(&content, mime, name), content)
    })
}

/// Writes the filestore of database `db` into `dir` (the database's own
/// filestore directory, e.g. `<data_dir>/filestore/<db>`), in Odoo's layout
/// `<2 hex>/<40 hex sha1>`; the files match the `ir_attachment.store_fname`
/// rows [`create_production_db`] made for the same `spec` and `db`.
pub fn write_filestore(dir: &Path, spec: &Spec, db: &str) -> Result<FilestoreSummary> {
    let mut sum = FilestoreSummary::default();
    for (f, content) in filestore_files(spec, db) {
        let path = dir.join(&f.store_fname);
        let parent = path.parent().unwrap();
        if !parent.is_dir() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, &content).with_context(|| format!("writing {}", path.display()))?;
        sum.files += 1;
        sum.bytes += content.len() as u64;
    }
    Ok(sum)
}

// ---------------------------------------------------------------------------
// The production database
// ---------------------------------------------------------------------------

/// Creates database `db` on the server at `server_url` (connecting to its
/// `postgres` database for the `CREATE DATABASE`) and fills it with the
/// Odoo-shaped schema and data of `spec`. The `ir_attachment` rows point at
/// the files [`write_filestore`] writes for the same `spec` and `db`.
///
/// The big tables are loaded by two `psql` sessions in parallel, then
/// indexes and foreign keys are built and the database is vacuumed and
/// analyzed. Fails if `db` exists already.
pub fn create_production_db(bin_dir: &Path, server_url: &str, db: &str, spec: &Spec) -> Result<()> {
    for m in &spec.modules {
        if m.is_empty() || !m.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            bail!("invalid module name {m:?}");
        }
    }
    let plan = spec.plan();
    let admin = db_url(server_url, "postgres");
    run_script(
        bin_dir,
        &admin,
        &[],
        "create database",
        &format!("CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;\n", ident(db)),
    )?;
    let url = db_url(server_url, db);

    // Schema, modules, small tables.
    let mut s = String::with_capacity(SCHEMA_SQL.len() + SMALL_SQL.len() + 2048);
    s.push_str(SCHEMA_SQL);
    s.push_str(
        "INSERT INTO ir_module_module (id, name, state, latest_version, shortdesc, author, license, \
         application, demo, auto_install, sequence, create_date, write_date) VALUES\n",
    );
    let mut modules: Vec<(&str, &str)> = spec.modules.iter().map(|m| (m.as_str(), "installed")).collect();
    if !spec.modules.iter().any(|m| m == UNINSTALLED_MODULE) {
        modules.push((UNINSTALLED_MODULE, "uninstalled"));
    }
    for (i, (name, state)) in modules.iter().enumerate() {
        let version = if *state == "installed" { literal(module_version(name)) } else { "NULL".to_string() };
        s.push_str(&format!(
            "{}({}, '{name}', '{state}', {version}, '{{\"en_US\": \"{name}\"}}', 'Odoo S.A.', 'LGPL-3', false, false, false, 100, now(), now())",
            if i == 0 { "  " } else { ",\n  " },
            i + 1
        ));
    }
    s.push_str(";\n");
    s.push_str(SMALL_SQL);
    run_script(bin_dir, &url, &[], "schema and small tables", &s)?;

    // Big tables: two sessions in parallel.
    let vars = [
        ("partners", plan.partners.to_string()),
        ("messages", plan.messages.to_string()),
        ("moves", plan.moves.to_string()),
        ("lines_per_move", plan.lines_per_move.to_string()),
        ("attachments", plan.attachments.to_string()),
        ("files", plan.files.to_string()),
    ];
    let mut people = PsqlSession::start(bin_dir, &url, &vars, "partners and messages")?;
    let mut acct = PsqlSession::start(bin_dir, &url, &vars, "accounting and attachments")?;
    let r1 = people.w().write_all(DATA_PEOPLE_SQL.as_bytes());
    let r2 = (|| -> io::Result<()> {
        let w = acct.w();
        w.write_all(
            b"CREATE TEMPORARY TABLE fixture_files (n integer PRIMARY KEY, store_fname varchar, \
              checksum varchar, file_size integer, mimetype varchar, name varchar);\n\
              COPY fixture_files FROM stdin;\n",
        )?;
        for (n, (f, _)) in filestore_files(spec, db).enumerate() {
            writeln!(w, "{}\t{}\t{}\t{}\t{}\t{}", n + 1, f.store_fname, f.checksum, f.size, f.mimetype, f.name)?;
        }
        w.write_all(b"\\.\n")?;
        w.write_all(DATA_ACCOUNTING_SQL.as_bytes())
    })();
    let f1 = people.finish();
    let f2 = acct.finish();
    f1?;
    f2?;
    r1?;
    r2?;

    run_script(bin_dir, &url, &[], "indexes and foreign keys", CONSTRAINTS_SQL)?;
    run_script(bin_dir, &url, &[], "vacuum analyze", "SET client_min_messages = warning;\nVACUUM ANALYZE;\n")?;
    Ok(())
}

/// `pg_database_size` of `db`, in bytes.
pub fn database_size(bin_dir: &Path, server_url: &str, db: &str) -> Result<u64> {
    let v = query_one(bin_dir, &db_url(server_url, db), "SELECT pg_database_size(current_database())")?;
    v.trim().parse().with_context(|| format!("pg_database_size gave {v:?}"))
}

/// Exact row counts (`count(*)`) of the fixture's [`TABLES`] in `db`, to
/// compare a restored copy with its production.
pub fn table_counts(bin_dir: &Path, server_url: &str, db: &str) -> Result<BTreeMap<String, i64>> {
    let sql = TABLES.iter().map(|t| format!("SELECT '{t}', count(*) FROM {t}")).collect::<Vec<_>>().join(" UNION ALL ");
    let mut out = BTreeMap::new();
    for row in query(bin_dir, &db_url(server_url, db), &sql)? {
        if row.len() == 2 {
            out.insert(row[0].clone(), row[1].parse().context("count")?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Neutralization check
// ---------------------------------------------------------------------------

/// What matters about a database's neutralization, as found in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neutralization {
    /// Active `ir_cron` rows other than `base.autovacuum_job`.
    pub active_crons_except_autovacuum: i64,
    /// Whether `base.autovacuum_job` is active (neutralization keeps it on).
    pub autovacuum_active: bool,
    /// Active `ir_mail_server` rows that could really send mail (the dummy
    /// server with `smtp_host = 'invalid'` that Odoo's neutralization adds is
    /// not counted).
    pub active_mail_servers: i64,
    /// Active `fetchmail_server` rows.
    pub active_fetchmail_servers: i64,
    /// `payment_provider` rows in state `enabled` (the `payment_x` fixture
    /// module's script disables them; the built-in set does not).
    pub enabled_payment_providers: i64,
    /// `database.is_neutralized` is set to a true value.
    pub is_neutralized: bool,
    /// `database.uuid`, if present.
    pub uuid: Option<String>,
    /// `database.secret`, if present.
    pub secret: Option<String>,
    /// `database.enterprise_code`, if present.
    pub enterprise_code: Option<String>,
    /// The uninstalled module's script ran (see [`UNINSTALLED_MODULE`]); it
    /// never should.
    pub uninstalled_module_script_ran: bool,
}

/// Reads the neutralization state of `db` (works on production too: there
/// everything is active and `is_neutralized` is false).
pub fn inspect_neutralization(bin_dir: &Path, server_url: &str, db: &str) -> Result<Neutralization> {
    let sql = format!(
        "SELECT \
          (SELECT count(*) FROM ir_cron WHERE active AND id NOT IN (SELECT res_id FROM ir_model_data \
             WHERE module = 'base' AND name = 'autovacuum_job' AND model = 'ir.cron')), \
          coalesce((SELECT bool_or(active) FROM ir_cron WHERE id IN (SELECT res_id FROM ir_model_data \
             WHERE module = 'base' AND name = 'autovacuum_job' AND model = 'ir.cron')), false), \
          (SELECT count(*) FROM ir_mail_server WHERE active AND coalesce(smtp_host, '') <> 'invalid'), \
          (SELECT count(*) FROM fetchmail_server WHERE active), \
          (SELECT count(*) FROM payment_provider WHERE state = 'enabled'), \
          coalesce((SELECT lower(value) NOT IN ('', 'false', '0', 'f', 'no') FROM ir_config_parameter \
             WHERE key = 'database.is_neutralized'), false), \
          coalesce((SELECT 'v' || value FROM ir_config_parameter WHERE key = 'database.uuid'), ''), \
          coalesce((SELECT 'v' || value FROM ir_config_parameter WHERE key = 'database.secret'), ''), \
          coalesce((SELECT 'v' || value FROM ir_config_parameter WHERE key = 'database.enterprise_code'), ''), \
          EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = '{UNINSTALLED_SCRIPT_MARKER}')"
    );
    let rows = query(bin_dir, &db_url(server_url, db), &sql)?;
    let r = rows.into_iter().next().context("no row")?;
    if r.len() != 10 {
        bail!("unexpected answer {r:?}");
    }
    let int = |s: &str| -> Result<i64> { s.parse().with_context(|| format!("not a number: {s:?}")) };
    let opt = |s: &str| s.strip_prefix('v').map(str::to_string);
    Ok(Neutralization {
        active_crons_except_autovacuum: int(&r[0])?,
        autovacuum_active: r[1] == "t",
        active_mail_servers: int(&r[2])?,
        active_fetchmail_servers: int(&r[3])?,
        enabled_payment_providers: int(&r[4])?,
        is_neutralized: r[5] == "t",
        uuid: opt(&r[6]),
        secret: opt(&r[7]),
        enterprise_code: opt(&r[8]),
        uninstalled_module_script_ran: r[9] == "t",
    })
}

impl Neutralization {
    /// The problems that make this database not neutralized (the built-in
    /// set of DESIGN.md *Restore*): active crons other than autovacuum,
    /// autovacuum off, active mail or fetchmail servers, no
    /// `database.is_neutralized`, missing uuid or secret, an enterprise code,
    /// the uninstalled module's script having run. Empty when fine.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.active_crons_except_autovacuum != 0 {
            p.push(format!("{} active crons other than autovacuum", self.active_crons_except_autovacuum));
        }
        if !self.autovacuum_active {
            p.push("the autovacuum cron is not active".into());
        }
        if self.active_mail_servers != 0 {
            p.push(format!("{} active mail servers", self.active_mail_servers));
        }
        if self.active_fetchmail_servers != 0 {
            p.push(format!("{} active fetchmail servers", self.active_fetchmail_servers));
        }
        if !self.is_neutralized {
            p.push("database.is_neutralized is not set".into());
        }
        if self.uuid.as_deref().unwrap_or("").is_empty() {
            p.push("database.uuid is missing".into());
        }
        if self.secret.as_deref().unwrap_or("").is_empty() {
            p.push("database.secret is missing".into());
        }
        if self.enterprise_code.is_some() {
            p.push("database.enterprise_code is still present".into());
        }
        if self.uninstalled_module_script_ran {
            p.push(format!("the neutralize script of the uninstalled module {UNINSTALLED_MODULE} ran"));
        }
        p
    }

    /// Like [`Neutralization::problems`], plus: `uuid` and `secret` differ
    /// from `production`'s.
    pub fn problems_against(&self, production: &Neutralization) -> Vec<String> {
        let mut p = self.problems();
        if self.uuid.is_some() && self.uuid == production.uuid {
            p.push("database.uuid is production's".into());
        }
        if self.secret.is_some() && self.secret == production.secret {
            p.push("database.secret is production's".into());
        }
        p
    }
}

/// Checks that `db` is neutralized (see [`Neutralization::problems`]);
/// returns what it found, or an error listing every problem.
pub fn assert_neutralized(bin_dir: &Path, server_url: &str, db: &str) -> Result<Neutralization> {
    let n = inspect_neutralization(bin_dir, server_url, db)?;
    let p = n.problems();
    if !p.is_empty() {
        bail!("database {db} is not neutralized: {}", p.join("; "));
    }
    Ok(n)
}

// ---------------------------------------------------------------------------
// Backups
// ---------------------------------------------------------------------------

/// Runs `cmd` without input or output and returns what it wrote to stderr;
/// an error naming `what`, with that stderr, if it fails.
pub fn run_quiet(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).output().with_context(|| format!("starting {what}"))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!("{what} failed: {}: {}", out.status, err.trim());
    }
    Ok(err)
}

/// `pg_dump --no-owner --format=c` of `db` into `out` (starts with
/// `PGDMP`), as Odoo's "pg_dump custom format" backup.
pub fn dump_custom(bin_dir: &Path, server_url: &str, db: &str, out: &Path) -> Result<()> {
    let mut c = tool(bin_dir, "pg_dump");
    c.arg("--no-owner").arg("--format=c").arg("--file").arg(out).arg("--dbname").arg(db_url(server_url, db));
    run_quiet(&mut c, "pg_dump --format=c").map(drop)
}

/// Plain SQL `pg_dump --no-owner` of `db` into `out`, as in Odoo's zip.
pub fn dump_plain(bin_dir: &Path, server_url: &str, db: &str, out: &Path) -> Result<()> {
    let mut c = tool(bin_dir, "pg_dump");
    c.arg("--no-owner").arg("--file").arg(out).arg("--dbname").arg(db_url(server_url, db));
    run_quiet(&mut c, "pg_dump").map(drop)
}

/// The `manifest.json` Odoo 18 writes in its backup zip for `db`.
pub fn odoo_manifest(bin_dir: &Path, server_url: &str, db: &str) -> Result<serde_json::Value> {
    let url = db_url(server_url, db);
    let num: u64 = query_one(bin_dir, &url, "SHOW server_version_num")?.trim().parse()?;
    // Odoo: "%d.%d" % divmod(server_version / 100, 100)
    let pg_version = format!("{}.{}", num / 10_000, (num / 100) % 100);
    let mut modules = serde_json::Map::new();
    for row in
        query(bin_dir, &url, "SELECT name, coalesce(latest_version, '') FROM ir_module_module WHERE state = 'installed' ORDER BY id")?
    {
        if row.len() == 2 {
            modules.insert(row[0].clone(), serde_json::Value::String(row[1].clone()));
        }
    }
    Ok(serde_json::json!({
        "odoo_dump": "1",
        "db_name": db,
        "version": ODOO_VERSION,
        "version_info": [18, 0, 0, "final", 0, ""],
        "major_version": ODOO_VERSION,
        "pg_version": pg_version,
        "modules": modules,
    }))
}

/// Which program writes the archive in [`make_odoo_zip_with`] and
/// [`gzip_file_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressor {
    /// The external program (`python3`'s `zipfile`, as Odoo itself uses;
    /// `gzip`) when it is on `PATH`, else [`Compressor::Rust`]. Much faster
    /// than `Rust` in a debug build.
    Auto,
    /// The `zip` / `flate2` crates, in process.
    Rust,
}

/// Odoo's backup zip of `db` into `out`, laid out as Odoo 18's
/// `dump_db(..., 'zip')` makes it: `dump.sql` first (plain, `--no-owner`),
/// then `manifest.json`, then `filestore/<2 hex>/<sha1>` for every file under
/// `filestore_dir` (the database's filestore; skipped if it does not exist),
/// all deflated (zlib's default level), no directory entries, zip64 where
/// needed. The dump goes through a temporary file next to `out`, as in Odoo.
/// Same as [`make_odoo_zip_with`] with [`Compressor::Auto`].
pub fn make_odoo_zip(bin_dir: &Path, server_url: &str, db: &str, filestore_dir: &Path, out: &Path) -> Result<()> {
    make_odoo_zip_with(bin_dir, server_url, db, filestore_dir, out, Compressor::Auto)
}

/// Python script behind [`Compressor::Auto`] for zips: Python's `zipfile`,
/// deflate, files streamed from disk; argv: out, dump.sql, manifest.json,
/// filestore dir.
const PY_ZIP: &str = r#"
import os, sys, zipfile
out, dump, manifest, filestore = sys.argv[1:5]
with zipfile.ZipFile(out, 'w', compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    z.write(dump, 'dump.sql')
    z.write(manifest, 'manifest.json')
    if os.path.isdir(filestore):
        for dirpath, dirnames, filenames in os.walk(filestore):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, filestore).replace(os.sep, '/')
                z.write(path, 'filestore/' + rel)
"#;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file())).unwrap_or(false)
}

/// [`make_odoo_zip`], choosing the compressor.
pub fn make_odoo_zip_with(bin_dir: &Path, server_url: &str, db: &str, filestore_dir: &Path, out: &Path, how: Compressor) -> Result<()> {
    use zip::write::SimpleFileOptions;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".odoo-zip-").tempdir_in(parent)?;
    let dump = tmp.path().join("dump.sql");
    dump_plain(bin_dir, server_url, db, &dump)?;
    let manifest = odoo_manifest(bin_dir, server_url, db)?;

    if how == Compressor::Auto && on_path("python3") {
        let mpath = tmp.path().join("manifest.json");
        {
            let mut w = BufWriter::new(File::create(&mpath)?);
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut w, fmt);
            serde::Serialize::serialize(&manifest, &mut ser)?;
            w.flush()?;
        }
        let mut c = Command::new("python3");
        c.arg("-c").arg(PY_ZIP).arg(out).arg(&dump).arg(&mpath).arg(filestore_dir);
        return run_quiet(&mut c, "python3 zipfile").map(drop);
    }

    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 16, File::create(out)?));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(0o644);
    fn add<W: Write + Seek>(zip: &mut zip::ZipWriter<W>, opts: SimpleFileOptions, name: &str, path: &Path) -> Result<()> {
        let size = fs::metadata(path)?.len();
        zip.start_file(name, opts.large_file(size >= 0xFFFF_FFFF))?;
        io::copy(&mut BufReader::with_capacity(1 << 16, File::open(path)?), zip)?;
        Ok(())
    }
    add(&mut zip, opts, "dump.sql", &dump)?;
    drop(fs::remove_file(&dump));
    zip.start_file("manifest.json", opts)?;
    {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut zip, fmt);
        serde::Serialize::serialize(&manifest, &mut ser)?;
    }
    if filestore_dir.is_dir() {
        let mut files = Vec::new();
        collect_files(filestore_dir, &mut files)?;
        files.sort();
        for f in files {
            let rel = f.strip_prefix(filestore_dir)?;
            let name = format!("filestore/{}", rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"));
            add(&mut zip, opts, &name, &f)?;
        }
    }
    zip.finish()?.flush()?;
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            collect_files(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Gzips `inp` into `out` (default level 6), streaming. Same as
/// [`gzip_file_with`] with [`Compressor::Auto`] (the `gzip` program).
pub fn gzip_file(inp: &Path, out: &Path) -> Result<()> {
    gzip_file_with(inp, out, Compressor::Auto)
}

/// [`gzip_file`], choosing the compressor.
pub fn gzip_file_with(inp: &Path, out: &Path, how: Compressor) -> Result<()> {
    if how == Compressor::Auto && on_path("gzip") {
        let mut c = Command::new("gzip");
        c.arg("-c").arg("-6").arg("-n");
        let input = File::open(inp).with_context(|| format!("opening {}", inp.display()))?;
        let output = File::create(out).with_context(|| format!("creating {}", out.display()))?;
        let res = c.stdin(input).stdout(output).stderr(Stdio::piped()).output().context("starting gzip")?;
        if !res.status.success() {
            bail!("gzip failed: {}: {}", res.status, String::from_utf8_lossy(&res.stderr).trim());
        }
        return Ok(());
    }
    let mut r = BufReader::with_capacity(1 << 16, File::open(inp).with_context(|| format!("opening {}", inp.display()))?);
    let w = BufWriter::with_capacity(1 << 16, File::create(out).with_context(|| format!("creating {}", out.display()))?);
    let mut gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
    io::copy(&mut r, &mut gz)?;
    gz.finish()?.flush()?;
    Ok(())
}

/// How [`corrupt_file`] damages a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Keep only the first half (at least the first 16 bytes, so that the
    /// format is still recognized by its first bytes).
    Truncate,
    /// Keep the length and the first bytes, overwrite 4 KiB (or a third of a
    /// smaller file) from a third of the way in with random bytes.
    Garble,
}

/// Writes a damaged copy of the backup `inp` to `out`, for error tests. The
/// first bytes (the format's magic: `PGDMP`, `PK`, gzip's `1f 8b`, SQL text)
/// are kept so that format detection still succeeds and the restore itself
/// must fail. Note: a plain SQL dump cut exactly at a line boundary may
/// still load without error in `psql`; `Truncate` cuts at half the file,
/// which in practice lands inside a `COPY` line.
pub fn corrupt_file(inp: &Path, out: &Path, how: Corruption) -> Result<()> {
    let len = fs::metadata(inp)?.len();
    let mut r = BufReader::new(File::open(inp)?);
    let mut w = File::create(out)?;
    match how {
        Corruption::Truncate => {
            let keep = (len / 2).max(16.min(len));
            io::copy(&mut (&mut r).take(keep), &mut w)?;
        }
        Corruption::Garble => {
            io::copy(&mut r, &mut w)?;
            let start = (len / 3).max(16.min(len));
            let n = 4096.min(len / 3).min(len - start);
            let mut rng = Rng::new("garble", len as usize);
            let junk: Vec<u8> = (0..n).map(|_| (rng.next() >> 24) as u8 | 0x80).collect();
            w.seek(SeekFrom::Start(start))?;
            w.write_all(&junk)?;
        }
    }
    w.flush()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------

/// Paths and timings of [`build_all`].
#[derive(Clone, Debug)]
pub struct Built {
    /// Database size after creation (`pg_database_size`).
    pub db_bytes: u64,
    /// Filestore totals.
    pub filestore: FilestoreSummary,
    /// `(kind, path, bytes, seconds)` for `create_db`, `filestore`, `custom`,
    /// `plain`, `zip`, `plain.gz`, in that order (the first two have no path).
    pub steps: Vec<(String, Option<PathBuf>, u64, f64)>,
}

/// Builds `db` and its filestore under `work_dir/filestore/<db>`, then every
/// backup kind under `work_dir` (`<db>.dump`, `<db>.sql`, `<db>.zip`,
/// `<db>.sql.gz`), timing each step. For the benchmark and the demo.
pub fn build_all(bin_dir: &Path, server_url: &str, db: &str, spec: &Spec, work_dir: &Path) -> Result<Built> {
    let mut steps = Vec::new();
    let t = Instant::now();
    create_production_db(bin_dir, server_url, db, spec)?;
    let db_bytes = database_size(bin_dir, server_url, db)?;
    steps.push(("create_db".to_string(), None, db_bytes, t.elapsed().as_secs_f64()));
    let fs_dir = work_dir.join("filestore").join(db);
    let t = Instant::now();
    let filestore = write_filestore(&fs_dir, spec, db)?;
    steps.push(("filestore".to_string(), None, filestore.bytes, t.elapsed().as_secs_f64()));
    let mut timed = |kind: &str, path: PathBuf, f: &dyn Fn(&Path) -> Result<()>| -> Result<()> {
        let t = Instant::now();
        f(&path)?;
        let size = fs::metadata(&path)?.len();
        steps.push((kind.to_string(), Some(path), size, t.elapsed().as_secs_f64()));
        Ok(())
    };
    timed("custom", work_dir.join(format!("{db}.dump")), &|p| dump_custom(bin_dir, server_url, db, p))?;
    timed("plain", work_dir.join(format!("{db}.sql")), &|p| dump_plain(bin_dir, server_url, db, p))?;
    timed("zip", work_dir.join(format!("{db}.zip")), &|p| make_odoo_zip(bin_dir, server_url, db, &fs_dir, p))?;
    let plain = work_dir.join(format!("{db}.sql"));
    timed("plain.gz", work_dir.join(format!("{db}.sql.gz")), &|p| gzip_file(&plain, p))?;
    Ok(Built { db_bytes, filestore, steps })
}
