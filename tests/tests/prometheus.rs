//! The exposition as Prometheus itself reads it: `promtool check metrics` on a scrape that holds
//! every family the agent can emit, and a real Prometheus server that scrapes the agent and
//! answers queries about what was sent.

use heartwire_tests::agent::{Agent, Scrape};
use heartwire_tests::expect::{
    Expect, absent, assert_all, exact, histogram, settle, unix_now, within,
};
use heartwire_tests::prometheus::{self, Prometheus};

/// Every native verb, sent over UDP in one datagram.
const NATIVE: &str = "job.start nightly-export id=run-1
job.ok nightly-export 12.5 id=run-1
job.start backup
job.error backup 3.5 reason=disk_full exit=2
job.skip cleanup reason=not_leader
job.start crawler
job.progress crawler 25
hb mailer ttl=30 zone=eu
worker.stop mailer
";

/// Outbound calls with and without seconds, and both status words, over a Unix datagram.
const HTTP: &str = "http kick oauth/token 401 0.21
http kick channels 429
http stripe charges timeout
http s3 put network 1.5
";

/// Every StatsD type, over TCP.
const STATSD: &str = "e2e.count:3|c|#env:prod,canary
e2e.count:1|c|@2|#env:prod,canary
e2e.level:7|g
e2e.level:+3|g
e2e.timer:250|ms
e2e.hist:3|h|#route:/api
e2e.dist:0.5|d
e2e.set:a|s
e2e.set:b|s
e2e.set:a|s
e2e.big:1e308|g
e2e.big:+1e308|g
";

/// An event and a service check, through `POST /ingest`.
const DOGSTATSD: &str = "_e{6,6}:Deploy|v1.2.3|t:warning
_sc|e2e.check|1|m:slow
";

/// A session's first line, then a metric, over the Unix stream socket.
const SESSION: &str = "hello app=billing pid=42
e2e.stream:1|c
";

/// Five bad lines, each rejected for another reason, then a good line, in one UDP datagram.
const BAD: &str = "job.okk nightly
x:1|q
x:1|c|@0
nan.gauge:NaN|g
e2e.neg:-1|c
e2e.after.bad:1|c
";

/// Every family the agent can emit once it has seen the lines above, with its type.
///
/// `process_virtual_memory_max_bytes` is left out: the process collector only writes it when
/// the address space is limited (`RLIMIT_AS`), which depends on the machine, not the agent.
const FAMILIES: [(&str, &str); 49] = [
    ("heartwire_job_runs_total", "counter"),
    ("heartwire_job_duration_seconds", "histogram"),
    ("heartwire_job_last_success_timestamp_seconds", "gauge"),
    ("heartwire_job_last_run_timestamp_seconds", "gauge"),
    ("heartwire_job_running", "gauge"),
    ("heartwire_job_progress_total", "counter"),
    ("heartwire_job_last_progress_timestamp_seconds", "gauge"),
    ("heartwire_external_http_total", "counter"),
    ("heartwire_external_http_duration_seconds", "histogram"),
    ("heartwire_worker_last_heartbeat_timestamp_seconds", "gauge"),
    ("heartwire_service_check_status", "gauge"),
    ("heartwire_service_check_last_timestamp_seconds", "gauge"),
    ("heartwire_events_total", "counter"),
    ("heartwire_lines_received_total", "counter"),
    ("heartwire_lines_rejected_total", "counter"),
    ("heartwire_lines_unknown_fields_total", "counter"),
    ("heartwire_sample_rates_clamped_total", "counter"),
    ("heartwire_samples_non_finite_total", "counter"),
    ("heartwire_datagrams_received_total", "counter"),
    ("heartwire_bytes_received_total", "counter"),
    ("heartwire_datagrams_dropped_total", "counter"),
    ("heartwire_bytes_dropped_total", "counter"),
    ("heartwire_kernel_drops_total", "counter"),
    ("heartwire_receive_buffer_bytes", "gauge"),
    ("heartwire_connections_opened_total", "counter"),
    ("heartwire_connections_closed_total", "counter"),
    ("heartwire_connections", "gauge"),
    ("heartwire_open_starts_evicted_total", "counter"),
    ("heartwire_set_members_dropped_total", "counter"),
    ("heartwire_series", "gauge"),
    ("heartwire_series_dropped_total", "counter"),
    ("heartwire_series_conflicts_total", "counter"),
    ("heartwire_build_info", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_start_time_seconds", "gauge"),
    ("process_threads", "gauge"),
    ("e2e_count_total", "counter"),
    ("e2e_level", "gauge"),
    ("e2e_timer", "histogram"),
    ("e2e_hist", "histogram"),
    ("e2e_dist", "histogram"),
    ("e2e_set", "gauge"),
    ("e2e_big", "gauge"),
    ("e2e_stream_total", "counter"),
    ("e2e_after_bad_total", "counter"),
];

/// Cumulative bucket counts of one sample, by the first default bucket it falls in
/// (`DEFAULT_LE` order: 0 is le=0.005, 11 is +Inf).
fn one_sample_in(bucket: usize) -> [f64; 12] {
    let mut counts = [0.0; 12];
    counts[bucket..].fill(1.0);
    counts
}

/// What the native job lines must produce.
fn job_values() -> Vec<Expect> {
    let runs = |job, result, count| {
        exact(
            "heartwire_job_runs_total",
            &[("job", job), ("result", result)],
            count,
        )
    };
    let mut expects = vec![
        runs("nightly-export", "ok", 1.0),
        runs("nightly-export", "error", 0.0),
        runs("backup", "ok", 0.0),
        runs("backup", "error", 1.0),
        runs("cleanup", "skipped", 1.0),
        // crawler was started and never ended; the others ended
        exact("heartwire_job_running", &[("job", "crawler")], 1.0),
        exact("heartwire_job_running", &[("job", "nightly-export")], 0.0),
        exact("heartwire_job_running", &[("job", "backup")], 0.0),
        exact("heartwire_job_progress_total", &[("job", "crawler")], 25.0),
        absent(
            "heartwire_job_last_success_timestamp_seconds",
            &[("job", "backup")],
        ),
    ];
    // 12.5 s is beyond every bound; 3.5 s falls in le=5
    expects.extend(histogram(
        "heartwire_job_duration_seconds",
        &[("job", "nightly-export")],
        one_sample_in(11),
        12.5,
    ));
    expects.extend(histogram(
        "heartwire_job_duration_seconds",
        &[("job", "backup")],
        one_sample_in(9),
        3.5,
    ));
    expects
}

/// What the `http` lines must produce.
fn http_values() -> Vec<Expect> {
    let call = |service, endpoint, status| {
        exact(
            "heartwire_external_http_total",
            &[
                ("service", service),
                ("endpoint", endpoint),
                ("status_code", status),
            ],
            1.0,
        )
    };
    let mut expects = vec![
        call("kick", "oauth/token", "401"),
        call("kick", "channels", "429"),
        call("stripe", "charges", "timeout"),
        call("s3", "put", "network"),
        // a call without seconds has no duration
        absent(
            "heartwire_external_http_duration_seconds_count",
            &[("service", "kick"), ("endpoint", "channels")],
        ),
    ];
    // 0.21 s in le=0.25; 1.5 s in le=2.5
    expects.extend(histogram(
        "heartwire_external_http_duration_seconds",
        &[("service", "kick"), ("endpoint", "oauth/token")],
        one_sample_in(5),
        0.21,
    ));
    expects.extend(histogram(
        "heartwire_external_http_duration_seconds",
        &[("service", "s3"), ("endpoint", "put")],
        one_sample_in(8),
        1.5,
    ));
    expects
}

/// What the StatsD and DogStatsD lines must produce.
fn statsd_values() -> Vec<Expect> {
    let mut expects = vec![
        // the bare tag `canary` is the label canary="true"; @2 counts as @1 (clamped)
        exact(
            "e2e_count_total",
            &[("canary", "true"), ("env", "prod")],
            4.0,
        ),
        exact("e2e_level", &[], 10.0),
        exact("e2e_set", &[], 2.0),
        // the second sample would make it infinite: ignored and counted
        exact("e2e_big", &[], 1e308),
        exact("e2e_stream_total", &[], 1.0),
        exact("e2e_after_bad_total", &[], 1.0),
        absent("e2e_neg_total", &[]),
        exact("heartwire_events_total", &[("alert_type", "warning")], 1.0),
        exact(
            "heartwire_service_check_status",
            &[("check", "e2e.check")],
            1.0,
        ),
    ];
    // 250 ms is 0.25 s, on the le=0.25 bound; 3 in le=5; 0.5 on le=0.5
    expects.extend(histogram("e2e_timer", &[], one_sample_in(5), 0.25));
    expects.extend(histogram(
        "e2e_hist",
        &[("route", "/api")],
        one_sample_in(9),
        3.0,
    ));
    expects.extend(histogram("e2e_dist", &[], one_sample_in(6), 0.5));
    expects
}

/// What the agent must count about the lines themselves.
fn self_metric_values() -> Vec<Expect> {
    let mut expects = vec![
        // `zone=` on `hb`, `@2`, and `+1e308` on top of 1e308
        exact("heartwire_lines_unknown_fields_total", &[], 1.0),
        exact("heartwire_sample_rates_clamped_total", &[], 1.0),
        exact("heartwire_samples_non_finite_total", &[], 1.0),
        exact(
            "heartwire_connections_opened_total",
            &[("transport", "unix")],
            1.0,
        ),
    ];
    for (transport, lines) in [
        ("udp", 15.0),
        ("unixgram", 4.0),
        ("tcp", 12.0),
        ("unix", 2.0),
        ("http", 2.0),
    ] {
        expects.push(exact(
            "heartwire_lines_received_total",
            &[("transport", transport)],
            lines,
        ));
    }
    for (reason, count) in [
        ("too_long", 0.0),
        ("invalid_utf8", 0.0),
        ("unknown_verb", 1.0),
        ("missing_field", 0.0),
        ("invalid_name", 0.0),
        ("invalid_value", 1.0),
        ("negative_counter", 1.0),
        ("invalid_type", 1.0),
        ("invalid_sample_rate", 1.0),
        ("invalid_tag", 0.0),
        ("invalid_field", 0.0),
        ("malformed", 0.0),
    ] {
        expects.push(exact(
            "heartwire_lines_rejected_total",
            &[("reason", reason)],
            count,
        ));
    }
    expects
}

/// The values the lines above must produce, written out from the lines.
fn every_family_values() -> Vec<Expect> {
    [
        job_values(),
        http_values(),
        statsd_values(),
        self_metric_values(),
    ]
    .concat()
}

/// Sends every kind of line the agent knows over every transport.
fn send_every_kind_of_line(agent: &Agent) {
    agent.send_udp(NATIVE.as_bytes());
    agent.send_unix_datagram(HTTP.as_bytes());
    agent.send_tcp(STATSD.as_bytes());
    assert_eq!(agent.post_ingest(DOGSTATSD), 202, "POST /ingest");
    agent.send_unix_stream(SESSION.as_bytes());
    agent.send_udp(BAD.as_bytes());
}

/// The `# TYPE` lines of an exposition, in order.
fn declared_types(scrape: &Scrape) -> Vec<(String, String)> {
    scrape
        .text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_owned(), kind.to_owned()))
        .collect()
}

/// Whether the scrape holds a sample of `family` (for a histogram, of its `_bucket`).
fn has_samples(scrape: &Scrape, family: &str, kind: &str) -> bool {
    let sample = match kind {
        "histogram" => format!("{family}_bucket"),
        _ => family.to_owned(),
    };
    scrape.samples.iter().any(|s| s.name == sample)
}

/// The times the agent took for the lines above, all between `started` and `now`.
fn every_family_timestamps(started: f64, now: f64) -> Vec<Expect> {
    [
        (
            "heartwire_job_last_success_timestamp_seconds",
            ("job", "nightly-export"),
        ),
        (
            "heartwire_job_last_run_timestamp_seconds",
            ("job", "nightly-export"),
        ),
        (
            "heartwire_job_last_run_timestamp_seconds",
            ("job", "backup"),
        ),
        (
            "heartwire_job_last_progress_timestamp_seconds",
            ("job", "crawler"),
        ),
        (
            "heartwire_worker_last_heartbeat_timestamp_seconds",
            ("worker", "mailer"),
        ),
        (
            "heartwire_service_check_last_timestamp_seconds",
            ("check", "e2e.check"),
        ),
    ]
    .into_iter()
    .map(|(name, label)| within(name, &[label], started, now))
    .collect()
}

/// Asserts that every family of [`FAMILIES`] is declared exactly once, with its type, and has
/// a sample.
#[track_caller]
fn assert_every_family(scrape: &Scrape) {
    let declared = declared_types(scrape);
    let mut missing = Vec::new();
    for (family, kind) in FAMILIES {
        let types: Vec<&str> = declared
            .iter()
            .filter(|(name, _)| name == family)
            .map(|(_, k)| k.as_str())
            .collect();
        let sampled = has_samples(scrape, family, kind);
        if types != [kind] || !sampled {
            missing.push(format!(
                "{family} ({kind}): declared as {types:?}, has a sample: {sampled}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "families not in the scrape once with their type and a sample:\n  {}\n{scrape}",
        missing.join("\n  ")
    );
}

#[test]
fn promtool_passes_a_scrape_that_holds_every_family() {
    let Some(promtool) = prometheus::tool_or_skip("promtool") else {
        return;
    };
    let agent = Agent::start();
    let started = unix_now();
    send_every_kind_of_line(&agent);
    let scrape = settle(&agent, &every_family_values());
    assert_all(&scrape, &every_family_timestamps(started, unix_now()));
    if let Err(complaint) = prometheus::check_metrics(&promtool, &scrape.text) {
        panic!("{complaint}\nthe exposition:\n{scrape}");
    }
    assert_every_family(&scrape);
    // Like every other self-metric, the kernel's drop count shows 0 before the first drop, so
    // that `rate()` and `increase()` have a series to work on from the start.
    assert_all(
        &scrape,
        &[
            exact("heartwire_kernel_drops_total", &[("listener", "udp")], 0.0),
            exact(
                "heartwire_kernel_drops_total",
                &[("listener", "unix_datagram")],
                0.0,
            ),
        ],
    );
}

#[test]
fn a_real_prometheus_scrapes_the_agent_and_answers_queries() {
    let agent = Agent::start();
    agent.send_udp(b"e2e.sent:42|c|#env:prod");
    // Ten 200 ms timings: all in the (0.1, 0.25] bucket.
    agent.send_tcp("e2e.latency:200|ms\n".repeat(10).as_bytes());
    settle(
        &agent,
        &[
            exact("e2e_sent_total", &[("env", "prod")], 42.0),
            exact("e2e_latency_count", &[], 10.0),
        ],
    );
    let Some(prometheus) = Prometheus::start(agent.address("http")) else {
        return;
    };
    let one = |value: f64| {
        move |samples: &[prometheus::QuerySample]| samples.len() == 1 && samples[0].value == value
    };
    prometheus.wait_for(r#"up{job="heartwire"}"#, "1 (the target is up)", one(1.0));
    let sent = prometheus.wait_for(
        r#"e2e_sent_total{env="prod"}"#,
        "the 42 that was sent",
        one(42.0),
    );
    assert_eq!(
        sent[0].labels.get("job").map(String::as_str),
        Some("heartwire")
    );

    agent.send_udp(b"e2e.sent:58|c|#env:prod");
    prometheus.wait_for(
        r#"e2e_sent_total{env="prod"}"#,
        "100 after 58 more",
        one(100.0),
    );
    // Every sample of the last minute is in the window, 42 then 100: the increase Prometheus
    // extrapolates is at least the 58 it saw, so the per-second rate is at least 58 / 60.
    prometheus.wait_for(
        r#"rate(e2e_sent_total{env="prod"}[1m])"#,
        "at least 58/60 per second",
        |samples| {
            samples.len() == 1 && samples[0].value.is_finite() && samples[0].value >= 58.0 / 60.0
        },
    );
    // The median of ten samples in (0.1, 0.25], interpolated in that bucket: 0.1 + 0.15 × 5/10.
    prometheus.wait_for(
        "histogram_quantile(0.5, sum by (le) (e2e_latency_bucket))",
        "0.175",
        |samples| samples.len() == 1 && (samples[0].value - 0.175).abs() < 1e-9,
    );
}
