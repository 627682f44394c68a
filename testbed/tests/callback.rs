//! testbed::CallbackReceiver is a real HTTP server: reqwest posts callbacks to
//! it, gets the scripted answers, and is refused while it is stopped.

use std::time::Duration;

use numikube_testbed::{Answer, CallbackReceiver};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[tokio::test]
async fn reqwest_posts_are_recorded_and_answered_as_scripted() {
    let rx = CallbackReceiver::start().unwrap();
    let url = rx.url("/web/staging/callback/42?db=prod%20db");
    assert_eq!(url, format!("http://127.0.0.1:{}/web/staging/callback/42?db=prod%20db", rx.port()));
    rx.respond_with(vec![Answer::Status(503), Answer::OdooError("Invalid token".into()), Answer::Close]);
    let http = client();
    let payload = json!({"state": "done", "token": "t0k"});

    let r = http.post(&url).json(&payload).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let r = http.post(&url).json(&payload).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["data"]["message"], "Invalid token");
    assert!(http.post(&url).json(&payload).send().await.is_err(), "Close gives the client no answer");
    let r = http.post(&url).json(&payload).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"jsonrpc": "2.0", "id": null, "result": true}));

    let got = rx.wait_for(4, Duration::from_secs(5)).unwrap();
    assert_eq!(got.len(), 4);
    for req in &got {
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/web/staging/callback/42");
        assert_eq!(req.query_param("db").as_deref(), Some("prod db"));
        assert_eq!(req.body, payload);
        assert!(req.header("content-type").unwrap().contains("json"));
    }
    assert!(rx.wait_for(5, Duration::from_millis(100)).is_err());
}

#[tokio::test]
async fn receiver_down_then_up_on_the_same_port() {
    let mut rx = CallbackReceiver::start().unwrap();
    let url = rx.url("web/staging/callback/7");
    let http = client();
    assert!(http.post(&url).body("not json").send().await.unwrap().status().is_success());
    assert_eq!(rx.received()[0].body, Value::String("not json".into()));

    rx.stop().unwrap();
    let err = http.post(&url).json(&json!({"state": "done"})).send().await.unwrap_err();
    assert!(err.is_connect(), "refused while down: {err}");

    rx.start_again().unwrap();
    rx.respond_with(vec![Answer::Delay(Duration::from_millis(50), Box::new(Answer::Json(200, json!({"result": "late"}))))]);
    let r = http.post(&url).json(&json!({"state": "error", "error": "boom"})).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["result"], "late");
    let got = rx.wait_for(2, Duration::from_secs(5)).unwrap();
    assert_eq!(got[1].body["error"], "boom");
}
