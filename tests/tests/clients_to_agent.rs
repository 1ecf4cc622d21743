//! Real StatsD client libraries send their fixed scripts to the real agent, and `/metrics` must
//! show exactly what each call meant.
//!
//! The scripts are `tests/peers/python/emit.py` (Python `statsd` and `datadog`) and
//! `tests/peers/node/emit.js` (Node `hot-shots`); `tests/tests/real_clients.rs` lists the line
//! each call puts on the wire. The expectations below follow the scripts call by call and are
//! written out by hand: they are what a user of each client should see, not what the agent
//! happens to print.
//!
//! Rules of the agent they rely on (`proto/PROTOCOL.md`, `agent/src/aggregate/series.rs`):
//! counters get `_total` and add `value / rate`; a negative increment (`decrement`) is rejected
//! as `negative_counter`; `+`/`-` gauge values are deltas; `ms` becomes seconds in a histogram
//! with the default buckets, and a sample at rate `r` weighs `1 / r`; client timestamps are
//! ignored; a family's label names are fixed by its first series, and a later sample with other
//! label names is rejected and counted in `heartwire_series_conflicts_total{family}`.

use heartwire_tests::agent::{Agent, Scrape};
use heartwire_tests::expect::{
    Expect, absent, any_of, assert_all, exact, histogram, series_count, settle, unix_now, within,
};
use heartwire_tests::peers::{self, Client, Transport};

/// Every `transport` of `heartwire_lines_received_total`.
const TRANSPORTS: [&str; 5] = ["udp", "unixgram", "unix", "tcp", "http"];

/// The agent's `transport` label for a peer transport.
fn label(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::UnixDatagram => "unixgram",
        Transport::UnixStream => "unix",
    }
}

/// A client's script, sent to a fresh agent.
struct Run {
    agent: Agent,
    /// The Unix time before the script started: no timestamp the agent took may be older.
    started: f64,
}

/// Runs `client`'s script over `transport` into a new agent with every listener on; `None`
/// when the peer is missing (skipped, see `peers::peer_or_skip`).
fn run(client: Client, transport: Transport) -> Option<Run> {
    let peer = peers::peer_or_skip(client, transport)?;
    let agent = Agent::start();
    let address = match transport {
        Transport::Udp => agent.udp().to_string(),
        Transport::UnixDatagram => agent.unix_datagram().display().to_string(),
        Transport::UnixStream => agent.unix_stream().display().to_string(),
    };
    let started = unix_now();
    if let Err(error) = peer.emit(transport, &address) {
        panic!("{error}\nagent log:\n{}", agent.log());
    }
    Some(Run { agent, started })
}

/// Lines received: `lines` on `transport`, none elsewhere; lines rejected: exactly `rejected`
/// (reason, count), every other reason 0.
fn line_counts(transport: Transport, lines: f64, rejected: &[(&str, f64)]) -> Vec<Expect> {
    let mut expects: Vec<Expect> = TRANSPORTS
        .iter()
        .map(|&name| {
            let count = if name == label(transport) { lines } else { 0.0 };
            exact(
                "heartwire_lines_received_total",
                &[("transport", name)],
                count,
            )
        })
        .collect();
    expects.extend(heartwire_proto::ErrorKind::ALL.iter().map(|kind| {
        let reason = kind.as_str();
        let count = rejected
            .iter()
            .find(|(name, _)| *name == reason)
            .map_or(0.0, |(_, count)| *count);
        exact(
            "heartwire_lines_rejected_total",
            &[("reason", reason)],
            count,
        )
    }));
    expects.push(exact("heartwire_lines_unknown_fields_total", &[], 0.0));
    expects.push(exact("heartwire_sample_rates_clamped_total", &[], 0.0));
    expects
}

/// Datagrams received on a datagram `transport`, and none dropped.
fn datagrams(transport: Transport, count: f64) -> Vec<Expect> {
    let on = [("transport", label(transport))];
    vec![
        exact("heartwire_datagrams_received_total", &on, count),
        exact("heartwire_datagrams_dropped_total", &on, 0.0),
    ]
}

/// `frames` length-prefixed frames received on the Unix stream: their bytes (each at least a
/// 4-byte prefix and a 1-byte line), and no datagram series, since a stream has none.
fn frames(frames: f64) -> Vec<Expect> {
    let unix = [("transport", "unix")];
    vec![
        within(
            "heartwire_bytes_received_total",
            &unix,
            frames * 5.0,
            f64::MAX,
        ),
        absent("heartwire_datagrams_received_total", &unix),
        absent("heartwire_datagrams_dropped_total", &unix),
    ]
}

/// `connections` stream connections opened and closed by the peer, none left open.
fn connections(connections: f64) -> Vec<Expect> {
    let unix = [("transport", "unix")];
    vec![
        exact("heartwire_connections_opened_total", &unix, connections),
        exact(
            "heartwire_connections_closed_total",
            &[("transport", "unix"), ("reason", "eof")],
            connections,
        ),
        exact(
            "heartwire_connections_closed_total",
            &[("transport", "unix"), ("reason", "garbage")],
            0.0,
        ),
        exact("heartwire_connections", &unix, 0.0),
    ]
}

/// The Python `statsd` script (`emit.py statsd_script`).
fn statsd_metrics() -> Vec<Expect> {
    let mut expects = vec![
        // incr("jobs.runs"), incr("jobs.rows", 25)
        exact("jobs_runs_total", &[], 1.0),
        exact("jobs_rows_total", &[], 25.0),
        // incr("jobs.sampled", 1, rate=0.5): one call at rate 0.5 stands for 2
        exact("jobs_sampled_total", &[], 2.0),
        // decr("jobs.pending") and decr("jobs.pending", 3): rejected, no series
        absent("jobs_pending_total", &[]),
        // gauge 42, then deltas +5 and -2
        exact("queue_depth", &[], 45.0),
        exact("queue_load", &[], 0.75),
        // gauge(-3.5) goes out as "0" then the delta "-3.5"
        exact("temperature", &[], -3.5),
        // set("users.unique", "alice")
        exact("users_unique", &[], 1.0),
        // the pipeline: incr 2, timing 7 ms, set "worker-3"
        exact("batch_items_total", &[], 2.0),
        exact("batch_owner", &[], 1.0),
    ];
    // timing 312.5 ms, timedelta(seconds=1.25), 20 ms at rate 0.25 (weight 4):
    // 0.02 s ×4 in le=0.025, 0.3125 s in le=0.5, 1.25 s in le=2.5
    expects.extend(histogram(
        "poll_duration",
        &[],
        [0.0, 0.0, 4.0, 4.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 6.0, 6.0],
        0.3125 + 1.25 + 4.0 * 0.02,
    ));
    expects.extend(histogram(
        "batch_duration",
        &[],
        [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        0.007,
    ));
    expects
}

/// What the `datadog` and `hot-shots` scripts share.
fn dogstatsd_metrics() -> Vec<Expect> {
    let mut expects = vec![
        absent("jobs_pending_total", &[]),
        // gauge 42, later 40 with a client timestamp (ignored: counted when received)
        exact("queue_depth", &[("queue", "mail")], 40.0),
        // gauge("temperature", -3.5) reads as a delta from 0 (PROTOCOL.md S2)
        exact("temperature", &[], -3.5),
        exact("users_unique", &[], 1.0),
        // titles never become labels; an event without `t:` is `info`
        exact("heartwire_events_total", &[("alert_type", "success")], 1.0),
        absent("heartwire_events_total", &[("alert_type", "error")]),
        absent("heartwire_events_total", &[("alert_type", "warning")]),
        exact(
            "heartwire_service_check_status",
            &[("check", "queue.reachable")],
            3.0,
        ),
    ];
    // histogram 512: beyond every bound
    expects.extend(histogram(
        "request_size",
        &[("route", "/api/v1")],
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        512.0,
    ));
    // distribution 0.25: on the le=0.25 bound
    expects.extend(histogram(
        "request_latency",
        &[("region", "eu-west-1")],
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        0.25,
    ));
    // timing 12.5 ms, and 3 ms at rate 0.1 (weight 10)
    expects.extend(histogram(
        "db_query",
        &[],
        [
            10.0, 10.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0,
        ],
        0.0125 + 10.0 * 0.003,
    ));
    expects
}

/// `page.views` when the plain client's lines come first, as they always do over one socket:
/// `increment("page.views")` carries no tags and fixes the family's label names, so the tagged
/// increments (`3 #env:prod,canary`, `1 @0.5 #env:prod` and the pod's `1 #env:prod`) are
/// conflicts, and `increment(…, cardinality="low")` adds to the untagged series.
fn page_views_plain_first() -> Vec<Expect> {
    vec![
        exact("page_views_total", &[], 2.0),
        series_count("page_views_total", 1),
        exact(
            "heartwire_series_conflicts_total",
            &[("family", "page_views_total")],
            3.0,
        ),
    ]
}

/// `page.views` when the pod client's `1 #env:prod` comes first (it has a connection of its
/// own on a stream): `env` fixes the family's label names, the plain `1 @0.5 #env:prod` adds 2,
/// and the two untagged increments and the `canary` one are conflicts.
fn page_views_pod_first() -> Vec<Expect> {
    vec![
        exact("page_views_total", &[("env", "prod")], 3.0),
        series_count("page_views_total", 1),
        exact(
            "heartwire_series_conflicts_total",
            &[("family", "page_views_total")],
            3.0,
        ),
    ]
}

/// The last status of `db.reachable`: the plain client reports OK then CRITICAL, the pod's
/// client OK.
fn db_reachable(status: f64) -> Vec<Expect> {
    vec![exact(
        "heartwire_service_check_status",
        &[("check", "db.reachable")],
        status,
    )]
}

/// What depends on the order of the plain and the pod's client, when both share one socket:
/// the plain client's lines first.
fn in_order() -> Vec<Expect> {
    [page_views_plain_first(), db_reachable(0.0)].concat()
}

/// The Python `datadog` script (`emit.py datadog_script`), beyond [`dogstatsd_metrics`].
fn datadog_metrics() -> Vec<Expect> {
    let mut expects = dogstatsd_metrics();
    expects.extend([
        // count 7, then 2 with a client timestamp
        exact("files_moved_total", &[], 9.0),
        // "Déploiement ✓" and the pod's "Pod restarted"
        exact("heartwire_events_total", &[("alert_type", "info")], 2.0),
        exact(
            "heartwire_service_check_status",
            &[("check", "cache.reachable")],
            1.0,
        ),
        series_count("heartwire_service_check_status", 3),
    ]);
    expects
}

/// The Node `hot-shots` script (`emit.js script` and `inPodScript`), beyond
/// [`dogstatsd_metrics`].
fn hot_shots_metrics() -> Vec<Expect> {
    let mut expects = dogstatsd_metrics();
    expects.extend([
        // gaugeDelta +5 and -2 carry no tags: other label names than the family's
        exact(
            "heartwire_series_conflicts_total",
            &[("family", "queue_depth")],
            2.0,
        ),
        series_count("queue_depth", 1),
        absent("files_moved_total", &[]),
        exact("heartwire_events_total", &[("alert_type", "info")], 1.0),
        series_count("heartwire_service_check_status", 2),
    ]);
    expects
}

/// Waits for every expectation, then checks that each service check's report time was taken
/// while the script ran.
#[track_caller]
fn check(run: &Run, expects: &[Expect], checks: &[&str]) -> Scrape {
    let scrape = settle(&run.agent, expects);
    let now = unix_now();
    let reported: Vec<Expect> = checks
        .iter()
        .map(|check| {
            within(
                "heartwire_service_check_last_timestamp_seconds",
                &[("check", check)],
                run.started,
                now,
            )
        })
        .collect();
    assert_all(&scrape, &reported);
    scrape
}

#[test]
fn python_statsd_over_udp_shows_every_call_in_metrics() {
    let Some(run) = run(Client::Statsd, Transport::Udp) else {
        return;
    };
    let mut expects = statsd_metrics();
    expects.extend(line_counts(
        Transport::Udp,
        18.0,
        &[("negative_counter", 2.0)],
    ));
    // one datagram a call; the negative gauge and the pipeline pack theirs into one each
    expects.extend(datagrams(Transport::Udp, 15.0));
    check(&run, &expects, &[]);
}

#[test]
fn python_statsd_over_a_newline_unix_stream_shows_every_call_in_metrics() {
    let Some(run) = run(Client::Statsd, Transport::UnixStream) else {
        return;
    };
    let mut expects = statsd_metrics();
    expects.extend(line_counts(
        Transport::UnixStream,
        18.0,
        &[("negative_counter", 2.0)],
    ));
    expects.extend(connections(1.0));
    check(&run, &expects, &[]);
}

#[test]
fn python_datadog_over_udp_shows_every_call_in_metrics() {
    let Some(run) = run(Client::Datadog, Transport::Udp) else {
        return;
    };
    let mut expects = datadog_metrics();
    expects.extend(in_order());
    expects.extend(line_counts(
        Transport::Udp,
        24.0,
        &[("negative_counter", 1.0)],
    ));
    expects.extend(datagrams(Transport::Udp, 24.0));
    check(&run, &expects, &DATADOG_CHECKS);
}

#[test]
fn python_datadog_over_unix_datagrams_shows_every_call_in_metrics() {
    let Some(run) = run(Client::Datadog, Transport::UnixDatagram) else {
        return;
    };
    let mut expects = datadog_metrics();
    expects.extend(in_order());
    expects.extend(line_counts(
        Transport::UnixDatagram,
        24.0,
        &[("negative_counter", 1.0)],
    ));
    expects.extend(datagrams(Transport::UnixDatagram, 24.0));
    check(&run, &expects, &DATADOG_CHECKS);
}

#[test]
fn python_datadog_over_a_length_prefixed_unix_stream_shows_every_call_in_metrics() {
    let Some(run) = run(Client::Datadog, Transport::UnixStream) else {
        return;
    };
    let mut expects = datadog_metrics();
    expects.extend(line_counts(
        Transport::UnixStream,
        24.0,
        &[("negative_counter", 1.0)],
    ));
    // One frame a call. The plain client and the pod's client each hold a connection, and
    // nothing orders the lines of two connections: either may be applied first.
    expects.extend(frames(24.0));
    expects.push(any_of(
        "page.views from two connections",
        vec![page_views_plain_first(), page_views_pod_first()],
    ));
    expects.push(any_of(
        "db.reachable from two connections",
        vec![db_reachable(0.0), db_reachable(2.0)],
    ));
    expects.extend(connections(2.0));
    check(&run, &expects, &DATADOG_CHECKS);
}

#[test]
fn node_hot_shots_over_udp_shows_every_call_in_metrics() {
    let Some(run) = run(Client::HotShots, Transport::Udp) else {
        return;
    };
    let mut expects = hot_shots_metrics();
    expects.extend(in_order());
    expects.extend(line_counts(
        Transport::Udp,
        22.0,
        &[("negative_counter", 1.0)],
    ));
    expects.extend(datagrams(Transport::Udp, 22.0));
    check(&run, &expects, &HOT_SHOTS_CHECKS);
}

#[test]
fn node_hot_shots_over_unix_datagrams_shows_every_call_in_metrics() {
    let Some(run) = run(Client::HotShots, Transport::UnixDatagram) else {
        return;
    };
    let mut expects = hot_shots_metrics();
    expects.extend(in_order());
    expects.extend(line_counts(
        Transport::UnixDatagram,
        22.0,
        &[("negative_counter", 1.0)],
    ));
    expects.extend(datagrams(Transport::UnixDatagram, 22.0));
    check(&run, &expects, &HOT_SHOTS_CHECKS);
}

/// The service checks the `datadog` script reports.
const DATADOG_CHECKS: [&str; 3] = ["db.reachable", "cache.reachable", "queue.reachable"];
/// The service checks the `hot-shots` script reports.
const HOT_SHOTS_CHECKS: [&str; 2] = ["db.reachable", "queue.reachable"];
