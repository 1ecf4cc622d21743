//! `POST /ingest`: lines as the request body, one batch per request.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;

use super::Sink;
use crate::ingest::batch::{Batch, Transport};

/// The router for the loopback ingest listener. Bodies over `max_body_bytes` get `413`.
/// Its series appear with it.
pub fn router(sink: Sink, max_body_bytes: usize) -> Router {
    sink.telemetry().listening(Transport::Http);
    Router::new()
        .route("/ingest", post(ingest))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(sink)
}

/// `202 Accepted` once the lines are queued (they are parsed and counted later, like every
/// other transport's). Like the other stream transports it waits for room in the queue rather
/// than drop the body, so a busy agent answers later, never loses what it accepted; `503` only
/// when the agent is shutting down.
async fn ingest(State(sink): State<Sink>, body: Bytes) -> (StatusCode, &'static str) {
    let bytes = body.len() as u64;
    let mut data = Vec::from(body);
    if data.last().is_some_and(|&last| last != b'\n') {
        data.push(b'\n');
    }
    if sink
        .send_stream(Batch::new(Transport::Http, data), bytes)
        .await
    {
        (StatusCode::ACCEPTED, "accepted\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is shutting down: the lines were not taken; retry later\n",
        )
    }
}
