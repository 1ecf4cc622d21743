//! The OTLP settings in force: the `otlp:` section, then the standard environment variables,
//! then the defaults.
//!
//! Precedence, key by key: the config file, `OTEL_EXPORTER_OTLP_METRICS_*`,
//! `OTEL_EXPORTER_OTLP_*`, the default (the OpenTelemetry SDKs' order, where code beats the
//! environment). The environment is read through a lookup function, so that tests never touch
//! the process environment.

use std::time::Duration;

use indexmap::IndexMap;

use crate::config::{self, Compression, Endpoint, Otlp, Protocol};

/// The default time between exports (`OTEL_METRIC_EXPORT_INTERVAL`'s default).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The default request timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`'s default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/metrics";
const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
const HTTP_PATH: &str = "v1/metrics";

/// Reads one environment variable; `None` when unset or empty.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as the OpenTelemetry SDKs read it: unset and empty are the same.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// An OTLP setting that cannot be used: where it came from, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OTLP export: {source_name}: {message}")]
pub struct SettingError {
    /// The config key (`otlp.endpoint`) or environment variable.
    pub source_name: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Everything the exporter needs, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The transport.
    pub protocol: Protocol,
    /// The full URL requests go to (for HTTP, including `/v1/metrics`).
    pub endpoint: String,
    /// Time between exports.
    pub interval: Duration,
    /// How long one request may take.
    pub timeout: Duration,
    /// Request headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Request compression.
    pub compression: Compression,
}

/// The settings in force, or `None` when OTLP export is off.
pub fn resolve(config: &Otlp, env: Lookup<'_>) -> Result<Option<OtlpSettings>, SettingError> {
    if !enabled(config, env) {
        return Ok(None);
    }
    let protocol = match config.protocol {
        Some(protocol) => protocol,
        None => match signal_or_generic(env, "PROTOCOL") {
            Some((name, value)) => {
                Protocol::parse(&value).map_err(|message| fail(&name, message))?
            }
            None => Protocol::HttpProtobuf,
        },
    };
    Ok(Some(OtlpSettings {
        protocol,
        endpoint: endpoint(config, protocol, env)?,
        interval: period(
            config.interval,
            env,
            &["OTEL_METRIC_EXPORT_INTERVAL"],
            DEFAULT_INTERVAL,
        )?,
        timeout: period(
            config.timeout,
            env,
            &[
                "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
            DEFAULT_TIMEOUT,
        )?,
        headers: headers(&config.headers, env)?,
        compression: match config.compression {
            Some(compression) => compression,
            None => match signal_or_generic(env, "COMPRESSION") {
                Some((name, value)) => {
                    Compression::parse(&value).map_err(|message| fail(&name, message))?
                }
                None => Compression::None,
            },
        },
    }))
}

/// `enabled` if set; otherwise on when an endpoint is configured anywhere, unless
/// `OTEL_METRICS_EXPORTER` says `none` (or names exporters without `otlp`).
fn enabled(config: &Otlp, env: Lookup<'_>) -> bool {
    if let Some(enabled) = config.enabled {
        return enabled;
    }
    if let Some(exporters) = env("OTEL_METRICS_EXPORTER") {
        return exporters.split(',').any(|name| name.trim() == "otlp");
    }
    config.endpoint.is_some()
        || env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
}

/// `OTEL_EXPORTER_OTLP_METRICS_<suffix>` if set, else `OTEL_EXPORTER_OTLP_<suffix>`.
fn signal_or_generic(env: Lookup<'_>, suffix: &str) -> Option<(String, String)> {
    [
        format!("OTEL_EXPORTER_OTLP_METRICS_{suffix}"),
        format!("OTEL_EXPORTER_OTLP_{suffix}"),
    ]
    .into_iter()
    .find_map(|name| env(&name).map(|value| (name, value)))
}

/// The URL requests go to. The metrics variable is a full URL; the generic one is a base URL
/// that HTTP extends with `v1/metrics`; a config URL without a path is extended the same way,
/// so that `http://collector:4318` works for both protocols' usual ports.
fn endpoint(config: &Otlp, protocol: Protocol, env: Lookup<'_>) -> Result<String, SettingError> {
    let http = protocol == Protocol::HttpProtobuf;
    if let Some(endpoint) = &config.endpoint {
        return Ok(if http && !endpoint.has_path() {
            extend(endpoint)
        } else {
            endpoint.to_string()
        });
    }
    let read = |name: &str| -> Result<Option<Endpoint>, SettingError> {
        env(name)
            .map(|value| Endpoint::parse(&value).map_err(|message| fail(name, message)))
            .transpose()
    };
    if let Some(endpoint) = read("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")? {
        return Ok(endpoint.to_string());
    }
    if let Some(endpoint) = read("OTEL_EXPORTER_OTLP_ENDPOINT")? {
        return Ok(if http {
            extend(&endpoint)
        } else {
            endpoint.to_string()
        });
    }
    Ok(if http {
        DEFAULT_HTTP_ENDPOINT
    } else {
        DEFAULT_GRPC_ENDPOINT
    }
    .to_owned())
}

/// `base` with `v1/metrics` appended to its path.
fn extend(base: &Endpoint) -> String {
    let text = base.to_string();
    let separator = if text.ends_with('/') { "" } else { "/" };
    format!("{text}{separator}{HTTP_PATH}")
}

/// A duration from the config, else from the first variable set (in milliseconds), else the
/// default.
fn period(
    configured: Option<Duration>,
    env: Lookup<'_>,
    variables: &[&str],
    default: Duration,
) -> Result<Duration, SettingError> {
    if let Some(period) = configured {
        return Ok(period);
    }
    let Some((name, value)) = variables
        .iter()
        .find_map(|name| env(name).map(|value| (*name, value)))
    else {
        return Ok(default);
    };
    let millis: u64 = value.trim().parse().map_err(|_| {
        fail(
            name,
            format!("`{value}` is not a whole number of milliseconds"),
        )
    })?;
    config::check_period(Duration::from_millis(millis)).map_err(|message| fail(name, message))
}

/// The generic variable's headers, then the metrics variable's, then the config's; a later
/// source wins on the same name.
fn headers(
    configured: &IndexMap<String, String>,
    env: Lookup<'_>,
) -> Result<Vec<(String, String)>, SettingError> {
    let mut merged: IndexMap<String, String> = IndexMap::new();
    for name in [
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    ] {
        if let Some(list) = env(name) {
            for (key, value) in parse_header_list(&list).map_err(|message| fail(name, message))? {
                merged.insert(key, value);
            }
        }
    }
    for (key, value) in configured {
        merged.insert(key.clone(), value.clone());
    }
    Ok(merged.into_iter().collect())
}

/// `k=v,k2=v2` with percent-encoded values, the format of `OTEL_EXPORTER_OTLP_HEADERS`.
fn parse_header_list(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("`{}` is not `name=value`", entry.trim()))?;
            config::check_header(key, &percent_decode(value.trim())?)
        })
        .collect()
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("`{text}` has a bad percent escape"))?;
            out.push(hex);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` does not decode to UTF-8"))
}

fn fail(source_name: &str, message: String) -> SettingError {
    SettingError {
        source_name: source_name.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn resolved(
        config: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Option<OtlpSettings>, SettingError> {
        let config = config::from_str(config, "test.yaml").unwrap();
        resolve(&config.fixed.otlp, &env(pairs))
    }

    #[test]
    fn off_unless_an_endpoint_is_configured_somewhere() {
        assert_eq!(resolved("", &[]), Ok(None));
        assert!(
            resolved("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
                .unwrap()
                .is_some()
        );
        assert!(
            resolved("otlp: { endpoint: \"http://c:4318\" }", &[])
                .unwrap()
                .is_some()
        );
        assert!(resolved("otlp: { enabled: true }", &[]).unwrap().is_some());
        let vetoed = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ];
        assert_eq!(resolved("", &vetoed), Ok(None));
        assert!(
            resolved("otlp: { enabled: true }", &vetoed)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            resolved(
                "otlp: { enabled: false }",
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]
            ),
            Ok(None)
        );
    }

    #[test]
    fn defaults_follow_the_specification() {
        let settings = resolved("otlp: { enabled: true }", &[]).unwrap().unwrap();
        assert_eq!(settings.protocol, Protocol::HttpProtobuf);
        assert_eq!(settings.endpoint, "http://localhost:4318/v1/metrics");
        assert_eq!(settings.interval, Duration::from_secs(60));
        assert_eq!(settings.timeout, Duration::from_secs(10));
        assert_eq!(settings.compression, Compression::None);
        let grpc = resolved(
            "otlp: { protocol: grpc }\n",
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4317")],
        );
        assert_eq!(grpc.unwrap().unwrap().endpoint, "http://c:4317/");
    }

    #[test]
    fn the_generic_endpoint_is_a_base_and_the_metrics_endpoint_is_used_as_it_is() {
        let base = resolved("", &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/otlp")]);
        assert_eq!(
            base.unwrap().unwrap().endpoint,
            "http://c:4318/otlp/v1/metrics"
        );
        let full = resolved(
            "",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    "http://c:9999/custom",
                ),
            ],
        );
        assert_eq!(full.unwrap().unwrap().endpoint, "http://c:9999/custom");
    }

    #[test]
    fn the_config_file_wins_over_the_environment() {
        let settings = resolved(
            "otlp:\n  endpoint: http://file:4317\n  protocol: grpc\n  timeout: 2s\n  compression: none\n",
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(settings.endpoint, "http://file:4317/");
        assert_eq!(settings.protocol, Protocol::Grpc);
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert_eq!(settings.compression, Compression::None);
    }

    #[test]
    fn metrics_variables_win_over_generic_ones() {
        let settings = resolved(
            "otlp: { enabled: true }",
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
                ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "1500"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
                ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(settings.protocol, Protocol::Grpc);
        assert_eq!(settings.timeout, Duration::from_millis(1500));
        assert_eq!(settings.compression, Compression::Gzip);
        assert_eq!(settings.interval, Duration::from_secs(5));
    }

    #[test]
    fn headers_merge_generic_then_metrics_then_config() {
        let settings = resolved(
            "otlp:\n  enabled: true\n  headers: { X-Tenant: from-file }\n",
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "x-tenant=generic, api-key=a%20b%3Dc",
                ),
                (
                    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                    "x-tenant=metrics,x-extra=1",
                ),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            settings.headers,
            vec![
                ("x-tenant".to_owned(), "from-file".to_owned()),
                ("api-key".to_owned(), "a b=c".to_owned()),
                ("x-extra".to_owned(), "1".to_owned()),
            ]
        );
    }

    #[test]
    fn a_bad_variable_is_named_in_the_error() {
        let on = "otlp: { enabled: true }";
        for (name, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "https://c:4318/v1/metrics",
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "0"),
        ] {
            let error = resolved(on, &[(name, value)]).unwrap_err();
            assert_eq!(error.source_name, name, "{error}");
        }
    }
}
