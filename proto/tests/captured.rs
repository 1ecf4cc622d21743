//! Case tables from real clients: every line that the Python `statsd` and `datadog` packages
//! and the Node `hot-shots` package put on the wire, and the event it must parse into.
//!
//! The lines in `captured/` were received from the real clients by
//! `tests/tests/real_clients.rs` (re-captured with `HEARTWIRE_CAPTURE=1`); that test also checks
//! that the clients still send exactly these bytes. A file is named `<client>-<transport>.txt`
//! and holds one line per line after a `# ` header that says how the lines were framed.

use heartwire_proto::{
    AlertType, CheckStatus, Event, Line, Metric, MetricKind, ServiceCheck, Tags, Value, Values,
    lines, parse_line,
};

/// Every capture, by client and transport.
const CAPTURES: &[(&str, &str)] = &[
    ("statsd-udp", include_str!("captured/statsd-udp.txt")),
    (
        "statsd-unixstream",
        include_str!("captured/statsd-unixstream.txt"),
    ),
    ("datadog-udp", include_str!("captured/datadog-udp.txt")),
    (
        "datadog-unixgram",
        include_str!("captured/datadog-unixgram.txt"),
    ),
    (
        "datadog-unixstream",
        include_str!("captured/datadog-unixstream.txt"),
    ),
    ("hot-shots-udp", include_str!("captured/hot-shots-udp.txt")),
    (
        "hot-shots-unixgram",
        include_str!("captured/hot-shots-unixgram.txt"),
    ),
];

/// 2026-01-01T00:00:00Z, the fixed timestamp the client scripts send.
const TIMESTAMP: u64 = 1_767_225_600;

/// Every distinct captured line and what it must parse into, in the order the clients sent
/// them: Python `statsd`, then `datadog`, then what only `hot-shots` sends.
fn table() -> Vec<(&'static str, Line<'static>)> {
    use MetricKind::{Counter, Distribution, Gauge, Histogram, Timer};
    vec![
        ("jobs.runs:1|c", metric(m("jobs.runs", Counter, 1.0))),
        ("jobs.rows:25|c", metric(m("jobs.rows", Counter, 25.0))),
        (
            "jobs.sampled:1|c|@0.5",
            metric(Metric {
                rate: 0.5,
                ..m("jobs.sampled", Counter, 1.0)
            }),
        ),
        // Every client's decrement(): a counter going down by one, and by three.
        (
            "jobs.pending:-1|c",
            metric(m("jobs.pending", Counter, -1.0)),
        ),
        (
            "jobs.pending:-3|c",
            metric(m("jobs.pending", Counter, -3.0)),
        ),
        ("queue.depth:42|g", metric(m("queue.depth", Gauge, 42.0))),
        ("queue.depth:+5|g", metric(delta("queue.depth", 5.0))),
        ("queue.depth:-2|g", metric(delta("queue.depth", -2.0))),
        ("queue.load:0.75|g", metric(m("queue.load", Gauge, 0.75))),
        ("temperature:0|g", metric(m("temperature", Gauge, 0.0))),
        // A StatsD delta (S2). The DogStatsD clients send the same bytes for an absolute -3.5.
        ("temperature:-3.5|g", metric(delta("temperature", -3.5))),
        (
            "poll.duration:312.500000|ms",
            metric(m("poll.duration", Timer, 312.5)),
        ),
        (
            "poll.duration:1250.000000|ms",
            metric(m("poll.duration", Timer, 1250.0)),
        ),
        (
            "poll.duration:20.000000|ms|@0.25",
            metric(Metric {
                rate: 0.25,
                ..m("poll.duration", Timer, 20.0)
            }),
        ),
        ("users.unique:alice|s", metric(set("users.unique", "alice"))),
        ("batch.items:2|c", metric(m("batch.items", Counter, 2.0))),
        (
            "batch.duration:7.000000|ms",
            metric(m("batch.duration", Timer, 7.0)),
        ),
        (
            "batch.owner:worker-3|s",
            metric(set("batch.owner", "worker-3")),
        ),
        ("page.views:1|c", metric(m("page.views", Counter, 1.0))),
        (
            "page.views:3|c|#env:prod,canary",
            metric(Metric {
                tags: tags("env:prod,canary"),
                ..m("page.views", Counter, 3.0)
            }),
        ),
        (
            "page.views:1|c|@0.5|#env:prod",
            metric(Metric {
                rate: 0.5,
                tags: tags("env:prod"),
                ..m("page.views", Counter, 1.0)
            }),
        ),
        ("files.moved:7|c", metric(m("files.moved", Counter, 7.0))),
        (
            "files.moved:2|c|T1767225600",
            metric(Metric {
                timestamp: Some(TIMESTAMP),
                ..m("files.moved", Counter, 2.0)
            }),
        ),
        (
            "queue.depth:42|g|#queue:mail",
            metric(Metric {
                tags: tags("queue:mail"),
                ..m("queue.depth", Gauge, 42.0)
            }),
        ),
        (
            "queue.depth:40|g|#queue:mail|T1767225600",
            metric(Metric {
                tags: tags("queue:mail"),
                timestamp: Some(TIMESTAMP),
                ..m("queue.depth", Gauge, 40.0)
            }),
        ),
        (
            "request.size:512|h|#route:/api/v1",
            metric(Metric {
                tags: tags("route:/api/v1"),
                ..m("request.size", Histogram, 512.0)
            }),
        ),
        (
            "request.latency:0.25|d|#region:eu-west-1",
            metric(Metric {
                tags: tags("region:eu-west-1"),
                ..m("request.latency", Distribution, 0.25)
            }),
        ),
        ("db.query:12.5|ms", metric(m("db.query", Timer, 12.5))),
        (
            "db.query:3|ms|@0.1",
            metric(Metric {
                rate: 0.1,
                ..m("db.query", Timer, 3.0)
            }),
        ),
        ("users.unique:bob|s", metric(set("users.unique", "bob"))),
        // DogStatsD 1.6 cardinality: known and ignored (S14).
        (
            "page.views:1|c|card:low",
            metric(m("page.views", Counter, 1.0)),
        ),
        (
            r"_e{15,28}:Deploy finished|v1.2.3 rolled out\nall green|d:1767225600|h:web-1|k:deploy-42|p:low|s:heartwire|t:success|#env:prod",
            Line::Event(Event {
                title: "Deploy finished",
                text: r"v1.2.3 rolled out\nall green",
                timestamp: Some(TIMESTAMP),
                hostname: Some("web-1"),
                aggregation_key: Some("deploy-42"),
                priority: Some("low"),
                source_type: Some("heartwire"),
                alert_type: Some(AlertType::Success),
                tags: tags("env:prod"),
                unknown_fields: 0,
            }),
        ),
        // The lengths count bytes: 16 and 8, for 13 and 7 characters.
        (
            "_e{16,8}:Déploiement ✓|terminé",
            event("Déploiement ✓", "terminé"),
        ),
        (
            "_sc|db.reachable|0",
            Line::ServiceCheck(check("db.reachable", CheckStatus::Ok)),
        ),
        (
            r"_sc|db.reachable|2|d:1767225600|h:web-1|#db:primary|m:connection refused\nm\: retrying",
            Line::ServiceCheck(ServiceCheck {
                timestamp: Some(TIMESTAMP),
                hostname: Some("web-1"),
                tags: tags("db:primary"),
                message: Some(r"connection refused\nm\: retrying"),
                ..check("db.reachable", CheckStatus::Critical)
            }),
        ),
        (
            "_sc|cache.reachable|1|m:slow",
            Line::ServiceCheck(ServiceCheck {
                message: Some("slow"),
                ..check("cache.reachable", CheckStatus::Warning)
            }),
        ),
        (
            "_sc|queue.reachable|3",
            Line::ServiceCheck(check("queue.reachable", CheckStatus::Unknown)),
        ),
        // A client in a pod: DogStatsD 1.2 container id (S13) and 1.5 external data (S14).
        (
            "page.views:1|c|#env:prod|c:3f9a1c2b|e:it-false,cn-app,pu-4f1c",
            metric(Metric {
                tags: tags("env:prod"),
                container: Some("3f9a1c2b"),
                ..m("page.views", Counter, 1.0)
            }),
        ),
        // The same DogStatsD fields on events and service checks are known too, not unknown.
        (
            "_e{13,8}:Pod restarted|exit 137|c:3f9a1c2b",
            event("Pod restarted", "exit 137"),
        ),
        // datadog appends the container id after the message; the message ends at the next `|`.
        (
            "_sc|db.reachable|0|m:ok|c:3f9a1c2b",
            Line::ServiceCheck(ServiceCheck {
                message: Some("ok"),
                ..check("db.reachable", CheckStatus::Ok)
            }),
        ),
        // hot-shots writes `|T` before the tags.
        (
            "queue.depth:40|g|T1767225600|#queue:mail",
            metric(Metric {
                tags: tags("queue:mail"),
                timestamp: Some(TIMESTAMP),
                ..m("queue.depth", Gauge, 40.0)
            }),
        ),
        ("users.unique:carol|s", metric(set("users.unique", "carol"))),
        (
            "_sc|db.reachable|2|d:1767225600|h:web-1|#db:primary|m:connection refused",
            Line::ServiceCheck(ServiceCheck {
                timestamp: Some(TIMESTAMP),
                hostname: Some("web-1"),
                tags: tags("db:primary"),
                message: Some("connection refused"),
                ..check("db.reachable", CheckStatus::Critical)
            }),
        ),
        (
            "_e{13,8}:Pod restarted|exit 137|c:3f9a1c2b|e:it-false,cn-app,pu-4f1c",
            event("Pod restarted", "exit 137"),
        ),
        // hot-shots puts the container id and external data before the message.
        (
            "_sc|db.reachable|0|c:3f9a1c2b|e:it-false,cn-app,pu-4f1c|m:ok",
            Line::ServiceCheck(ServiceCheck {
                message: Some("ok"),
                ..check("db.reachable", CheckStatus::Ok)
            }),
        ),
    ]
}

fn m(name: &str, kind: MetricKind, number: f64) -> Metric<'_> {
    Metric::new(name, kind, number)
}

fn metric(metric: Metric<'_>) -> Line<'_> {
    Line::Metric(metric)
}

fn delta(name: &str, number: f64) -> Metric<'_> {
    Metric {
        values: Values::One(Value::delta(number)),
        ..m(name, MetricKind::Gauge, number)
    }
}

fn set<'a>(name: &'a str, member: &'a str) -> Metric<'a> {
    Metric {
        values: Values::Member(member),
        ..m(name, MetricKind::Set, 0.0)
    }
}

fn tags(raw: &str) -> Tags<'_> {
    Tags::parse(raw).unwrap_or_else(|error| panic!("the table's tags {raw:?}: {error}"))
}

fn event<'a>(title: &'a str, text: &'a str) -> Line<'a> {
    Line::Event(Event {
        title,
        text,
        ..Default::default()
    })
}

fn check(name: &str, status: CheckStatus) -> ServiceCheck<'_> {
    ServiceCheck {
        name,
        status,
        timestamp: None,
        hostname: None,
        tags: Tags::EMPTY,
        message: None,
        unknown_fields: 0,
    }
}

/// The captured lines of one file, without its header.
fn captured(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !line.starts_with("# "))
}

/// The captures of one client (`statsd`, `datadog`, `hot-shots`), one per transport.
fn captures_of(client: &str) -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    CAPTURES.iter().filter(move |(name, _)| {
        name.strip_prefix(client)
            .is_some_and(|transport| transport.starts_with('-'))
    })
}

/// Asserts that every line `client` sent, over any transport, parses into its table entry, and
/// lists every line that does not.
#[track_caller]
fn assert_client_lines_parse(client: &str) {
    let table = table();
    let mut sent: Vec<&str> = Vec::new();
    for (_, text) in captures_of(client) {
        sent.extend(
            captured(text)
                .filter(|line| !sent.contains(line))
                .collect::<Vec<_>>(),
        );
    }
    assert!(!sent.is_empty(), "no capture of {client}");
    let mut report = String::new();
    for line in sent {
        let Some((_, expected)) = table.iter().find(|(raw, _)| *raw == line) else {
            report.push_str(&format!("\n  {line}\n    has no entry in the table"));
            continue;
        };
        let parsed = parse_line(line.as_bytes());
        if parsed.as_ref() != Ok(expected) {
            report.push_str(&format!(
                "\n  {line}\n    expected: {expected:?}\n    parsed:   {parsed:?}"
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{client} lines not parsed as sent:{report}"
    );
}

#[test]
fn python_statsd_lines_parse_as_sent() {
    assert_client_lines_parse("statsd");
}

#[test]
fn python_datadog_lines_parse_as_sent() {
    assert_client_lines_parse("datadog");
}

#[test]
fn hot_shots_lines_parse_as_sent() {
    assert_client_lines_parse("hot-shots");
}

#[test]
fn every_table_entry_was_sent_by_a_client() {
    for (raw, _) in table() {
        let sent = CAPTURES
            .iter()
            .any(|(_, text)| captured(text).any(|line| line == raw));
        assert!(sent, "{raw} is in the table but in no capture");
    }
}

#[test]
fn a_client_sends_the_same_lines_over_every_transport() {
    for client in ["statsd", "datadog", "hot-shots"] {
        let mut files = captures_of(client);
        let (first, text) = files.next().unwrap();
        let reference: Vec<&str> = captured(text).collect();
        for (name, text) in files {
            assert_eq!(
                captured(text).collect::<Vec<_>>(),
                reference,
                "{name} differs from {first}"
            );
        }
    }
}

#[test]
fn every_capture_says_how_it_was_framed_and_reads_as_one_datagram() {
    for (name, text) in CAPTURES {
        assert!(text.starts_with("# "), "{name} has no framing header");
        let body: Vec<&str> = captured(text).collect();
        // The whole capture as one datagram yields one result per line, in order.
        let joined = body.join("\n");
        let parsed: Vec<_> = lines(joined.as_bytes()).collect();
        let one_by_one: Vec<_> = body
            .iter()
            .map(|line| parse_line(line.as_bytes()))
            .collect();
        assert_eq!(parsed, one_by_one, "{name}");
    }
}
