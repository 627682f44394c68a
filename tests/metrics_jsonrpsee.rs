//! `MetricsLayer` in a real jsonrpsee 0.26 server: GET /metrics and /healthz answered by the
//! layer, JSON-RPC POSTs still reaching the RPC module.

mod wire;

use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::server::{RpcModule, Server, ServerConfig};
use numikube_staging::metrics::{Format, HealthCheck, HealthFuture, Metrics, MetricsLayer, PROMETHEUS_CONTENT_TYPE};

use wire::{parse_scrape, request};

#[tokio::test]
async fn the_layer_serves_metrics_beside_json_rpc() {
    let metrics = Arc::new(Metrics::new("0.1.0-test"));
    metrics.restore_finished(Format::Zip, Duration::from_secs(5), 42);
    let health: HealthCheck = Arc::new(|| -> HealthFuture { Box::pin(async { Err("storage: bucket missing".into()) }) });

    let mut module = RpcModule::new(());
    module.register_method("staging_health", |_, _, _| "fine").unwrap();
    // Exactly the wiring of DEPS.md: `Some(layer)` when numikube_staging_metrics is empty.
    let on_rpc_listener = Some(MetricsLayer::new(metrics.clone(), health));
    let server = Server::builder()
        .set_config(ServerConfig::builder().http_only().build())
        .set_http_middleware(tower::ServiceBuilder::new().option_layer(on_rpc_listener))
        .build("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let handle = server.start(module);

    let reply = request(addr, "GET", "/metrics", &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(PROMETHEUS_CONTENT_TYPE));
    let scrape = parse_scrape(&reply.body);
    let zip_bytes = scrape
        .samples
        .iter()
        .find(|s| s.metric == "numikube_staging_restored_bytes_total" && s.labels.get("format") == Some("zip"))
        .expect("restored bytes of zip");
    assert_eq!(zip_bytes.value, prometheus_parse::Value::Counter(42.0));

    let reply = request(addr, "GET", "/healthz", &[], "").await;
    assert_eq!((reply.status, reply.body.as_str()), (503, "storage: bucket missing"));

    let call = r#"{"jsonrpc":"2.0","id":1,"method":"staging_health","params":[]}"#;
    let json = [("Content-Type", "application/json")];
    let reply = request(addr, "POST", "/", &json, call).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, r#"{"jsonrpc":"2.0","id":1,"result":"fine"}"#);

    handle.stop().unwrap();
    handle.stopped().await;
}
