//! Reading a [`Config`] from YAML, and checking what types alone cannot. The only module that
//! touches `serde_yaml`.

use std::fmt;
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Config, MappingDocument};
use crate::aggregate::SettingsError;

/// The configuration used when no file is given: every default, spelled out and commented.
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

/// Why a configuration was refused. The message names the file, the place and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The YAML does not fit the schema (syntax, an unknown key, a wrong type).
    #[error("{origin}:{place}{message}")]
    Syntax {
        /// The file, or `<embedded default>`.
        origin: String,
        /// `line:column: ` when known.
        place: Place,
        /// The key path and the problem, from the YAML reader.
        message: String,
    },
    /// A value is well-formed but outside what the agent accepts.
    #[error("{origin}: `{key}`: {message}")]
    Invalid {
        /// The file, or `<embedded default>`.
        origin: String,
        /// The dotted key, e.g. `listen.udp.batch_datagrams`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// Where in the file a syntax error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place(Option<(usize, usize)>);

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, "{line}:{column}: "),
            None => f.write_str(" "),
        }
    }
}

/// Reads and checks the configuration file at `path`.
pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_file_text(&text, path)
}

/// Parses and checks `text`, read from the configuration file at `path`: a relative
/// `statsd.mapping_file` is read from that file's directory.
pub fn from_file_text(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse(text, &path.display().to_string(), path.parent())
}

/// Parses and checks a configuration; `origin` names it in errors. An empty document is the
/// default configuration. A relative `statsd.mapping_file` is read from the working directory.
pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse(text, origin, None)
}

fn parse(text: &str, origin: &str, directory: Option<&Path>) -> Result<Config, ConfigError> {
    let parsed: Option<Config> =
        serde_yaml::from_str(text).map_err(|error| syntax(origin, &error))?;
    let mut config = parsed.unwrap_or_default();
    read_mapping_file(&mut config, origin, directory)?;
    validate(&config).map_err(|(key, message)| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        message,
    })?;
    Ok(config)
}

/// The config text followed by the text of the `statsd.mapping_file` it names (when it can be
/// read), so that a reload notices a change of either file; `path` is the config file's.
pub fn watched_text(text: &str, path: Option<&Path>) -> String {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        statsd: ProbeStatsd,
    }
    #[derive(serde::Deserialize, Default)]
    struct ProbeStatsd {
        mapping_file: Option<PathBuf>,
    }
    let named = serde_yaml::from_str::<Option<Probe>>(text)
        .ok()
        .flatten()
        .and_then(|probe| probe.statsd.mapping_file);
    let Some(file) = named else {
        return text.to_owned();
    };
    let file = match path.and_then(Path::parent) {
        Some(directory) if file.is_relative() => directory.join(file),
        _ => file,
    };
    let mapping = std::fs::read_to_string(&file).unwrap_or_default();
    format!("{text}\n# statsd.mapping_file\n{mapping}")
}

/// Reads the statsd_exporter mapping file the config names, if any, into the config.
fn read_mapping_file(
    config: &mut Config,
    origin: &str,
    directory: Option<&Path>,
) -> Result<(), ConfigError> {
    let Some(file) = &config.statsd.mapping_file else {
        return Ok(());
    };
    let path = match directory {
        Some(directory) if file.is_relative() => directory.join(file),
        _ => file.clone(),
    };
    let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Invalid {
        origin: origin.to_owned(),
        key: "statsd.mapping_file".to_owned(),
        message: format!("cannot read {}: {error}", path.display()),
    })?;
    let document: Option<MappingDocument> =
        serde_yaml::from_str(&text).map_err(|error| syntax(&path.display().to_string(), &error))?;
    config.statsd.loaded_file = Some(document.unwrap_or_default());
    Ok(())
}

fn syntax(origin: &str, error: &serde_yaml::Error) -> ConfigError {
    let place = error.location().map(|at| (at.line(), at.column()));
    let mut message = error.to_string();
    // The reader appends the place in words; it is already in front, in `file:line:col` form.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    ConfigError::Syntax {
        origin: origin.to_owned(),
        place: Place(place),
        message,
    }
}

type Invalid = (String, String);

/// What a job or worker name may hold: the wire protocol's `name` rule.
const NAME_RULE: &str = "a name is 1 to 128 characters of A-Z a-z 0-9 _ . : / - (the names apps send in job.* and hb lines)";

fn validate(config: &Config) -> Result<(), Invalid> {
    let listen = &config.listen;
    let (udp, gram, stream) = (&listen.udp, &listen.unix_datagram, &listen.unix_stream);
    let bounds = [
        (
            "listen.udp.max_datagram_bytes",
            udp.max_datagram_bytes,
            DATAGRAM,
        ),
        ("listen.udp.batch_datagrams", udp.batch_datagrams, BATCH),
        (
            "listen.udp.receive_buffer_bytes",
            udp.receive_buffer_bytes,
            RECEIVE_BUFFER,
        ),
        (
            "listen.tcp.max_connections",
            listen.tcp.max_connections,
            CONNECTIONS,
        ),
        ("listen.tcp.max_line_bytes", listen.tcp.max_line_bytes, LINE),
        (
            "listen.unix_datagram.max_datagram_bytes",
            gram.max_datagram_bytes,
            DATAGRAM,
        ),
        (
            "listen.unix_datagram.batch_datagrams",
            gram.batch_datagrams,
            BATCH,
        ),
        (
            "listen.unix_datagram.receive_buffer_bytes",
            gram.receive_buffer_bytes,
            RECEIVE_BUFFER,
        ),
        (
            "listen.unix_stream.max_connections",
            stream.max_connections,
            CONNECTIONS,
        ),
        (
            "listen.unix_stream.max_line_bytes",
            stream.max_line_bytes,
            LINE,
        ),
        (
            "listen.unix_stream.max_frame_bytes",
            stream.max_frame_bytes,
            FRAME,
        ),
        (
            "listen.http.max_body_bytes",
            listen.http.max_body_bytes,
            BODY,
        ),
        (
            "pipeline.queue_batches",
            config.pipeline.queue_batches,
            QUEUE,
        ),
    ];
    for (key, value, range) in bounds {
        within(key, value, range)?;
    }
    socket_path("listen.unix_datagram.path", &gram.path)?;
    socket_path("listen.unix_stream.path", &stream.path)?;
    if config.shutdown.drain_timeout > std::time::Duration::from_secs(600) {
        return Err(invalid(
            "shutdown.drain_timeout",
            "must be at most 10m".to_owned(),
        ));
    }
    for name in config.jobs.0.keys() {
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&format!("jobs.{name}"), NAME_RULE.to_owned()));
        }
    }
    for (name, worker) in &config.workers {
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&format!("workers.{name}"), NAME_RULE.to_owned()));
        }
        if worker.ttl == Some(std::time::Duration::ZERO) {
            return Err(invalid(
                &format!("workers.{name}.ttl"),
                "must be longer than 0s".to_owned(),
            ));
        }
    }
    config
        .families
        .names()
        .map_err(|(key, message)| invalid(&key, message))?;
    config
        .statsd
        .settings()
        .map_err(|problem| invalid(&problem.key, problem.message))?;
    config
        .aggregate_settings()
        .validate()
        .map_err(|error| match error {
            SettingsError::InvalidBuckets { which } => {
                invalid(&format!("buckets.{which}"), error.to_string())
            }
            SettingsError::ZeroLimit { which } => {
                invalid(&format!("limits.{which}"), error.to_string())
            }
            SettingsError::UnsafeCounterTtl(message) => invalid("statsd.counter_ttl", message),
            other => invalid("families", other.to_string()),
        })
}

// Bounds that keep every buffer and queue the agent allocates finite and sane.
const DATAGRAM: RangeInclusive<usize> = 512..=(1 << 20);
// The kernel refuses more than 1024 messages per recvmmsg call (UIO_MAXIOV).
const BATCH: RangeInclusive<usize> = 1..=1024;
// 0 keeps the kernel's default size.
const RECEIVE_BUFFER: RangeInclusive<usize> = 0..=(1 << 30);
const CONNECTIONS: RangeInclusive<usize> = 1..=65536;
// A line the parser accepts must never close its connection.
const LINE: RangeInclusive<usize> = heartwire_proto::MAX_LINE_LEN..=(1 << 24);
// Below 16 MiB, so that every length prefix has a NUL fourth byte (the framing rule).
const FRAME: RangeInclusive<usize> = 1024..=((1 << 24) - 1);
const BODY: RangeInclusive<usize> = 1..=(1 << 30);
const QUEUE: RangeInclusive<usize> = 1..=(1 << 20);
// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

fn within(key: &str, value: usize, range: RangeInclusive<usize>) -> Result<(), Invalid> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(invalid(
        key,
        format!(
            "{value} is out of range: use {} to {}",
            range.start(),
            range.end()
        ),
    ))
}

fn socket_path(key: &str, path: &Path) -> Result<(), Invalid> {
    let length = path.as_os_str().as_bytes().len();
    if length == 0 {
        return Err(invalid(
            key,
            "is empty: give the path of the socket file".to_owned(),
        ));
    }
    if length > MAX_SOCKET_PATH {
        return Err(invalid(
            key,
            format!(
                "is {length} bytes long; Unix socket paths hold at most {MAX_SOCKET_PATH}: use a shorter path"
            ),
        ));
    }
    Ok(())
}

fn invalid(key: &str, message: String) -> Invalid {
    (key.to_owned(), message)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use super::*;
    use crate::config::FileMode;

    #[test]
    fn embedded_default_spells_out_the_defaults() {
        let config = from_str(DEFAULT_YAML, "<embedded default>").unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn empty_file_is_the_default_configuration() {
        assert_eq!(from_str("", "empty.yaml").unwrap(), Config::default());
        assert_eq!(
            from_str("# nothing\n", "empty.yaml").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn omitted_keys_keep_their_defaults() {
        let config = from_str(
            "listen:\n  udp:\n    address: 127.0.0.1:0\n  unix_stream:\n    enabled: true\n    mode: \"0600\"\n",
            "partial.yaml",
        )
        .unwrap();
        assert_eq!(
            config.listen.udp.address,
            "127.0.0.1:0".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(config.listen.udp.batch_datagrams, 64);
        assert!(config.listen.tcp.enabled);
        assert!(config.listen.unix_stream.enabled);
        assert_eq!(config.listen.unix_stream.mode, FileMode(0o600));
        assert_eq!(config.shutdown.drain_timeout, Duration::from_secs(5));
    }

    #[test]
    fn unknown_key_is_named_with_file_line_and_column() {
        let error =
            from_str("listen:\n  udp:\n    adress: 127.0.0.1:0\n", "agent.yaml").unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("agent.yaml:3:5: "), "{message}");
        assert!(message.contains("listen.udp"), "{message}");
        assert!(message.contains("unknown field `adress`"), "{message}");
        assert!(!message.contains(" at line "), "{message}");
    }

    #[test]
    fn wrong_type_is_named_with_its_key() {
        let error = from_str("pipeline:\n  queue_batches: many\n", "agent.yaml").unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("agent.yaml:2:"), "{message}");
        assert!(message.contains("pipeline.queue_batches"), "{message}");
    }

    #[test]
    fn modes_are_octal_whether_quoted_or_not() {
        let config = from_str(
            "listen:\n  unix_datagram:\n    mode: 0622\n  unix_stream:\n    mode: \"0600\"\n",
            "agent.yaml",
        )
        .unwrap();
        assert_eq!(config.listen.unix_datagram.mode, FileMode(0o622));
        assert_eq!(config.listen.unix_stream.mode, FileMode(0o600));
    }

    #[test]
    fn bad_mode_is_refused_with_its_key() {
        let error = from_str(
            "listen:\n  unix_datagram:\n    mode: rw-rw----\n",
            "agent.yaml",
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("agent.yaml:3:"), "{message}");
        assert!(
            message.contains("listen.unix_datagram: `rw-rw----` is not a file mode"),
            "{message}"
        );
    }

    #[test]
    fn out_of_range_value_names_key_and_range() {
        let error =
            from_str("listen:\n  udp:\n    batch_datagrams: 5000\n", "agent.yaml").unwrap_err();
        assert_eq!(
            error.to_string(),
            "agent.yaml: `listen.udp.batch_datagrams`: 5000 is out of range: use 1 to 1024"
        );
    }

    #[test]
    fn overlong_socket_path_is_refused() {
        let path = format!("/{}", "d".repeat(120));
        let yaml = format!("listen:\n  unix_stream:\n    path: {path}\n");
        let error = from_str(&yaml, "agent.yaml").unwrap_err();
        assert!(
            error.to_string().contains("listen.unix_stream.path"),
            "{error}"
        );
    }

    #[test]
    fn limits_and_buckets_reach_the_aggregator_settings() {
        let config = from_str(
            "limits:\n  max_series: 500\n  set_window: 2m\nbuckets:\n  statsd: [0.1, 1, 10]\n",
            "agent.yaml",
        )
        .unwrap();
        let settings = config.aggregate_settings();
        assert_eq!(settings.limits.max_series, 500);
        assert_eq!(settings.limits.max_series_per_family, 10_000);
        assert_eq!(settings.limits.set_window, Duration::from_secs(120));
        assert_eq!(settings.buckets.statsd, [0.1, 1.0, 10.0]);
        assert_eq!(
            settings.buckets.job_duration,
            crate::aggregate::DEFAULT_BUCKETS
        );
    }

    #[test]
    fn bad_buckets_and_zero_limits_are_refused_with_their_key() {
        let error = from_str("buckets:\n  job_duration: [1, 1]\n", "agent.yaml").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("agent.yaml: `buckets.job_duration`: "),
            "{error}"
        );
        let error = from_str("limits:\n  max_open_starts: 0\n", "agent.yaml").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("agent.yaml: `limits.max_open_starts`: "),
            "{error}"
        );
    }

    #[test]
    fn durations_are_human_readable() {
        let config = from_str("shutdown:\n  drain_timeout: 250ms\n", "agent.yaml").unwrap();
        assert_eq!(config.shutdown.drain_timeout, Duration::from_millis(250));
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let error = from_file(Path::new("/nonexistent/heartwire.yaml")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read config file /nonexistent/heartwire.yaml: ")
        );
    }
}
