//! Reading a [`Config`] from YAML: the file is read as a [`Document`], then resolved into the
//! model (job specs, worker ttls, compiled mapping rules, family names), checking on the way what
//! types alone cannot. The only module that touches YAML: `serde_yaml` reads the config, and
//! [`locate`] finds the line and column of a key that a check after parsing refuses.

mod locate;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::bounds::{
    self, BATCH, BODY, CONNECTIONS, DATAGRAM, FRAME, IDLE_TIMEOUT, LINE, RECEIVE_BUFFER,
    RECEIVE_THREADS,
};
use super::{Config, Document, Fixed, Http, Listen, Live, MappingDocument, StatsdSettings};
use crate::aggregate::NameError;
use crate::health::job::JobSpec;

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

/// What a sidecar serves when its file is invalid at start and it is told not to exit
/// (`heartwire serve --on-invalid-config default`): the embedded default, keeping the file's
/// `listen:` and `http:` sections when each can be read and checked on its own, so that the
/// app's sockets, the probes and the scrape still find the agent where the pod declares it.
pub fn fallback(invalid_text: Option<&str>) -> Config {
    let mut config = from_str(DEFAULT_YAML, "<embedded default>").unwrap_or_default();
    let document =
        invalid_text.and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(text).ok());
    let section = |key: &str| {
        document
            .as_ref()
            .and_then(|document| document.get(key))
            .cloned()
    };
    if let Some(listen) = section("listen")
        .and_then(|value| serde_yaml::from_value::<Listen>(value).ok())
        .filter(|listen| listeners(listen).is_ok())
    {
        config.fixed.listen = listen;
    }
    if let Some(http) = section("http").and_then(|value| serde_yaml::from_value::<Http>(value).ok())
    {
        config.fixed.http = http;
    }
    config
}

/// Parses and checks a configuration; `origin` names it in errors. An empty document is the
/// default configuration. A relative `statsd.mapping_file` is read from the working directory.
pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
    parse(text, origin, None)
}

fn parse(text: &str, origin: &str, directory: Option<&Path>) -> Result<Config, ConfigError> {
    let document = read(text, origin, directory)?;
    resolve(document).map_err(|problem| refused(text, origin, problem))
}

/// The document of the file at `path`, with the mapping file it names, unresolved.
#[cfg(test)]
pub(super) fn document_of_file(path: &Path) -> Result<Document, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    read(&text, &path.display().to_string(), path.parent())
}

/// The document `text` holds, with the mapping file it names.
fn read(text: &str, origin: &str, directory: Option<&Path>) -> Result<Document, ConfigError> {
    let mut document = document(text, origin)?;
    read_mapping_file(&mut document, directory).map_err(|error| match error {
        MappingFileError::Unreadable(problem) => refused(text, origin, problem),
        MappingFileError::Syntax(error) => error,
    })?;
    Ok(document)
}

/// A problem found after parsing, placed at its key in `text` when the file holds it.
fn refused(text: &str, origin: &str, (key, message): Invalid) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        place: Place(locate::locate(text, &key)),
        key,
        message,
    }
}

/// The file as written; an empty one is the default document.
fn document(text: &str, origin: &str) -> Result<Document, ConfigError> {
    let parsed: Option<Document> =
        serde_yaml::from_str(text).map_err(|error| syntax(origin, &error))?;
    Ok(parsed.unwrap_or_default())
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

/// Reads the statsd_exporter mapping file the config names, if any, into the document.
fn read_mapping_file(
    config: &mut Document,
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

/// The model of a document: every section checked, in file order but for the names of the
/// families, which are checked last (they may collide with any of them).
fn resolve(document: Document) -> Result<Config, Invalid> {
    listeners(&document.listen)?;
    count(
        "pipeline.queue_batches",
        document.pipeline.queue_batches,
        bounds::QUEUE,
    )?;
    duration(
        "shutdown.drain_timeout",
        document.shutdown.drain_timeout,
        bounds::DRAIN,
    )?;
    let (jobs, workers) = watched(&document)?;
    exports(&document)?;
    document.limits.check()?;
    document.buckets.check()?;
    let families = document
        .families
        .names()
        .map_err(|(key, message)| invalid(&key, message))?;
    let (mapping, expiry) = document
        .statsd
        .settings()
        .map_err(|problem| invalid(&problem.key, problem.message))?;
    families
        .check()
        .map_err(|error| family_problem(&document, &error))?;
    let dashboard = document.dashboard.resolve()?;
    let config = Config {
        live: Live {
            jobs,
            workers,
            defaults: document.defaults,
            statsd: StatsdSettings {
                mapping,
                expiry,
                mapping_file: document.statsd.mapping_file,
            },
            alerts: document.alerts,
            alert_guards: document.alert_guards,
            dashboard,
        },
        fixed: Fixed {
            listen: document.listen,
            http: document.http,
            pipeline: document.pipeline,
            shutdown: document.shutdown,
            limits: document.limits,
            buckets: document.buckets,
            families,
            otlp: document.otlp,
            textfile: document.textfile,
            state: document.state,
        },
    };
    crate::rules::check(&config)?;
    Ok(config)
}

/// The watched jobs with their specs and workers with their ttls, in config order.
type Watched = (Vec<(String, JobSpec)>, Vec<(String, Duration)>);

/// Jobs and workers: names, schedules, thresholds, ttls.
fn watched(document: &Document) -> Result<Watched, Invalid> {
    let mut jobs = Vec::with_capacity(document.jobs.0.len());
    for (name, job) in &document.jobs.0 {
        let key = format!("jobs.{name}");
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&key, NAME_RULE.to_owned()));
        }
        let spec = job.spec().map_err(|(field, message)| match field {
            Some(field) => (format!("{key}.{field}"), message),
            None => (key.clone(), message),
        })?;
        jobs.push((name.clone(), spec));
    }
    for (name, worker) in &document.workers {
        if !heartwire_proto::is_name(name) {
            return Err(invalid(&format!("workers.{name}"), NAME_RULE.to_owned()));
        }
        if let Some(ttl) = worker.ttl {
            duration(&format!("workers.{name}.ttl"), ttl, bounds::WORKER_TTL)?;
        }
    }
    let default_ttl = document.defaults.worker_ttl;
    duration("defaults.worker_ttl", default_ttl, bounds::WORKER_TTL)?;
    let workers = document
        .workers
        .iter()
        .map(|(name, worker)| (name.clone(), worker.ttl.unwrap_or(default_ttl)))
        .collect();
    Ok((jobs, workers))
}

/// The push outputs' periods (their other keys are checked as they are read).
fn exports(document: &Document) -> Result<(), Invalid> {
    let (otlp, textfile) = (&document.otlp, &document.textfile);
    for (key, period) in [
        ("otlp.interval", otlp.interval),
        ("otlp.timeout", otlp.timeout),
        ("textfile.interval", Some(textfile.interval)),
    ] {
        if let Some(period) = period {
            duration(key, period, bounds::EXPORT_PERIOD)?;
        }
    }
    duration(
        "state.interval",
        document.state.interval,
        bounds::STATE_INTERVAL,
    )?;
    Ok(())
}

/// A family name or label that cannot be used, at the key that gives it (`families` when the
/// clash is with a default name).
fn family_problem(document: &Document, error: &NameError) -> Invalid {
    let families = &document.families;
    let key = match error {
        NameError::InvalidFamilyName { name } | NameError::DuplicateFamilyName { name } => {
            families.key_naming(name)
        }
        NameError::InvalidConstLabel { label, .. } | NameError::DuplicateLabel { label, .. } => {
            families.key_of_label(label)
        }
    };
    invalid(key.as_deref().unwrap_or("families"), error.to_string())
}

fn listeners(listen: &Listen) -> Result<(), Invalid> {
    let (udp, gram, stream) = (&listen.udp, &listen.unix_datagram, &listen.unix_stream);
    let (tcp, http) = (&listen.tcp, &listen.http);
    let counts = [
        ("udp.max_datagram_bytes", udp.max_datagram_bytes, DATAGRAM),
        ("udp.batch_datagrams", udp.batch_datagrams, BATCH),
        ("udp.receive_threads", udp.receive_threads, RECEIVE_THREADS),
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
    match &stream.path {
        Some(path) => socket_path("listen.unix_stream.path", path),
        None => Ok(()),
    }
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
