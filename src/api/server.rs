//! The HTTP server around the API: JSON-RPC 2.0 on `numikube_staging_sidecar`,
//! and the probes `GET /metrics` and `GET /healthz` beside it or on
//! `numikube_staging_metrics` (Prometheus and the kubelet cannot POST JSON-RPC).

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use numikube_staging_rpc::StagingApiServer;

use super::Api;
use crate::app::App;
use crate::metrics::{self, HealthCheck, HealthFuture, MetricsLayer};
use crate::services::Services;

/// Largest request body accepted; a run payload is a few hundred bytes.
/// Larger bodies get JSON-RPC error -32007 ("Request is too big").
pub const MAX_BODY_BYTES: u32 = 256 * 1024;

/// Simultaneous HTTP connections served.
pub const MAX_CONNECTIONS: u32 = 1024;

/// Starts the probes (on `numikube_staging_metrics`, else on `addr` too), then JSON-RPC on `addr`; the handle stops JSON-RPC.
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<(SocketAddr, ServerHandle)> {
    let services = &app.services;
    let health = health_check(services.clone());
    let probes_here = match app.config().metrics {
        // Bound first: once this returns, both listen (systemd hears READY=1 then).
        Some(at) => {
            let (bound, _accepting) = metrics::serve(at, services.metrics.clone(), health).await?;
            // The task is detached: the listener lives as long as the process.
            tracing::info!(%bound, "serving GET /metrics and GET /healthz (numikube_staging_metrics)");
            None
        }
        None => Some(MetricsLayer::new(services.metrics.clone(), health)),
    };
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_BODY_BYTES)
        .max_response_body_size(16 * 1024 * 1024)
        // Requests are cheap (a refusal or an accepted job answers in a few
        // milliseconds); jsonrpsee's default of 100 would turn a burst of users
        // away with HTTP 429 before they reach the admission.
        .max_connections(MAX_CONNECTIONS)
        .http_only()
        .build();
    let server = Server::builder()
        .set_config(config)
        // `option_layer` keeps one server type whether the probes are here or not.
        .set_http_middleware(tower::ServiceBuilder::new().option_layer(probes_here))
        .build(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (numikube_staging_sidecar): {e}"))?;
    let local = server.local_addr()?;
    let handle = server.start(Api::new(app).into_rpc());
    Ok((local, handle))
}

/// `/healthz`: what `staging_health` checks, PostgreSQL and the bucket; 503 with both answers otherwise.
fn health_check(services: Arc<Services>) -> HealthCheck {
    // A readiness probe, not a liveness one: a restart would not bring PostgreSQL back.
    Arc::new(move || -> HealthFuture {
        let services = services.clone();
        Box::pin(async move {
            let (postgres, storage) = tokio::join!(services.db.health(), services.source.health());
            if postgres.is_ok() && storage.is_ok() {
                Ok(())
            } else {
                Err(format!("postgres: {postgres}; storage: {storage}"))
            }
        })
    })
}
