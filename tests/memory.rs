//! The sidecar's memory stays flat while it restores a backup much larger
//! than its heap. Slow (it builds a ≈1 GB database), so ignored by default:
//!
//! ```sh
//! cargo test --release --test memory -- --ignored --nocapture
//! ```
//!
//! `NUMIKUBE_MEMORY_BYTES` sets the production database's size (default 1 GiB,
//! whose plain SQL backup is ≈750 MB).

mod common;

use std::time::Duration;

use common::{Options, Stage, BUCKET};
use numikube_staging_rpc::JobState;
use numikube_testbed::{fixture, procfs};

/// Peak resident memory (`VmHWM`) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    procfs::status_kib(pid, "VmHWM:").expect("the sidecar's VmHWM")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "slow: builds a ≈1 GB database; run with --ignored"]
async fn peak_rss_stays_flat_on_a_large_plain_sql_backup() {
    let bytes: u64 = std::env::var("NUMIKUBE_MEMORY_BYTES").ok().and_then(|b| b.parse().ok()).unwrap_or(1 << 30);
    let stage = Stage::start(Options { extra_conf: "numikube_staging_template_cache = False".into(), ..Options::default() });
    let work = stage.dir.path().join("big");
    std::fs::create_dir_all(&work).unwrap();
    let server = stage.pg.url("postgres");
    fixture::create_production_db(&stage.pg.bin_dir, &server, "prod_big", &fixture::Spec::bench(bytes)).unwrap();
    let sql = work.join("prod_big.sql");
    fixture::dump_plain(&stage.pg.bin_dir, &server, "prod_big", &sql).unwrap();
    let backup_bytes = std::fs::metadata(&sql).unwrap().len();
    stage.s3.put_file(BUCKET, "big-daily-1.sql", &sql).unwrap();

    let pid = stage.sidecar_pid();
    let before = peak_rss_kib(pid);
    let started = stage.run(stage.prod2x("big", "mem", false)).await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(900), stage.wait_job(&started.job_id)).await.unwrap();
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let peak = peak_rss_kib(pid);
    println!(
        "plain SQL backup of {} MB restored; sidecar peak RSS {:.1} MiB (before the job: {:.1} MiB)",
        backup_bytes >> 20,
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
    assert!(backup_bytes >= 500 << 20 || bytes < 1 << 30, "the backup is large enough to tell");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB: the backup is held in memory somewhere");
}
