//! The HTTP listeners: read-only endpoints (`GET /metrics`, `/healthz`, `/readyz`, `/status` and
//! the status page `/`) on one address, and the state-changing `POST /ingest` on its own,
//! loopback-only by default.

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
use crate::status;

/// What the read-only endpoints read: the aggregator's published snapshot and the encoder.
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
        .route("/readyz", get(readyz))
        .route("/status", get(status_json))
        .route("/", get(status_page))
        .layer(CompressionLayer::new())
        .with_state(endpoints)
}

/// The answer of every endpoint that needs a snapshot once the aggregator is gone (shutdown).
fn aggregator_stopped() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the aggregator has stopped\n",
    )
        .into_response()
}

async fn metrics(State(endpoints): State<Endpoints>) -> Response {
    let Some(families) = endpoints.exposition.current(&endpoints.handle).await else {
        return aggregator_stopped();
    };
    let mut body = Vec::with_capacity(64 * 1024);
    if let Err(error) = Exposition::encode(&families, &mut body) {
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

/// 503 listing the stale jobs marked `readiness: true`, else 200.
async fn readyz(State(endpoints): State<Endpoints>) -> Response {
    let Some(snapshot) = endpoints.handle.snapshot().await else {
        return aggregator_stopped();
    };
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    match status::unready(&snapshot) {
        None => (no_store, "ok\n").into_response(),
        Some(stale) => (StatusCode::SERVICE_UNAVAILABLE, no_store, stale).into_response(),
    }
}

async fn status_json(State(endpoints): State<Endpoints>) -> Response {
    let Some(snapshot) = endpoints.handle.snapshot().await else {
        return aggregator_stopped();
    };
    match status::json(&snapshot) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot render /status");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot render the status: {error}\n"),
            )
                .into_response()
        }
    }
}

async fn status_page(State(endpoints): State<Endpoints>) -> Response {
    let Some(snapshot) = endpoints.handle.snapshot().await else {
        return aggregator_stopped();
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                status::page::CONTENT_SECURITY_POLICY,
            ),
        ],
        status::page::render(&snapshot),
    )
        .into_response()
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
