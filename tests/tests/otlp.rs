//! OTLP export against a real receiver built from the official protobuf definitions
//! (`heartwire_tests::otlp_receiver`): what arrives over gRPC and over HTTP/protobuf, set in the
//! config file or by the standard `OTEL_*` variables, and what the agent does while the collector
//! is absent, failing or hanging.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// a test fails by panicking
// The figures measured during a fault are printed for `--nocapture` runs; nothing asserts them.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartwire_tests::agent::{Agent, DEADLINE, Scrape};
use heartwire_tests::otlp_receiver::{
    self as otlp, Behaviour, Export, Protocol, Receiver, gauge_point, histogram_point, sum_point,
    value,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, metric::Data};

/// A counter, a gauge, a timer (a histogram in seconds) and a run of a configured job.
const EVENTS: &[u8] =
    b"page.views:3|c|#env:prod\nqueue.depth:7|g\nrender.time:250|ms\njob.ok nightly 0.3\n";
/// The StatsD buckets of the default config.
const STATSD_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// A configured job, so that the health gauges exist.
const JOBS: &str = "jobs:\n  nightly:\n    every: 1h\n";
/// The pod identity, as the chart passes it.
const POD_ENV: [(&str, &str); 5] = [
    ("OTEL_SERVICE_NAME", "checkout"),
    (
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=test,team=payments",
    ),
    ("K8S_POD_NAME", "checkout-7d9f"),
    ("K8S_NAMESPACE_NAME", "shop"),
    ("K8S_NODE_NAME", "node-1"),
];

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// The `otlp:` section for `receiver` and `protocol`, plus `more` keys.
fn otlp_section(receiver: &Receiver, protocol: Protocol, more: &str) -> String {
    format!(
        "otlp:\n  endpoint: \"{}\"\n  protocol: {}\n{more}",
        receiver.endpoint(),
        protocol.name()
    )
}

#[test]
fn grpc_export_carries_every_family_with_its_type_values_and_the_pod_identity() {
    let receiver = Receiver::start(Protocol::Grpc);
    let section = otlp_section(
        &receiver,
        Protocol::Grpc,
        "  interval: 200ms\n  timeout: 2s\n  compression: gzip\n  headers: { X-Tenant: heartwire-test }\n",
    );
    let before_start = unix_nanos(SystemTime::now());
    let agent = Agent::start_with_env(&format!("{JOBS}{section}"), &POD_ENV);
    let exports = exports_with_events(&agent, &receiver);
    assert_everything_arrived(&agent, &exports, before_start);
    let last = exports.last().unwrap();
    assert_eq!(
        last.headers.get("x-tenant").map(String::as_str),
        Some("heartwire-test")
    );
    assert_eq!(
        last.headers.get("grpc-encoding").map(String::as_str),
        Some("gzip")
    );
}

#[test]
fn http_export_is_configured_by_the_standard_environment_alone() {
    let receiver = Receiver::start(Protocol::Http);
    // No `otlp:` section: the endpoint variable turns the export on, and the generic endpoint is
    // a base URL that gets /v1/metrics.
    let base = receiver.base_url();
    let mut env = POD_ENV.to_vec();
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-tenant=heartwire%20test,x-other=1",
        ),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ]);
    let before_start = unix_nanos(SystemTime::now());
    let agent = Agent::start_with_env(JOBS, &env);
    let exports = exports_with_events(&agent, &receiver);
    assert_everything_arrived(&agent, &exports, before_start);
    let last = exports.last().unwrap();
    assert_eq!(
        last.headers.get("x-tenant").map(String::as_str),
        Some("heartwire test")
    );
    assert_eq!(last.headers.get("x-other").map(String::as_str), Some("1"));
    assert_eq!(
        last.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    assert_eq!(
        last.headers.get("content-type").map(String::as_str),
        Some("application/x-protobuf")
    );
}

#[test]
fn http_export_from_the_config_file_wins_over_the_environment() {
    let receiver = Receiver::start(Protocol::Http);
    let section = otlp_section(&receiver, Protocol::Http, "  interval: 200ms\n");
    let mut env = POD_ENV.to_vec();
    // Nothing listens there: only the config file's endpoint can receive anything.
    env.extend([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]);
    let before_start = unix_nanos(SystemTime::now());
    let agent = Agent::start_with_env(&format!("{JOBS}{section}"), &env);
    let exports = exports_with_events(&agent, &receiver);
    assert_everything_arrived(&agent, &exports, before_start);
    assert!(
        !exports
            .last()
            .unwrap()
            .headers
            .contains_key("content-encoding")
    );
}

/// Sends [`EVENTS`] and returns the exports received up to the second one that holds them.
fn exports_with_events(agent: &Agent, receiver: &Receiver) -> Vec<Export> {
    agent.send_udp(EVENTS);
    agent.wait_for_all(&[
        ("page_views_total", &[("env", "prod")], 3.0),
        ("queue_depth", &[], 7.0),
        ("render_time_count", &[], 1.0),
        (
            "heartwire_job_runs_total",
            &[("job", "nightly"), ("result", "ok")],
            1.0,
        ),
    ]);
    receiver.wait_until("two exports holding the events", |exports| {
        exports.iter().filter(|e| holds_events(&e.request)).count() >= 2
    })
}

fn holds_events(request: &ExportMetricsServiceRequest) -> bool {
    let counter = sum_point(request, "page_views_total", &[("env", "prod")]);
    let timer = histogram_point(request, "render_time", &[]);
    counter.is_some_and(|point| value(point) == 3.0) && timer.is_some_and(|point| point.count == 1)
}

fn assert_everything_arrived(agent: &Agent, exports: &[Export], before_start: u64) {
    let first = &exports[0].request;
    let last = &exports.last().unwrap().request;
    assert_types_and_values(last);
    assert_same_families_as_metrics(&agent.scrape(), last);
    assert_resource(last);
    assert_stable_start_times(exports, before_start);
    let scope = last.resource_metrics[0].scope_metrics[0]
        .scope
        .as_ref()
        .unwrap();
    assert_eq!(scope.name, "heartwire");
    assert!(first.resource_metrics.len() == 1, "one resource per export");
}

#[track_caller]
fn assert_types_and_values(request: &ExportMetricsServiceRequest) {
    // A StatsD counter: a monotonic cumulative sum, its tag as an attribute.
    let metric = otlp::metric(request, "page_views_total").expect("page_views_total");
    let Some(Data::Sum(sum)) = &metric.data else {
        panic!("page_views_total is not a sum: {metric:?}")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(metric.description, "StatsD counter page.views.");
    // A StatsD gauge.
    let depth = gauge_point(request, "queue_depth", &[]).expect("queue_depth is a gauge");
    assert_eq!(value(depth), 7.0);
    // A StatsD timer: the same buckets as /metrics, 250 ms in the 0.25 s bucket.
    let timer = histogram_point(request, "render_time", &[]).expect("render_time is a histogram");
    assert_eq!(timer.explicit_bounds, STATSD_BOUNDS);
    let mut expected = vec![0; STATSD_BOUNDS.len() + 1];
    expected[5] = 1;
    assert_eq!(timer.bucket_counts, expected);
    assert_eq!((timer.count, timer.sum), (1, Some(0.25)));
    // The job: runs by result, its duration, its health verdict.
    let runs = sum_point(
        request,
        "heartwire_job_runs_total",
        &[("job", "nightly"), ("result", "ok")],
    );
    assert_eq!(runs.map(value), Some(1.0));
    let duration = histogram_point(
        request,
        "heartwire_job_duration_seconds",
        &[("job", "nightly")],
    )
    .expect("the job's duration histogram");
    assert_eq!((duration.count, duration.sum), (1, Some(0.3)));
    assert_eq!(
        duration.bucket_counts[6], 1,
        "0.3 s lies in the 0.5 s bucket"
    );
    let stale = gauge_point(request, "heartwire_job_stale", &[("job", "nightly")]);
    assert_eq!(stale.map(value), Some(0.0));
    // Self-metrics from the agent's registry.
    let lines = sum_point(
        request,
        "heartwire_lines_received_total",
        &[("transport", "udp")],
    );
    assert!(lines.map(value).unwrap_or(0.0) >= 4.0, "{lines:?}");
    let build = gauge_point(request, "heartwire_build_info", &[("version", "0.1.0")]);
    assert_eq!(build.map(value), Some(1.0));
    assert!(otlp::metric(request, "heartwire_otlp_exports_total").is_some());
}

/// Every family `/metrics` shows (with at least one sample) is exported, with the matching type.
#[track_caller]
fn assert_same_families_as_metrics(scrape: &Scrape, request: &ExportMetricsServiceRequest) {
    let exposed = families_with_samples(&scrape.text);
    let exported: BTreeMap<String, &'static str> = otlp::metrics(request)
        .map(|metric| {
            let kind = match &metric.data {
                Some(Data::Sum(sum)) if sum.is_monotonic => "counter",
                Some(Data::Gauge(_)) => "gauge",
                Some(Data::Histogram(_)) => "histogram",
                Some(Data::Summary(_)) => "summary",
                other => panic!("{} has unexpected data {other:?}", metric.name),
            };
            (metric.name.clone(), kind)
        })
        .collect();
    let exposed: BTreeMap<String, &str> = exposed
        .iter()
        .map(|(n, k)| (n.clone(), k.as_str()))
        .collect();
    assert_eq!(exported, exposed, "OTLP and /metrics differ");
    for (name, labels) in [
        ("page_views_total", &[("env", "prod")][..]),
        ("queue_depth", &[]),
        (
            "heartwire_job_runs_total",
            &[("job", "nightly"), ("result", "ok")],
        ),
    ] {
        let point = sum_point(request, name, labels).or_else(|| gauge_point(request, name, labels));
        assert_eq!(point.map(value), scrape.value(name, labels), "{name}");
    }
}

/// `# TYPE` lines of families followed by at least one sample.
fn families_with_samples(text: &str) -> BTreeMap<String, String> {
    let mut families = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap();
            current = Some((name.to_owned(), kind.to_owned()));
        } else if !line.starts_with('#')
            && !line.is_empty()
            && let Some((name, kind)) = &current
        {
            families.insert(name.clone(), kind.clone());
        }
    }
    families
}

#[track_caller]
fn assert_resource(request: &ExportMetricsServiceRequest) {
    let resource = otlp::resource(request);
    for (key, value) in [
        ("service.name", "checkout"),
        ("deployment.environment", "test"),
        ("team", "payments"),
        ("k8s.pod.name", "checkout-7d9f"),
        ("k8s.namespace.name", "shop"),
        ("k8s.node.name", "node-1"),
    ] {
        assert_eq!(
            resource.get(key).map(String::as_str),
            Some(value),
            "{key} in {resource:?}"
        );
    }
}

/// Every cumulative series of the first export starts at one instant, the agent's start (after
/// `before_start`, before the export); a series keeps its start on every later export.
#[track_caller]
fn assert_stable_start_times(exports: &[Export], before_start: u64) {
    let starts = |request: &ExportMetricsServiceRequest| -> BTreeMap<String, (u64, u64)> {
        let mut starts = BTreeMap::new();
        for metric in otlp::metrics(request) {
            let points: Vec<(String, u64, u64)> = match &metric.data {
                Some(Data::Sum(sum)) => sum
                    .data_points
                    .iter()
                    .map(|p| {
                        (
                            format!("{:?}", otlp::attributes(&p.attributes)),
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                        )
                    })
                    .collect(),
                Some(Data::Histogram(histogram)) => histogram
                    .data_points
                    .iter()
                    .map(|p| {
                        (
                            format!("{:?}", otlp::attributes(&p.attributes)),
                            p.start_time_unix_nano,
                            p.time_unix_nano,
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (labels, start, time) in points {
                starts.insert(format!("{}{labels}", metric.name), (start, time));
            }
        }
        starts
    };
    let first = starts(&exports[0].request);
    let agent_start: Vec<u64> = first.values().map(|(start, _)| *start).collect();
    assert!(!agent_start.is_empty());
    assert!(
        agent_start.iter().all(|start| *start == agent_start[0]),
        "one start in the first export: {first:?}"
    );
    let (start, time) = first.values().next().copied().unwrap();
    assert!(
        before_start <= start && start < time,
        "{before_start} <= {start} < {time}"
    );
    let mut previous = first;
    for export in &exports[1..] {
        let current = starts(&export.request);
        for (series, (start, _)) in &current {
            if let Some((earlier, _)) = previous.get(series) {
                assert_eq!(start, earlier, "{series} changed its start time");
            }
        }
        previous = current;
    }
}

#[test]
fn sigterm_pushes_the_final_state_once() {
    let receiver = Receiver::start(Protocol::Http);
    // An interval no test waits for: only the final export can arrive.
    let section = otlp_section(&receiver, Protocol::Http, "  interval: 1h\n  timeout: 2s\n");
    let agent = Agent::start_with(&format!("{JOBS}{section}"));
    agent.send_udp(EVENTS);
    agent.wait_for("page_views_total", &[("env", "prod")], 3.0);
    assert_eq!(receiver.requests(), 0);
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let exports = receiver.exports();
    assert_eq!(exports.len(), 1, "one final export; log:\n{log}");
    assert!(holds_events(&exports[0].request));
    assert!(log.contains("final OTLP export"), "{log}");
}

/// `heartwire_otlp_exports_total{result}` as `/metrics` shows it.
fn exports_counted(scrape: &Scrape, result: &str) -> f64 {
    scrape
        .value("heartwire_otlp_exports_total", &[("result", result)])
        .unwrap_or(0.0)
}

fn recovers_when_the_collector_comes_up_late(protocol: Protocol) {
    let receiver = Receiver::reserve(protocol);
    let section = otlp_section(&receiver, protocol, "  interval: 200ms\n  timeout: 1s\n");
    let agent = Agent::start_with(&section);
    agent.wait_until("an export counted as unavailable", |scrape| {
        exports_counted(scrape, "unavailable") >= 1.0
    });
    assert_eq!(exports_counted(&agent.scrape(), "success"), 0.0);
    receiver.listen();
    receiver.wait_until("an export after the collector came up", |exports| {
        !exports.is_empty()
    });
    let scrape = agent.wait_until("a successful export counted", |scrape| {
        exports_counted(scrape, "success") >= 1.0
    });
    let last_success = scrape
        .value("heartwire_otlp_last_success_timestamp_seconds", &[])
        .unwrap();
    assert!(last_success > 1.6e9, "{last_success}");
}

#[test]
fn grpc_export_recovers_when_the_collector_comes_up_after_the_agent() {
    recovers_when_the_collector_comes_up_late(Protocol::Grpc);
}

#[test]
fn http_export_recovers_when_the_collector_comes_up_after_the_agent() {
    recovers_when_the_collector_comes_up_late(Protocol::Http);
}

fn errors_are_counted_and_only_transient_ones_retried(protocol: Protocol) {
    let receiver = Receiver::start(protocol);
    receiver.set_behaviour(Behaviour::Unavailable);
    // The first retry comes after a second or a little more, within the 2 s interval; the
    // second would not, so each export is tried twice and then counted.
    let section = otlp_section(&receiver, protocol, "  interval: 2s\n  timeout: 1s\n");
    let agent = Agent::start_with(&section);
    let scrape = agent.wait_until("an unavailable export, retried", |scrape| {
        exports_counted(scrape, "unavailable") >= 1.0
            && scrape.value("heartwire_otlp_export_retries_total", &[]) >= Some(1.0)
    });
    assert_eq!(exports_counted(&scrape, "success"), 0.0);
    assert!(receiver.requests() >= 2);

    receiver.set_behaviour(Behaviour::Reject);
    let scrape = agent.wait_until("a rejected export", |scrape| {
        exports_counted(scrape, "rejected") >= 1.0
    });
    let rejected = exports_counted(&scrape, "rejected");
    let retries = scrape
        .value("heartwire_otlp_export_retries_total", &[])
        .unwrap();
    let requests = receiver.requests();
    let scrape = agent.wait_until("two more rejected exports", |scrape| {
        exports_counted(scrape, "rejected") >= rejected + 2.0
    });
    let more = exports_counted(&scrape, "rejected") - rejected;
    assert_eq!(
        scrape.value("heartwire_otlp_export_retries_total", &[]),
        Some(retries),
        "a rejection is final: no retries"
    );
    // One request per rejected export, give or take the one in flight at either reading.
    let sent = (receiver.requests() - requests) as f64;
    assert!(
        (sent - more).abs() <= 1.0,
        "{sent} requests for {more} exports"
    );
    assert!(receiver.exports().is_empty());
}

#[test]
fn grpc_errors_are_counted_and_only_unavailable_is_retried() {
    errors_are_counted_and_only_transient_ones_retried(Protocol::Grpc);
}

#[test]
fn http_errors_are_counted_and_only_503_is_retried() {
    errors_are_counted_and_only_transient_ones_retried(Protocol::Http);
}

/// While the collector hangs, every line sent shows up in a successful scrape, and the agent
/// still stops promptly on SIGTERM.
fn a_hanging_collector_never_slows_ingest_or_scrapes(protocol: Protocol) {
    let receiver = Receiver::start(protocol);
    receiver.set_behaviour(Behaviour::Hang);
    let section = otlp_section(&receiver, protocol, "  interval: 300ms\n  timeout: 500ms\n");
    let agent = Agent::start_with(&section);
    let started = Instant::now();
    while receiver.requests() == 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "no request reached the receiver"
        );
        thread::sleep(Duration::from_millis(10));
    }
    let mut sent = 0.0;
    let mut slowest = Duration::ZERO;
    let mut scrapes = 0;
    loop {
        agent.send_udp(b"hang.probe:1|c\n");
        sent += 1.0;
        let began = Instant::now();
        // Every scrape on the way must answer 200 with a valid exposition (`scrape` panics
        // otherwise) and the count must reach what was sent.
        let scrape = agent.wait_for("hang_probe_total", &[], sent);
        slowest = slowest.max(began.elapsed());
        scrapes += 1;
        if exports_counted(&scrape, "timeout") >= 3.0 && sent >= 50.0 {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "fewer than 3 timed-out exports counted"
        );
    }
    assert_eq!(exports_counted(&agent.scrape(), "success"), 0.0);
    eprintln!(
        "{protocol:?}: during the hang {scrapes} lines were each seen in /metrics, slowest send-to-scrape {slowest:?}; {} requests hung",
        receiver.requests()
    );
    let stopping = Instant::now();
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("final OTLP export"), "{log}");
    eprintln!(
        "{protocol:?}: stopped {:?} after SIGTERM with the collector hanging",
        stopping.elapsed()
    );
}

#[test]
fn a_hanging_grpc_collector_never_slows_ingest_or_scrapes() {
    a_hanging_collector_never_slows_ingest_or_scrapes(Protocol::Grpc);
}

#[test]
fn a_hanging_http_collector_never_slows_ingest_or_scrapes() {
    a_hanging_collector_never_slows_ingest_or_scrapes(Protocol::Http);
}

#[test]
fn a_tls_endpoint_is_refused_at_startup_with_the_fix() {
    let failure = Agent::try_start(|dir| {
        format!(
            "{}otlp:\n  endpoint: https://collector:4318\n",
            heartwire_tests::agent::all_listeners(dir)
        )
    })
    .expect_err("an https endpoint cannot be used");
    assert!(failure.log.contains("otlp: endpoint"), "{}", failure.log);
    assert!(failure.log.contains("no TLS"), "{}", failure.log);
}

#[test]
fn a_bad_standard_variable_is_named_at_startup() {
    let failure = Agent::try_start_env(
        heartwire_tests::agent::all_listeners,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ],
    )
    .expect_err("http/json is not supported");
    assert!(
        failure.log.contains("OTEL_EXPORTER_OTLP_PROTOCOL"),
        "{}",
        failure.log
    );
}
