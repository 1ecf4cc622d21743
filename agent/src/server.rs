//! The HTTP listeners: read-only endpoints (`GET /metrics`, `GET /healthz`) on one address, and
//! the state-changing `POST /ingest` on its own, loopback-only by default.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;

use crate::aggregate::Handle;
use crate::expose::{self, Exposition};
use crate::ingest::{ListenError, stopped};

/// What `/metrics` reads: the aggregator's published snapshot and the encoder.
#[derive(Debug, Clone)]
pub struct Endpoints {
    handle: Handle,
    exposition: Arc<Exposition>,
}

impl Endpoints {
    /// Endpoints that scrape through `handle` and render with `exposition`.
    pub fn new(handle: Handle, exposition: Exposition) -> Endpoints {
        Endpoints {
            handle,
            exposition: Arc::new(exposition),
        }
    }
}

/// The read-only router. Responses are gzip-compressed when the client asks.
pub fn router(endpoints: Endpoints) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(CompressionLayer::new())
        .with_state(endpoints)
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    let Some(snapshot) = endpoints.handle.snapshot().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the aggregator has stopped\n",
        )
            .into_response();
    };
    let mut body = Vec::with_capacity(64 * 1024);
    if let Err(error) = endpoints.exposition.render(&snapshot, &mut body) {
        tracing::error!(%error, "cannot render /metrics");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the metrics: {error}\n"),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, expose::CONTENT_TYPE)], body).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Binds an HTTP listener; `key` names its config key in errors.
pub fn bind(
    address: SocketAddr,
    what: &'static str,
    key: &'static str,
) -> Result<tokio::net::TcpListener, ListenError> {
    let fail = |source| ListenError::bind(what, address.to_string(), key, source);
    let listener = std::net::TcpListener::bind(address).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    tokio::net::TcpListener::from_std(listener).map_err(fail)
}

/// Serves `router` on `listener` until `shutdown` is set, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let address = listener.local_addr().ok();
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopped(&mut shutdown).await })
        .await;
    if let Err(error) = served {
        tracing::error!(address = ?address, %error, "HTTP server failed");
    }
}
