//! Issue 19, docs/contract.md *Containment*, tried as an attacker would on real
//! servers. The cluster holds a production owned by another role (with a
//! session of its own open), another client's copy and its kept template;
//! backups of the client `attacker` then try, in plain, gzip, zip and custom
//! format, everything `db_user` could do. Every other database (name, oid,
//! owner, settings, ACL, comment), every role (attributes, password,
//! membership, settings) and the other session stay as they were, whether
//! the job then fails or is done. Hooks that could blind the neutralization
//! fail the job; a copy that grows past its bound is stopped; tokens serve
//! their own client alone.

mod common;

use std::io::Write;

use common::{code_of, literal, Options, Stage, BUCKET, TOKEN};
use numikube_staging_rpc::{codes, JobState, JobStatus, RunPayload, RunResult, StagingApiClient};
use numikube_testbed::fixture;

/// What a backup must never change: every database but the attacker's own
/// and the sidecar's working ones, their settings, every role but the job roles.
fn snapshot(stage: &Stage) -> Vec<String> {
    let sql = "
        SELECT format('db %s oid=%s owner=%s acl=%s conn=%s tmpl=%s limit=%s comment=%s', datname, oid,
                      pg_get_userbyid(datdba), datacl, datallowconn, datistemplate, datconnlimit,
                      shobj_description(oid, 'pg_database'))
        FROM pg_database WHERE datname NOT LIKE 'numikube_tmp_%' AND datname NOT LIKE 'numikube_old_%'
        UNION ALL
        SELECT format('setting db=%s role=%s %s', (SELECT datname FROM pg_database WHERE oid = setdatabase),
                      pg_get_userbyid(setrole), setconfig)
        FROM pg_db_role_setting WHERE setrole = 0 OR NOT starts_with(pg_get_userbyid(setrole), 'numikube_job_')
        UNION ALL
        SELECT format('role %s super=%s inherit=%s createrole=%s createdb=%s login=%s repl=%s bypass=%s conn=%s pw=%s until=%s',
                      rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                      rolconnlimit, rolpassword, rolvaliduntil)
        FROM pg_authid WHERE NOT starts_with(rolname, 'numikube_job_')
        UNION ALL
        SELECT format('member %s of %s admin=%s', pg_get_userbyid(member), pg_get_userbyid(roleid), admin_option)
        FROM pg_auth_members
        WHERE NOT starts_with(pg_get_userbyid(member), 'numikube_job_') AND NOT starts_with(pg_get_userbyid(roleid), 'numikube_job_')
        ORDER BY 1";
    let mut lines: Vec<String> = stage.query("postgres", sql).lines().map(str::to_string).collect();
    // The attacker's own copy and templates come and go with its jobs.
    lines.retain(|l| !l.contains("attacker"));
    lines
}

/// The cluster an attacker meets: `production` owned by `prod_owner` (whose
/// session stays open), flex's copy `flex-lab_t` and its kept template.
async fn neighbourhood(stage: &Stage) -> tokio_postgres::Client {
    stage
        .pg
        .psql("postgres", "CREATE ROLE prod_owner LOGIN PASSWORD 'prod-pw'; CREATE DATABASE production OWNER prod_owner;")
        .expect("production made");
    stage.pg.psql("production", "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1);").expect("production filled");
    stage.put_backup("flex", "flex-2026-11-24.dump", "dump");
    let started = stage.run(stage.prod2x("flex", "t", false)).await.expect("flex's job accepted");
    let status = stage.wait_job(&started.job_id).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(stage.databases().iter().any(|d| d.starts_with("numikube_tpl_")), "flex's template is kept");
    let session = stage.connect_as("prod_owner", "production").await.expect("production's session");
    session.simple_query("SELECT 1").await.expect("production answers");
    session
}

/// Runs a prod2x of the attacker's `key` and waits for its end.
async fn attack(stage: &Stage, key: &str) -> JobStatus {
    let payload = RunPayload { backup: Some(key.into()), ..stage.prod2x("attacker", "t", false) };
    let started = stage.run(payload).await.expect("the attacker's job is accepted");
    stage.wait_job(&started.job_id).await
}

/// The attacker's plain SQL: the tiny fixture's dump with `lines` before its first table.
fn plain_with(sql: &str, lines: &str) -> String {
    let at = sql.find("\nCREATE TABLE ").expect("the dump creates tables") + 1;
    format!("{}{lines}\n{}", &sql[..at], &sql[at..])
}

/// Every statement an attacker tried as `db_user`, each as a backup's top-level statement.
const STATEMENTS: &[&str] = &[
    r#"DROP DATABASE "flex-lab_t" WITH (FORCE);"#,
    "DROP DATABASE production WITH (FORCE);",
    r#"CREATE DATABASE stolen TEMPLATE "flex-lab_t";"#,
    r#"ALTER DATABASE "flex-lab_t" RENAME TO "flex-lab_gone";"#,
    r#"ALTER DATABASE "flex-lab_t" SET default_transaction_read_only = on;"#,
    r#"GRANT CONNECT, TEMPORARY ON DATABASE "flex-lab_t" TO PUBLIC;"#,
    r#"COMMENT ON DATABASE production IS '{"job_id":"x","db_name":"production","state":"done","client":"flex"}';"#,
    "ALTER ROLE odoo SET default_transaction_read_only = on;",
    "ALTER ROLE odoo PASSWORD 'stolen';",
    "GRANT odoo TO CURRENT_USER;",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'production';",
];

/// The same statements through dynamic SQL, each allowed to fail, so that all run in one backup.
fn through_do_blocks() -> String {
    STATEMENTS
        .iter()
        .map(|s| {
            format!("DO $attack$ BEGIN EXECUTE {}; EXCEPTION WHEN OTHERS THEN NULL; END $attack$;\n", literal(s.trim_end_matches(';')))
        })
        .collect::<String>()
        + "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on;\nALTER ROLE CURRENT_USER PASSWORD 'changed';\n"
}

/// Asserts that nothing but the attacker's own copy changed, and that the sidecar still makes copies.
async fn assert_contained(stage: &Stage, before: &[String], session: &tokio_postgres::Client, what: &str) {
    assert_eq!(snapshot(stage), before, "{what} changed something beyond its copy");
    session.simple_query("SELECT 1").await.unwrap_or_else(|e| panic!("{what} ended production's session: {e}"));
    assert!(!stage.databases().iter().any(|d| d == "stolen"), "{what} cloned a copy");
    let roles = stage.query("postgres", "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'numikube_job_')");
    assert_eq!(roles, "0", "{what} left its job role");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_s_sql_reaches_nothing_beyond_its_own_copy() {
    let stage = Stage::start(Options::default());
    let session = neighbourhood(&stage).await;
    let (work, _) = stage.make_backups("attacker");
    let sql = std::fs::read_to_string(Stage::backup_path(&work, "attacker", "sql")).unwrap();
    let before = snapshot(&stage);

    for (i, statement) in STATEMENTS.iter().enumerate() {
        let key = format!("attacker/plain-{i}.sql");
        stage.s3.put_bytes(BUCKET, &key, plain_with(&sql, statement)).unwrap();
        let status = attack(&stage, &key).await;
        assert_contained(&stage, &before, &session, statement).await;
        // Refused by PostgreSQL: the job fails, or ends with the refusal among the tolerated failures.
        assert_ne!(status.state, JobState::Running, "{statement}");
    }

    // Dynamic SQL, in plain, gzip'ed and in an Odoo zip: every statement runs (and fails), the copy is made.
    let hostile = plain_with(&sql, &through_do_blocks());
    stage.s3.put_bytes(BUCKET, "attacker/dynamic.sql", hostile.clone()).unwrap();
    let (plain, gzipped) = (work.join("dynamic.sql"), work.join("dynamic.sql.gz"));
    std::fs::write(&plain, &hostile).unwrap();
    fixture::gzip_file(&plain, &gzipped).unwrap();
    stage.s3.put_file(BUCKET, "attacker/dynamic.sql.gz", &gzipped).unwrap();
    let zip = work.join("dynamic.zip");
    rezip_with_dump(&Stage::backup_path(&work, "attacker", "zip"), &zip, hostile.as_bytes());
    stage.s3.put_file(BUCKET, "attacker/dynamic.zip", &zip).unwrap();
    for key in ["attacker/dynamic.sql", "attacker/dynamic.sql.gz", "attacker/dynamic.zip"] {
        let status = attack(&stage, key).await;
        assert_eq!(status.state, JobState::Done, "{key}: {status:?}");
        assert_contained(&stage, &before, &session, key).await;
        // The copy is db_user's, and the backup's grants and settings on it are gone.
        let own = stage.query(
            "postgres",
            "SELECT pg_get_userbyid(datdba) || ' ' || coalesce(datacl::text, '-') FROM pg_database WHERE datname = 'attacker-lab_t'",
        );
        assert!(own.starts_with("odoo "), "{key}: {own}");
        // A PUBLIC entry of an ACL has no grantee before its `=`.
        assert!(!own.contains("{=") && !own.contains(",="), "{key}: PUBLIC may connect: {own}");
    }
    // A normal copy afterwards: db_user's role was not broken.
    let status = attack(&stage, "attacker/plain-0.sql").await;
    assert_eq!(status.state, JobState::Error);
    let started = stage.run(stage.prod2x("flex", "u", false)).await.expect("accepted");
    assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
}

/// Copies `src` (an Odoo zip) to `out` with `dump` as its dump.sql.
fn rezip_with_dump(src: &std::path::Path, out: &std::path::Path, dump: &[u8]) {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let name = archive.by_index_raw(i).unwrap().name().to_string();
        if name == "dump.sql" {
            let mut ignored = Vec::new();
            archive.by_index(i).unwrap().read_to_end(&mut ignored).unwrap();
            writer.start_file(name.as_str(), opts).unwrap();
            writer.write_all(dump).unwrap();
        } else {
            writer.raw_copy_file(archive.by_index_raw(i).unwrap()).unwrap();
        }
    }
    writer.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_a_real_custom_dump_brings_run_as_the_job_s_role() {
    let stage = Stage::start(Options::default());
    let session = neighbourhood(&stage).await;
    // A real pg_dump -Fc: a CHECK constraint and an index expression call a
    // plpgsql function whose dynamic SQL would succeed as db_user.
    let evil = r#"
        CREATE FUNCTION evil(x int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
        BEGIN
            -- Harmless in production, where the dump is made: it acts in the copy.
            IF current_database() = 'prod_attacker' THEN RETURN true; END IF;
            BEGIN EXECUTE 'COMMENT ON DATABASE "flex-lab_t" IS ''forged'''; EXCEPTION WHEN OTHERS THEN NULL; END;
            BEGIN EXECUTE 'ALTER DATABASE "flex-lab_t" SET work_mem = ''64kB'''; EXCEPTION WHEN OTHERS THEN NULL; END;
            BEGIN EXECUTE 'GRANT CONNECT ON DATABASE "flex-lab_t" TO PUBLIC'; EXCEPTION WHEN OTHERS THEN NULL; END;
            BEGIN EXECUTE 'ALTER ROLE odoo SET work_mem = ''64kB'''; EXCEPTION WHEN OTHERS THEN NULL; END;
            BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'production'; EXCEPTION WHEN OTHERS THEN NULL; END;
            RETURN true;
        END $f$;
        ALTER TABLE res_partner ADD CONSTRAINT evil_check CHECK (evil(id));
        CREATE INDEX evil_index ON res_partner ((evil(id)));"#;
    let before = snapshot(&stage);
    stage.put_custom_dump("prod_attacker", "attacker/functions.dump", &fixture::Spec::tiny(), evil);
    let status = attack(&stage, "attacker/functions.dump").await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_contained(&stage, &before, &session, "a custom dump's functions").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hooks_that_could_blind_the_neutralization_fail_the_job() {
    let stage = Stage::start(Options::default());
    let cases = [
        (
            "policy",
            "ALTER TABLE ir_mail_server ENABLE ROW LEVEL SECURITY; ALTER TABLE ir_mail_server FORCE ROW LEVEL SECURITY;
             CREATE POLICY hide_from_staging ON ir_mail_server USING (current_setting('application_name') NOT ILIKE '%staging%') WITH CHECK (true);",
            "hide_from_staging",
        ),
        (
            "trigger",
            "CREATE FUNCTION keep_old() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN RETURN OLD; END $f$;
             CREATE TRIGGER keep_identity BEFORE UPDATE ON ir_config_parameter FOR EACH ROW EXECUTE FUNCTION keep_old();",
            "keep_identity",
        ),
        ("rule", "CREATE RULE never_off AS ON UPDATE TO ir_cron DO INSTEAD NOTHING;", "never_off"),
        // Functions a repeat copy's new identity would run as db_user, out of sight of a direct dependency.
        (
            "operator",
            "CREATE FUNCTION approves(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RETURN true; END $f$;
             CREATE OPERATOR ==~ (LEFTARG = text, RIGHTARG = text, FUNCTION = approves);
             ALTER TABLE ir_config_parameter ADD CONSTRAINT looks_fine CHECK (key ==~ key);",
            "the function approves called by the constraint looks_fine of ir_config_parameter (through the operator ==~)",
        ),
        (
            "domain",
            "CREATE FUNCTION sneaky(text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN RETURN true; END $f$;
             CREATE DOMAIN checked_text AS text CHECK (sneaky(VALUE));
             ALTER TABLE ir_config_parameter ALTER COLUMN value TYPE checked_text;",
            "the function sneaky called by the constraint",
        ),
    ];
    for (i, (what, tweak, named)) in cases.iter().enumerate() {
        let db = format!("prod_attacker{i}");
        stage.put_custom_dump(&db, &format!("attacker/{what}.dump"), &fixture::Spec::tiny(), tweak);
        let status = attack(&stage, &format!("attacker/{what}.dump")).await;
        assert_eq!(status.state, JobState::Error, "{what}: {status:?}");
        let error = status.error.unwrap_or_default();
        assert!(error.contains(named), "{what}: the error names {named}: {error}");
        assert!(stage.leftovers().is_empty(), "{what}: {:?}", stage.leftovers());
        assert!(!stage.databases().iter().any(|d| d == "attacker-lab_t"), "{what}: a copy was handed out");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_growing_past_its_bound_is_stopped_and_leaves_nothing() {
    let stage = Stage::start(Options { extra_conf: "numikube_staging_max_copy_size = 40MB\n".into(), ..Options::default() });
    let (work, _) = stage.make_backups("attacker");
    let sql = std::fs::read_to_string(Stage::backup_path(&work, "attacker", "sql")).unwrap();
    // A few bytes of backup, gigabytes of rows.
    let bomb = plain_with(&sql, "CREATE TABLE public.bomb AS SELECT repeat(md5(g::text), 32) AS t FROM generate_series(1, 2000000) g;");
    stage.s3.put_bytes(BUCKET, "attacker/bomb.sql", bomb).unwrap();
    let status = attack(&stage, "attacker/bomb.sql").await;
    assert_eq!(status.state, JobState::Error, "{status:?}");
    let error = status.error.unwrap_or_default();
    assert!(error.contains("numikube_staging_max_copy_size") && error.contains("grew to"), "{error}");
    stage.wait_no_leftovers(std::time::Duration::from_secs(20));
    assert!(stage.leftovers().is_empty(), "{:?}", stage.leftovers());
    let roles = stage.query("postgres", "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'numikube_job_')");
    assert_eq!(roles, "0");
}

/// Waits for a job's end, following it with `token`.
async fn wait_with(stage: &Stage, token: &str, job_id: &str) -> JobStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s = stage.client.status(token.into(), job_id.into()).await.expect("status answers");
        if s.state != JobState::Running {
            return s;
        }
        assert!(std::time::Instant::now() < deadline, "{s:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_s_token_serves_that_client_alone() {
    let stage = Stage::start(Options {
        extra_conf: "numikube_staging_client_tokens = cosmos:cosmos-token-0123456789, flex:flex-token-0123456789\n".into(),
        ..Options::default()
    });
    stage.put_backup("cosmos", "cosmos-2026-11-24.dump", "dump");
    stage.put_backup("flex", "flex-2026-11-24.dump", "dump");
    let with = |token: &str, client: &str| RunPayload { token: Some(token.into()), ..stage.prod2x(client, "t", false) };
    // The shared token no longer serves a client with its own, nor another client's token.
    for (token, client) in [(TOKEN, "cosmos"), ("flex-token-0123456789", "cosmos")] {
        let (code, message) = code_of(stage.client.run(with(token, client)).await.unwrap_err());
        assert_eq!(code, codes::BAD_TOKEN, "{message}");
    }
    let started = stage.run(with("cosmos-token-0123456789", "cosmos")).await.expect("cosmos's own token");
    assert_eq!(wait_with(&stage, "cosmos-token-0123456789", &started.job_id).await.state, JobState::Done);
    let flex = stage.run(with("flex-token-0123456789", "flex")).await.expect("flex's own token");
    assert_eq!(wait_with(&stage, "flex-token-0123456789", &flex.job_id).await.state, JobState::Done);
    // Production knows each client's environment by the client's own token: its callbacks carry it.
    let told = stage.receiver.wait_for(2, std::time::Duration::from_secs(30)).expect("both callbacks");
    for (job, token) in [(&started.job_id, "cosmos-token-0123456789"), (&flex.job_id, "flex-token-0123456789")] {
        let callback = told.iter().find(|r| r.body["job_id"] == job.as_str()).unwrap_or_else(|| panic!("a callback of {job}: {told:?}"));
        assert_eq!(callback.body["token"], token);
    }

    // flex's token sees, follows, extends and drops nothing of cosmos's.
    let flex_token = "flex-token-0123456789".to_string();
    let (code, _) = code_of(stage.client.status(flex_token.clone(), started.job_id.clone()).await.unwrap_err());
    assert_eq!(code, codes::NOT_FOUND);
    let (code, _) = code_of(stage.client.list(flex_token.clone(), Some("cosmos".into())).await.unwrap_err());
    assert_eq!(code, codes::BAD_TOKEN);
    let listed = stage.client.list(flex_token.clone(), None).await.unwrap();
    assert!(listed.iter().all(|d| !d.name.starts_with("cosmos")), "{listed:?}");
    let (code, _) = code_of(stage.client.backups(flex_token.clone(), "cosmos".into()).await.unwrap_err());
    assert_eq!(code, codes::BAD_TOKEN);
    let (code, _) = code_of(stage.client.cancel(flex_token.clone(), started.job_id.clone()).await.unwrap_err());
    assert_eq!(code, codes::NOT_FOUND);
    let dropped = stage.client.drop_databases(flex_token.clone(), "cosmos-lab_t flex-lab_t".into()).await.unwrap();
    assert_eq!(dropped.dropped, vec!["flex-lab_t".to_string()]);
    assert_eq!(dropped.refused.len(), 1, "{dropped:?}");
    assert!(dropped.refused[0].reason.contains("not a copy of flex"), "{dropped:?}");
    assert!(stage.databases().iter().any(|d| d == "cosmos-lab_t"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropdb_removes_only_the_payload_s_client_s_copies() {
    let stage = Stage::start(Options::default());
    stage.put_backup("cosmos", "cosmos-2026-11-24.dump", "dump");
    stage.put_backup("flex", "flex-2026-11-24.dump", "dump");
    for client in ["cosmos", "flex"] {
        let started = stage.run(stage.prod2x(client, "t", false)).await.expect("accepted");
        assert_eq!(stage.wait_job(&started.job_id).await.state, JobState::Done);
    }
    let payload = RunPayload {
        kind: Some("dropdb".into()),
        database_names: Some("flex-lab_t\ncosmos-lab_t".into()),
        ..stage.prod2x("cosmos", "", true)
    };
    let RunResult::Dropped(result) = stage.client.run(payload).await.unwrap() else { panic!("a drop answers a drop") };
    assert_eq!(result.dropped, vec!["cosmos-lab_t".to_string()]);
    assert_eq!(result.refused.len(), 1, "{result:?}");
    assert_eq!(result.refused[0].name, "flex-lab_t");
    assert!(result.refused[0].reason.contains("not a copy of cosmos"), "{result:?}");
    assert!(stage.databases().iter().any(|d| d == "flex-lab_t"), "flex's copy stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_never_replaces_another_client_s_copy_of_the_same_name() {
    let stage = Stage::start(Options::default());
    stage.put_backup("cosmos", "cosmos-2026-11-24.dump", "dump");
    stage.put_backup("cosmos-eu", "cosmos-eu-2026-11-24.dump", "dump");
    // `cosmos-eu` + `lab` and `cosmos` + `eu-lab` name the same database.
    let theirs = stage.run(stage.prod2x("cosmos-eu", "t", false)).await.expect("accepted");
    assert_eq!(theirs.db_name, "cosmos-eu-lab_t");
    assert_eq!(stage.wait_job(&theirs.job_id).await.state, JobState::Done);
    let oid = stage.oid(&theirs.db_name);
    // A refresh of cosmos's `eu-lab` would replace it: refused, naming why.
    let payload = RunPayload { level: Some("eu-lab".into()), ..stage.prod2x("cosmos", "t", false) };
    let (code, message) = code_of(stage.client.run(payload).await.unwrap_err());
    assert_eq!(code, codes::CONFLICT, "{message}");
    assert!(message.contains("is not a copy of cosmos") && message.contains("cosmos-eu-lab_t"), "{message}");
    assert_eq!(stage.oid(&theirs.db_name), oid, "cosmos-eu's copy is the same database");
    // Nor does a drop of cosmos's remove it.
    let payload =
        RunPayload { kind: Some("dropdb".into()), database_names: Some("cosmos-eu-lab_t".into()), ..stage.prod2x("cosmos", "", true) };
    let RunResult::Dropped(result) = stage.client.run(payload).await.unwrap() else { panic!("a drop answers a drop") };
    assert!(result.dropped.is_empty() && result.refused[0].reason.contains("not a copy of cosmos"), "{result:?}");
    assert_eq!(stage.oid(&theirs.db_name), oid);
}

/// Starts `numikube-staging serve` on a copy of the stage's `odoo.conf` with
/// `db_user`'s lines replaced; expects it to refuse, and returns what it said.
fn refused_start(stage: &Stage, user: &str, password: &str) -> String {
    let conf = std::fs::read_to_string(stage.conf()).unwrap();
    let conf: String = conf
        .lines()
        .map(|l| match l.split_once('=').map(|(k, _)| k.trim()) {
            Some("db_user") => format!("db_user = {user}"),
            Some("db_password") => format!("db_password = {password}"),
            Some("numikube_staging_sidecar") => format!("numikube_staging_sidecar = 127.0.0.1:{}", numikube_testbed::free_port()),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    let path = stage.dir.path().join(format!("odoo-{user}.conf"));
    std::fs::write(&path, conf).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_numikube-staging"))
        .args(["serve", "-c"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the sidecar runs");
    assert_eq!(out.status.code(), Some(2), "{user}: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn start_up_refuses_what_containment_cannot_work_with() {
    let stage = Stage::start(Options::default());
    let said = refused_start(&stage, "postgres", "");
    assert!(said.contains("refuses to run as PostgreSQL's superuser"), "{said}");

    stage.pg.psql("postgres", "CREATE ROLE weak LOGIN PASSWORD 'weak-pw' CREATEDB;").unwrap();
    let said = refused_start(&stage, "weak", "weak-pw");
    assert!(said.contains("CREATEROLE") && said.contains("ALTER ROLE \"weak\" CREATEROLE;"), "{said}");

    // pg_hba.conf lets db_user and the superuser in over TCP, and nobody else.
    let hba = stage.pg.data_dir().join("pg_hba.conf");
    let original = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all odoo,postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\n{original}")).unwrap();
    stage.query("postgres", "SELECT pg_reload_conf()");
    let said = refused_start(&stage, "odoo", "odoo-pw");
    assert!(said.contains("pg_hba.conf") && said.contains("numikube_job_"), "{said}");
    let roles = stage.query("postgres", "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, 'numikube_job_')");
    assert_eq!(roles, "0", "the probe role is dropped");
    std::fs::write(&hba, original).unwrap();
    stage.query("postgres", "SELECT pg_reload_conf()");
}
