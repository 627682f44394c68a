//! `GET /metrics` and `GET /healthz` on the JSON-RPC listener, for when `numikube_staging_metrics`
//! is empty: a tower layer for jsonrpsee's `Server::builder().set_http_middleware(…)`.
//!
//! Requests to those two paths are answered here, exactly as [`super::serve`] answers them; every
//! other request (the JSON-RPC POSTs, WebSocket upgrades) goes to the inner service untouched.
//! The layer is generic over the bodies, so it needs nothing from jsonrpsee but a response body
//! built `From<String>`, which jsonrpsee's `HttpBody` is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::{Request, Response};
use tower::{Layer, Service};

use super::http::{answer, HealthCheck};
use super::series::Metrics;

/// The error type jsonrpsee's HTTP middleware works with (`jsonrpsee::core::BoxError`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Tower layer answering `/metrics` and `/healthz`, passing everything else through.
#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
    health: HealthCheck,
}

impl MetricsLayer {
    /// A layer serving `metrics` and the caller's `health` check.
    pub fn new(metrics: Arc<Metrics>, health: HealthCheck) -> MetricsLayer {
        MetricsLayer { metrics, health }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> MetricsService<S> {
        MetricsService { inner, metrics: Arc::clone(&self.metrics), health: Arc::clone(&self.health) }
    }
}

/// The service [`MetricsLayer`] wraps around the JSON-RPC service.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    health: HealthCheck,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for MetricsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResBody>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if let Some(answering) = answer(&req, &self.metrics, &self.health) {
            return Box::pin(async move { Ok(answering.await.map(ResBody::from)) });
        }
        let passing = self.inner.call(req);
        Box::pin(async move { passing.await.map_err(Into::into) })
    }
}
