//! heartwire's own metrics, as a live scrape shows them: exactly the families of `METRICS.md`,
//! each series only where it can change (a listener that is on; datagram series only for the
//! datagram transports, connection series only for TCP and the Unix stream), every one at 0
//! before any traffic, and the idle page of the default listeners under 80 sample lines.
//!
//! The table in `METRICS.md` is rendered from [`FAMILIES`]: the test fails when the two differ;
//! `HEARTWIRE_BLESS=1` rewrites the table instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use heartwire_tests::agent::{Agent, Scrape};

/// A listener, as the agent labels what comes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    Udp,
    UnixDatagram,
    UnixStream,
    Tcp,
    Http,
}

use Listener::{Http, Tcp, Udp, UnixDatagram, UnixStream};

const ALL: [Listener; 5] = [Udp, UnixDatagram, UnixStream, Tcp, Http];

impl Listener {
    /// The `transport` label value.
    fn transport(self) -> &'static str {
        match self {
            Udp => "udp",
            UnixDatagram => "unixgram",
            UnixStream => "unix",
            Tcp => "tcp",
            Http => "http",
        }
    }

    /// The `listener` label value (of the kernel's socket metrics).
    fn listener(self) -> &'static str {
        match self {
            Udp => "udp",
            UnixDatagram => "unix_datagram",
            UnixStream => "unix_stream",
            Tcp => "tcp",
            Http => "http_ingest",
        }
    }

    fn is_datagram(self) -> bool {
        matches!(self, Udp | UnixDatagram)
    }

    fn has_connections(self) -> bool {
        matches!(self, Tcp | UnixStream)
    }
}

/// When a family has series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    DatagramListener,
    ConnectionListener,
    Otlp,
    Textfile,
    State,
    ParseOnReceive,
}

impl When {
    fn doc(self) -> &'static str {
        match self {
            When::Always => "always",
            When::DatagramListener => "a UDP or Unix datagram listener is on",
            When::ConnectionListener => "a TCP or Unix stream listener is on",
            When::Otlp => "OTLP export is on",
            When::Textfile => "`textfile.enabled`",
            When::State => "`state.path` is set",
            When::ParseOnReceive => "`listen.udp.parse_on_receive` is on",
        }
    }
}

/// A family's labels, and the series it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Labels {
    None,
    /// `transport`: every listener that is on.
    Transports,
    /// `transport`: every datagram listener that is on.
    DatagramTransports,
    /// `transport`: every TCP or Unix stream listener that is on.
    ConnectionTransports,
    /// `transport` as above, times every close reason.
    ConnectionsClosed,
    /// `listener`: every datagram listener that is on.
    DatagramListeners,
    /// `reason`: every parse error kind.
    ParseErrors,
    /// `family`: one per family with an account (not enumerated here).
    Family,
    /// A fixed label with fixed values.
    Fixed(&'static str, &'static [&'static str]),
    /// A label whose one value depends on the build or the config (not enumerated here).
    One(&'static str, &'static str),
}

const CLOSE_REASONS: [&str; 5] = ["eof", "error", "garbage", "shutdown", "idle"];

impl Labels {
    fn doc(self) -> String {
        let values = |listeners: &[Listener], label: fn(Listener) -> &'static str| {
            quoted(listeners.iter().map(|l| label(*l)))
        };
        match self {
            Labels::None => "—".to_owned(),
            Labels::Transports => format!(
                "`transport`: each listener on ({})",
                values(&ALL, Listener::transport)
            ),
            Labels::DatagramTransports => format!(
                "`transport`: each datagram listener on ({})",
                values(&[Udp, UnixDatagram], Listener::transport)
            ),
            Labels::ConnectionTransports => format!(
                "`transport`: each connection listener on ({})",
                values(&[UnixStream, Tcp], Listener::transport)
            ),
            Labels::ConnectionsClosed => format!(
                "`transport`: as above; `reason`: {}",
                quoted(CLOSE_REASONS.iter().copied())
            ),
            Labels::DatagramListeners => format!(
                "`listener`: each datagram listener on ({})",
                values(&[Udp, UnixDatagram], Listener::listener)
            ),
            Labels::ParseErrors => format!(
                "`reason`: {}",
                quoted(
                    heartwire_proto::ErrorKind::ALL
                        .iter()
                        .map(|kind| kind.as_str())
                )
            ),
            Labels::Family => {
                "`family`: each family with series (`other` past the label budget)".to_owned()
            }
            Labels::Fixed(label, values) => {
                format!("`{label}`: {}", quoted(values.iter().copied()))
            }
            Labels::One(label, what) => format!("`{label}`: {what}"),
        }
    }

    /// The label names every series has.
    fn names(self) -> Vec<&'static str> {
        match self {
            Labels::None => vec![],
            Labels::Transports | Labels::DatagramTransports | Labels::ConnectionTransports => {
                vec!["transport"]
            }
            Labels::ConnectionsClosed => vec!["reason", "transport"],
            Labels::DatagramListeners => vec!["listener"],
            Labels::ParseErrors => vec!["reason"],
            Labels::Family => vec!["family"],
            Labels::Fixed(label, _) | Labels::One(label, _) => vec![label],
        }
    }

    /// Every series (sorted label pairs) with `on` listening; `None` when the values are not
    /// fixed (only the label names are checked).
    fn series(self, on: &[Listener]) -> Option<BTreeSet<Vec<(String, String)>>> {
        let one = |label: &str, value: &str| vec![(label.to_owned(), value.to_owned())];
        let on_where = |keep: fn(Listener) -> bool| on.iter().copied().filter(move |l| keep(*l));
        let set: BTreeSet<_> = match self {
            Labels::None => [vec![]].into(),
            Labels::Transports => on.iter().map(|l| one("transport", l.transport())).collect(),
            Labels::DatagramTransports => on_where(Listener::is_datagram)
                .map(|l| one("transport", l.transport()))
                .collect(),
            Labels::ConnectionTransports => on_where(Listener::has_connections)
                .map(|l| one("transport", l.transport()))
                .collect(),
            Labels::ConnectionsClosed => on_where(Listener::has_connections)
                .flat_map(|l| {
                    CLOSE_REASONS.map(|reason| {
                        vec![
                            ("reason".to_owned(), reason.to_owned()),
                            ("transport".to_owned(), l.transport().to_owned()),
                        ]
                    })
                })
                .collect(),
            Labels::DatagramListeners => on_where(Listener::is_datagram)
                .map(|l| one("listener", l.listener()))
                .collect(),
            Labels::ParseErrors => heartwire_proto::ErrorKind::ALL
                .iter()
                .map(|kind| one("reason", kind.as_str()))
                .collect(),
            Labels::Fixed(label, values) => values.iter().map(|v| one(label, v)).collect(),
            Labels::Family | Labels::One(..) => return None,
        };
        Some(set)
    }
}

fn quoted(values: impl Iterator<Item = &'static str>) -> String {
    values
        .map(|value| format!("`{value}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One self-metric family: name, what it counts, type, labels, when it has series.
type Family = (&'static str, &'static str, &'static str, Labels, When);

/// Every family heartwire exposes about itself, in the order of `METRICS.md`.
#[rustfmt::skip]
const FAMILIES: &[Family] = &[
    // What the aggregator counts of the lines (rendered from its snapshot).
    ("heartwire_lines_received_total", "Lines read, accepted or rejected.", "counter", Labels::Transports, When::Always),
    ("heartwire_lines_rejected_total", "Lines the parser rejected; the events in them are lost.", "counter", Labels::ParseErrors, When::Always),
    ("heartwire_lines_unknown_fields_total", "Accepted lines with fields this version does not know (a newer client).", "counter", Labels::None, When::Always),
    ("heartwire_sample_rates_clamped_total", "Metric lines whose sample rate was out of range, and clamped.", "counter", Labels::None, When::Always),
    ("heartwire_samples_non_finite_total", "Samples ignored because they would leave a value that is not a finite number.", "counter", Labels::None, When::Always),
    ("heartwire_open_starts_evicted_total", "Open job starts dropped at their bound before an end arrived.", "counter", Labels::None, When::Always),
    ("heartwire_set_members_dropped_total", "Set members not counted: their series held the most members allowed.", "counter", Labels::None, When::Always),
    ("heartwire_lines_dropped_by_mapping_total", "StatsD lines a mapping rule with `action: drop` discarded.", "counter", Labels::None, When::Always),
    ("heartwire_series", "Series held.", "gauge", Labels::Family, When::Always),
    ("heartwire_series_dropped_total", "Samples dropped because their new series was past a series cap.", "counter", Labels::Family, When::Always),
    ("heartwire_series_conflicts_total", "Samples whose type, labels or names conflict with an existing family.", "counter", Labels::Family, When::Always),
    ("heartwire_series_expired_total", "Series removed after their ttl without samples.", "counter", Labels::Family, When::Always),
    // In front of the aggregator.
    ("heartwire_bytes_received_total", "Bytes read from the sockets and request bodies.", "counter", Labels::Transports, When::Always),
    ("heartwire_datagrams_received_total", "Datagrams read.", "counter", Labels::DatagramTransports, When::DatagramListener),
    ("heartwire_datagrams_dropped_total", "Datagrams dropped because the aggregation queue was full.", "counter", Labels::DatagramTransports, When::DatagramListener),
    ("heartwire_bytes_dropped_total", "Bytes of those datagrams.", "counter", Labels::DatagramTransports, When::DatagramListener),
    ("heartwire_kernel_drops_total", "Datagrams the kernel dropped before heartwire read them (receive buffer full).", "counter", Labels::DatagramListeners, When::DatagramListener),
    ("heartwire_receive_parse_deferred_total", "Batches a receive thread sent unparsed for the aggregator to parse: the budget of parsed lines in flight was spent.", "counter", Labels::Fixed("listener", &["udp"]), When::ParseOnReceive),
    ("heartwire_receive_buffer_bytes", "The socket's receive buffer, as the kernel granted it.", "gauge", Labels::DatagramListeners, When::DatagramListener),
    ("heartwire_connections_opened_total", "Connections accepted.", "counter", Labels::ConnectionTransports, When::ConnectionListener),
    ("heartwire_connections_closed_total", "Connections closed, by why.", "counter", Labels::ConnectionsClosed, When::ConnectionListener),
    ("heartwire_connections", "Connections open now.", "gauge", Labels::ConnectionTransports, When::ConnectionListener),
    // The config and the build.
    ("heartwire_config_reloads_total", "Config reloads.", "counter", Labels::Fixed("result", &["success", "failure"]), When::Always),
    ("heartwire_config_last_reload_success_timestamp_seconds", "Unix time the config in force was loaded.", "gauge", Labels::None, When::Always),
    ("heartwire_config_last_reload_successful", "1 when the last reload attempt succeeded.", "gauge", Labels::None, When::Always),
    ("heartwire_config_info", "The config in force, as a constant 1.", "gauge", Labels::One("hash", "the first 16 hex digits of the SHA-256 of the config file"), When::Always),
    ("heartwire_config_restart_required", "1 when the file on disk changes a part only a restart applies.", "gauge", Labels::None, When::Always),
    ("heartwire_build_info", "The build, as a constant 1.", "gauge", Labels::One("version", "the agent's version"), When::Always),
    // The push outputs and the state file.
    ("heartwire_otlp_exports_total", "OTLP exports.", "counter", Labels::Fixed("result", &["success", "rejected", "unavailable", "timeout"]), When::Otlp),
    ("heartwire_otlp_export_retries_total", "OTLP requests repeated after a transient failure.", "counter", Labels::None, When::Otlp),
    ("heartwire_otlp_last_success_timestamp_seconds", "Unix time of the last export the collector accepted (0: none yet).", "gauge", Labels::None, When::Otlp),
    ("heartwire_otlp_request_duration_seconds", "How long OTLP requests took.", "histogram", Labels::None, When::Otlp),
    ("heartwire_textfile_writes_total", "Textfile writes.", "counter", Labels::Fixed("result", &["success", "failure"]), When::Textfile),
    ("heartwire_textfile_last_success_timestamp_seconds", "Unix time of the last complete textfile write (0: none yet).", "gauge", Labels::None, When::Textfile),
    ("heartwire_state_writes_total", "State file writes.", "counter", Labels::Fixed("result", &["success", "failure"]), When::State),
    ("heartwire_state_last_write_timestamp_seconds", "Unix time of the last complete state file write (0: none yet).", "gauge", Labels::None, When::State),
    ("heartwire_state_load_failures_total", "State files set aside at start.", "counter", Labels::Fixed("reason", &["unreadable", "corrupt", "version"]), When::State),
    // The process (Linux).
    ("process_cpu_seconds_total", "CPU time used.", "counter", Labels::None, When::Always),
    ("process_open_fds", "File descriptors open.", "gauge", Labels::None, When::Always),
    ("process_max_fds", "The file descriptor limit.", "gauge", Labels::None, When::Always),
    ("process_virtual_memory_bytes", "Virtual memory size.", "gauge", Labels::None, When::Always),
    ("process_resident_memory_bytes", "Resident memory size.", "gauge", Labels::None, When::Always),
    ("process_start_time_seconds", "Unix time the process started.", "gauge", Labels::None, When::Always),
    ("process_threads", "OS threads.", "gauge", Labels::None, When::Always),
];

/// What an agent runs with, for [`When`].
#[derive(Debug)]
struct Setup {
    on: Vec<Listener>,
    outputs: bool,
    /// `listen.udp.parse_on_receive`.
    parse_on_receive: bool,
}

impl Setup {
    fn holds(&self, when: When) -> bool {
        match when {
            When::Always => true,
            When::DatagramListener => self.on.iter().any(|l| l.is_datagram()),
            When::ConnectionListener => self.on.iter().any(|l| l.has_connections()),
            When::Otlp | When::Textfile | When::State => self.outputs,
            When::ParseOnReceive => self.parse_on_receive,
        }
    }
}

/// A listen section with exactly `on` enabled, on ephemeral ports and in `dir`.
fn listeners(dir: &Path, on: &[Listener]) -> String {
    let enabled = |l: Listener| on.contains(&l);
    format!(
        "listen:
  udp: {{ enabled: {}, address: \"127.0.0.1:0\" }}
  tcp: {{ enabled: {}, address: \"127.0.0.1:0\" }}
  unix_datagram: {{ enabled: {}, path: \"{}\" }}
  unix_stream: {{ enabled: {}, path: \"{}\" }}
  http: {{ enabled: {}, address: \"127.0.0.1:0\" }}
http:
  address: \"127.0.0.1:0\"
",
        enabled(Udp),
        enabled(Tcp),
        enabled(UnixDatagram),
        dir.join("dgram.sock").display(),
        enabled(UnixStream),
        dir.join("stream.sock").display(),
        enabled(Http),
    )
}

/// The family each sample belongs to, by the `# TYPE` lines (histogram samples have suffixes).
fn families_of(scrape: &Scrape) -> BTreeMap<String, Vec<Vec<(String, String)>>> {
    let types: BTreeMap<&str, &str> = scrape
        .text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    let mut families: BTreeMap<String, Vec<Vec<(String, String)>>> = BTreeMap::new();
    for sample in &scrape.samples {
        let family = if types.contains_key(sample.name.as_str()) {
            sample.name.as_str()
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| sample.name.strip_suffix(suffix))
                .filter(|base| types.get(base) == Some(&"histogram"))
                .unwrap_or_else(|| panic!("{} has no # TYPE line", sample.name))
        };
        let labels = sample
            .labels
            .iter()
            .filter(|(name, _)| name != "le")
            .cloned()
            .collect();
        families.entry(family.to_owned()).or_default().push(labels);
    }
    for (name, kind) in &types {
        let spec = FAMILIES.iter().find(|(family, ..)| family == name);
        if let Some((_, _, wanted, ..)) = spec {
            assert_eq!(kind, wanted, "the type of {name}");
        }
    }
    families
}

/// The page of an idle agent with `setup` holds exactly the families and series it should.
#[track_caller]
fn assert_exact_self_metrics(scrape: &Scrape, setup: &Setup) {
    let found = families_of(scrape);
    let expected: BTreeSet<&str> = FAMILIES
        .iter()
        .filter(|(.., when)| setup.holds(*when))
        .map(|(name, ..)| *name)
        .collect();
    let shown: BTreeSet<&str> = found.keys().map(String::as_str).collect();
    assert_eq!(shown, expected, "the self-metric families with {setup:?}");
    for (name, _, kind, labels, _) in FAMILIES.iter().filter(|f| expected.contains(f.0)) {
        let series = &found[*name];
        for set in series {
            let names: Vec<&str> = set.iter().map(|(label, _)| label.as_str()).collect();
            assert_eq!(names, labels.names(), "the labels of {name}: {set:?}");
        }
        if let Some(wanted) = labels.series(&setup.on) {
            let got: BTreeSet<_> = series.iter().cloned().collect();
            assert_eq!(got, wanted, "the series of {name} with {setup:?}");
            if *kind != "histogram" {
                assert_eq!(got.len(), series.len(), "{name} has a series twice");
            }
        }
    }
    assert_no_impossible_combination(scrape, setup);
}

/// Whatever the expected sets say: no series for a transport that is off, no datagram series
/// for a stream, no connection series for a datagram transport or `POST /ingest`.
#[track_caller]
fn assert_no_impossible_combination(scrape: &Scrape, setup: &Setup) {
    for sample in &scrape.samples {
        for (label, value) in &sample.labels {
            let listener = match label.as_str() {
                "transport" => ALL.iter().find(|l| l.transport() == value),
                "listener" => ALL.iter().find(|l| l.listener() == value),
                _ => continue,
            };
            let Some(&listener) = listener else {
                panic!("unknown {label} {value:?} in {sample:?}");
            };
            assert!(
                setup.on.contains(&listener),
                "a listener that is off: {sample:?}"
            );
            let name = sample.name.as_str();
            if name.contains("datagram")
                || name.contains("dropped")
                || name.contains("kernel")
                || name.contains("receive_buffer")
            {
                assert!(
                    listener.is_datagram(),
                    "a datagram series of a stream: {sample:?}"
                );
            }
            if name.starts_with("heartwire_connections") {
                assert!(
                    listener.has_connections(),
                    "a connection series without connections: {sample:?}"
                );
            }
        }
    }
}

/// The sample lines of a page (what `grep -vc '^#'` counts).
fn sample_lines(scrape: &Scrape) -> usize {
    scrape
        .text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .count()
}

#[test]
fn the_default_listeners_show_exactly_their_self_metrics_in_under_80_lines() {
    // The embedded default's: every listener but the Unix datagram socket.
    let on = vec![Udp, UnixStream, Tcp, Http];
    let agent = Agent::start_config(|dir| listeners(dir, &on));
    let scrape = agent.scrape();
    assert_exact_self_metrics(
        &scrape,
        &Setup {
            on,
            outputs: false,
            parse_on_receive: false,
        },
    );
    for (name, labels) in [
        ("heartwire_connections", [("transport", "udp")]),
        ("heartwire_connections", [("transport", "http")]),
        ("heartwire_datagrams_received_total", [("transport", "tcp")]),
        (
            "heartwire_datagrams_received_total",
            [("transport", "unix")],
        ),
        (
            "heartwire_lines_received_total",
            [("transport", "unixgram")],
        ),
    ] {
        assert_eq!(scrape.value(name, &labels), None, "{name}{labels:?}");
    }
    let lines = sample_lines(&scrape);
    // 75 when this was written (66 before the Unix stream socket was on by default):
    // METRICS.md and the README quote it.
    assert!(lines < 80, "{lines} sample lines:\n{}", scrape.text);
}

#[test]
fn every_listener_on_shows_exactly_its_self_metrics_all_at_zero() {
    // With UDP parsing on its receive thread, which has a family of its own.
    let agent = Agent::start_config(|dir| {
        listeners(dir, &ALL).replace(
            "udp: { enabled: true,",
            "udp: { parse_on_receive: true, enabled: true,",
        )
    });
    let scrape = agent.scrape();
    assert_exact_self_metrics(
        &scrape,
        &Setup {
            on: ALL.to_vec(),
            outputs: false,
            parse_on_receive: true,
        },
    );
    for sample in &scrape.samples {
        let counted = sample.name.ends_with("_total") && !sample.name.starts_with("process_");
        if counted {
            assert_eq!(sample.value, 0.0, "before any traffic: {sample:?}");
        }
    }
    // A named hash of the file's bytes: what `sha256sum` prints, in every build.
    let output = Command::new("sha256sum")
        .arg(agent.dir().join("agent.yaml"))
        .output()
        .expect("sha256sum runs");
    let digest = String::from_utf8_lossy(&output.stdout);
    let hash = &digest[..16];
    assert_eq!(
        scrape.value("heartwire_config_info", &[("hash", hash)]),
        Some(1.0)
    );
}

#[test]
fn a_stream_listener_alone_has_no_datagram_families_at_all() {
    let on = vec![UnixStream];
    let agent = Agent::start_config(|dir| listeners(dir, &on));
    assert_exact_self_metrics(
        &agent.scrape(),
        &Setup {
            on,
            outputs: false,
            parse_on_receive: false,
        },
    );
}

#[test]
fn the_push_outputs_and_the_state_file_add_their_families() {
    let on = vec![Udp];
    let agent = Agent::start_config(|dir| {
        format!(
            "{}otlp:\n  endpoint: \"http://127.0.0.1:9\"\n  interval: 1h\ntextfile:\n  enabled: true\n  directory: \"{}\"\n  interval: 1h\nstate:\n  path: \"{}\"\n",
            listeners(dir, &on),
            dir.display(),
            dir.join("state.json").display()
        )
    });
    assert_exact_self_metrics(
        &agent.scrape(),
        &Setup {
            on,
            outputs: true,
            parse_on_receive: false,
        },
    );
}

/// The table of `METRICS.md`, rendered from [`FAMILIES`].
fn table() -> String {
    let mut out = String::from(
        "| Family | Type | What it counts | Labels and values | Has series when |\n|---|---|---|---|---|\n",
    );
    for (name, what, kind, labels, when) in FAMILIES {
        out.push_str(&format!(
            "| `{name}` | {kind} | {what} | {} | {} |\n",
            labels.doc(),
            when.doc()
        ));
    }
    out
}

#[test]
fn metrics_md_lists_every_self_metric_family() {
    const BEGIN: &str = "<!-- families: rendered by tests/tests/self_metrics.rs -->\n";
    const END: &str = "<!-- end of families -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../METRICS.md");
    let text = std::fs::read_to_string(&path).expect("METRICS.md");
    let start = text.find(BEGIN).expect("the begin marker") + BEGIN.len();
    let end = text.find(END).expect("the end marker");
    let table = table();
    if std::env::var_os("HEARTWIRE_BLESS").is_some() {
        let blessed = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(&path, blessed).expect("METRICS.md written");
        return;
    }
    assert_eq!(
        &text[start..end],
        table,
        "METRICS.md is out of date: run with HEARTWIRE_BLESS=1"
    );
}
