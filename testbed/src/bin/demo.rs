//! `demo`: one whole staging job, end to end, on throw-away real servers.
//!
//! Starts a PostgreSQL cluster, moto's S3 server and a stand-in for
//! production's callback route; builds a small Odoo-shaped "production"
//! database and uploads its Odoo backup zip; starts the release sidecar;
//! sends the prod2x request exactly as the staging Odoo route forwards it;
//! waits for the callback; prints what happened. Everything stops at the end.
//! Run it through `scripts/demo`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jsonrpsee::http_client::HttpClientBuilder;
use numikube_staging_rpc::{RunPayload, RunResult, StagingApiClient};
use numikube_testbed::sidecar::{self, Sidecar, SidecarConf};
use numikube_testbed::{fixture, CallbackReceiver, Postgres, S3};

const TOKEN: &str = "demo-token";
const BUCKET: &str = "prod-backups";

fn step(text: &str) {
    eprintln!("==> {text}");
}

#[tokio::main]
async fn main() -> Result<()> {
    let sidecar_bin = std::env::current_exe()?.with_file_name("numikube-staging");
    anyhow::ensure!(sidecar_bin.is_file(), "{} is missing: build it with scripts/demo", sidecar_bin.display());
    let work = tempfile::tempdir()?;

    step("starting a throw-away PostgreSQL cluster, moto's S3 server and production's callback receiver");
    let pg = Postgres::start()?;
    pg.create_db_user("odoo", "odoo-pw")?;
    pg.create_work_role("odoo")?;
    let s3 = S3::start()?;
    s3.create_bucket(BUCKET)?;
    let receiver = CallbackReceiver::start()?;

    step("building an Odoo-shaped production database `cosmos_prod` and its Odoo backup zip");
    let t = Instant::now();
    let built = fixture::build_all(&pg.bin_dir, &pg.url("postgres"), "cosmos_prod", &fixture::Spec::demo(), work.path())?;
    let zip = work.path().join("cosmos_prod.zip");
    let key = "cosmos/cosmos_2026-11-24_03-00.zip";
    s3.put_file(BUCKET, key, &zip)?;
    eprintln!(
        "    {} MB database, {} filestore files, zip of {} KB uploaded as s3://{BUCKET}/{key} ({:.1} s)",
        built.db_bytes >> 20,
        built.filestore.files,
        std::fs::metadata(&zip)?.len() >> 10,
        t.elapsed().as_secs_f64()
    );

    step("starting the sidecar (numikube-staging serve) with a staging odoo.conf");
    let data_dir = work.path().join("staging-data");
    std::fs::create_dir_all(&data_dir)?;
    let conf = SidecarConf::new(TOKEN, &pg, ("odoo", "odoo-pw"), &s3, BUCKET, &data_dir);
    let conf_path = work.path().join("odoo.conf");
    conf.write(&conf_path)?;
    let sidecar = Sidecar::start(&sidecar_bin, &conf_path, conf.port, &work.path().join("sidecar.log"))?;
    let client = HttpClientBuilder::default().build(sidecar.url())?;

    let callback = receiver.url("/web/staging/callback/42?db=cosmos_prod");
    let payload = RunPayload { email: Some("david@example.com".into()), ..sidecar::prod2x(TOKEN, "cosmos", "demo", true, callback) };
    step("sending the request production sends (forwarded as JSON-RPC staging_run):");
    eprintln!("    {}", serde_json::to_string(&payload)?);
    let t = Instant::now();
    let started = match client.run(payload).await.context("staging_run")? {
        RunResult::Started(s) => s,
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    eprintln!("    answered in {:.0} ms: {} (job {})", t.elapsed().as_secs_f64() * 1e3, started.db_name, started.job_id);

    step("waiting for the callback to production");
    let calls =
        receiver.wait_for(1, Duration::from_secs(300)).with_context(|| format!("no callback; sidecar log:\n{}", sidecar.log_text()))?;
    let elapsed = t.elapsed();
    let callback = &calls[0];
    // The callback goes out as soon as the copy has its name; the job is done
    // once the copy is open to Odoo (a template is kept from it first).
    let status = loop {
        let status = client.status(TOKEN.into(), started.job_id.clone()).await?;
        if status.state != numikube_staging_rpc::JobState::Running {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let visible = t.elapsed();
    let n = fixture::inspect_neutralization(&pg.bin_dir, &pg.url("postgres"), &started.db_name)?;
    let report = status.neutralized.clone().unwrap_or_default();
    let filestore = data_dir.join("filestore").join(&started.db_name);

    println!();
    println!("staging database  {}", started.db_name);
    println!("made from         s3://{BUCKET}/{key}");
    println!("request → callback {:.1} s; callback body: {}", elapsed.as_secs_f64(), callback.body);
    println!("open to Odoo after {:.1} s (a template of the backup is kept first)", visible.as_secs_f64());
    println!("state             {:?} ({})", status.state, status.error.as_deref().unwrap_or("no error"));
    println!("neutralize.sql    ran for {}", report.scripts.join(", "));
    println!("not on addons_path {}", report.modules_not_found.join(", "));
    println!(
        "neutralized       {} active crons besides autovacuum, {} active mail servers, {} active fetchmail servers, is_neutralized={}, enterprise code {}",
        n.active_crons_except_autovacuum,
        n.active_mail_servers,
        n.active_fetchmail_servers,
        n.is_neutralized,
        if n.enterprise_code.is_some() { "kept (!)" } else { "removed" }
    );
    println!("filestore         {} ({} entries)", filestore.display(), fixture::count_files(&filestore));
    let ok = status.state == numikube_staging_rpc::JobState::Done && n.problems().is_empty();
    println!("{}", if ok { "demo: OK" } else { "demo: FAILED" });
    drop(sidecar);
    anyhow::ensure!(ok, "the staging job did not end as expected: {:?}", n.problems());
    Ok(())
}
