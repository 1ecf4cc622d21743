//! The agent's configuration: typed structs whose defaults start a useful agent.
//!
//! A file is read as a [`Document`], whose fields mirror its sections and document their default
//! and effect; loading resolves and checks it into a [`Config`], the model the agent runs on
//! (`model`: schedules, compiled mapping rules and family names, split into what a reload
//! applies and what needs a restart). [`load`] is the only code that reads YAML; the embedded
//! `default.yaml` spells out the same defaults as the [`Default`] impls here (a test holds them
//! equal), so that file doubles as the reference for users.

mod bounds;
mod dashboard;
mod export;
mod health;
mod limits;
mod load;
mod mapping;
mod model;
pub mod reload;
mod rules;
pub mod schema;
mod socket;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

pub use dashboard::{
    Aggregate, Dashboard, DashboardDocument, Display, LabelMatcher, MatchOp, Measure, Named, Panel,
    Query, Row, Shape, Side, Thresholds, Window,
};
pub use export::{
    Compression, Endpoint, Otlp, PromFileName, Protocol, Textfile, check_header, check_period,
};
pub use health::{Defaults, Families, Job, Jobs, NameOrLabels, Worker};
pub use load::{
    ConfigError, DEFAULT_YAML, fallback, from_file, from_file_text, from_str, watched_text,
};
pub use mapping::{MappingDefaults, MappingDocument, MappingRule, Statsd};
pub use model::{Config, Fixed, Live, StatsdSettings};
pub use rules::{
    Absent, Alert, AlertGuard, AlertGuards, AlertKind, Alerts, Compare, FailureRatio, LabelMatch,
    Matchers, NotUpdated, Op, Selection, Threshold, Updated, Windowed,
};
pub use socket::{DefaultSocket, effective_uid};
pub use state::State;

pub use crate::aggregate::{Buckets, Limits};

/// The whole configuration file, as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Document {
    /// The ways lines come in.
    pub listen: Listen,
    /// The read-only HTTP endpoints.
    pub http: Http,
    /// The hand-off between listeners and the aggregator.
    pub pipeline: Pipeline,
    /// What happens on SIGTERM/SIGINT.
    pub shutdown: Shutdown,
    /// Memory bounds of the aggregator.
    pub limits: Limits,
    /// Histogram buckets.
    pub buckets: Buckets,
    /// The jobs heartwire watches, by name: their schedules and thresholds.
    pub jobs: Jobs,
    /// The workers heartwire watches, by name: their heartbeat ttl.
    pub workers: IndexMap<String, Worker>,
    /// Defaults for what is not configured one by one.
    pub defaults: Defaults,
    /// Names of the built-in families and their constant labels.
    pub families: Families,
    /// Extra alert rules for `heartwire rules` (the agent does not evaluate them).
    pub alerts: Alerts,
    /// Named PromQL conditions that alerts list under `unless` or `and`.
    pub alert_guards: AlertGuards,
    /// Extra rows of panels for `heartwire dashboard`.
    pub dashboard: DashboardDocument,
    /// OTLP push of every family `/metrics` shows.
    pub otlp: Otlp,
    /// The exposition written to a file for node_exporter's textfile collector.
    pub textfile: Textfile,
    /// Where jobs' and workers' verdicts are kept across a restart.
    pub state: State,
    /// StatsD mapping rules (statsd_exporter's format) and series expiry.
    pub statsd: Statsd,
}

/// The listeners. Each can be turned off; datagram listeners feed one bounded queue (which drops
/// when full), stream listeners another (whose readers wait for room).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// UDP, on by default at `127.0.0.1:8125`.
    pub udp: Udp,
    /// TCP with newline framing, on by default at `127.0.0.1:8125`.
    pub tcp: Tcp,
    /// A Unix datagram socket, off by default.
    pub unix_datagram: UnixDatagram,
    /// A Unix stream socket (newline or length-prefix framing), on by default at a location
    /// that depends on the user (see its `path`).
    pub unix_stream: UnixStream,
    /// `POST /ingest`, on by default at `127.0.0.1:8128`.
    pub http: IngestHttp,
}

/// The UDP listener.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Udp {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1:8125`: loopback, because nothing outside the pod may write.
    pub address: SocketAddr,
    /// `SO_RCVBUF` asked of the kernel; default 4 MiB. The kernel caps it (`net.core.rmem_max`)
    /// unless the agent has `CAP_NET_ADMIN`; the effective size is logged and exported.
    pub receive_buffer_bytes: usize,
    /// The largest datagram read whole; default 8192. A longer one loses its cut last line.
    pub max_datagram_bytes: usize,
    /// Datagrams read per `recvmmsg` call and handed on as one batch; default 64.
    pub batch_datagrams: usize,
    /// Sockets bound to the address with `SO_REUSEPORT`, each read by its own thread; default 1.
    /// The kernel spreads senders over them by their address and port, so more threads help
    /// when many client sockets send and the agent has more than one core to read on; every
    /// thread hands its batches to the one aggregator. At most 64.
    pub receive_threads: usize,
    /// Each receive thread parses its batches before handing them on, so that the aggregator
    /// only applies them; default `false`. Worth it when the aggregator's core is the limit and
    /// other cores are free: with `receive_threads` above 1, the parse is spread over them.
    /// A parsed line costs 136 bytes beside its text while it waits in the queue; the
    /// parsed lines in flight take at most as much as the datagram queue holds raw, past which
    /// batches go unparsed (and the aggregator parses them). Counts and order are the same
    /// either way.
    pub parse_on_receive: bool,
}

impl Default for Udp {
    fn default() -> Udp {
        Udp {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 8125)),
            receive_buffer_bytes: DEFAULT_RECEIVE_BUFFER,
            max_datagram_bytes: DEFAULT_MAX_DATAGRAM,
            batch_datagrams: DEFAULT_BATCH_DATAGRAMS,
            receive_threads: 1,
            parse_on_receive: false,
        }
    }
}

/// The TCP listener (newline framing, so `nc` works).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Tcp {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1:8125`.
    pub address: SocketAddr,
    /// Connections served at once; default 256. Further connections wait in the kernel's backlog,
    /// with what they wrote, until one closes.
    pub max_connections: usize,
    /// A connection whose unfinished line grows past this is closed; default 16384 (twice the
    /// protocol's line limit, so a merely overlong line is counted as `too_long`, not fatal).
    pub max_line_bytes: usize,
    /// A connection that sends nothing for this long is closed; default `10m`, 1s to 7d. A
    /// session (a connection whose first line is `hello`) is exempt: it stays open as long as
    /// the app lives.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub idle_timeout: Duration,
}

impl Default for Tcp {
    fn default() -> Tcp {
        Tcp {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 8125)),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_line_bytes: DEFAULT_MAX_LINE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// The Unix datagram listener.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UnixDatagram {
    /// Default `false`.
    pub enabled: bool,
    /// Default `/run/heartwire/dgram.sock`. The directory must exist. A stale socket file from
    /// a crashed run is replaced; any other kind of file there is an error.
    pub path: PathBuf,
    /// Permissions of the socket file; default `"0660"`.
    pub mode: FileMode,
    /// `SO_RCVBUF` asked of the kernel; default 4 MiB.
    pub receive_buffer_bytes: usize,
    /// The largest datagram read whole; default 8192.
    pub max_datagram_bytes: usize,
    /// Datagrams read per `recvmmsg` call; default 64.
    pub batch_datagrams: usize,
}

impl Default for UnixDatagram {
    fn default() -> UnixDatagram {
        UnixDatagram {
            enabled: false,
            path: PathBuf::from("/run/heartwire/dgram.sock"),
            mode: FileMode::default(),
            receive_buffer_bytes: DEFAULT_RECEIVE_BUFFER,
            max_datagram_bytes: DEFAULT_MAX_DATAGRAM,
            batch_datagrams: DEFAULT_BATCH_DATAGRAMS,
        }
    }
}

/// The Unix stream listener. Each connection is newline-framed or length-prefixed (DogStatsD's
/// 4-byte little-endian length), told apart by its first four bytes: a NUL fourth byte means a
/// length prefix, since no text line contains a NUL.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UnixStream {
    /// Default `true`: `heartwire run` holds its session here, which is how a killed run is
    /// told from one still going.
    pub enabled: bool,
    /// Default: none given, which means `$XDG_RUNTIME_DIR/heartwire/stream.sock`, else
    /// `/run/heartwire/stream.sock` as root, else `/tmp/heartwire-<uid>/stream.sock`: where
    /// `heartwire run` and `heartwire send` look first. The agent creates that directory (mode
    /// 0700, or 0755 for `/run/heartwire`) and, if it cannot listen there, logs a warning and
    /// runs without the socket. A path given here is used as it is: its directory must exist,
    /// and failing to listen there stops the agent.
    pub path: Option<PathBuf>,
    /// Permissions of the socket file; default `"0660"`.
    pub mode: FileMode,
    /// Connections served at once; default 256. Further connections wait, as for TCP.
    pub max_connections: usize,
    /// Newline framing: a connection whose unfinished line grows past this is closed; default
    /// 16384.
    pub max_line_bytes: usize,
    /// Length-prefix framing: a connection that announces a longer frame is closed; default
    /// 65536.
    pub max_frame_bytes: usize,
    /// A connection that sends nothing for this long is closed; default `10m`, 1s to 7d. A
    /// session (a connection whose first line is `hello`) is exempt: it stays open as long as
    /// the app lives.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub idle_timeout: Duration,
}

impl Default for UnixStream {
    fn default() -> UnixStream {
        UnixStream {
            enabled: true,
            path: None,
            mode: FileMode::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_line_bytes: DEFAULT_MAX_LINE,
            max_frame_bytes: 65536,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl UnixStream {
    /// Where the socket goes: the configured path, else the default location for this process.
    pub fn socket_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| DefaultSocket::here().path)
    }
}

/// `POST /ingest`: lines as the request body.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngestHttp {
    /// Default `true`.
    pub enabled: bool,
    /// Default `127.0.0.1:8128`. The endpoint changes state, so it gets its own listener that
    /// stays on loopback unless configured otherwise (a warning is logged then).
    pub address: SocketAddr,
    /// Larger bodies get `413 Payload Too Large`; default 1 MiB.
    pub max_body_bytes: usize,
}

impl Default for IngestHttp {
    fn default() -> IngestHttp {
        IngestHttp {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 8128)),
            max_body_bytes: 1 << 20,
        }
    }
}

/// The read-only HTTP endpoints: `GET /metrics`, `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Default `0.0.0.0:8127`: all interfaces, so that Prometheus can scrape the pod.
    pub address: SocketAddr,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            address: SocketAddr::from(([0, 0, 0, 0], 8127)),
        }
    }
}

/// The bounded queues between the listeners and the aggregator.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pipeline {
    /// Batches that may wait in each queue; default 256. When the datagram queue is full, the
    /// newest batch is dropped and counted, so a slow aggregator never blocks a socket; when the
    /// stream queue is full, stream readers wait (backpressure). Memory held at worst is this
    /// times the largest datagram batch (`batch_datagrams × max_datagram_bytes`, 512 KiB by
    /// default; a typical batch of 1400-byte datagrams is a fifth of that), plus this times
    /// 16 KiB for streams.
    pub queue_batches: usize,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline { queue_batches: 256 }
    }
}

/// Shutdown on SIGTERM/SIGINT: stop reading, let the aggregator apply what is queued, remove the
/// socket files, exit 0.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// How long the aggregator may take to drain the queue; default `5s`.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub drain_timeout: Duration,
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown {
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Unix permission bits for a socket file, written in octal (`0660` or `"0660"`; `0o660` too).
/// The digits are always read as octal, whatever YAML would make of them as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl Default for FileMode {
    fn default() -> FileMode {
        FileMode(0o660)
    }
}

impl std::fmt::Display for FileMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FileMode, D::Error> {
        let text = String::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("a file mode is written in octal, such as \"0660\"")
        })?;
        parse_mode(&text).map(FileMode).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a file mode: write octal permission bits such as \"0660\""
            ))
        })
    }
}

fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
}

const DEFAULT_RECEIVE_BUFFER: usize = 4 << 20;
const DEFAULT_MAX_DATAGRAM: usize = 8192;
const DEFAULT_BATCH_DATAGRAMS: usize = 64;
const DEFAULT_MAX_CONNECTIONS: usize = 256;
const DEFAULT_MAX_LINE: usize = 16384;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modes_are_read_as_octal() {
        assert_eq!(parse_mode("0660"), Some(0o660));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o722"), Some(0o722));
    }

    #[test]
    fn file_modes_reject_non_permission_bits() {
        for text in ["", "0o", "0800", "1777", "rw-rw----", "00660"] {
            assert_eq!(parse_mode(text), None, "{text:?}");
        }
    }
}
