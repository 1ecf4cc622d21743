//! Reading a [`Config`] from YAML, and checking what types alone cannot. The only module that
//! touches YAML: `serde_yaml` reads the config, and [`locate`] finds the line and column of a key
//! that a check after parsing refuses.

mod locate;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bounds::{
    self, BATCH, BODY, CONNECTIONS, DATAGRAM, FRAME, IDLE_TIMEOUT, LINE, RECEIVE_BUFFER,
};
use super::{Config, Listen, MappingDocument};
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
    #[error("{origin}:{place}{key}: {message}")]
    Invalid {
        /// The file, or `<embedded default>`.
        origin: String,
        /// `line:column: ` of the value (or of the key, for a section), when the file holds it.
        place: Place,
        /// The dotted key, e.g. `listen.udp.batch_datagrams`.
        key: String,
        /// What is wrong and what is accepted.
        message: String,
    },
}

/// Where in the file an error is.
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
    let refused = |(key, message): Invalid| ConfigError::Invalid {
        origin: origin.to_owned(),
        place: Place(locate::locate(text, &key)),
        key,
        message,
    };
    read_mapping_file(&mut config, directory).map_err(|error| match error {
        MappingFileError::Unreadable(problem) => refused(problem),
        MappingFileError::Syntax(error) => error,
    })?;
    validate(&config).map_err(refused)?;
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

enum MappingFileError {
    /// The config's `statsd.mapping_file` names a file that cannot be read.
    Unreadable(Invalid),
    /// The mapping file is not a mapping document.
    Syntax(ConfigError),
}

/// Reads the statsd_exporter mapping file the config names, if any, into the config.
fn read_mapping_file(
    config: &mut Config,
    directory: Option<&Path>,
) -> Result<(), MappingFileError> {
    let Some(file) = &config.statsd.mapping_file else {
        return Ok(());
    };
    let path = match directory {
        Some(directory) if file.is_relative() => directory.join(file),
        _ => file.clone(),
    };
    let text = std::fs::read_to_string(&path).map_err(|error| {
        MappingFileError::Unreadable(invalid(
            "statsd.mapping_file",
            format!("cannot read {}: {error}", path.display()),
        ))
    })?;
    let document: Option<MappingDocument> = serde_yaml::from_str(&text)
        .map_err(|error| MappingFileError::Syntax(syntax(&path.display().to_string(), &error)))?;
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
    listeners(&config.listen)?;
    count(
        "pipeline.queue_batches",
        config.pipeline.queue_batches,
        bounds::QUEUE,
    )?;
    duration(
        "shutdown.drain_timeout",
        config.shutdown.drain_timeout,
        bounds::DRAIN,
    )?;
    watched(config)?;
    exports(config)?;
    config.limits.check()?;
    config.buckets.check()?;
    config
        .families
        .names()
        .map_err(|(key, message)| invalid(&key, message))?;
    config
        .statsd
        .settings()
        .map_err(|problem| invalid(&problem.key, problem.message))?;
    aggregator(config)
}

/// Jobs and workers: names, schedules, thresholds, ttls.
fn watched(config: &Config) -> Result<(), Invalid> {
    for (name, job) in &config.jobs.0 {
        let key = format!("jobs.{name}");
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&key, NAME_RULE.to_owned()));
        }
        job.check().map_err(|(field, message)| match field {
            Some(field) => (format!("{key}.{field}"), message),
            None => (key.clone(), message),
        })?;
    }
    for (name, worker) in &config.workers {
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&format!("workers.{name}"), NAME_RULE.to_owned()));
        }
        if let Some(ttl) = worker.ttl {
            duration(&format!("workers.{name}.ttl"), ttl, bounds::WORKER_TTL)?;
        }
    }
    duration(
        "defaults.worker_ttl",
        config.defaults.worker_ttl,
        bounds::WORKER_TTL,
    )
}

/// The push outputs' periods (their other keys are checked as they are read).
fn exports(config: &Config) -> Result<(), Invalid> {
    let (otlp, textfile) = (&config.otlp, &config.textfile);
    for (key, period) in [
        ("otlp.interval", otlp.interval),
        ("otlp.timeout", otlp.timeout),
        ("textfile.interval", Some(textfile.interval)),
    ] {
        if let Some(period) = period {
            duration(key, period, bounds::EXPORT_PERIOD)?;
        }
    }
    Ok(())
}

/// The aggregator's own checks (family names and labels; what the checks above let through).
fn aggregator(config: &Config) -> Result<(), Invalid> {
    let families = &config.families;
    config
        .aggregate_settings()
        .validate()
        .map_err(|error| match &error {
            SettingsError::InvalidBuckets { which } => {
                invalid(&format!("buckets.{which}"), error.to_string())
            }
            SettingsError::ZeroLimit { which } => {
                invalid(&format!("limits.{which}"), error.to_string())
            }
            SettingsError::UnsafeCounterTtl(message) => {
                invalid("statsd.counter_ttl", message.clone())
            }
            other => {
                let key = match other {
                    SettingsError::InvalidFamilyName { name }
                    | SettingsError::DuplicateFamilyName { name } => families.key_naming(name),
                    SettingsError::InvalidConstLabel { label, .. } => families.key_of_label(label),
                    _ => None,
                };
                invalid(key.as_deref().unwrap_or("families"), other.to_string())
            }
        })
}

fn listeners(listen: &Listen) -> Result<(), Invalid> {
    let (udp, gram, stream) = (&listen.udp, &listen.unix_datagram, &listen.unix_stream);
    let (tcp, http) = (&listen.tcp, &listen.http);
    let counts = [
        ("udp.max_datagram_bytes", udp.max_datagram_bytes, DATAGRAM),
        ("udp.batch_datagrams", udp.batch_datagrams, BATCH),
        (
            "udp.receive_buffer_bytes",
            udp.receive_buffer_bytes,
            RECEIVE_BUFFER,
        ),
        ("tcp.max_connections", tcp.max_connections, CONNECTIONS),
        ("tcp.max_line_bytes", tcp.max_line_bytes, LINE),
        (
            "unix_datagram.max_datagram_bytes",
            gram.max_datagram_bytes,
            DATAGRAM,
        ),
        ("unix_datagram.batch_datagrams", gram.batch_datagrams, BATCH),
        (
            "unix_datagram.receive_buffer_bytes",
            gram.receive_buffer_bytes,
            RECEIVE_BUFFER,
        ),
        (
            "unix_stream.max_connections",
            stream.max_connections,
            CONNECTIONS,
        ),
        ("unix_stream.max_line_bytes", stream.max_line_bytes, LINE),
        ("unix_stream.max_frame_bytes", stream.max_frame_bytes, FRAME),
        ("http.max_body_bytes", http.max_body_bytes, BODY),
    ];
    for (key, value, range) in counts {
        count(&format!("listen.{key}"), value, range)?;
    }
    duration("listen.tcp.idle_timeout", tcp.idle_timeout, IDLE_TIMEOUT)?;
    duration(
        "listen.unix_stream.idle_timeout",
        stream.idle_timeout,
        IDLE_TIMEOUT,
    )?;
    socket_path("listen.unix_datagram.path", &gram.path)?;
    socket_path("listen.unix_stream.path", &stream.path)
}

// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

fn count(key: &str, value: usize, range: bounds::Counts) -> Result<(), Invalid> {
    range
        .check(value as u64)
        .map(drop)
        .map_err(|message| invalid(key, message))
}

fn duration(key: &str, value: Duration, range: bounds::Durations) -> Result<(), Invalid> {
    range
        .check(value)
        .map(drop)
        .map_err(|message| invalid(key, message))
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
mod tests;
