//! A real OTLP receiver for the tests, built from the official protobuf definitions
//! (`opentelemetry-proto`): the generated tonic `MetricsService` server for OTLP/gRPC, and an
//! axum `POST /v1/metrics` that decodes `ExportMetricsServiceRequest` with prost for OTLP/HTTP.
//! No OpenTelemetry Collector binary can be had on the test machines; this is the same wire
//! contract a collector's OTLP receiver implements.
//!
//! It listens on an ephemeral port of 127.0.0.1, keeps every request it accepted with its
//! headers, and can be told to answer errors or to hang. [`Receiver::reserve`] takes a port
//! without listening on it, so that an agent can be pointed at a collector that is down and
//! [`Receiver::listen`] can bring it up later on the same port.

// Test support: a failure to set up is the calling test's failure, reported where it happened.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as Shared;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    HistogramDataPoint, Metric, NumberDataPoint, number_data_point,
};
use prost::Message;
use socket2::{Domain, Socket, Type};
use tonic::codec::CompressionEncoding;

use crate::agent::DEADLINE;

/// How often a condition on the received exports is polled.
const POLL: Duration = Duration::from_millis(10);

/// The OTLP transport the receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

impl Protocol {
    /// The name in heartwire's config and in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http/protobuf",
        }
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Keeps the request and answers success.
    Accept,
    /// Answers a retryable error: gRPC `UNAVAILABLE`, HTTP 503.
    Unavailable,
    /// Answers a final error: gRPC `INVALID_ARGUMENT`, HTTP 400.
    Reject,
    /// Never answers.
    Hang,
    /// Waits this long, then keeps the request and answers success: a slow collector.
    Delay(Duration),
}

/// One accepted export.
#[derive(Debug, Clone)]
pub struct Export {
    /// Request headers (gRPC metadata), lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The decoded request.
    pub request: ExportMetricsServiceRequest,
}

#[derive(Debug)]
struct State {
    behaviour: Mutex<Behaviour>,
    exports: Mutex<Vec<Export>>,
    requests: AtomicUsize,
}

impl State {
    /// Counts the request and says how to answer it.
    fn arrived(&self) -> Behaviour {
        self.requests.fetch_add(1, Ordering::SeqCst);
        *self.behaviour.lock().unwrap()
    }

    fn keep(&self, headers: &HeaderMap, request: ExportMetricsServiceRequest) {
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("<binary>").to_owned(),
                )
            })
            .collect();
        self.exports
            .lock()
            .unwrap()
            .push(Export { headers, request });
    }
}

/// A running (or reserved) OTLP receiver. Stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    protocol: Protocol,
    address: SocketAddr,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
    reserved: Mutex<Option<Socket>>,
}

impl Receiver {
    /// A receiver listening now.
    pub fn start(protocol: Protocol) -> Receiver {
        let receiver = Receiver::reserve(protocol);
        receiver.listen();
        receiver
    }

    /// A receiver whose port is taken but not listening: connections are refused until
    /// [`Receiver::listen`].
    pub fn reserve(protocol: Protocol) -> Receiver {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a TCP socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("an ephemeral port");
        let address = socket
            .local_addr()
            .expect("the bound address")
            .as_socket()
            .expect("an IP address");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        Receiver {
            protocol,
            address,
            state: Arc::new(State {
                behaviour: Mutex::new(Behaviour::Accept),
                exports: Mutex::new(Vec::new()),
                requests: AtomicUsize::new(0),
            }),
            runtime: Some(runtime),
            reserved: Mutex::new(Some(socket)),
        }
    }

    /// Starts accepting connections on the reserved port (once; later calls do nothing).
    pub fn listen(&self) {
        let Some(socket) = self.reserved.lock().unwrap().take() else {
            return;
        };
        socket.listen(128).expect("listen");
        socket.set_nonblocking(true).expect("non-blocking");
        let listener = TcpListener::from(socket);
        let state = Arc::clone(&self.state);
        let runtime = self.runtime.as_ref().expect("the runtime");
        let _enter = runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        match self.protocol {
            Protocol::Grpc => runtime.spawn(serve_grpc(listener, state)),
            Protocol::Http => runtime.spawn(serve_http(listener, state)),
        };
    }

    /// The URL for heartwire's `otlp.endpoint`: `http://127.0.0.1:PORT`, plus `/v1/metrics` for
    /// HTTP.
    pub fn endpoint(&self) -> String {
        match self.protocol {
            Protocol::Grpc => self.base_url(),
            Protocol::Http => format!("{}/v1/metrics", self.base_url()),
        }
    }

    /// `http://127.0.0.1:PORT`, as `OTEL_EXPORTER_OTLP_ENDPOINT` would name it.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// From now on, answer as `behaviour` says.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Every accepted export so far, oldest first.
    pub fn exports(&self) -> Vec<Export> {
        self.state.exports.lock().unwrap().clone()
    }

    /// Requests that arrived, whatever the answer.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Polls until `condition` holds on the accepted exports; returns them. Panics after
    /// [`DEADLINE`] with `what` and a summary of what arrived.
    #[track_caller]
    pub fn wait_until(&self, what: &str, condition: impl Fn(&[Export]) -> bool) -> Vec<Export> {
        let started = Instant::now();
        loop {
            let exports = self.exports();
            if condition(&exports) {
                return exports;
            }
            if started.elapsed() > DEADLINE {
                let names = exports
                    .last()
                    .map(|export| metric_names(&export.request).join(", "))
                    .unwrap_or_default();
                panic!(
                    "timed out waiting for {what}: {} exports accepted, {} requests; the last held: {names}",
                    exports.len(),
                    self.requests()
                );
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[derive(Debug)]
struct Grpc {
    state: Arc<State>,
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        match self.state.arrived() {
            Behaviour::Accept => {
                let headers = request.metadata().clone().into_headers();
                self.state.keep(&headers, request.into_inner());
                Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
            }
            Behaviour::Unavailable => Err(tonic::Status::unavailable("the test collector is down")),
            Behaviour::Reject => Err(tonic::Status::invalid_argument(
                "the test collector refuses",
            )),
            Behaviour::Hang => std::future::pending().await,
            Behaviour::Delay(delay) => {
                tokio::time::sleep(delay).await;
                let headers = request.metadata().clone().into_headers();
                self.state.keep(&headers, request.into_inner());
                Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
            }
        }
    }
}

async fn serve_grpc(listener: tokio::net::TcpListener, state: Arc<State>) {
    let service =
        MetricsServiceServer::new(Grpc { state }).accept_compressed(CompressionEncoding::Gzip);
    let served = tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await;
    served.expect("the gRPC receiver serves");
}

async fn serve_http(listener: tokio::net::TcpListener, state: Arc<State>) {
    let router = Router::new()
        .route("/v1/metrics", post(http_export))
        .with_state(state);
    axum::serve(listener, router)
        .await
        .expect("the HTTP receiver serves");
}

async fn http_export(
    Shared(state): Shared<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match state.arrived() {
        Behaviour::Accept => {}
        Behaviour::Unavailable => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the test collector is down",
            )
                .into_response();
        }
        Behaviour::Reject => {
            return (StatusCode::BAD_REQUEST, "the test collector refuses").into_response();
        }
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Delay(delay) => tokio::time::sleep(delay).await,
    }
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        != Some("application/x-protobuf")
    {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not protobuf").into_response();
    }
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        == Some("gzip");
    let mut plain = Vec::new();
    let body: &[u8] = if gzipped {
        if GzDecoder::new(body.as_ref())
            .read_to_end(&mut plain)
            .is_err()
        {
            return (StatusCode::BAD_REQUEST, "bad gzip").into_response();
        }
        &plain
    } else {
        &body
    };
    match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => {
            state.keep(&headers, request);
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportMetricsServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            format!("not an ExportMetricsServiceRequest: {error}"),
        )
            .into_response(),
    }
}

/// Every metric of a request, in order.
pub fn metrics(request: &ExportMetricsServiceRequest) -> impl Iterator<Item = &Metric> {
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
}

/// The metric `name`, if the request holds it.
pub fn metric<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Metric> {
    metrics(request).find(|metric| metric.name == name)
}

/// The names of every metric of a request.
pub fn metric_names(request: &ExportMetricsServiceRequest) -> Vec<String> {
    metrics(request).map(|metric| metric.name.clone()).collect()
}

/// String attributes as a map.
pub fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(value) => Some((kv.key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// The resource attributes of the request's first resource.
pub fn resource(request: &ExportMetricsServiceRequest) -> BTreeMap<String, String> {
    request
        .resource_metrics
        .first()
        .and_then(|resource| resource.resource.as_ref())
        .map(|resource| attributes(&resource.attributes))
        .unwrap_or_default()
}

/// Whether `have` holds exactly the labels `want`.
pub fn labels_are(have: &[KeyValue], want: &[(&str, &str)]) -> bool {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    attributes(have) == want
}

fn data<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> Option<&'a Data> {
    metric(request, name)?.data.as_ref()
}

/// The point of the sum `name` with exactly `labels`.
pub fn sum_point<'a>(
    request: &'a ExportMetricsServiceRequest,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a NumberDataPoint> {
    match data(request, name)? {
        Data::Sum(sum) => sum
            .data_points
            .iter()
            .find(|p| labels_are(&p.attributes, labels)),
        _ => None,
    }
}

/// The point of the gauge `name` with exactly `labels`.
pub fn gauge_point<'a>(
    request: &'a ExportMetricsServiceRequest,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a NumberDataPoint> {
    match data(request, name)? {
        Data::Gauge(gauge) => gauge
            .data_points
            .iter()
            .find(|p| labels_are(&p.attributes, labels)),
        _ => None,
    }
}

/// The point of the histogram `name` with exactly `labels`.
pub fn histogram_point<'a>(
    request: &'a ExportMetricsServiceRequest,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a HistogramDataPoint> {
    match data(request, name)? {
        Data::Histogram(histogram) => histogram
            .data_points
            .iter()
            .find(|p| labels_are(&p.attributes, labels)),
        _ => None,
    }
}

/// A number point's value as a float (NaN if it has none).
pub fn value(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsDouble(value)) => value,
        Some(number_data_point::Value::AsInt(value)) => value as f64,
        None => f64::NAN,
    }
}
