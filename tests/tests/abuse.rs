//! Abuse: malformed lines, hostile label values and a cardinality flood, sent to the real agent
//! over UDP, TCP and the Unix stream socket. The agent must stay up, count every bad line under
//! its exact reason, keep its exposition valid, keep the good lines that came with the bad, and
//! hold memory within a bound however many series are offered.

use std::path::Path;

use heartwire_tests::agent::{Agent, Scrape, all_listeners};
use heartwire_tests::expect::{Expect, assert_all, exact, series_count, settle};
use heartwire_tests::prometheus;

/// Bad lines and the reason each must be counted under (`proto/PROTOCOL.md` section 6). The
/// overlong line is built by [`overlong_line`].
const CORPUS: [(&[u8], &str); 20] = [
    // NUL bytes, in a StatsD name, a native name, a tag, and alone (L8)
    (b"nul\0name:1|c", "invalid_name"),
    (b"job.ok nul\0job 0.3", "invalid_name"),
    (b"tagged:1|c|#k:v\0", "invalid_tag"),
    (b"\0\0\0", "malformed"),
    // DEL is a control character too
    (b"tagged:1|c|#k:\x7f", "invalid_tag"),
    // invalid UTF-8 (L5)
    (b"bad\xff.name:1|c", "invalid_utf8"),
    (b"job.ok \xc3\x28 1", "invalid_utf8"),
    // NaN, infinities and overflow, in StatsD values and native seconds (S4, N5)
    (b"nan.gauge:NaN|g", "invalid_value"),
    (b"inf.counter:inf|c", "invalid_value"),
    (b"neg.inf.timer:-Infinity|ms", "invalid_value"),
    (b"huge.counter:1e309|c", "invalid_value"),
    (b"job.ok nan-job NaN", "invalid_value"),
    (b"http svc ep 200 inf", "invalid_value"),
    (b"x:1|c|@nan", "invalid_sample_rate"),
    // and one of each other shape of error
    (b"_sc|db|9", "invalid_value"),
    (b"_e{5,2}:title|x", "malformed"),
    (b"x:1|q", "invalid_type"),
    (b"x:1", "missing_field"),
    (b"job.okk nightly", "unknown_verb"),
    (b"x:-1|c", "negative_counter"),
];

/// Valid lines whose label values (and names) hold what an exposition must escape or
/// sanitise: quotes, backslashes, a backslash-n (a newline cannot be sent inside a tag: the
/// wire splits lines on it), `}` and non-ASCII text.
const HOSTILE: [&str; 9] = [
    r#"esc:1|c|#v:a"b"#,
    r"esc:1|c|#v:a\b",
    r"esc:1|c|#v:line1\nline2",
    r#"esc:1|c|#v:\"}"#,
    "esc:1|c|#v:Zürich 🚀",
    r#"we"ird\name:1|c"#,
    r#"q.key:1|c|#"q":v"#,
    "u.key:1|c|#ключ:v",
    r#"_sc|db"x\y|2"#,
];

/// The good line every transport's corpus starts and ends with.
const GOOD: &str = "abuse.good:1|c";

/// The transports the corpus is sent over.
const TRANSPORTS: [&str; 3] = ["udp", "tcp", "unix"];

/// A line of 9 000 bytes: over the 8 192-byte limit (L6), under the stream listeners'
/// `max_line_bytes` (16 384), so that it is rejected as a line rather than closing the
/// connection.
fn overlong_line() -> Vec<u8> {
    let mut line = b"long.line:1|c|#k:".to_vec();
    line.resize(9_000, b'x');
    line
}

/// Every line to send, good ones first and last, joined by `\n`.
fn corpus_payload() -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = vec![GOOD.as_bytes().to_vec(), overlong_line()];
    lines.extend(CORPUS.iter().map(|(line, _)| line.to_vec()));
    lines.extend(HOSTILE.iter().map(|line| line.as_bytes().to_vec()));
    lines.push(GOOD.as_bytes().to_vec());
    let mut payload = lines.join(&b'\n');
    payload.push(b'\n');
    payload
}

/// Every listener on, the UDP one reading datagrams whole up to 64 KiB so that the overlong
/// line reaches the parser, and a per-family series cap of 1 000.
fn abuse_config(dir: &Path) -> String {
    let listeners = all_listeners(dir);
    let udp = r#"udp: { address: "127.0.0.1:0" }"#;
    assert!(
        listeners.contains(udp),
        "the UDP listener line moved: {listeners}"
    );
    let listeners = listeners.replace(
        udp,
        r#"udp: { address: "127.0.0.1:0", max_datagram_bytes: 65536 }"#,
    );
    format!("{listeners}limits:\n  max_series_per_family: 1000\n")
}

/// Lines received and rejected once the corpus went over each of [`TRANSPORTS`]: every bad
/// line under the reason [`CORPUS`] gives it, the overlong one as `too_long`.
fn line_expectations() -> Vec<Expect> {
    let sent = TRANSPORTS.len() as f64;
    let mut expects: Vec<Expect> = heartwire_proto::ErrorKind::ALL
        .iter()
        .map(|kind| {
            let reason = kind.as_str();
            let mut count = CORPUS.iter().filter(|(_, r)| *r == reason).count();
            if reason == "too_long" {
                count += 1;
            }
            exact(
                "heartwire_lines_rejected_total",
                &[("reason", reason)],
                count as f64 * sent,
            )
        })
        .collect();
    // every line is received: two good ones, the overlong one, the bad and the hostile
    let lines = (2 + 1 + CORPUS.len() + HOSTILE.len()) as f64;
    for transport in TRANSPORTS {
        expects.push(exact(
            "heartwire_lines_received_total",
            &[("transport", transport)],
            lines,
        ));
    }
    // no stream connection was closed for what it sent
    for transport in ["tcp", "unix"] {
        expects.push(exact(
            "heartwire_connections_closed_total",
            &[("transport", transport), ("reason", "garbage")],
            0.0,
        ));
    }
    expects
}

/// The series the good and hostile lines make, and none from the bad ones.
fn series_expectations() -> Vec<Expect> {
    let sent = TRANSPORTS.len() as f64;
    vec![
        // the two good lines of each transport, among the bad ones
        exact("abuse_good_total", &[], 2.0 * sent),
        // label values are kept as sent; the exposition escapes them
        exact("esc_total", &[("v", "a\"b")], sent),
        exact("esc_total", &[("v", "a\\b")], sent),
        exact("esc_total", &[("v", "line1\\nline2")], sent),
        exact("esc_total", &[("v", "\\\"}")], sent),
        exact("esc_total", &[("v", "Zürich 🚀")], sent),
        series_count("esc_total", 5),
        exact(
            "heartwire_service_check_status",
            &[("check", "db\"x\\y")],
            2.0,
        ),
        // names and label names are sanitised
        exact("we_ird_name_total", &[], sent),
        exact("q_key_total", &[("_q_", "v")], sent),
        exact("u_key_total", &[("exported_____", "v")], sent),
        // no rejected line left a trace
        series_count("long_line_total", 0),
        series_count("nan_gauge", 0),
        series_count("inf_counter_total", 0),
        series_count("huge_counter_total", 0),
        series_count("x_total", 0),
        series_count("heartwire_job_runs_total", 0),
    ]
}

/// `GET /healthz` answers 200.
#[track_caller]
fn assert_healthy(agent: &Agent) {
    let url = format!("http://{}/healthz", agent.address("http"));
    let status = agent
        .http()
        .get(url)
        .send()
        .map(|response| response.status().as_u16());
    assert!(
        matches!(status, Ok(200)),
        "/healthz: {status:?}\nagent log:\n{}",
        agent.log()
    );
}

/// `promtool check metrics` passes on the scrape (skipped without promtool, per the peers
/// policy).
#[track_caller]
fn assert_promtool_accepts(scrape: &Scrape) {
    let Some(promtool) = prometheus::tool_or_skip("promtool") else {
        return;
    };
    if let Err(complaint) = prometheus::check_metrics(&promtool, &scrape.text) {
        panic!("{complaint}\nthe exposition:\n{scrape}");
    }
}

/// The resident set size of process `pid`, in bytes, from `/proc/<pid>/status`.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("/proc/{pid}/status: {error}"));
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status:\n{status}"));
    kib * 1024
}

#[test]
fn every_malformed_line_over_udp_tcp_and_unix_stream_is_counted_by_its_reason() {
    let agent = Agent::start_config(abuse_config);
    let payload = corpus_payload();
    // UDP: the whole corpus in one datagram, good lines around the bad
    agent.send_udp(&payload);
    agent.send_tcp(&payload);
    agent.send_unix_stream(&payload);
    let scrape = settle(
        &agent,
        &[line_expectations(), series_expectations()].concat(),
    );
    assert_healthy(&agent);
    assert_promtool_accepts(&scrape);
}

#[test]
fn an_overlong_line_in_a_udp_datagram_beyond_the_read_buffer_is_counted_as_too_long() {
    // The default listener reads 8 192 bytes of a datagram: this one is cut by the kernel,
    // and the cut line is known to be over the limit since 8 192 bytes of it arrived.
    let agent = Agent::start();
    agent.send_udp(&overlong_line());
    agent.send_udp(GOOD.as_bytes());
    settle(
        &agent,
        &[
            exact("abuse_good_total", &[], 1.0),
            exact(
                "heartwire_lines_rejected_total",
                &[("reason", "too_long")],
                1.0,
            ),
        ],
    );
}

/// Distinct label values offered to one family: ten times its cap.
const FLOOD: usize = 10_000;
/// The per-family series cap of [`abuse_config`].
const CAP: usize = 1_000;

/// Sends `flood:1|c|#id:<n>` for every `n` below [`FLOOD`], packed into datagrams of at most
/// 1 400 bytes (a typical client's MTU-sized batch).
fn send_flood(agent: &Agent) {
    let mut datagram = String::new();
    for id in 0..FLOOD {
        let line = format!("flood:1|c|#id:{id}\n");
        if datagram.len() + line.len() > 1_400 {
            agent.send_udp(datagram.as_bytes());
            datagram.clear();
        }
        datagram.push_str(&line);
    }
    agent.send_udp(datagram.as_bytes());
}

#[test]
fn a_flood_of_distinct_label_values_stops_at_the_family_cap_with_memory_bounded() {
    let agent = Agent::start_config(abuse_config);
    agent.send_udp(GOOD.as_bytes());
    settle(&agent, &[exact("abuse_good_total", &[], 1.0)]);
    let before = resident_bytes(agent.pid());

    send_flood(&agent);
    let family = [("family", "flood_total")];
    let scrape = settle(
        &agent,
        &[
            exact(
                "heartwire_lines_received_total",
                &[("transport", "udp")],
                1.0 + FLOOD as f64,
            ),
            exact("heartwire_series", &family, CAP as f64),
            exact(
                "heartwire_series_dropped_total",
                &family,
                (FLOOD - CAP) as f64,
            ),
            series_count("flood_total", CAP),
            // the first value offered is always among those kept
            exact("flood_total", &[("id", "0")], 1.0),
            exact(
                "heartwire_datagrams_dropped_total",
                &[("transport", "udp")],
                0.0,
            ),
        ],
    );
    let after = resident_bytes(agent.pid());
    assert_healthy(&agent);
    assert_promtool_accepts(&scrape);
    assert_all(&scrape, &[exact("abuse_good_total", &[], 1.0)]);

    // What the flood may cost, from the bounds documented in `aggregate::settings::Limits`:
    // 1 000 series at under 0.5 KiB each, 10 000 cached raw keys at about 0.15 KiB each, and
    // the datagrams in flight (0.25 MiB in all): about 2 MiB, on top of an idle agent of about
    // 12 MiB (an unoptimised build). 16 MiB of growth and 64 MiB in all leave room for the
    // allocator and thread stacks on a busy machine, and still catch an agent that keeps what
    // it read (every datagram, or a buffer per batch) or grows per offered series.
    const MIB: u64 = 1024 * 1024;
    assert!(
        after.saturating_sub(before) < 16 * MIB && after < 64 * MIB,
        "RSS {:.1} MiB before the flood, {:.1} MiB after",
        before as f64 / MIB as f64,
        after as f64 / MIB as f64
    );
}
