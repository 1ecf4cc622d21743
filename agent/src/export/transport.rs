//! Sending one `ExportMetricsServiceRequest`: OTLP/gRPC through tonic's client, OTLP/HTTP
//! through reqwest, the two transports `opentelemetry-otlp` itself is built on. Answers are
//! sorted the way the OTLP specification says a client must retry or give up.

use std::io::Write;
use std::time::Duration;

use flate2::Compression as Level;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use reqwest::header::{
    CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER,
};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::settings::{OtlpSettings, SettingError};
use crate::config::{Compression, Protocol};

const PROTOBUF: &str = "application/x-protobuf";
/// How much of an error answer's body goes into the log.
const ERROR_EXCERPT: usize = 256;
/// The most of an answer's body read: an `ExportMetricsServiceResponse` is a few bytes, and a
/// misbehaving collector must not make the agent allocate without bound.
const MAX_ANSWER: usize = 64 * 1024;

/// Why an export did not go through.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The collector refused the data for good (bad request, authentication): retrying the same
    /// request cannot help.
    Rejected(String),
    /// The collector could not be reached or answered a transient error: worth retrying, after
    /// `retry_after` if it said when.
    Unavailable {
        /// What happened.
        reason: String,
        /// The delay the collector asked for.
        retry_after: Option<Duration>,
    },
    /// No answer within the timeout.
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rejected(reason) => write!(f, "the collector rejected the export: {reason}"),
            Failure::Unavailable { reason, .. } => {
                write!(f, "the collector is unavailable: {reason}")
            }
            Failure::Timeout => f.write_str("the collector did not answer in time"),
        }
    }
}

/// The client for one collector.
#[derive(Debug, Clone)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// The client; its channel connects lazily and reconnects by itself.
        client: MetricsServiceClient<Channel>,
        /// Sent with every request.
        metadata: MetadataMap,
    },
    /// OTLP/HTTP with a protobuf body.
    Http {
        /// The client.
        client: reqwest::Client,
        /// The full URL.
        url: String,
        /// Sent with every request, `Content-Type` included.
        headers: HeaderMap,
        /// Whether bodies are gzipped.
        gzip: bool,
    },
}

impl Transport {
    /// A client for `settings`. Nothing connects yet, so a collector that is down at startup is
    /// no error. Must run inside the tokio runtime (the gRPC channel starts a task).
    pub fn new(settings: &OtlpSettings) -> Result<Transport, SettingError> {
        let bad = |message: String| SettingError {
            source_name: "otlp.endpoint".to_owned(),
            message,
        };
        match settings.protocol {
            Protocol::Grpc => {
                let endpoint = Endpoint::from_shared(settings.endpoint.clone())
                    .map_err(|error| bad(format!("`{}`: {error}", settings.endpoint)))?
                    .connect_timeout(settings.timeout);
                let mut client = MetricsServiceClient::new(endpoint.connect_lazy());
                if settings.compression == Compression::Gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                Ok(Transport::Grpc {
                    client: client.accept_compressed(CompressionEncoding::Gzip),
                    metadata: metadata(&settings.headers)?,
                })
            }
            Protocol::HttpProtobuf => {
                let client = reqwest::Client::builder()
                    .connect_timeout(settings.timeout)
                    .user_agent(concat!("heartwire/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|error| bad(format!("cannot set up the HTTP client: {error}")))?;
                let gzip = settings.compression == Compression::Gzip;
                Ok(Transport::Http {
                    client,
                    url: settings.endpoint.clone(),
                    headers: http_headers(&settings.headers, gzip)?,
                    gzip,
                })
            }
        }
    }

    /// Sends `request` once, within `timeout`. `Ok` carries the collector's partial-success
    /// report, if it rejected some points.
    pub async fn send(
        &self,
        request: &ExportMetricsServiceRequest,
        timeout: Duration,
    ) -> Result<Option<ExportMetricsPartialSuccess>, Failure> {
        let sent = async {
            match self {
                Transport::Grpc { client, metadata } => send_grpc(client, metadata, request).await,
                Transport::Http {
                    client,
                    url,
                    headers,
                    gzip,
                } => send_http(client, url, headers, *gzip, request).await,
            }
        };
        tokio::time::timeout(timeout, sent)
            .await
            .unwrap_or(Err(Failure::Timeout))
    }
}

async fn send_grpc(
    client: &MetricsServiceClient<Channel>,
    metadata: &MetadataMap,
    request: &ExportMetricsServiceRequest,
) -> Result<Option<ExportMetricsPartialSuccess>, Failure> {
    let mut call = tonic::Request::new(request.clone());
    *call.metadata_mut() = metadata.clone();
    match client.clone().export(call).await {
        Ok(response) => Ok(partial(response.into_inner())),
        Err(status) => Err(grpc_failure(&status)),
    }
}

/// The OTLP specification's retryable gRPC codes; every other code is final.
fn grpc_failure(status: &tonic::Status) -> Failure {
    use tonic::Code;
    let reason = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Failure::Unavailable {
            reason,
            retry_after: None,
        },
        _ => Failure::Rejected(reason),
    }
}

async fn send_http(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
    gzip: bool,
    request: &ExportMetricsServiceRequest,
) -> Result<Option<ExportMetricsPartialSuccess>, Failure> {
    let body = encode(request, gzip)
        .map_err(|error| Failure::Rejected(format!("cannot compress: {error}")))?;
    let response = client
        .post(url)
        .headers(headers.clone())
        .body(body)
        .send()
        .await
        .map_err(|error| http_error(&error))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_capped(response)
        .await
        .map_err(|error| http_error(&error))?;
    if status.is_success() {
        return Ok(ExportMetricsServiceResponse::decode(body.as_ref())
            .ok()
            .and_then(partial));
    }
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(ERROR_EXCERPT)]).into_owned();
    let reason = format!("HTTP {status}: {}", excerpt.trim());
    if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
        Err(Failure::Unavailable {
            reason,
            retry_after,
        })
    } else {
        Err(Failure::Rejected(reason))
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER {
            break;
        }
    }
    Ok(body)
}

fn http_error(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    // The source chain says why (connection refused, reset…); the top level only says "error
    // sending request".
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::Unavailable {
        reason,
        retry_after: None,
    }
}

/// The protobuf body, gzipped if asked.
fn encode(request: &ExportMetricsServiceRequest, gzip: bool) -> std::io::Result<Vec<u8>> {
    let plain = request.encode_to_vec();
    if !gzip {
        return Ok(plain);
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Level::default());
    encoder.write_all(&plain)?;
    encoder.finish()
}

fn partial(response: ExportMetricsServiceResponse) -> Option<ExportMetricsPartialSuccess> {
    response
        .partial_success
        .filter(|partial| partial.rejected_data_points > 0 || !partial.error_message.is_empty())
}

fn header_error(name: &str) -> SettingError {
    SettingError {
        source_name: "otlp.headers".to_owned(),
        message: format!("`{name}` cannot be sent as a header"),
    }
}

fn metadata(headers: &[(String, String)]) -> Result<MetadataMap, SettingError> {
    let mut map = MetadataMap::new();
    for (name, value) in headers {
        let key = MetadataKey::from_bytes(name.as_bytes()).map_err(|_| header_error(name))?;
        let value = MetadataValue::try_from(value.as_str()).map_err(|_| header_error(name))?;
        map.insert(key, value);
    }
    Ok(map)
}

fn http_headers(headers: &[(String, String)], gzip: bool) -> Result<HeaderMap, SettingError> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    if gzip {
        map.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    for (name, value) in headers {
        let key = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header_error(name))?;
        let value = HeaderValue::from_str(value).map_err(|_| header_error(name))?;
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::GzDecoder;

    use super::*;

    #[test]
    fn only_the_specified_grpc_codes_are_retried() {
        let retried = grpc_failure(&tonic::Status::unavailable("down"));
        assert!(
            matches!(retried, Failure::Unavailable { .. }),
            "{retried:?}"
        );
        let exhausted = grpc_failure(&tonic::Status::resource_exhausted("slow down"));
        assert!(matches!(exhausted, Failure::Unavailable { .. }));
        let refused = grpc_failure(&tonic::Status::invalid_argument("bad"));
        assert!(matches!(refused, Failure::Rejected(_)), "{refused:?}");
        let unauthenticated = grpc_failure(&tonic::Status::unauthenticated("who"));
        assert!(matches!(unauthenticated, Failure::Rejected(_)));
    }

    #[test]
    fn gzipped_bodies_decode_to_the_same_request() {
        let request = ExportMetricsServiceRequest::default();
        let mut request = request;
        request.resource_metrics.push(Default::default());
        let zipped = encode(&request, true).unwrap();
        let mut plain = Vec::new();
        GzDecoder::new(zipped.as_slice())
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(
            ExportMetricsServiceRequest::decode(plain.as_slice()).unwrap(),
            request
        );
    }

    #[test]
    fn http_headers_carry_the_content_type_and_the_configured_ones() {
        let headers = http_headers(&[("x-api-key".to_owned(), "k".to_owned())], true).unwrap();
        assert_eq!(headers[CONTENT_TYPE], PROTOBUF);
        assert_eq!(headers[CONTENT_ENCODING], "gzip");
        assert_eq!(headers["x-api-key"], "k");
    }
}
