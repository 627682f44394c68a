//! The HTTP server around the API: JSON-RPC 2.0 on `numikube_staging_sidecar`.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use numikube_staging_rpc::StagingApiServer;

use super::Api;
use crate::app::App;

/// Largest request body accepted; a run payload is a few hundred bytes.
/// Larger bodies get JSON-RPC error -32007 ("Request is too big").
pub const MAX_BODY_BYTES: u32 = 256 * 1024;

/// Simultaneous HTTP connections served.
pub const MAX_CONNECTIONS: u32 = 1024;

/// Starts serving on `addr`; the returned handle stops the server.
pub async fn serve(app: Arc<App>, addr: SocketAddr) -> anyhow::Result<(SocketAddr, ServerHandle)> {
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
        .build(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (numikube_staging_sidecar): {e}"))?;
    let local = server.local_addr()?;
    let handle = server.start(Api::new(app).into_rpc());
    Ok((local, handle))
}
