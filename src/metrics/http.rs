//! The plain-HTTP listener on `numikube_staging_metrics`: `GET /metrics` and `GET /healthz`.
//!
//! Prometheus and the kubelet cannot POST JSON-RPC, and the JSON-RPC listener stays on loopback,
//! so these two read-only routes get a listener of their own on the pod's address. The routing
//! lives in [`answer`], shared with [`super::MetricsLayer`], so both listeners answer alike.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::series::{Metrics, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE};

/// What a health check returns: the same type as `futures::future::BoxFuture<'static, _>`.
pub type HealthFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// The caller's health check: `Ok` for 200 `ok`, `Err(reason)` for 503 with that reason.
pub type HealthCheck = Arc<dyn Fn() -> HealthFuture + Send + Sync>;

/// A probe gives up long before this; the bound only keeps a hung check from piling up tasks.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that opens a connection and sends nothing is dropped after this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

const TEXT: &str = "text/plain; charset=utf-8";

/// Binds `addr`, then serves `/metrics` and `/healthz` on it in a spawned task.
///
/// Returns the bound address (useful with port 0) and the task; aborting the task stops accepting.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, health: HealthCheck) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot listen on {addr} for /metrics and /healthz: {e}; fix \
                 numikube_staging_metrics in odoo.conf (leave it empty to serve them \
                 on the JSON-RPC listener)"
            ),
        )
    })?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(accept_loop(listener, metrics, health))))
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>, health: HealthCheck) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning on the error.
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, health) = (Arc::clone(&metrics), Arc::clone(&health));
        let service = service_fn(move |req| handle(req, Arc::clone(&metrics), Arc::clone(&health)));
        let conn = http.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics listener: connection ended badly");
            }
        });
    }
}

async fn handle(req: Request<Incoming>, metrics: Arc<Metrics>, health: HealthCheck) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match answer(&req, &metrics, &health) {
        Some(answering) => answering.await,
        None => text(StatusCode::NOT_FOUND, "not found: this listener serves GET /metrics and GET /healthz\n"),
    };
    Ok(response.map(Full::from))
}

/// The answer to `req` when its path is `/metrics` or `/healthz`; `None` for any other path.
///
/// The future owns what it needs, so a tower service can box it and return it from `call`.
pub(super) fn answer<B>(
    req: &Request<B>,
    metrics: &Arc<Metrics>,
    health: &HealthCheck,
) -> Option<impl Future<Output = Response<String>> + Send + 'static> {
    let route = match req.uri().path() {
        "/metrics" => Route::Metrics,
        "/healthz" => Route::Health,
        _ => return None,
    };
    let readable = req.method() == Method::GET || req.method() == Method::HEAD;
    let openmetrics =
        req.headers().get_all(ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| v.contains("application/openmetrics-text"));
    let (metrics, health) = (Arc::clone(metrics), Arc::clone(health));
    Some(async move {
        match (readable, route) {
            (false, _) => {
                let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET\n");
                response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
            (true, Route::Metrics) if openmetrics => with_type(StatusCode::OK, OPENMETRICS_CONTENT_TYPE, metrics.encode_openmetrics()),
            (true, Route::Metrics) => with_type(StatusCode::OK, PROMETHEUS_CONTENT_TYPE, metrics.encode()),
            (true, Route::Health) => match tokio::time::timeout(HEALTH_TIMEOUT, health()).await {
                Ok(Ok(())) => text(StatusCode::OK, "ok"),
                Ok(Err(reason)) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, format!("the health check did not answer within {HEALTH_TIMEOUT:?}")),
            },
        }
    })
}

#[derive(Clone, Copy)]
enum Route {
    Metrics,
    Health,
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<String> {
    with_type(status, TEXT, body.into())
}

fn with_type(status: StatusCode, content_type: &'static str, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
