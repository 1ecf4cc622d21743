//! The push outputs: `otlp:` (the families of `/metrics`, pushed to an OpenTelemetry collector)
//! and `textfile:` (the exposition as a `.prom` file for node_exporter's textfile collector).
//!
//! Every OTLP key is optional. A key set here wins over the standard
//! `OTEL_EXPORTER_OTLP_METRICS_*` variable, which wins over `OTEL_EXPORTER_OTLP_*`, which wins
//! over the default: the precedence of the OpenTelemetry SDKs, where code (here, the file) beats
//! the environment. The environment is read in [`crate::export`]; values are checked here, so
//! that `heartwire check` reports a bad one with its line.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Uri};
use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};

use super::bounds::EXPORT_PERIOD;

/// `otlp:`: push every family `/metrics` shows to an OTLP receiver.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Otlp {
    /// Whether to push. Left out: on when `endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` is set, unless `OTEL_METRICS_EXPORTER` is set
    /// without `otlp` (`none`, say); `OTEL_METRICS_EXPORTER=otlp` turns it on too.
    pub enabled: Option<bool>,
    /// `grpc` or `http/protobuf`; default `http/protobuf` (the OTLP specification's default).
    pub protocol: Option<Protocol>,
    /// Where to send. Default `http://localhost:4318/v1/metrics` (HTTP) or
    /// `http://localhost:4317` (gRPC). For HTTP, a URL without a path gets `/v1/metrics`.
    pub endpoint: Option<Endpoint>,
    /// Time between exports; default `60s`, 1ms to 1d (`OTEL_METRIC_EXPORT_INTERVAL`, in
    /// milliseconds).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub interval: Option<Duration>,
    /// How long one request may take; default `10s`, 1ms to 1d (`OTEL_EXPORTER_OTLP_TIMEOUT`, in
    /// milliseconds).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub timeout: Option<Duration>,
    /// Extra request headers (gRPC metadata), e.g. an API key; added to those of
    /// `OTEL_EXPORTER_OTLP_HEADERS`, winning on the same name.
    #[serde(deserialize_with = "headers")]
    pub headers: IndexMap<String, String>,
    /// `gzip` or `none`; default `none`.
    pub compression: Option<Compression>,
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Protocol {
    /// OTLP/gRPC, `ExportMetricsServiceRequest` over HTTP/2.
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP, the same message as a protobuf body of `POST /v1/metrics`.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Protocol {
    /// The name in the config and in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// Reads the name used in the config and in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn parse(text: &str) -> Result<Protocol, String> {
        match text.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => {
                Err("`http/json` is not supported: use `http/protobuf` or `grpc`".to_owned())
            }
            other => Err(format!(
                "`{other}` is not an OTLP protocol: use `http/protobuf` or `grpc`"
            )),
        }
    }
}

/// Request compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No compression.
    None,
    /// gzip (`Content-Encoding: gzip`, or the `grpc-encoding: gzip` message compression).
    Gzip,
}

impl Compression {
    /// Reads the name used in the config and in `OTEL_EXPORTER_OTLP_COMPRESSION`.
    pub fn parse(text: &str) -> Result<Compression, String> {
        match text.trim() {
            "gzip" => Ok(Compression::Gzip),
            "none" => Ok(Compression::None),
            other => Err(format!(
                "`{other}` is not a supported compression: use `gzip` or `none`"
            )),
        }
    }
}

/// A checked collector URL: `http://host:port[/path]`. A URL without a scheme is read as
/// `http://`, as the gRPC exporters of the OpenTelemetry SDKs do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(Uri);

impl Endpoint {
    /// Checks `text`.
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let uri: Uri = with_scheme
            .parse()
            .map_err(|error| format!("`{text}` is not a URL: {error}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "`{text}`: heartwire speaks OTLP over plain http only (no TLS is built in); send to a collector in the pod or on the node (`http://…`) and let it forward over TLS"
                ));
            }
            _ => return Err(format!("`{text}` is not an http:// URL")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("`{text}` names no host"));
        }
        if uri
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
        {
            return Err(format!(
                "`{text}`: put credentials in `otlp.headers` (or OTEL_EXPORTER_OTLP_HEADERS), not in the URL"
            ));
        }
        if uri.query().is_some() {
            return Err(format!("`{text}`: an OTLP endpoint takes no query string"));
        }
        Ok(Endpoint(uri))
    }

    /// The URL.
    pub fn uri(&self) -> &Uri {
        &self.0
    }

    /// Whether the URL has a path beyond `/`.
    pub fn has_path(&self) -> bool {
        !matches!(self.0.path(), "" | "/")
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Endpoint, D::Error> {
        let text = String::deserialize(deserializer)?;
        Endpoint::parse(&text)
            .map_err(|message| serde::de::Error::custom(format!("endpoint: {message}")))
    }
}

/// Checks one request header: a valid HTTP header name (it is also gRPC metadata, so it is
/// lower-cased) and a value of visible ASCII.
pub fn check_header(name: &str, value: &str) -> Result<(String, String), String> {
    let lower = name.trim().to_ascii_lowercase();
    if lower.is_empty() || HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(format!("`{name}` is not a valid header name"));
    }
    if lower.starts_with("grpc-")
        || matches!(lower.as_str(), "content-type" | "content-encoding" | "te")
    {
        return Err(format!(
            "`{name}` is set by heartwire itself and cannot be overridden"
        ));
    }
    let value = value.trim();
    if HeaderValue::from_str(value).is_err() || !value.is_ascii() {
        return Err(format!(
            "the value of header `{name}` must be visible ASCII"
        ));
    }
    Ok((lower, value.to_owned()))
}

/// Checks an export interval or timeout: 1ms to 1d (longer is a typo more often than a wish).
/// The loader checks the file's values, [`crate::export`] those of the environment.
pub fn check_period(period: Duration) -> Result<Duration, String> {
    EXPORT_PERIOD.check(period)
}

fn headers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<IndexMap<String, String>, D::Error> {
    let raw = IndexMap::<String, String>::deserialize(deserializer)?;
    raw.iter()
        .map(|(name, value)| check_header(name, value))
        .collect::<Result<_, _>>()
        .map_err(|message| serde::de::Error::custom(format!("headers: {message}")))
}

/// `textfile:`: the exposition of `/metrics`, written every `interval` to
/// `directory/file_name` for node_exporter's textfile collector. Each write goes to a temporary
/// file in the same directory, is flushed to disk and renamed over the old one, so that
/// node_exporter never reads half a file. The file stays after the agent stops, with the state
/// at shutdown; its age (`node_textfile_mtime_seconds`) shows that the agent is gone.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Textfile {
    /// Default `false`.
    pub enabled: bool,
    /// node_exporter's `--collector.textfile.directory`; default
    /// `/var/lib/node_exporter/textfile_collector`. It must exist and be writable by the agent.
    pub directory: PathBuf,
    /// The file's name; default `heartwire.prom`. It must end in `.prom` (node_exporter reads
    /// only those) and name a file, not a path.
    pub file_name: PromFileName,
    /// Time between writes; default `15s`, 1ms to 1d.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub interval: Duration,
}

impl Default for Textfile {
    fn default() -> Textfile {
        Textfile {
            enabled: false,
            directory: PathBuf::from("/var/lib/node_exporter/textfile_collector"),
            file_name: PromFileName("heartwire.prom".to_owned()),
            interval: Duration::from_secs(15),
        }
    }
}

/// A file name that node_exporter's textfile collector reads: `*.prom`, no directory part, not
/// hidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromFileName(String);

impl PromFileName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<PromFileName, String> {
        let stem = name.strip_suffix(".prom").unwrap_or_default();
        if stem.is_empty() {
            return Err(format!(
                "`{name}` must end in `.prom`, the files node_exporter reads"
            ));
        }
        if name.contains('/') || name.contains('\0') || name.starts_with('.') || name.len() > 200 {
            return Err(format!(
                "`{name}` must be a plain file name (no `/`, not hidden, at most 200 bytes)"
            ));
        }
        Ok(PromFileName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PromFileName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PromFileName, D::Error> {
        let text = String::deserialize(deserializer)?;
        PromFileName::parse(&text)
            .map_err(|message| serde::de::Error::custom(format!("file_name: {message}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_a_scheme_are_plain_http() {
        let endpoint = Endpoint::parse("collector:4317").unwrap();
        assert_eq!(endpoint.to_string(), "http://collector:4317/");
        assert!(!endpoint.has_path());
        assert!(
            Endpoint::parse("http://c:4318/otlp/v1/metrics")
                .unwrap()
                .has_path()
        );
    }

    #[test]
    fn refuses_endpoints_that_cannot_be_reached_without_tls_or_a_host() {
        let tls = Endpoint::parse("https://collector:4318").unwrap_err();
        assert!(tls.contains("no TLS"), "{tls}");
        assert!(Endpoint::parse("ftp://collector").is_err());
        assert!(Endpoint::parse("http://").is_err());
        assert!(Endpoint::parse("http://c:4318/v1/metrics?x=1").is_err());
        let credentials = Endpoint::parse("http://user:secret@c:4318").unwrap_err();
        assert!(credentials.contains("otlp.headers"), "{credentials}");
    }

    #[test]
    fn header_names_are_lower_cased_and_reserved_ones_refused() {
        assert_eq!(
            check_header("X-API-Key", " secret ").unwrap(),
            ("x-api-key".to_owned(), "secret".to_owned())
        );
        assert!(check_header("content-type", "text/plain").is_err());
        assert!(check_header("grpc-timeout", "1S").is_err());
        assert!(check_header("bad name", "v").is_err());
        assert!(check_header("x", "line\nbreak").is_err());
    }

    #[test]
    fn protocols_and_compressions_are_read_by_their_standard_names() {
        assert_eq!(Protocol::parse("grpc"), Ok(Protocol::Grpc));
        assert_eq!(Protocol::parse("http/protobuf"), Ok(Protocol::HttpProtobuf));
        assert!(
            Protocol::parse("http/json")
                .unwrap_err()
                .contains("not supported")
        );
        assert_eq!(Compression::parse("gzip"), Ok(Compression::Gzip));
        assert!(Compression::parse("zstd").is_err());
    }

    #[test]
    fn prom_file_names_end_in_prom_and_name_no_directory() {
        assert!(PromFileName::parse("heartwire.prom").is_ok());
        for bad in [
            "heartwire.txt",
            ".prom",
            "../x.prom",
            "a/b.prom",
            ".hidden.prom",
        ] {
            assert!(PromFileName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_are_refused_at_load_naming_their_key() {
        for (text, key) in [
            (
                "otlp:\n  interval: 0s\n",
                "t.yaml:2:13: otlp.interval: 0s is out of range",
            ),
            (
                "otlp:\n  timeout: 2d\n",
                "t.yaml:2:12: otlp.timeout: 2d is out of range",
            ),
            (
                "otlp:\n  endpoint: https://x\n",
                "t.yaml:2:3: otlp: endpoint",
            ),
            (
                "otlp:\n  headers: { \"bad name\": x }\n",
                "t.yaml:2:3: otlp: headers",
            ),
            (
                "textfile:\n  file_name: a.txt\n",
                "t.yaml:2:3: textfile: file_name",
            ),
            (
                "textfile:\n  interval: 0s\n",
                "t.yaml:2:13: textfile.interval: 0s is out of range",
            ),
        ] {
            let error = crate::config::from_str(text, "t.yaml")
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(key), "{key}: {error}");
        }
    }

    #[test]
    fn both_outputs_are_off_by_default() {
        let config = crate::config::Config::default();
        assert_eq!(config.fixed.otlp, Otlp::default());
        assert_eq!(config.fixed.otlp.enabled, None);
        assert!(!config.fixed.textfile.enabled);
    }

    #[test]
    fn periods_must_be_1ms_to_a_day() {
        assert!(check_period(Duration::ZERO).is_err());
        assert!(check_period(Duration::from_micros(999)).is_err());
        assert!(check_period(Duration::from_millis(1)).is_ok());
        assert!(check_period(Duration::from_secs(86_400)).is_ok());
        assert_eq!(
            check_period(Duration::from_secs(90_000)).unwrap_err(),
            "1d 1h is out of range: use 1ms to 1d"
        );
        assert_eq!(
            check_period(Duration::from_secs(1)),
            Ok(Duration::from_secs(1))
        );
    }
}
