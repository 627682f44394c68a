//! The data every contender restores: an Odoo-shaped production database,
//! its custom dump and Odoo zip (uploaded to moto), when asked the custom
//! dump again with a filestore companion beside it, and the zip unpacked as
//! Odoo would unpack it for the baselines.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use numikube_testbed::fixture;
use serde_json::{json, Value};

use crate::args::Shape;
use crate::env::Env;
use crate::names::{BUCKET, PROD_DB};
use crate::util::{chrono_like_stamp, mb};

/// The backups, where they are, and what making them took.
pub struct Data {
    /// The custom dump (`pg_dump -Fc`), local.
    pub dump: PathBuf,
    /// `dump.sql` of the unpacked zip.
    pub dump_sql: PathBuf,
    /// `filestore/` of the unpacked zip.
    pub unpacked_fs: PathBuf,
    /// The `--size` asked for.
    size_arg: u64,
    /// The shape asked for.
    shape: Shape,
    /// Rows of its one big table (0 in the spread shape).
    big_table_rows: u64,
    /// The production database's size on disk.
    pub database_bytes: u64,
    /// Files and bytes of its filestore.
    filestore: fixture::FilestoreSummary,
    /// Size of the custom dump.
    pub dump_bytes: u64,
    /// Size of the Odoo zip.
    pub zip_bytes: u64,
    /// Compressed size of the zip's `filestore/` entries (what a companion stands in for).
    pub zip_filestore_bytes: u64,
    /// Seconds to build the database, to dump it, to zip it.
    build_s: (f64, f64, f64),
    /// Seconds to upload the dump and the zip.
    upload_s: (f64, f64),
    /// The bucket keys of the dump (client `benchdump`) and of the zip (client `benchzip`).
    pub keys: (String, String),
    /// The custom dump with a companion, when the plan has its contender.
    pub companion: Option<Companion>,
}

/// The custom dump again, under client `benchfs`, with a `.filestore.tar.gz`
/// companion made of the filestore the zip holds (issue 21).
pub struct Companion {
    /// The bucket key of the dump.
    pub dump_key: String,
    /// The bucket key of the companion.
    pub key: String,
    /// Size of the companion.
    pub bytes: u64,
    /// Seconds to make the companion.
    make_s: f64,
    /// Seconds to upload the dump and the companion.
    upload_s: f64,
}

impl Companion {
    /// What the sidecar says a copy's filestore came from when it took it from this companion.
    pub fn origin(&self) -> String {
        format!("companion {}", self.key)
    }
}

impl Data {
    /// The `data` part of the report.
    pub fn json(&self) -> Value {
        let companion = self.companion.as_ref().map(|c| {
            json!({"dump_key": c.dump_key, "key": c.key, "bytes": c.bytes, "make_s": c.make_s, "upload_s": c.upload_s,
                   "download_bytes": self.dump_bytes + c.bytes})
        });
        json!({"size_arg": self.size_arg, "shape": self.shape.id(), "big_table_rows": self.big_table_rows, "database_bytes": self.database_bytes, "filestore_files": self.filestore.files,
               "filestore_bytes": self.filestore.bytes, "custom_dump_bytes": self.dump_bytes, "zip_bytes": self.zip_bytes, "zip_filestore_bytes": self.zip_filestore_bytes,
               "build_db_s": self.build_s.0, "dump_s": self.build_s.1, "zip_s": self.build_s.2,
               "upload_dump_s": self.upload_s.0, "upload_zip_s": self.upload_s.1, "keys": [self.keys.0, self.keys.1],
               "companion": companion})
    }
}

/// Builds a production database of `size` bytes shaped as `shape` and its
/// backups (with a filestore companion if `companion`), uploads them, and
/// drops the database.
pub fn prepare(env: &Env, size: u64, shape: Shape, companion: bool) -> Result<Data> {
    let (pg, work, log) = (&env.pg, &env.work, &env.log);
    let spec = shape.spec(size);
    log.say(format!(
        "building the production database ({} target, shape {}, {} filestore files, {} rows in one big table) and its backups",
        mb(size),
        shape.id(),
        spec.filestore_files,
        spec.big_table_rows
    ));
    let t = Instant::now();
    let server_url = pg.url("postgres");
    fixture::create_production_db(&pg.bin_dir, &server_url, PROD_DB, &spec)?;
    let database_bytes = fixture::database_size(&pg.bin_dir, &server_url, PROD_DB)?;
    let t_db = t.elapsed().as_secs_f64();
    let prod_fs = work.join("prod-filestore");
    let filestore = fixture::write_filestore(&prod_fs, &spec, PROD_DB)?;
    let dump = work.join(format!("{PROD_DB}.dump"));
    let zip = work.join(format!("{PROD_DB}.zip"));
    let t2 = Instant::now();
    fixture::dump_custom(&pg.bin_dir, &server_url, PROD_DB, &dump)?;
    let t_dump = t2.elapsed().as_secs_f64();
    let t2 = Instant::now();
    fixture::make_odoo_zip(&pg.bin_dir, &server_url, PROD_DB, &prod_fs, &zip)?;
    let t_zip = t2.elapsed().as_secs_f64();
    let dump_bytes = fs::metadata(&dump)?.len();
    let zip_bytes = fs::metadata(&zip)?.len();
    log.say(format!(
        "database {} in {t_db:.0}s; filestore {} files {}; custom dump {} in {t_dump:.0}s; zip {} in {t_zip:.0}s",
        mb(database_bytes),
        filestore.files,
        mb(filestore.bytes),
        mb(dump_bytes),
        mb(zip_bytes)
    ));
    let stamp = chrono_like_stamp();
    let companion = if companion { Some(upload_companion(env, &prod_fs, &dump, &stamp)?) } else { None };
    // The production lives elsewhere: keep only its backups.
    env.drop_db(PROD_DB)?;
    fs::remove_dir_all(&prod_fs)?;

    // The zip as Odoo unpacks it, for the Odoo baseline and the FILE_COPY template's filestore.
    let unpacked = work.join("odoo-unpacked");
    let t = Instant::now();
    let mut archive = zip::ZipArchive::new(fs::File::open(&zip)?)?;
    let zip_filestore_bytes = zip_filestore_bytes(&mut archive)?;
    archive.extract(&unpacked)?;
    log.say(format!("zip unpacked for the baselines in {:.0}s", t.elapsed().as_secs_f64()));

    let key_dump = format!("benchdump-{stamp}.dump");
    let key_zip = format!("benchzip-{stamp}.zip");
    let t = Instant::now();
    env.s3.put_file(BUCKET, &key_dump, &dump)?;
    let up_dump = t.elapsed().as_secs_f64();
    let t = Instant::now();
    env.s3.put_file(BUCKET, &key_zip, &zip)?;
    let up_zip = t.elapsed().as_secs_f64();
    log.say(format!("uploaded {key_dump} in {up_dump:.1}s and {key_zip} in {up_zip:.1}s (multipart, streamed)"));

    Ok(Data {
        dump,
        dump_sql: unpacked.join("dump.sql"),
        unpacked_fs: unpacked.join("filestore"),
        size_arg: size,
        shape,
        big_table_rows: spec.big_table_rows,
        database_bytes,
        filestore,
        dump_bytes,
        zip_bytes,
        zip_filestore_bytes,
        build_s: (t_db, t_dump, t_zip),
        upload_s: (up_dump, up_zip),
        keys: (key_dump, key_zip),
        companion,
    })
}

/// The compressed bytes of the zip's `filestore/` entries.
fn zip_filestore_bytes(archive: &mut zip::ZipArchive<fs::File>) -> Result<u64> {
    let mut total = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i)?;
        if entry.name().starts_with("filestore/") {
            total += entry.compressed_size();
        }
    }
    Ok(total)
}

/// Makes the filestore companion of `prod_fs` and uploads it beside a second copy of `dump`, client `benchfs`.
fn upload_companion(env: &Env, prod_fs: &Path, dump: &Path, stamp: &str) -> Result<Companion> {
    let dump_key = format!("benchfs-{stamp}.dump");
    let key = format!("benchfs-{stamp}.filestore.tar.gz");
    let local = env.work.join(&key);
    let t = Instant::now();
    fixture::make_filestore_companion(prod_fs, &local)?;
    let make_s = t.elapsed().as_secs_f64();
    let bytes = fs::metadata(&local)?.len();
    let t = Instant::now();
    env.s3.put_file(BUCKET, &dump_key, dump)?;
    env.s3.put_file(BUCKET, &key, &local)?;
    let upload_s = t.elapsed().as_secs_f64();
    fs::remove_file(&local)?;
    env.log.say(format!("companion {key} ({}) made in {make_s:.1}s; uploaded with {dump_key} in {upload_s:.1}s", mb(bytes)));
    Ok(Companion { dump_key, key, bytes, make_s, upload_s })
}
