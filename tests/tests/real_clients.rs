//! Real StatsD client libraries send their whole API surface to a real socket, and every line
//! they put on the wire must parse into exactly the event the caller meant.
//!
//! The peers are the Python `statsd` and `datadog` packages and the Node `hot-shots` package
//! (`tests/peers/`, installed by `.ci/install-peers.sh`). Each runs a fixed script
//! (`emit.py`, `emit.js`); the expectations below follow those scripts call by call.
//!
//! What the clients send is also checked in, line for line, in `proto/tests/captured/`, where
//! `proto/tests/captured.rs` turns it into parser case tables. A run compares the wire with
//! those files, so a client that changes its bytes is noticed. `HEARTWIRE_CAPTURE=1` rewrites
//! the files instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heartwire_proto::{Line, ParseError, Values};
use heartwire_tests::peers::{self, Client, Transport};

/// The environment variable that rewrites the capture files from what the clients send.
const CAPTURE: &str = "HEARTWIRE_CAPTURE";

/// The Python `statsd` script: plain StatsD, no tags.
const STATSD: &[&str] = &[
    "c jobs.runs 1",
    "c jobs.rows 25",
    "c jobs.sampled 1 @0.5",
    "c jobs.pending -1",
    "c jobs.pending -3",
    "g queue.depth 42",
    "g queue.depth delta:+5",
    "g queue.depth delta:-2",
    "g queue.load 0.75",
    // gauge(-3.5): the client resets to 0, then sends the delta.
    "g temperature 0",
    "g temperature delta:-3.5",
    "ms poll.duration 312.5",
    "ms poll.duration 1250",
    "ms poll.duration 20 @0.25",
    "s users.unique member:alice",
    "c batch.items 2",
    "ms batch.duration 7",
    "s batch.owner member:worker-3",
];

/// The Python `datadog` script: DogStatsD metrics, events and service checks.
const DATADOG: &[&str] = &[
    "c page.views 1",
    "c page.views 3 #env=prod,canary",
    "c page.views 1 @0.5 #env=prod",
    "c jobs.pending -1",
    "c files.moved 7",
    "c files.moved 2 T1767225600",
    "g queue.depth 42 #queue=mail",
    // DogStatsD has no gauge deltas and means -3.5 here, but the line is byte for byte the
    // StatsD delta of PROTOCOL.md S2, and nothing on it tells the dialects apart.
    "g temperature delta:-3.5",
    "g queue.depth 40 #queue=mail T1767225600",
    "h request.size 512 #route=/api/v1",
    "d request.latency 0.25 #region=eu-west-1",
    "ms db.query 12.5",
    "ms db.query 3 @0.1",
    "s users.unique member:bob",
    "c page.views 1",
    r#"event "Deploy finished" "v1.2.3 rolled out\nall green" d:1767225600 h:web-1 k:deploy-42 p:low s:heartwire t:success #env=prod"#,
    r#"event "Déploiement ✓" "terminé""#,
    "check db.reachable 0",
    r#"check db.reachable 2 d:1767225600 h:web-1 #db=primary m:"connection refused\nm\: retrying""#,
    r#"check cache.reachable 1 m:"slow""#,
    "check queue.reachable 3",
    // A client in a pod: DogStatsD 1.2 container id and 1.5 external data on every line.
    "c page.views 1 #env=prod c:3f9a1c2b",
    r#"event "Pod restarted" "exit 137""#,
    r#"check db.reachable 0 m:"ok""#,
];

/// The Node `hot-shots` script, in DogStatsD mode.
const HOT_SHOTS: &[&str] = &[
    "c page.views 1",
    "c page.views 3 #env=prod,canary",
    "c page.views 1 @0.5 #env=prod",
    "c jobs.pending -1",
    "g queue.depth 42 #queue=mail",
    // As for datadog: the client means an absolute -3.5.
    "g temperature delta:-3.5",
    "g queue.depth delta:+5",
    "g queue.depth delta:-2",
    "g queue.depth 40 #queue=mail T1767225600",
    "ms db.query 12.5",
    "ms db.query 3 @0.1",
    "h request.size 512 #route=/api/v1",
    "d request.latency 0.25 #region=eu-west-1",
    "s users.unique member:carol",
    "c page.views 1",
    r#"event "Deploy finished" "v1.2.3 rolled out\nall green" d:1767225600 h:web-1 k:deploy-42 p:low s:heartwire t:success #env=prod"#,
    "check db.reachable 0",
    r#"check db.reachable 2 d:1767225600 h:web-1 #db=primary m:"connection refused""#,
    "check queue.reachable 3",
    "c page.views 1 #env=prod c:3f9a1c2b",
    r#"event "Pod restarted" "exit 137""#,
    r#"check db.reachable 0 m:"ok""#,
];

#[test]
fn python_statsd_over_udp_is_parsed_as_sent() {
    check(Client::Statsd, Transport::Udp, STATSD);
}

#[test]
fn python_statsd_over_a_unix_stream_is_parsed_as_sent() {
    check(Client::Statsd, Transport::UnixStream, STATSD);
}

#[test]
fn python_datadog_over_udp_is_parsed_as_sent() {
    check(Client::Datadog, Transport::Udp, DATADOG);
}

#[test]
fn python_datadog_over_unix_datagrams_is_parsed_as_sent() {
    check(Client::Datadog, Transport::UnixDatagram, DATADOG);
}

#[test]
fn python_datadog_over_a_length_prefixed_unix_stream_is_parsed_as_sent() {
    check(Client::Datadog, Transport::UnixStream, DATADOG);
}

#[test]
fn node_hot_shots_over_udp_is_parsed_as_sent() {
    check(Client::HotShots, Transport::Udp, HOT_SHOTS);
}

#[test]
fn node_hot_shots_over_unix_datagrams_is_parsed_as_sent() {
    check(Client::HotShots, Transport::UnixDatagram, HOT_SHOTS);
}

/// Runs `client` over `transport`, checks its framing, keeps or compares the capture, and
/// asserts that every line parses into the expected event.
#[track_caller]
fn check(client: Client, transport: Transport, expected: &[&str]) {
    let Some(peer) = peers::peer_or_skip(client, transport) else {
        return;
    };
    let receiver = peers::Receiver::bind(transport)
        .unwrap_or_else(|error| panic!("bind a {} socket: {error}", transport.name()));
    let address = receiver.address().to_owned();
    let emitted = peer.emit(transport, &address);
    let received = receiver
        .finish()
        .unwrap_or_else(|error| panic!("read what the peer sent: {error}"));
    if let Err(error) = emitted {
        panic!("{error}");
    }
    let framing = Framing::of(client, transport);
    let units = framing.split(&received);
    let raw: Vec<&[u8]> = units
        .iter()
        .flat_map(|unit| unit.split(|&b| b == b'\n'))
        .collect();
    assert!(
        raw.iter().all(|line| !line.is_empty()),
        "{} sent an empty line: {units:?}",
        client.name()
    );

    let capture = capture_path(client, transport);
    let capturing = std::env::var_os(CAPTURE).is_some_and(|value| value == "1");
    if capturing {
        write_capture(&capture, framing.describe(client, transport), &raw);
    }
    let parsed: Vec<String> = units
        .iter()
        .flat_map(|unit| heartwire_proto::lines(unit))
        .map(describe)
        .collect();
    assert_eq!(
        raw.len(),
        parsed.len(),
        "every non-blank line yields one parse result"
    );
    let mut report = events_report(&raw, &parsed, expected);
    if !capturing {
        report.push_str(&capture_report(&capture, &raw));
    }
    assert!(
        report.is_empty(),
        "{} over {}:{report}",
        client.name(),
        transport.name()
    );
}

/// How a client frames its lines on a transport.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// One or more lines per datagram; `newline` says whether each datagram ends with `\n`;
    /// `packs` whether a datagram may hold several lines.
    Datagrams { newline: bool, packs: bool },
    /// One stream of `\n`-terminated lines per connection.
    NewlineStream,
    /// DogStatsD over a Unix stream: each payload is prefixed by its length, 4 bytes little-endian.
    LengthPrefixed,
}

impl Framing {
    fn of(client: Client, transport: Transport) -> Framing {
        match (client, transport) {
            (Client::Statsd, Transport::UnixStream) => Framing::NewlineStream,
            (Client::Statsd, _) => Framing::Datagrams {
                newline: false,
                packs: true,
            },
            (Client::Datadog, Transport::UnixStream) => Framing::LengthPrefixed,
            (Client::Datadog, _) => Framing::Datagrams {
                newline: true,
                packs: false,
            },
            (Client::HotShots, _) => Framing::Datagrams {
                newline: false,
                packs: false,
            },
        }
    }

    fn describe(self, client: Client, transport: Transport) -> String {
        let framing = match self {
            Framing::Datagrams {
                newline: false,
                packs: true,
            } => {
                "one datagram per call, no trailing newline; a pipeline or a negative gauge packs several lines into one datagram"
            }
            Framing::Datagrams { newline: true, .. } => {
                "one line per datagram, each ending with a newline"
            }
            Framing::Datagrams { newline: false, .. } => {
                "one line per datagram, without a trailing newline"
            }
            Framing::NewlineStream => "one stream connection; every line ends with a newline",
            Framing::LengthPrefixed => {
                "stream connections; each payload is one line ending with a newline, framed by its length in 4 bytes little-endian"
            }
        };
        format!("{} over {}: {framing}.", client.name(), transport.name())
    }

    /// Asserts the framing and returns the units to parse (datagrams, streams or payloads) with
    /// their final newline removed.
    #[track_caller]
    fn split(self, received: &[Vec<u8>]) -> Vec<Vec<u8>> {
        assert!(!received.is_empty(), "nothing arrived");
        let mut units = Vec::new();
        for bytes in received {
            match self {
                Framing::Datagrams { newline, packs } => {
                    let body = strip_newline(bytes, newline);
                    assert!(
                        packs || !body.contains(&b'\n'),
                        "several lines in one datagram: {:?}",
                        lossy(bytes)
                    );
                    units.push(body.to_vec());
                }
                Framing::NewlineStream => units.push(strip_newline(bytes, true).to_vec()),
                Framing::LengthPrefixed => {
                    for payload in length_prefixed(bytes) {
                        let body = strip_newline(payload, true);
                        assert!(
                            !body.contains(&b'\n'),
                            "several lines in one payload: {:?}",
                            lossy(payload)
                        );
                        units.push(body.to_vec());
                    }
                }
            }
        }
        units
    }
}

#[track_caller]
fn strip_newline(bytes: &[u8], newline: bool) -> &[u8] {
    match bytes.strip_suffix(b"\n") {
        Some(body) if newline => body,
        None if !newline => bytes,
        _ => panic!(
            "expected {} trailing newline: {:?}",
            if newline { "a" } else { "no" },
            lossy(bytes)
        ),
    }
}

/// Splits a stream into its length-prefixed payloads; the stream must end on a payload boundary.
#[track_caller]
fn length_prefixed(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut payloads = Vec::new();
    while !stream.is_empty() {
        let Some((prefix, rest)) = stream.split_first_chunk::<4>() else {
            panic!("a length prefix cut short: {:?}", lossy(stream));
        };
        let len = u32::from_le_bytes(*prefix) as usize;
        assert!(
            rest.len() >= len,
            "a payload of {len} bytes is cut short at {} bytes",
            rest.len()
        );
        payloads.push(&rest[..len]);
        stream = &rest[len..];
    }
    payloads
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn capture_path(client: Client, transport: Transport) -> PathBuf {
    let name = format!("{}-{}.txt", client.name(), transport.name());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."));
    workspace.join("proto/tests/captured").join(name)
}

/// Writes the raw lines, one per line, after a `# ` header that says how they were framed.
fn write_capture(path: &Path, header: String, raw: &[&[u8]]) {
    let mut file = format!("# {header}\n").into_bytes();
    for line in raw {
        file.extend_from_slice(line);
        file.push(b'\n');
    }
    std::fs::write(path, file).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
}

/// Lists the lines that differ from the checked-in capture.
fn capture_report(path: &Path, raw: &[&[u8]]) -> String {
    let hint = format!(
        "; if the client changed on purpose, run with {CAPTURE}=1 and update proto/tests/captured.rs"
    );
    let file = match std::fs::read(path) {
        Ok(file) => file,
        Err(error) => return format!("\n  no capture at {}: {error}{hint}", path.display()),
    };
    let captured: Vec<&[u8]> = file
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty() && !line.starts_with(b"# "))
        .collect();
    let mut report = String::new();
    for index in 0..raw.len().max(captured.len()) {
        let (sent, kept) = (raw.get(index), captured.get(index));
        if sent != kept {
            let show =
                |line: Option<&&[u8]>| line.map_or("(nothing)".to_owned(), |line| lossy(line));
            let _ = write!(
                report,
                "\n  line {index}: sent {}\n    captured: {}",
                show(sent),
                show(kept)
            );
        }
    }
    if !report.is_empty() {
        let _ = write!(
            report,
            "\n  (the client no longer sends what {} holds{hint})",
            path.display()
        );
    }
    report
}

/// Lists every line whose parse differs from the script.
fn events_report(raw: &[&[u8]], parsed: &[String], expected: &[&str]) -> String {
    let mut report = String::new();
    for (index, line) in raw.iter().enumerate() {
        let want = expected
            .get(index)
            .copied()
            .unwrap_or("(nothing: the script has fewer lines)");
        if parsed[index] != want {
            let _ = write!(
                report,
                "\n  line {index}: {}\n    expected: {want}\n    parsed:   {}",
                lossy(line),
                parsed[index]
            );
        }
    }
    if raw.len() < expected.len() {
        let _ = write!(report, "\n  missing: {:?}", &expected[raw.len()..]);
    }
    report
}

/// One line, as a compact string that names every field the parser fills in.
fn describe(result: Result<Line<'_>, ParseError>) -> String {
    let line = match result {
        Ok(line) => line,
        Err(error) => return format!("rejected {} ({})", error.kind(), error.detail()),
    };
    let mut text = String::new();
    match &line {
        Line::Metric(metric) => {
            let _ = write!(
                text,
                "{} {} {}",
                metric.kind.as_str(),
                metric.name,
                values(&metric.values)
            );
            if metric.rate != 1.0 || metric.rate_clamped {
                let _ = write!(
                    text,
                    " @{}{}",
                    metric.rate,
                    if metric.rate_clamped { " clamped" } else { "" }
                );
            }
            tags(&mut text, metric.tags);
            optional(&mut text, "T", metric.timestamp);
            optional(&mut text, "c:", metric.container);
        }
        Line::Event(event) => {
            let _ = write!(text, "event \"{}\" \"{}\"", event.title, event.text);
            optional(&mut text, "d:", event.timestamp);
            optional(&mut text, "h:", event.hostname);
            optional(&mut text, "k:", event.aggregation_key);
            optional(&mut text, "p:", event.priority);
            optional(&mut text, "s:", event.source_type);
            optional(
                &mut text,
                "t:",
                event.alert_type.map(|alert| alert.as_str()),
            );
            tags(&mut text, event.tags);
        }
        Line::ServiceCheck(check) => {
            let _ = write!(text, "check {} {}", check.name, check.status.code());
            optional(&mut text, "d:", check.timestamp);
            optional(&mut text, "h:", check.hostname);
            tags(&mut text, check.tags);
            optional(
                &mut text,
                "m:",
                check.message.map(|message| format!("\"{message}\"")),
            );
        }
        native => return format!("native {native:?}"),
    }
    if line.has_unknown_fields() {
        let unknown = match &line {
            Line::Metric(metric) => metric.unknown_fields,
            Line::Event(event) => event.unknown_fields,
            Line::ServiceCheck(check) => check.unknown_fields,
            _ => 0,
        };
        let _ = write!(text, " unknown:{unknown}");
    }
    text
}

fn values(values: &Values<'_>) -> String {
    match values {
        Values::One(value) if value.relative => format!("delta:{:+}", value.number),
        Values::One(value) => value.number.to_string(),
        Values::Packed(raw) => format!("packed:{raw}"),
        Values::Member(member) => format!("member:{member}"),
    }
}

/// Tags as the parser split them: `key=value`, or a bare `key`.
fn tags(text: &mut String, tags: heartwire_proto::Tags<'_>) {
    if tags.is_empty() {
        return;
    }
    let parts: Vec<String> = tags
        .iter()
        .map(|tag| match tag.value {
            Some(value) => format!("{}={value}", tag.key),
            None => tag.key.to_owned(),
        })
        .collect();
    let _ = write!(text, " #{}", parts.join(","));
}

fn optional(text: &mut String, key: &str, value: Option<impl std::fmt::Display>) {
    if let Some(value) = value {
        let _ = write!(text, " {key}{value}");
    }
}
