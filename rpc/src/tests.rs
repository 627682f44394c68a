//! The contract's own checks: openrpc.json in sync with the trait, and the wire shapes.

use serde_json::{json, Value};

use super::*;

fn openrpc() -> Value {
    let text = include_str!("../openrpc.json");
    serde_json::from_str(text).expect("openrpc.json is valid JSON")
}

#[test]
fn openrpc_lists_exactly_the_methods_of_the_trait() {
    let doc = openrpc();
    let mut names: Vec<&str> = doc["methods"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    names.sort();
    let mut expected = METHODS.to_vec();
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn openrpc_documents_every_error_code() {
    let doc = openrpc();
    let documented: Vec<i64> = doc["components"]["errors"].as_object().unwrap().values().map(|e| e["code"].as_i64().unwrap()).collect();
    for code in [
        codes::INTERNAL,
        codes::BAD_TOKEN,
        codes::INVALID_INPUT,
        codes::LIMIT_REACHED,
        codes::NOT_FOUND,
        codes::UNAVAILABLE,
        codes::CONFLICT,
        codes::NOT_IMPLEMENTED,
    ] {
        assert!(documented.contains(&(code as i64)), "code {code} missing from openrpc.json");
    }
}

#[test]
fn payload_keeps_unknown_keys_aside_and_reads_type() {
    let p: RunPayload = serde_json::from_value(serde_json::json!({
        "token": "t", "client": "cosmos", "type": "prod2x", "timestamp": true,
        "callback": "http://x/cb", "level": "lab", "suffix": "a", "future_key": 1
    }))
    .unwrap();
    assert_eq!(p.kind.as_deref(), Some("prod2x"));
    assert_eq!(p.extra.get("future_key"), Some(&serde_json::json!(1)));
}

#[test]
fn odoo_false_means_empty_text() {
    let p: RunPayload = serde_json::from_value(serde_json::json!({
        "token": "t", "client": "cosmos", "type": "prod2x", "suffix": false, "email": null, "level": "lab"
    }))
    .unwrap();
    assert_eq!((p.suffix, p.email), (None, None));
    assert!(serde_json::from_value::<RunPayload>(serde_json::json!({"suffix": true})).is_err());
    assert!(serde_json::from_value::<RunPayload>(serde_json::json!({"suffix": 5})).is_err());
}

#[test]
fn run_result_serializes_flat_for_both_shapes() {
    let started = RunResult::Started(RunStarted { db_name: "a".into(), job_id: "j".into(), backup: None, anonymize: false });
    assert_eq!(serde_json::to_value(&started).unwrap(), serde_json::json!({"db_name":"a","job_id":"j","anonymize":false}));
    let dropped: RunResult = serde_json::from_value(serde_json::json!({
        "status":"done","dropped":[],"missing":["x"],"refused":[]}))
    .unwrap();
    assert!(matches!(dropped, RunResult::Dropped(_)));
}

#[test]
fn newer_payload_keys_read_like_the_others() {
    let p: RunPayload = serde_json::from_value(json!({
        "type": "prod2x", "backup": "cosmos-daily-2.dump", "request_id": "uuid:42:3"
    }))
    .unwrap();
    assert_eq!(p.backup.as_deref(), Some("cosmos-daily-2.dump"));
    assert_eq!(p.request_id.as_deref(), Some("uuid:42:3"));
    assert!(p.extra.is_empty());
    let odoo: RunPayload = serde_json::from_value(json!({"backup": false, "request_id": false})).unwrap();
    assert_eq!((odoo.backup, odoo.request_id), (None, None));
}

#[test]
fn the_run_answer_echoes_the_backup_only_when_one_was_asked() {
    let mut started = RunStarted { db_name: "a".into(), job_id: "j".into(), backup: None, anonymize: false };
    assert_eq!(serde_json::to_value(&started).unwrap(), json!({"db_name":"a","job_id":"j","anonymize":false}));
    started.backup = Some("a-1.dump".into());
    assert_eq!(serde_json::to_value(&started).unwrap(), json!({"db_name":"a","job_id":"j","backup":"a-1.dump","anonymize":false}));
}

#[test]
fn anonymize_is_read_from_odoo_values_and_always_echoed() {
    let asked: RunPayload = serde_json::from_value(json!({"type": "prod2x", "anonymize": true})).unwrap();
    assert_eq!(asked.anonymize, Some(true));
    assert!(asked.extra.is_empty());
    for odoo in [json!({"anonymize": false}), json!({"anonymize": null}), json!({})] {
        let p: RunPayload = serde_json::from_value(odoo).unwrap();
        assert_ne!(p.anonymize, Some(true));
    }
    let started = RunStarted { db_name: "a".into(), job_id: "j".into(), backup: None, anonymize: true };
    assert_eq!(serde_json::to_value(&started).unwrap()["anonymize"], json!(true));
    // An older staging's answer reads as not anonymized.
    let old: RunStarted = serde_json::from_value(json!({"db_name": "a", "job_id": "j"})).unwrap();
    assert!(!old.anonymize);
    let status: JobStatus = serde_json::from_value(json!({
        "job_id": "j", "db_name": "a", "state": "done", "phase": "done", "progress": 1.0, "error": null,
        "started_at": "2026-12-02T20:00:00+00:00", "finished_at": null}))
    .unwrap();
    assert!(!status.anonymize && status.anonymized.is_none());
}

/// The keys of a schema of openrpc.json's components.
fn documented_keys(schema: &str) -> Vec<String> {
    let mut keys: Vec<String> = openrpc()["components"]["schemas"][schema]["properties"].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// The keys `value` serializes with.
fn keys_of(value: impl serde::Serialize) -> Vec<String> {
    let mut keys: Vec<String> = serde_json::to_value(value).unwrap().as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn openrpc_documents_every_key_of_the_new_shapes() {
    let info = DatabaseInfo {
        name: "a".into(),
        size_bytes: 1,
        created_at: None,
        made_by_staging: true,
        job_id: None,
        backup: None,
        requested_by: None,
        expires_at: None,
        template: false,
    };
    assert_eq!(documented_keys("DatabaseInfo"), keys_of(&info));
    let backup = BackupInfo { key: "k".into(), last_modified: chrono::Utc::now(), size_bytes: 1 };
    assert_eq!(documented_keys("BackupInfo"), keys_of(&backup));
    assert_eq!(documented_keys("Backups"), keys_of(Backups::default()));
    assert_eq!(documented_keys("Cancelled"), keys_of(Cancelled { state: JobState::Error, error: "e".into() }));
    assert_eq!(documented_keys("Extended"), keys_of(Extended { expires_at: chrono::Utc::now() }));
    let started = RunStarted { db_name: "a".into(), job_id: "j".into(), backup: Some("b".into()), anonymize: true };
    assert_eq!(documented_keys("RunStarted"), keys_of(&started));
    let payload = RunPayload {
        token: Some("t".into()),
        client: Some("c".into()),
        kind: Some("prod2x".into()),
        timestamp: Some(true),
        callback: Some("u".into()),
        level: Some("l".into()),
        suffix: Some("s".into()),
        database_names: Some("d".into()),
        email: Some("e".into()),
        backup: Some("b".into()),
        request_id: Some("r".into()),
        anonymize: Some(true),
        extra: Default::default(),
    };
    assert_eq!(documented_keys("RunPayload"), keys_of(&payload));
    let status = JobStatus {
        job_id: "j".into(),
        db_name: "a".into(),
        state: JobState::Done,
        phase: Phase::Done,
        progress: Some(1.0),
        error: None,
        started_at: chrono::Utc::now(),
        finished_at: None,
        backup: None,
        neutralized: None,
        filestore: Some("none".into()),
        missing_attachments: Some(2),
        anonymize: true,
        anonymized: Some(AnonymizeReport::default()),
    };
    assert_eq!(documented_keys("JobStatus"), keys_of(&status), "every key of JobStatus is in openrpc.json, and only those");
    let old: JobStatus = serde_json::from_value(json!({
        "job_id": "j", "db_name": "a", "state": "running", "phase": "queued", "progress": null,
        "error": null, "started_at": "2026-12-02T20:00:00+00:00", "finished_at": null
    }))
    .unwrap();
    assert_eq!((old.filestore, old.missing_attachments, old.anonymize, old.anonymized), (None, None, false, None));
}

/// A server that answers `staging_list` with the client it was given, for the optional parameter.
struct Echo;

#[jsonrpsee::core::async_trait]
impl StagingApiServer for Echo {
    async fn run(&self, _: RunPayload) -> Result<RunResult, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
    async fn drop_databases(&self, _: String, _: String) -> Result<DropResult, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
    async fn status(&self, _: String, _: String) -> Result<JobStatus, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
    async fn list(&self, _: String, client: Option<String>) -> Result<Vec<DatabaseInfo>, ErrorObjectOwned> {
        let name = client.unwrap_or_else(|| "every client".into());
        Ok(vec![DatabaseInfo {
            name,
            size_bytes: 0,
            created_at: None,
            made_by_staging: false,
            job_id: None,
            backup: None,
            requested_by: None,
            expires_at: None,
            template: false,
        }])
    }
    async fn health(&self) -> Result<Health, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
    async fn backups(&self, _: String, _: String) -> Result<Backups, ErrorObjectOwned> {
        Ok(Backups::default())
    }
    async fn cancel(&self, _: String, _: String) -> Result<Cancelled, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
    async fn extend(&self, _: String, _: String) -> Result<Extended, ErrorObjectOwned> {
        Err(error(codes::NOT_IMPLEMENTED, "no", None))
    }
}

#[tokio::test]
async fn staging_list_takes_one_or_two_parameters() {
    use jsonrpsee::core::client::ClientT;
    let server = jsonrpsee::server::Server::builder().build("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let handle = server.start(Echo.into_rpc());
    let client = jsonrpsee::http_client::HttpClientBuilder::default().build(url).unwrap();
    let one: Value = client.request("staging_list", jsonrpsee::rpc_params!["t"]).await.unwrap();
    assert_eq!(one[0]["name"], "every client");
    let two: Value = client.request("staging_list", jsonrpsee::rpc_params!["t", "cosmos"]).await.unwrap();
    assert_eq!(two[0]["name"], "cosmos");
    let typed = client.list("t".into(), Some("cosmos".into())).await.unwrap();
    assert_eq!(typed[0].name, "cosmos");
    handle.stop().unwrap();
}

#[test]
fn typed_states_and_times_are_written_as_the_wire_always_had_them() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T20:00:00.5+00:00").unwrap().to_utc();
    assert_eq!(serde_json::to_value(Extended { expires_at: at }).unwrap(), json!({"expires_at": at.to_rfc3339()}));
    for (state, word) in [
        (Warmth::Building, "building"),
        (Warmth::Off, "off (numikube_staging_template_cache = False)"),
        (Warmth::NotReady("boom".into()), "not ready: boom"),
        (Warmth::NoBackup("no backup of cosmos".into()), "no backup of cosmos"),
    ] {
        assert_eq!(serde_json::to_value(&state).unwrap(), json!(word));
        assert_eq!(serde_json::from_value::<Warmth>(json!(word)).unwrap(), state);
    }
    assert_eq!(serde_json::to_value(Reach::Ok).unwrap(), json!("ok"));
    assert_eq!(serde_json::from_value::<Reach>(json!("the bucket is gone")).unwrap(), Reach::Down("the bucket is gone".into()));
    assert_eq!(serde_json::to_value(DropResult::default()).unwrap()["status"], json!("done"));
    let done = Callback::Done {
        token: "t".into(),
        db_name: "d".into(),
        job_id: "j".into(),
        filestore: None,
        missing_attachments: Some(0),
        anonymized: None,
    };
    assert_eq!(
        serde_json::to_value(done).unwrap(),
        json!({"state": "done", "token": "t", "db_name": "d", "job_id": "j", "filestore": null, "missing_attachments": 0})
    );
}

/// The keys of the object schema at `pointer` in openrpc.json (an array's items when it is one).
fn documented_keys_at(pointer: &str) -> Vec<String> {
    let doc = openrpc();
    let schema = doc.pointer(pointer).unwrap_or_else(|| panic!("{pointer} is in openrpc.json"));
    let schema = schema.get("items").unwrap_or(schema);
    let mut keys: Vec<String> =
        schema["properties"].as_object().unwrap_or_else(|| panic!("{pointer} has properties")).keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn openrpc_documents_every_key_of_every_nested_shape() {
    let at = |path: &str| format!("/components/schemas/{path}");
    assert_eq!(documented_keys_at(&at("JobStatus/properties/neutralized")), keys_of(NeutralizeReport::default()));
    assert_eq!(documented_keys_at(&at("JobStatus/properties/anonymized")), keys_of(AnonymizeReport::default()));
    assert_eq!(documented_keys_at(&at("DropResult")), keys_of(DropResult::default()));
    assert_eq!(documented_keys_at(&at("DropResult/properties/refused")), keys_of(Refused { name: "n".into(), reason: "r".into() }));
    let prewarm = PrewarmState { client: "c".into(), state: Warmth::Ready, backup: None, checked_at: None };
    assert_eq!(documented_keys_at(&at("Health/properties/prewarm")), keys_of(&prewarm));
    let health = Health { version: "v".into(), postgres: Reach::Ok, storage: Reach::Ok, prewarm: vec![prewarm] };
    assert_eq!(documented_keys_at(&at("Health")), keys_of(&health));
}
