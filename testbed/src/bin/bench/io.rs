//! The speeds the contenders stand on: moto's download, the disk's
//! sequential write, and a small durable write as the job journal does it.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use numikube_testbed::fixture::run_quiet;
use serde_json::{json, Value};

use crate::data::Data;
use crate::env::Env;
use crate::names::BUCKET;

/// Measures the three speeds; the `io` part of the report.
pub fn measure(env: &Env, data: &Data) -> Result<Value> {
    let mut io = json!({});
    let (bytes, secs) = s3_get_to_null(env, BUCKET, &data.keys.0)?;
    io["moto_download_mb_s"] = json!(bytes as f64 / 1e6 / secs);
    io["moto_download_bytes"] = json!(bytes);
    let ddf = env.work.join("dd.bin");
    let t = Instant::now();
    run_quiet(
        Command::new("dd").arg("if=/dev/zero").arg(format!("of={}", ddf.display())).args(["bs=1M", "count=1024", "conv=fdatasync"]),
        "dd",
    )?;
    let dd_s = t.elapsed().as_secs_f64();
    let _ = fs::remove_file(&ddf);
    io["disk_write_mb_s"] = json!((1u64 << 30) as f64 / 1e6 / dd_s);
    let durable = durable_write_ms(&env.work.join("fsync-probe"), 100)?;
    io["durable_small_write_ms"] = json!(durable);
    env.log.say(format!(
        "moto GET of the dump: {:.0} MB/s; dd 1 GiB conv=fdatasync: {:.0} MB/s; \
         small durable write (write, fsync, rename, fsync dir): {durable:.2} ms",
        io["moto_download_mb_s"].as_f64().unwrap_or(0.0),
        io["disk_write_mb_s"].as_f64().unwrap_or(0.0)
    ));
    Ok(io)
}

/// Mean time of a small durable file write as a job journal does it: write
/// 1 KiB to a temporary file, fsync it, rename it, fsync the directory.
fn durable_write_ms(dir: &Path, n: usize) -> Result<f64> {
    use std::io::Write;
    fs::create_dir_all(dir)?;
    let t = Instant::now();
    for i in 0..n {
        let tmp = dir.join(format!("{i}.tmp"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&[b'x'; 1024])?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(format!("{i}.json")))?;
        fs::File::open(dir)?.sync_all()?;
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
    let _ = fs::remove_dir_all(dir);
    Ok(ms)
}

/// GET of an object from moto through object_store (the sidecar's client), bytes dropped; (bytes, seconds).
fn s3_get_to_null(env: &Env, bucket: &str, key: &str) -> Result<(u64, f64)> {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let store = env.s3.client(bucket)?;
    let key = object_store::path::Path::parse(key)?;
    env.rt.block_on(async move {
        let t = Instant::now();
        let mut stream = store.get(&key).await?.into_stream();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            total += chunk?.len() as u64;
        }
        anyhow::Ok((total, t.elapsed().as_secs_f64()))
    })
}
