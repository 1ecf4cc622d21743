//! The HTTP listeners: read-only endpoints (`GET /metrics`, `/healthz`, `/readyz`, `/status` and
//! the status page `/`) on one address, and the state-changing `POST /ingest` on its own,
//! loopback-only by default.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use bytes::Bytes;
use tokio::sync::watch;
use tower_http::compression::CompressionLayer;

use crate::aggregate::{Handle, Health};
use crate::clock::Now;
use crate::expose::status;
use crate::expose::{self, Exposition};
use crate::ingest::{ListenError, stopped};
use crate::supervise::Supervisor;

/// What the read-only endpoints read: the aggregator's published snapshot, the encoder, and
/// the supervisor's word on every component.
#[derive(Debug, Clone)]
pub struct Endpoints {
    handle: Handle,
    exposition: Arc<Exposition>,
    supervisor: Supervisor,
}

impl Endpoints {
    /// Endpoints that read through `handle`, render with `exposition` and answer `/healthz`
    /// from `supervisor`.
    pub fn new(handle: Handle, exposition: Exposition, supervisor: Supervisor) -> Endpoints {
        Endpoints {
            handle,
            exposition: Arc::new(exposition),
            supervisor,
        }
    }

    /// The verdicts of the published state, evaluated now.
    fn health(&self) -> Option<Health> {
        Some(self.handle.snapshot()?.health(Now::read()))
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

/// The answer of every endpoint that needs the aggregator's state once it is lost.
fn aggregator_failed() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the aggregator has failed: its state is lost (see /healthz)\n",
    )
        .into_response()
}

async fn metrics(State(endpoints): State<Endpoints>, headers: HeaderMap) -> Response {
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(expose::page::accepts_gzip);
    let body = match endpoints.exposition.page(&endpoints.handle, gzip).await {
        Some(Ok(body)) => body,
        Some(Err(error)) => {
            tracing::error!(%error, "cannot render /metrics");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot render the metrics: {error}\n"),
            )
                .into_response();
        }
        None => return aggregator_failed(),
    };
    let content_type = (header::CONTENT_TYPE, expose::CONTENT_TYPE);
    let gzip = body.gzip;
    let body = match body.content {
        expose::Content::Whole(chunks) => axum::body::Body::new(Chunks::new(chunks)),
        expose::Content::Stream(stream) => axum::body::Body::from_stream(stream),
    };
    if gzip {
        let encoding = (header::CONTENT_ENCODING, "gzip");
        ([content_type, encoding], body).into_response()
    } else {
        ([content_type], body).into_response()
    }
}

/// A response body of a few chunks, each sent as it is (a small page's stored and live parts
/// are not copied into one buffer). Its exact length is known, so the response carries a
/// `Content-Length`, as a single buffer's would.
#[derive(Debug)]
struct Chunks {
    chunks: std::collections::VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Vec<Bytes>) -> Chunks {
        let remaining = chunks.iter().map(|chunk| chunk.len() as u64).sum();
        Chunks {
            chunks: chunks
                .into_iter()
                .filter(|chunk| !chunk.is_empty())
                .collect(),
            remaining,
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let chunk = self.chunks.pop_front();
        if let Some(chunk) = &chunk {
            self.remaining -= chunk.len() as u64;
        }
        std::task::Poll::Ready(chunk.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// 200 while every component of the agent runs; 503 naming the ones that stopped (the agent
/// then exits within seconds, see `app`).
async fn healthz(State(endpoints): State<Endpoints>) -> Response {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let failures = endpoints.supervisor.failures();
    if failures.is_empty() {
        return (no_store, "ok\n").into_response();
    }
    let mut body = String::from("unhealthy: a component of the agent stopped\n");
    for failure in failures {
        body.push_str(&failure.to_string());
        body.push('\n');
    }
    (StatusCode::SERVICE_UNAVAILABLE, no_store, body).into_response()
}

/// 503 listing the stale jobs marked `readiness: true`, else 200.
async fn readyz(State(endpoints): State<Endpoints>) -> Response {
    let Some(health) = endpoints.health() else {
        return aggregator_failed();
    };
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    match status::unready(&health) {
        None => (no_store, "ok\n").into_response(),
        Some(stale) => (StatusCode::SERVICE_UNAVAILABLE, no_store, stale).into_response(),
    }
}

async fn status_json(State(endpoints): State<Endpoints>) -> Response {
    let Some(health) = endpoints.health() else {
        return aggregator_failed();
    };
    match status::json(&health) {
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
    let Some(health) = endpoints.health() else {
        return aggregator_failed();
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
        status::page::render(&health),
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
    // A large page goes out in pieces as it is rendered: without TCP_NODELAY, its last piece
    // would wait for the client's delayed ACK of the one before (Nagle), 40 ms on Linux.
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopped(&mut shutdown).await })
        .await;
    if let Err(error) = served {
        tracing::error!(address = ?address, %error, "HTTP server failed");
    }
}
