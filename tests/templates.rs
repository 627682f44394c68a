//! The template cache: repeat copies of the same backup come from a kept,
//! neutralized template; a newer backup replaces it; pre-warm builds it
//! before anyone asks.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use common::{Options, Stage, BUCKET, TOKEN};
use numikube_staging_rpc::{JobState, StagingApiClient};
use numikube_testbed::fixture;

/// Names of the kept templates.
fn templates(stage: &Stage) -> Vec<String> {
    stage.databases().into_iter().filter(|d| d.starts_with("numikube_tpl_")).collect()
}

/// Waits until `f` holds.
async fn until(what: &str, stage: &Stage, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config_param(stage: &Stage, db: &str, key: &str) -> String {
    stage.query(db, &format!("SELECT value FROM ir_config_parameter WHERE key = '{key}'"))
}

/// Whether Odoo's database list shows `name` (odoo.service.db.list_dbs:
/// db_user's, not a template, connectable).
fn in_odoo_list(stage: &Stage, name: &str) -> bool {
    stage.query(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}' AND NOT datistemplate \
             AND datallowconn AND pg_get_userbyid(datdba) = 'odoo'"
        ),
    ) == "1"
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_copy_comes_from_the_template() {
    let stage = Stage::start(Options { limit: 3, ..Options::default() });
    let (work, _) = stage.make_backups("mike");
    stage.s3.put_file(BUCKET, "mike-daily-1.zip", &Stage::backup_path(&work, "mike", "zip")).unwrap();

    let first = stage.run(stage.prod2x("mike", "one", false)).await.unwrap();
    assert_eq!(stage.wait_job(&first.job_id).await.state, JobState::Done);
    until("the template", &stage, || templates(&stage).len() == 1).await;
    let template = templates(&stage).remove(0);

    // Hidden from Odoo's list, not counted in the limit, shown by staging_list.
    let list = stage.client.list(TOKEN.into(), None).await.unwrap();
    let shown = list.iter().find(|d| d.name == template).expect("templates are listed");
    assert!(shown.template && shown.size_bytes > 0);
    assert!(!in_odoo_list(&stage, &template));

    let second = stage.run(stage.prod2x("mike", "two", false)).await.unwrap();
    let status = stage.wait_job(&second.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(stage.sidecar_log().contains("copying the template"), "the repeat copy used the template");
    let server = stage.pg.url("postgres");
    fixture::assert_neutralized(&stage.pg.bin_dir, &server, &second.db_name).expect("neutralized");
    assert_ne!(config_param(&stage, &second.db_name, "database.uuid"), config_param(&stage, &first.db_name, "database.uuid"));
    assert_ne!(config_param(&stage, &second.db_name, "database.secret"), config_param(&stage, &first.db_name, "database.secret"));
    assert_eq!(
        fixture::table_counts(&stage.pg.bin_dir, &server, &second.db_name).unwrap(),
        fixture::table_counts(&stage.pg.bin_dir, &server, &first.db_name).unwrap()
    );

    // The copy's filestore files are hard links of the template's.
    let fs = |db: &str| stage.data_dir().join("filestore").join(db);
    let mut shared = 0;
    for dir in std::fs::read_dir(fs(&template)).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let file = file.unwrap().path();
            let rel = file.strip_prefix(fs(&template)).unwrap();
            assert_eq!(std::fs::metadata(&file).unwrap().ino(), std::fs::metadata(fs(&second.db_name).join(rel)).unwrap().ino());
            shared += 1;
        }
    }
    assert_eq!(shared, 20);

    // A newer backup replaces the template; the repeat copy survives it.
    std::thread::sleep(Duration::from_millis(1100));
    stage.s3.put_file(BUCKET, "mike-daily-2.dump", &Stage::backup_path(&work, "mike", "dump")).unwrap();
    let dropped = stage.client.drop_databases(TOKEN.into(), first.db_name.clone()).await.unwrap();
    assert_eq!(dropped.dropped, vec![first.db_name.clone()]);
    let third = stage.run(stage.prod2x("mike", "three", false)).await.unwrap();
    assert_eq!(stage.wait_job(&third.job_id).await.state, JobState::Done);
    until("the newer template", &stage, || {
        let t = templates(&stage);
        t.len() == 1 && t[0] != template
    })
    .await;
    assert!(fs(&second.db_name).exists() && std::fs::read_dir(fs(&second.db_name)).unwrap().count() > 0);
    fixture::assert_neutralized(&stage.pg.bin_dir, &server, &second.db_name).expect("the copy survives");

    // staging_drop can drop a template.
    let t = templates(&stage).remove(0);
    let dropped = stage.client.drop_databases(TOKEN.into(), t.clone()).await.unwrap();
    assert_eq!(dropped.dropped, vec![t.clone()], "{dropped:?}");
    assert!(templates(&stage).is_empty());
    assert!(!fs(&t).exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_can_be_turned_off() {
    let stage = Stage::start(Options { extra_conf: "numikube_staging_template_cache = False".into(), ..Options::default() });
    stage.put_backup("november", "november-daily-1.dump", "dump");
    let s = stage.run(stage.prod2x("november", "a", false)).await.unwrap();
    assert_eq!(stage.wait_job(&s.job_id).await.state, JobState::Done);
    until("the copy to be visible", &stage, || in_odoo_list(&stage, &s.db_name)).await;
    assert!(templates(&stage).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn prewarm_builds_the_template_without_a_request() {
    let stage = Stage::start(Options {
        extra_conf: "numikube_staging_prewarm_clients = oscar\nnumikube_staging_prewarm_interval = 1".into(),
        ..Options::default()
    });
    let (work, _) = stage.make_backups("oscar");
    stage.s3.put_file(BUCKET, "oscar-daily-1.dump", &Stage::backup_path(&work, "oscar", "dump")).unwrap();
    until("the pre-warmed template", &stage, || templates(&stage).len() == 1).await;
    let health = stage.client.health().await.unwrap();
    assert!(health.prewarm.iter().any(|p| p.client == "oscar"), "{health:?}");

    let s = stage.run(stage.prod2x("oscar", "a", false)).await.unwrap();
    assert_eq!(stage.wait_job(&s.job_id).await.state, JobState::Done);
    assert!(stage.sidecar_log().contains("copying the template"), "the first request was already a template copy");
    fixture::assert_neutralized(&stage.pg.bin_dir, &stage.pg.url("postgres"), &s.db_name).expect("neutralized");

    // A newer backup becomes the template on its own.
    let before = templates(&stage);
    std::thread::sleep(Duration::from_millis(1100));
    stage.s3.put_file(BUCKET, "oscar-daily-2.zip", &Stage::backup_path(&work, "oscar", "zip")).unwrap();
    until("the newer template", &stage, || {
        let t = templates(&stage);
        t.len() == 1 && t != before
    })
    .await;
    assert!(stage.leftovers().iter().all(|d| d.starts_with("numikube_tpl_")), "{:?}", stage.leftovers());
}
