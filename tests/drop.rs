//! Dropping and listing on real servers, through the JSON-RPC API: only the
//! sidecar's own copies go, connections and filestores with them; everything
//! else, hostile names included, is answered cleanly and left in place.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{code_of, literal, make_marked, make_unmarked, mark, Options, Stage, TOKEN};
use numikube_staging_rpc::{codes, DropResult, DropStatus, JobState, Phase, RunPayload, RunResult, StagingApiClient};

/// A filestore directory with one file, as Odoo would have left it.
fn make_filestore(stage: &Stage, name: &str) -> PathBuf {
    let dir = stage.data_dir().join("filestore").join(name);
    std::fs::create_dir_all(dir.join("ab")).unwrap();
    std::fs::write(dir.join("ab/abcdef"), b"attachment").unwrap();
    dir
}

/// Makes a real copy of `prod_<client>` through prod2x and waits until Odoo would list it.
async fn restore_copy(stage: &Stage, client: &str, suffix: &str, ext: &str) -> (String, String) {
    stage.put_backup(client, &format!("{client}-2026-11-24.{ext}"), ext);
    let started = stage.run(stage.prod2x(client, suffix, false)).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
    wait_listed(stage, &started.db_name).await;
    (started.db_name, started.job_id)
}

/// Waits until `staging_list` shows `name` (a finished copy becomes visible as its job ends).
async fn wait_listed(stage: &Stage, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stage.client.list(TOKEN.into(), None).await.unwrap().iter().any(|d| d.name == name) {
        assert!(Instant::now() < deadline, "{name} never listed\n{}", stage.sidecar_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drop_via_run(stage: &Stage, names: &str) -> Result<DropResult, jsonrpsee::core::ClientError> {
    let payload =
        RunPayload { token: Some(TOKEN.into()), kind: Some("dropdb".into()), database_names: Some(names.into()), ..Default::default() };
    match stage.client.run(payload).await? {
        RunResult::Dropped(r) => Ok(r),
        other => panic!("expected a drop result, got {other:?}"),
    }
}

/// Every name given is answered, none dropped, and no reason is a raw SQL error.
fn assert_nothing_dropped(result: &DropResult, names: &[&str]) {
    assert_eq!(result.status, DropStatus::Done);
    assert!(result.dropped.is_empty(), "{result:?}");
    for name in names {
        let answered = result.missing.iter().any(|m| m == name) || result.refused.iter().any(|r| r.name == *name);
        assert!(answered, "{name:?} not answered: {result:?}");
    }
    for r in &result.refused {
        assert!(!r.reason.contains("ERROR") && !r.reason.contains("db error") && !r.reason.contains("syntax"), "{r:?}");
    }
}

fn refused_reason<'a>(result: &'a DropResult, name: &str) -> &'a str {
    &result.refused.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{name} not refused: {result:?}")).reason
}

fn exists(stage: &Stage, name: &str) -> bool {
    stage.databases().iter().any(|d| d == name)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_made_copy_in_use_is_dropped_with_its_connections_and_filestore() {
    let stage = Stage::start(Options::default());
    // An Odoo zip: the copy has a filestore.
    let (db, _) = restore_copy(&stage, "alpha", "t1", "zip").await;
    let filestore = stage.data_dir().join("filestore").join(&db);
    assert!(filestore.is_dir(), "the copy has a filestore");

    // Someone works in the copy, as Odoo would: connected as db_user.
    let mut pg = numikube_staging::pg::pg_config(&numikube_staging::config::Config::load(&stage.conf()).unwrap().db, &db);
    pg.application_name("a user's odoo");
    let (session, connection) = pg.connect(tokio_postgres::NoTls).await.expect("connected to the copy");
    let connection = tokio::spawn(connection);
    session.simple_query("SELECT 1").await.unwrap();
    let before = stage.databases();

    let result = stage.client.drop_databases(TOKEN.into(), db.clone()).await.expect("dropped");
    assert_eq!(result, DropResult { status: DropStatus::Done, dropped: vec![db.clone()], missing: vec![], refused: vec![] });
    assert!(!exists(&stage, &db));
    assert!(!filestore.exists(), "filestore removed");
    // The session was terminated by the server.
    let ended = tokio::time::timeout(Duration::from_secs(10), connection).await.expect("the session ends");
    assert!(ended.unwrap().is_err(), "terminated by the server");
    assert!(session.is_closed());
    let mut expected = before.clone();
    expected.retain(|d| d != &db);
    assert_eq!(stage.databases(), expected, "nothing else dropped");
    assert!(!stage.client.list(TOKEN.into(), None).await.unwrap().iter().any(|d| d.name == db));

    // Dropping it again: missing, nothing else happens.
    let again = drop_via_run(&stage, &db).await.unwrap();
    assert_eq!((again.dropped.len(), again.missing.clone()), (0, vec![db.clone()]));
}

/// PostgreSQL 15's `DROP DATABASE … WITH (FORCE)` refuses to end an
/// autovacuum worker (it belongs to no role the sidecar's is a member of);
/// a copy that autovacuum is working in still goes.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_autovacuum_is_working_in_is_dropped() {
    let stage = Stage::start(Options::default());
    let (db, _) = restore_copy(&stage, "alpha", "t1", "dump").await;
    // A table full of dead rows that autovacuum works through as slowly as it can.
    stage.query(
        &db,
        "CREATE TABLE vacuum_bait AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 100000) AS g;
         ALTER TABLE vacuum_bait SET (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
                                      autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
         DELETE FROM vacuum_bait;",
    );
    stage.query("postgres", "ALTER SYSTEM SET autovacuum_naptime = 1");
    stage.query("postgres", "SELECT pg_reload_conf()");
    let working = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = {} AND backend_type = 'autovacuum worker'", literal(&db));
    let deadline = Instant::now() + Duration::from_secs(60);
    while stage.query("postgres", &working) == "0" {
        assert!(Instant::now() < deadline, "autovacuum never came to {db}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let result = stage.client.drop_databases(TOKEN.into(), db.clone()).await.expect("answered");
    assert_eq!(result, DropResult { status: DropStatus::Done, dropped: vec![db.clone()], missing: vec![], refused: vec![] });
    assert!(!exists(&stage, &db));
}

#[tokio::test(flavor = "multi_thread")]
async fn names_split_on_any_white_space_and_duplicates_count_once() {
    let stage = Stage::start(Options::default());
    for name in ["kilo-lab_a", "kilo-lab_b", "kilo-test"] {
        make_marked(&stage, name);
        make_filestore(&stage, name);
    }
    let result = drop_via_run(&stage, "kilo-lab_a\n kilo-lab_b\tkilo-lab_a\r\n\n kilo-test  kilo-lab_b\tkilo-nope\n").await.unwrap();
    assert_eq!(result.dropped, vec!["kilo-lab_a", "kilo-lab_b", "kilo-test"]);
    assert_eq!(result.missing, vec!["kilo-nope"]);
    assert!(result.refused.is_empty(), "{result:?}");
    for name in ["kilo-lab_a", "kilo-lab_b", "kilo-test"] {
        assert!(!exists(&stage, name));
        assert!(!stage.data_dir().join("filestore").join(name).exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_sidecars_own_databases_of_the_list_are_dropped() {
    let stage = Stage::start(Options::default());
    make_unmarked(&stage, "mike-lab_by_hand");
    // Owned by another role, even with our marker: not this instance's.
    stage.pg.psql("postgres", "CREATE DATABASE \"mike-lab_foreign\"").unwrap();
    mark(&stage, "mike-lab_foreign");
    // Templates and unconnectable databases are not in Odoo's list either.
    make_marked(&stage, "mike-lab_template");
    stage.pg.psql("postgres", "ALTER DATABASE \"mike-lab_template\" IS_TEMPLATE true").unwrap();
    make_marked(&stage, "mike-lab_noconn");
    stage.pg.psql("postgres", "ALTER DATABASE \"mike-lab_noconn\" ALLOW_CONNECTIONS false").unwrap();
    // The staging's production-like databases belong to the superuser.
    stage.pg.psql("postgres", "CREATE DATABASE prod_mike").unwrap();
    // A filestore of an unmarked database stays too.
    let filestore = make_filestore(&stage, "mike-lab_by_hand");
    let before = stage.databases();

    let names = [
        "mike-lab_by_hand",
        "mike-lab_foreign",
        "mike-lab_template",
        "mike-lab_noconn",
        "prod_mike",
        "postgres",
        "template1",
        "template0",
        "mike-lab_nope",
    ];
    let via_drop = stage.client.drop_databases(TOKEN.into(), names.join(" ")).await.unwrap();
    let via_run = drop_via_run(&stage, &names.join("\n")).await.unwrap();
    assert_eq!(via_drop, via_run, "both methods answer alike");
    assert_nothing_dropped(&via_drop, &names);
    assert_eq!(via_drop.missing, vec!["mike-lab_nope"]);
    assert!(refused_reason(&via_drop, "mike-lab_by_hand").contains("not made by the staging service"));
    for foreign in ["mike-lab_foreign", "mike-lab_template", "mike-lab_noconn", "prod_mike", "postgres", "template1", "template0"] {
        assert!(refused_reason(&via_drop, foreign).contains("not one of this staging server's databases"), "{foreign}");
    }
    assert_eq!(stage.databases(), before, "every database still exists");
    assert!(filestore.exists());
    assert_eq!(stage.query("postgres", "SELECT datistemplate FROM pg_database WHERE datname = 'mike-lab_template'"), "t");
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_unmarked_is_opt_in_and_spares_protected_and_filtered_databases() {
    let extra = "numikube_staging_drop_unmarked = True\n\
                 numikube_staging_protected_databases = nov-lab_keep, nov-lab_keep_too\n\
                 dbfilter = ^nov-\n";
    let stage = Stage::start(Options { extra_conf: extra.into(), ..Options::default() });
    make_unmarked(&stage, "nov-lab_old");
    let old_filestore = make_filestore(&stage, "nov-lab_old");
    make_unmarked(&stage, "nov-lab_keep");
    make_unmarked(&stage, "nov-lab_keep_too");
    make_marked(&stage, "nov-lab_ours");
    stage.pg.psql("postgres", "CREATE DATABASE \"nov-lab_foreign\"").unwrap();
    make_unmarked(&stage, "nov-lab_template");
    stage.pg.psql("postgres", "ALTER DATABASE \"nov-lab_template\" IS_TEMPLATE true").unwrap();
    // Outside dbfilter: not this instance's, marked or not.
    make_unmarked(&stage, "other-lab_x");
    make_marked(&stage, "other-lab_ours");
    let before = stage.databases();

    let result = stage
        .client
        .drop_databases(
            TOKEN.into(),
            "nov-lab_old nov-lab_keep nov-lab_keep_too nov-lab_ours nov-lab_foreign nov-lab_template other-lab_x other-lab_ours postgres"
                .into(),
        )
        .await
        .unwrap();
    assert_eq!(result.dropped, vec!["nov-lab_old", "nov-lab_ours"], "{result:?}");
    assert!(result.missing.is_empty(), "{result:?}");
    for name in ["nov-lab_keep", "nov-lab_keep_too"] {
        assert!(refused_reason(&result, name).contains("numikube_staging_protected_databases"), "{name}");
    }
    for name in ["nov-lab_foreign", "nov-lab_template", "other-lab_x", "other-lab_ours", "postgres"] {
        assert!(refused_reason(&result, name).contains("not one of this staging server's databases"), "{name}");
    }
    assert!(!old_filestore.exists());
    let mut expected = before;
    expected.retain(|d| d != "nov-lab_old" && d != "nov-lab_ours");
    assert_eq!(stage.databases(), expected);

    // The list follows the same rule.
    let listed: Vec<String> = stage.client.list(TOKEN.into(), None).await.unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(listed, vec!["nov-lab_keep", "nov-lab_keep_too"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_are_answered_cleanly_and_drop_nothing_else() {
    let stage = Stage::start(Options::default());
    stage.pg.psql("postgres", "CREATE DATABASE prod_oscar").unwrap();
    make_unmarked(&stage, "oscar-lab_plain");
    // A database of ours whose name needs quoting: dropped, and only it.
    let odd = "oscar'\"odd\";--%é";
    make_marked(&stage, odd);
    let odd_filestore = make_filestore(&stage, odd);
    let long = "x".repeat(200);
    let before = stage.databases();

    let hostile: Vec<String> = vec![
        "a'b".into(),
        "a;b".into(),
        "\";".into(),
        "DROP".into(),
        "DATABASE".into(),
        "postgres;".into(),
        "--".into(),
        "\"a".into(),
        "b\"".into(),
        "%".into(),
        "%%".into(),
        "_".into(),
        "oscar%".into(),
        "oscar-lab_%".into(),
        "\\".into(),
        "$1".into(),
        "..".into(),
        "../../etc".into(),
        "é".into(),
        "データベース".into(),
        "🦀".into(),
        "a\u{0}b".into(),
        long.clone(),
        "postgres".into(),
        "template1".into(),
        "template0".into(),
        "prod_oscar".into(),
        "oscar-lab_plain".into(),
        "OSCAR-LAB_PLAIN".into(),
    ];
    // As pasted: the classic injection, and a quoted name with spaces inside.
    let text = format!("\"; DROP DATABASE postgres; -- \"a b\" {}", hostile.join(" "));
    for (how, result) in [
        ("staging_drop", stage.client.drop_databases(TOKEN.into(), text.clone()).await),
        ("staging_run", drop_via_run(&stage, &text).await),
    ] {
        let result = result.unwrap_or_else(|e| panic!("{how}: {e}"));
        let names: Vec<&str> = hostile.iter().map(String::as_str).collect();
        assert_nothing_dropped(&result, &names);
        assert!(result.missing.contains(&long), "{how}");
        assert_eq!(refused_reason(&result, "postgres"), "it is not one of this staging server's databases", "{how}");
        assert!(result.missing.iter().any(|m| m == "OSCAR-LAB_PLAIN"), "names are exact: {result:?}");
        assert_eq!(stage.databases(), before, "{how}: every database still exists");
    }

    // Empty or only white space: a clear refusal of the request.
    for text in ["", " ", "\n\t \r\n"] {
        for result in [stage.client.drop_databases(TOKEN.into(), text.into()).await, drop_via_run(&stage, text).await] {
            let (code, message) = code_of(result.expect_err("nothing to drop"));
            assert_eq!(code, codes::INVALID_INPUT, "{text:?}: {message}");
            assert_eq!(message, "No database names were given to drop.");
        }
    }
    // A wrong token drops nothing, whatever the names.
    let (code, _) = code_of(stage.client.drop_databases("nope".into(), odd.into()).await.expect_err("bad token"));
    assert_eq!(code, codes::BAD_TOKEN);
    assert_eq!(stage.databases(), before);

    // The odd name is ours: it goes, quoted by the driver.
    let result = stage.client.drop_databases(TOKEN.into(), odd.into()).await.unwrap();
    assert_eq!(result.dropped, vec![odd.to_string()], "{result:?}");
    assert!(!odd_filestore.exists());
    let mut expected = before;
    expected.retain(|d| d != odd);
    assert_eq!(stage.databases(), expected);
    assert!(stage.sidecar_log().lines().all(|l| !l.contains("syntax error")), "{}", stage.sidecar_log());
}

/// A `pg_path` whose `pg_restore` waits for `gate` to exist: a restore held in flight.
fn gated_pg_path(stage: &Stage, gate: &Path) -> PathBuf {
    let dir = stage.dir.path().join("gated-bin");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&stage.pg.bin_dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "pg_restore" {
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let script = format!(
        "#!/bin/sh\nwhile [ ! -e '{}' ]; do sleep 0.05; done\nexec '{}' \"$@\"\n",
        gate.display(),
        stage.pg.bin_dir.join("pg_restore").display()
    );
    let path = dir.join("pg_restore");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restore_in_flight_is_refused_and_never_half_dropped() {
    let mut stage = Stage::start(Options::default());
    let gate = stage.dir.path().join("gate");
    let bin = gated_pg_path(&stage, &gate);
    // Every restore goes through pg_restore (no shortcut through a kept template).
    stage.kill_sidecar();
    let conf = std::fs::read_to_string(stage.conf()).unwrap();
    let conf = conf.replace(&format!("pg_path = {}", stage.pg.bin_dir.display()), &format!("pg_path = {}", bin.display()));
    std::fs::write(stage.conf(), conf + "numikube_staging_template_cache = False\n").unwrap();
    stage.start_sidecar();

    stage.put_backup("papa", "papa-daily-1.dump", "dump");
    std::fs::write(&gate, b"").unwrap();
    let first = stage.run(stage.prod2x("papa", "keep", false)).await.unwrap();
    assert_eq!(stage.wait_job(&first.job_id).await.state, JobState::Done);
    wait_listed(&stage, &first.db_name).await;
    std::fs::remove_file(&gate).unwrap();

    // A refresh of the existing copy and a brand-new copy, both held in pg_restore.
    let refresh = stage.run(stage.prod2x("papa", "keep", false)).await.unwrap();
    stage.wait_phase(&refresh.job_id, Phase::Restoring).await;
    let fresh = stage.run(stage.prod2x("papa", "new", false)).await.unwrap();
    let hidden: Vec<String> = stage.leftovers();
    assert!(!hidden.is_empty(), "the refresh restores into a hidden database");
    let before = stage.databases();

    let mut names = vec![first.db_name.clone(), fresh.db_name.clone()];
    names.extend(hidden.iter().cloned());
    let result = stage.client.drop_databases(TOKEN.into(), names.join(" ")).await.unwrap();
    assert!(result.dropped.is_empty() && result.missing.is_empty(), "{result:?}");
    for name in [&first.db_name, &fresh.db_name] {
        assert!(refused_reason(&result, name).contains("still being created"), "{result:?}");
    }
    let via_run = drop_via_run(&stage, &names.join("\n")).await.unwrap();
    assert_eq!(via_run, result);
    // The command line, another process, sees the refresh through its hidden database.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_numikube-staging"))
        .args(["drop", "--json", &first.db_name, "-c"])
        .arg(stage.conf())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let by_cli: DropResult = serde_json::from_slice(&out.stdout).unwrap();
    assert!(refused_reason(&by_cli, &first.db_name).contains("still being created"), "{by_cli:?}");
    assert_eq!(stage.databases(), before, "nothing dropped, not even half");
    assert_eq!(stage.client.status(TOKEN.into(), refresh.job_id.clone()).await.unwrap().state, JobState::Running);

    // Let them finish: both land whole, and the refreshed copy is the new one.
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(stage.wait_job(&refresh.job_id).await.state, JobState::Done, "{}", stage.sidecar_log());
    assert_eq!(stage.wait_job(&fresh.job_id).await.state, JobState::Done, "{}", stage.sidecar_log());
    wait_listed(&stage, &first.db_name).await;
    wait_listed(&stage, &fresh.db_name).await;
    let comment = stage.query("postgres", "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'papa-lab_keep'");
    assert!(comment.contains(&refresh.job_id), "{comment}");

    // Once done, they may go.
    let result = stage.client.drop_databases(TOKEN.into(), format!("{} {}", first.db_name, fresh.db_name)).await.unwrap();
    assert_eq!(result.dropped, vec![first.db_name.clone(), fresh.db_name.clone()], "{result:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_list_shows_this_instances_databases_with_their_origin() {
    let stage = Stage::start(Options::default());
    let (db, job_id) = restore_copy(&stage, "quebec", "t1", "dump").await;
    make_unmarked(&stage, "quebec-lab_by_hand");
    stage.pg.psql("postgres", "CREATE DATABASE \"quebec-lab_foreign\"").unwrap();
    make_marked(&stage, "quebec-lab_template");
    stage.pg.psql("postgres", "ALTER DATABASE \"quebec-lab_template\" IS_TEMPLATE true").unwrap();

    let mut list = stage.client.list(TOKEN.into(), None).await.unwrap();
    // The sidecar's own kept templates are listed as such; they are not Odoo's databases.
    for kept in list.iter().filter(|d| d.template) {
        assert!(kept.name.starts_with("numikube_tpl_") && kept.made_by_staging, "{kept:?}");
    }
    list.retain(|d| !d.template);
    let names: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["quebec-lab_by_hand", db.as_str()], "only this instance's databases, by name");

    let made = &list[1];
    assert!(made.made_by_staging);
    assert_eq!(made.job_id.as_deref(), Some(job_id.as_str()));
    assert_eq!(made.backup.as_deref(), Some("quebec-2026-11-24.dump"));
    let created = made.created_at.expect("created_at");
    assert!((chrono::Utc::now() - created).num_minutes().abs() < 10, "{created}");
    let size: i64 = stage.query("postgres", &format!("SELECT pg_database_size({})", literal(&db))).parse().unwrap();
    assert!(made.size_bytes > 1_000_000 && (made.size_bytes - size).abs() < size / 10, "{} vs {size}", made.size_bytes);

    let by_hand = &list[0];
    assert!(!by_hand.made_by_staging);
    assert_eq!((by_hand.job_id.as_deref(), by_hand.backup.as_deref(), by_hand.created_at), (None, None, None));
    assert!(by_hand.size_bytes > 0);
}
