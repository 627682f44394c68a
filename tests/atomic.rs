//! Issue 12, "Nothing half-done under faults", on real servers, each fault
//! made on purpose: a drop refused by another role's session leaves the copy
//! as it was; one undroppable leftover does not stop the sweep; a filestore
//! move that fails after the rename undoes the rename; a callback host off
//! the allow-list is refused before anything is made.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{code_of, ident, literal, Options, Stage, BUCKET, ROLE, TOKEN, WORK_ROLE};
use numikube_staging_rpc::{codes, JobState, JobStatus, Phase, RunStarted, StagingApiClient};
use numikube_testbed::fixture;
use numikube_testbed::sidecar::strip_ansi;

/// A login role that is not `db_user` nor a member of it (another client's
/// staging on a shared cluster, a DBA's session).
const OTHER: &str = "neighbour";

/// Runs a prod2x for `client` without timestamp and waits for its end.
async fn copy(stage: &Stage, client: &str, suffix: &str) -> (RunStarted, JobStatus) {
    let started = stage.run(stage.prod2x(client, suffix, false)).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    (started, status)
}

fn assert_done(stage: &Stage, status: &JobStatus) {
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
}

/// `datallowconn|owner|datistemplate` of `db`.
fn state_of(stage: &Stage, db: &str) -> String {
    stage.query(
        "postgres",
        &format!("SELECT datallowconn, pg_get_userbyid(datdba), datistemplate FROM pg_database WHERE datname = {}", literal(db)),
    )
}

/// Whether `staging_list` shows `db`.
async fn listed(stage: &Stage, db: &str) -> bool {
    stage.client.list(TOKEN.into(), None).await.unwrap().iter().any(|d| d.name == db)
}

/// Waits until `role` has no session left in `db`.
async fn wait_sessions_gone(stage: &Stage, role: &str, db: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE usename = {} AND datname = {}", literal(role), literal(db));
    while stage.query("postgres", &sql) != "0" {
        assert!(Instant::now() < deadline, "{role} still in {db}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// 2. Drops that never half-happen
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_refused_by_another_roles_session_leaves_the_copy_listed_and_open() {
    let stage = Stage::start(Options::default());
    stage.put_custom_dump("prod_alpha", "alpha-daily-1.dump", &fixture::Spec::tiny(), "");
    let (started, status) = copy(&stage, "alpha", "held").await;
    assert_done(&stage, &status);
    let db = started.db_name;
    let oid = stage.oid(&db);

    // Another role works in the copy: db_user (not a superuser) may not terminate its session.
    stage.pg.psql("postgres", &format!("CREATE ROLE {OTHER} LOGIN; GRANT CONNECT ON DATABASE {} TO {OTHER};", ident(&db))).unwrap();
    let session = stage.connect_as(OTHER, &db).await.expect("the other role connects");
    session.simple_query("SELECT 1").await.unwrap();

    let result = stage.client.drop_databases(TOKEN.into(), db.clone()).await.expect("the drop answers");
    assert!(result.dropped.is_empty(), "{result:?}");
    assert!(result.refused.iter().any(|r| r.name == db), "{result:?}\n{}", stage.sidecar_log());
    // As it was: same database, open, db_user's, in Odoo's list.
    assert_eq!(stage.oid(&db), oid);
    assert_eq!(state_of(&stage, &db), format!("t|{ROLE}|f"));
    assert!(listed(&stage, &db).await, "still listed");
    session.simple_query("SELECT 1").await.expect("the other session was left alone");

    // Once that session ends, the next drop succeeds.
    drop(session);
    wait_sessions_gone(&stage, OTHER, &db).await;
    let result = stage.client.drop_databases(TOKEN.into(), db.clone()).await.unwrap();
    assert_eq!(result.dropped, vec![db.clone()], "{result:?}");
    assert_eq!(stage.oid(&db), "");
}

/// A hidden working database as a dead job leaves it: the work role's,
/// `CONNECT` revoked, marked as being restored.
fn make_leftover(stage: &Stage, name: &str) {
    let marker = serde_json::json!({
        "numikube_staging": 1, "state": "restoring", "job_id": format!("gone-{}", &name[13..21]),
        "db_name": "bravo-lab_x", "backup": "bravo-daily-1.dump", "etag": "e",
        "created_at": "2026-11-24T10:00:00Z", "client": "bravo",
    });
    stage
        .pg
        .psql(
            "postgres",
            &format!(
                "CREATE DATABASE {q} OWNER {WORK_ROLE}; REVOKE CONNECT, TEMPORARY ON DATABASE {q} FROM PUBLIC; COMMENT ON DATABASE {q} IS {m};",
                q = ident(name),
                m = literal(&marker.to_string())
            ),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_with_an_undroppable_leftover_still_drops_the_others() {
    let mut stage = Stage::start(Options::default());
    // Swept in name order: the undroppable one comes first.
    let stuck = "numikube_tmp_00000000000000000000000000000000";
    let other = "numikube_tmp_ffffffffffffffffffffffffffffffff";
    make_leftover(&stage, stuck);
    make_leftover(&stage, other);
    stage.pg.psql("postgres", &format!("CREATE ROLE {OTHER} LOGIN; GRANT CONNECT ON DATABASE {} TO {OTHER};", ident(stuck))).unwrap();
    let session = stage.connect_as(OTHER, stuck).await.unwrap();
    session.simple_query("SELECT 1").await.unwrap();

    // The sweep at start runs before the sidecar serves.
    stage.kill_sidecar();
    stage.start_sidecar();
    let log = strip_ansi(&stage.sidecar_log());
    let dbs = stage.databases();
    assert!(!dbs.iter().any(|d| d == other), "{other} not swept: {dbs:?}\n{log}");
    assert!(dbs.iter().any(|d| d == stuck), "{dbs:?}\n{log}");
    assert!(log.contains(&format!("could not drop {stuck}")), "the failed drop is logged:\n{log}");
    // Left as it was: hidden by its owner, not closed or flagged.
    assert_eq!(state_of(&stage, stuck), format!("t|{WORK_ROLE}|f"));
    session.simple_query("SELECT 1").await.unwrap();

    // Once the session ends, a later sweep drops it.
    drop(session);
    wait_sessions_gone(&stage, OTHER, stuck).await;
    stage.kill_sidecar();
    stage.start_sidecar();
    assert!(!stage.databases().iter().any(|d| d == stuck), "{}", stage.sidecar_log());
}

// ---------------------------------------------------------------------------
// 3. The rename and the filestore move, one step
// ---------------------------------------------------------------------------

/// `chattr +i` on a directory (even root may then neither add, remove nor
/// rename its entries), undone on drop, also when the test panics.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Result<Immutable, String> {
        let out = Command::new("chattr").arg("+i").arg(dir).output().map_err(|e| format!("cannot run chattr: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Immutable(dir.into()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_filestore_move_during_a_refresh_leaves_the_previous_copy() {
    // A module whose neutralization lasts seconds: the window in which the
    // filestore is made unwritable, after its extraction, before the move.
    let slow = tempfile::tempdir().unwrap();
    let module = slow.path().join("slow_neutralize");
    std::fs::create_dir_all(module.join("data")).unwrap();
    std::fs::write(module.join("__manifest__.py"), "{'name': 'slow'}\n").unwrap();
    std::fs::write(module.join("data/neutralize.sql"), "SELECT pg_sleep(4);\n").unwrap();
    let stage = Stage::start(Options {
        extra_conf: format!("addons_path = {},{}\n", fixture::fixture_addons_dir().display(), slow.path().display()),
        ..Options::default()
    });

    // The copy being refreshed: from a custom dump, so without a filestore of its own.
    stage.put_custom_dump("prod_golf", "golf-2026-11-24.dump", &fixture::Spec::tiny(), "");
    let (first, status) = copy(&stage, "golf", "fs").await;
    assert_done(&stage, &status);
    let db = first.db_name;
    let oid = stage.oid(&db);
    let filestore = stage.data_dir().join("filestore");
    std::fs::create_dir_all(&filestore).unwrap();

    // The refresh: a newer Odoo zip with a filestore, of a production with the slow module.
    let mut spec = fixture::Spec::tiny();
    spec.modules.push("slow_neutralize".into());
    let server = stage.pg.url("postgres");
    let work = stage.dir.path().join("golf-zip");
    fixture::create_production_db(&stage.pg.bin_dir, &server, "prod_golf_zip", &spec).unwrap();
    fixture::write_filestore(&work.join("fs"), &spec, "prod_golf_zip").unwrap();
    let zip = work.join("golf.zip");
    fixture::make_odoo_zip(&stage.pg.bin_dir, &server, "prod_golf_zip", &work.join("fs"), &zip).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    stage.s3.put_file(BUCKET, "golf-2026-11-25.zip", &zip).unwrap();

    let refresh = stage.run(stage.prod2x("golf", "fs", false)).await.unwrap();
    stage.wait_phase(&refresh.job_id, Phase::Neutralizing).await;
    let extracted = filestore.join(format!("numikube_tmp_{}", refresh.job_id.replace('-', "")));
    assert_eq!(fixture::count_files(&extracted), spec.filestore_files, "the new filestore is extracted before the neutralization");
    let guard = match Immutable::set(&filestore) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("SKIPPED: cannot make {} immutable ({e})", filestore.display());
            return;
        }
    };
    let status = stage.wait_job(&refresh.job_id).await;
    assert_eq!(status.state, JobState::Error, "{status:?}\n{}", stage.sidecar_log());
    let error = status.error.unwrap_or_default();
    assert!(error.starts_with("Moving the filestore into place failed"), "{error}");

    // The previous copy, as it was: same database, open, db_user's, listed, its own content.
    assert_eq!(stage.oid(&db), oid, "{}", stage.sidecar_log());
    assert_eq!(state_of(&stage, &db), format!("t|{ROLE}|f"));
    assert!(listed(&stage, &db).await);
    assert_eq!(
        stage.query(&db, "SELECT count(*) FROM ir_module_module WHERE name = 'slow_neutralize'"),
        "0",
        "the previous copy's content"
    );
    assert!(!filestore.join(&db).exists(), "no filestore given to the previous copy");
    // No hidden database left under any name.
    assert!(stage.leftovers().is_empty(), "{:?}\n{}", stage.leftovers(), stage.sidecar_log());

    // Once the filestore is writable again, the sweep removes what could not be removed.
    drop(guard);
    stage.wait_no_leftovers(Duration::from_secs(30));
}

// ---------------------------------------------------------------------------
// 6. Where callbacks may go
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_to_a_host_outside_the_allow_list_is_refused_at_admission() {
    let stage = Stage::start(Options {
        extra_conf: "numikube_staging_callback_hosts = prod.example.com, 127.0.0.1\n".into(),
        ..Options::default()
    });
    stage.put_custom_dump("prod_hotel", "hotel-daily-1.dump", &fixture::Spec::tiny(), "");
    let before = stage.databases();

    let mut payload = stage.prod2x("hotel", "cb", false);
    payload.callback = Some(format!("http://localhost:{}/web/staging/callback/42?db=prod", stage.receiver.port()));
    let refused = stage.run(payload).await.expect_err("refused");
    let (code, message) = code_of(refused);
    assert_eq!(code, codes::INVALID_INPUT, "{message}");
    assert!(message.contains("localhost"), "{message}");
    // Nothing made, nothing registered, nobody called.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stage.databases(), before);
    assert!(stage.client.list(TOKEN.into(), None).await.unwrap().is_empty());
    assert!(stage.receiver.received().is_empty());

    // An allowed host is served as usual.
    let (_, status) = copy(&stage, "hotel", "cb").await;
    assert_done(&stage, &status);
    let calls = tokio::task::block_in_place(|| stage.receiver.wait_for(1, Duration::from_secs(10))).unwrap();
    assert_eq!(calls[0].body["state"], "done");
}
