//! OTLP export checked by an independent decoder: a receiver in Python built from the official
//! protobuf definitions (`opentelemetry-proto` and `grpcio` from PyPI,
//! `tests/peers/python/otlp_receiver.py`), over gRPC and over HTTP/protobuf. The receiver writes
//! each request it decoded as a JSON line (the protobuf JSON mapping), and the test checks what
//! Python understood: temporality and the monotonic flag, start times, histogram bounds and
//! counts, the resource, what happens while the receiver is down (ingest goes on, failures are
//! counted, the exports resume with the new values), and the new start after an agent restart.
//!
//! Without the Python peers the tests skip loudly, unless `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// a test fails by panicking

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartwire_tests::agent::{Agent, Scrape};
use heartwire_tests::peers::{REQUIRE_PEERS, peers_dir, peers_required};
use serde_json::Value;

/// Generous: the receiver is a Python process, and a debug build of the agent is slow.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

/// A configured job, so that `job.ok` records a run and its duration.
const JOBS: &str = "jobs:\n  nightly:\n    every: 1h\n";
/// The job duration buckets the agent is configured with, and which the export must carry.
const JOB_BOUNDS: [f64; 3] = [0.1, 0.5, 2.0];
/// A counter, a gauge and a job run of 0.3 s.
const EVENTS: &[u8] = b"orders.placed:2|c\nqueue.depth:7|g\njob.ok nightly 0.3\n";
const POD_ENV: [(&str, &str); 2] = [
    ("OTEL_SERVICE_NAME", "checkout"),
    ("K8S_POD_NAME", "checkout-7d9f"),
];
const CUMULATIVE: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Grpc,
    Http,
}

impl Protocol {
    /// As the receiver script and the agent's `otlp.protocol` spell it.
    fn script_name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }

    fn config_name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http/protobuf",
        }
    }
}

/// The venv's Python, if it can import the receiver's modules; else a loud skip (`None`), or a
/// panic under `HEARTWIRE_REQUIRE_PEERS=1`.
fn python_or_skip() -> Option<PathBuf> {
    let python = peers_dir().join(".venv/bin/python3");
    let problem = if python.is_file() {
        let check = Command::new(&python)
            .args([
                "-c",
                "import grpc, google.protobuf.json_format, \
                 opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output();
        match check {
            Ok(output) if output.status.success() => return Some(python),
            Ok(output) => format!(
                "the venv cannot import grpcio and opentelemetry-proto: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
            Err(error) => format!("cannot run {}: {error}", python.display()),
        }
    } else {
        format!("no {}", python.display())
    };
    let message =
        format!("Python OTLP receiver peer not installed: {problem}; run .ci/install-peers.sh");
    assert!(!peers_required(), "{message} ({REQUIRE_PEERS}=1)");
    let notice = format!("\n********** SKIPPED: {message} **********\n\n");
    // Nothing better to do if stderr is gone.
    let _ = io::stderr().write_all(notice.as_bytes());
    None
}

/// The Python receiver, as a child process; killed when dropped.
struct PythonReceiver {
    python: PathBuf,
    protocol: Protocol,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PythonReceiver {
    /// Starts the receiver on a free port below the ephemeral range: no outgoing connection
    /// (the agent's own, retrying while the receiver is down, could connect to itself) or
    /// ephemeral listener takes it while the receiver is down.
    fn start(python: PathBuf, protocol: Protocol) -> PythonReceiver {
        let mut receiver = PythonReceiver {
            python,
            protocol,
            dir: tempfile::tempdir().expect("a temporary directory"),
            port: 0,
            child: None,
        };
        let mut last = String::new();
        for attempt in 0..50 {
            let port = candidate_port(attempt);
            if port != 0 && TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            match receiver.try_launch(port) {
                Ok(()) => return receiver,
                Err(error) => last = error,
            }
        }
        panic!("the Python receiver found no free port; the last attempt:\n{last}");
    }

    /// Starts the stopped receiver again on its port, retrying while the port is not yet free.
    fn restart(&mut self) {
        let started = Instant::now();
        loop {
            match self.try_launch(self.port) {
                Ok(()) => return,
                Err(error) => assert!(
                    started.elapsed() < WAIT,
                    "the Python receiver could not listen on {} again:\n{error}",
                    self.port
                ),
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("requests.jsonl")
    }

    fn ready(&self) -> PathBuf {
        self.dir.path().join("ready")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("receiver.log")
    }

    /// Runs the script on `port` (0: any free port) and waits until it listens; `Err` with its
    /// log if it exits first (the port is taken).
    fn try_launch(&mut self, port: u16) -> Result<(), String> {
        assert!(self.child.is_none(), "the receiver is already running");
        let ready = self.ready();
        if ready.exists() {
            fs::remove_file(&ready).unwrap();
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .unwrap();
        let mut child = Command::new(&self.python)
            .arg(peers_dir().join("python/otlp_receiver.py"))
            .arg(self.protocol.script_name())
            .arg(port.to_string())
            .arg(self.out())
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the Python receiver starts");
        let started = Instant::now();
        while !ready.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "the Python receiver exited ({status}) on port {port}:\n{}",
                    self.log()
                ));
            }
            if started.elapsed() > WAIT {
                // Best effort: the test fails either way.
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the Python receiver did not listen within {WAIT:?}:\n{}",
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
        self.child = Some(child);
        let bound: u16 = fs::read_to_string(&ready).unwrap().trim().parse().unwrap();
        assert!(
            port == 0 || port == bound,
            "listening on {bound}, not {port}"
        );
        self.port = bound;
        Ok(())
    }

    /// Kills the receiver: connections to its port are refused until [`PythonReceiver::restart`].
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is as good as killed.
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// The agent's `otlp.endpoint`.
    fn endpoint(&self) -> String {
        match self.protocol {
            Protocol::Grpc => format!("http://127.0.0.1:{}", self.port),
            Protocol::Http => format!("http://127.0.0.1:{}/v1/metrics", self.port),
        }
    }

    /// Every request decoded so far (complete lines only), oldest first.
    fn requests(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.out()).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|line| {
                let mut entry: Value = serde_json::from_str(line).unwrap();
                assert_eq!(entry["protocol"], self.protocol.script_name());
                entry["request"].take()
            })
            .collect()
    }

    /// Polls the decoded requests until `condition` holds; returns them.
    #[track_caller]
    fn wait_until(
        &self,
        agent: &Agent,
        what: &str,
        condition: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let requests = self.requests();
            if condition(&requests) {
                return requests;
            }
            assert!(
                started.elapsed() < WAIT,
                "timed out waiting for {what}; {} requests decoded, the last:\n{}\nreceiver log:\n{}\nagent log:\n{}",
                requests.len(),
                requests
                    .last()
                    .map(|r| serde_json::to_string_pretty(r).unwrap())
                    .unwrap_or_default(),
                self.log(),
                agent.log()
            );
            thread::sleep(POLL);
        }
    }
}

/// The `attempt`th port to try: spread over the half below the ephemeral range (from the
/// process id and the clock, so that parallel tests pick apart); 0 (any port) if that range is
/// unknown or too small.
fn candidate_port(attempt: u32) -> u16 {
    let low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0)
        .min(u32::from(u16::MAX));
    if low < 4096 {
        return 0;
    }
    let span = low / 2;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let seed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    let offset = seed.wrapping_add(attempt.wrapping_mul(7_919)) % span;
    u16::try_from(low - span + offset).unwrap_or(0)
}

impl Drop for PythonReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

// --- Reading the protobuf JSON mapping ---

fn metrics(request: &Value) -> impl Iterator<Item = &Value> {
    array(&request["resourceMetrics"])
        .iter()
        .flat_map(|resource| array(&resource["scopeMetrics"]))
        .flat_map(|scope| array(&scope["metrics"]))
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn metric<'a>(request: &'a Value, name: &str) -> Option<&'a Value> {
    metrics(request).find(|metric| metric["name"] == name)
}

/// `key → string value` of a list of `KeyValue`s.
fn attributes(list: &Value) -> BTreeMap<String, String> {
    array(list)
        .iter()
        .map(|pair| {
            let value = &pair["value"];
            let text = value["stringValue"]
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            (pair["key"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

/// The data point of `name` (its data of `kind`: `sum`, `gauge`, `histogram`) with exactly
/// `labels` as attributes.
fn point<'a>(
    request: &'a Value,
    name: &str,
    kind: &str,
    labels: &[(&str, &str)],
) -> Option<&'a Value> {
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    array(&metric(request, name)?[kind]["dataPoints"])
        .iter()
        .find(|point| attributes(&point["attributes"]) == wanted)
}

/// A 64-bit integer field: a string in the JSON mapping; absent means 0.
fn uint(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(text) => text.parse().unwrap(),
        other => other.as_u64().unwrap(),
    }
}

/// A `NumberDataPoint`'s value, double or int.
fn number(point: &Value) -> f64 {
    if let Some(double) = point["asDouble"].as_f64() {
        double
    } else if point["asInt"].is_null() {
        // Both absent: a double 0, left out by the mapping.
        0.0
    } else {
        uint(&point["asInt"]) as f64
    }
}

fn counter(request: &Value) -> Option<f64> {
    point(request, "orders_placed_total", "sum", &[]).map(number)
}

fn job_duration(request: &Value) -> Option<&Value> {
    point(
        request,
        "heartwire_job_duration_seconds",
        "histogram",
        &[("job", "nightly")],
    )
}

/// `heartwire_otlp_exports_total` over every result but `success`.
fn failed_exports(scrape: &Scrape) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.name == "heartwire_otlp_exports_total")
        .filter(|sample| {
            !sample
                .labels
                .iter()
                .any(|(name, value)| name == "result" && value == "success")
        })
        .map(|sample| sample.value)
        .sum()
}

fn successful_exports(scrape: &Scrape) -> f64 {
    scrape
        .value("heartwire_otlp_exports_total", &[("result", "success")])
        .unwrap_or(0.0)
}

fn export_to_python(protocol: Protocol) {
    let Some(python) = python_or_skip() else {
        return;
    };
    let mut receiver = PythonReceiver::start(python, protocol);
    let config = format!(
        "{JOBS}buckets:\n  job_duration: [0.1, 0.5, 2]\notlp:\n  endpoint: \"{}\"\n  protocol: {}\n  interval: 200ms\n  timeout: 1s\n",
        receiver.endpoint(),
        protocol.config_name()
    );
    let agent = Agent::start_with_env(&config, &POD_ENV);

    agent.send_udp(EVENTS);
    agent.wait_for_all(&[
        ("orders_placed_total", &[], 2.0),
        ("queue_depth", &[], 7.0),
        (
            "heartwire_job_runs_total",
            &[("job", "nightly"), ("result", "ok")],
            1.0,
        ),
    ]);
    let holds_events = |request: &Value| {
        counter(request) == Some(2.0)
            && job_duration(request).is_some_and(|point| uint(&point["count"]) == 1)
    };
    let requests = receiver.wait_until(&agent, "three exports holding the events", |requests| {
        requests.iter().filter(|r| holds_events(r)).count() >= 3
    });
    let with_events: Vec<&Value> = requests.iter().filter(|r| holds_events(r)).collect();
    let last = *with_events.last().unwrap();

    // The counter: a monotonic cumulative sum.
    let sum = &metric(last, "orders_placed_total").unwrap()["sum"];
    assert_eq!(sum["aggregationTemporality"], CUMULATIVE, "{sum}");
    assert_eq!(sum["isMonotonic"], true, "{sum}");
    // The gauge.
    let depth = point(last, "queue_depth", "gauge", &[]).expect("queue_depth is a gauge");
    assert_eq!(number(depth), 7.0);
    // The histogram: the configured bounds, one count per bucket plus +Inf, adding up to count.
    let histogram = &metric(last, "heartwire_job_duration_seconds").unwrap()["histogram"];
    assert_eq!(
        histogram["aggregationTemporality"], CUMULATIVE,
        "{histogram}"
    );
    let duration = job_duration(last).unwrap();
    let bounds: Vec<f64> = array(&duration["explicitBounds"])
        .iter()
        .map(|bound| bound.as_f64().unwrap())
        .collect();
    assert_eq!(bounds, JOB_BOUNDS, "{duration}");
    let counts: Vec<u64> = array(&duration["bucketCounts"]).iter().map(uint).collect();
    assert_eq!(counts.len(), JOB_BOUNDS.len() + 1, "{duration}");
    assert_eq!(
        counts.iter().sum::<u64>(),
        uint(&duration["count"]),
        "{duration}"
    );
    assert_eq!(
        counts,
        [0, 1, 0, 0],
        "0.3 s lies in the 0.5 s bucket: {duration}"
    );
    assert_eq!(duration["sum"].as_f64(), Some(0.3), "{duration}");
    // The resource.
    let resource = attributes(&last["resourceMetrics"][0]["resource"]["attributes"]);
    assert_eq!(
        resource.get("service.name").map(String::as_str),
        Some("checkout"),
        "{resource:?}"
    );
    assert_eq!(
        resource.get("k8s.pod.name").map(String::as_str),
        Some("checkout-7d9f"),
        "{resource:?}"
    );
    // Start times: the same in consecutive exports, before each point's time, which advances.
    let start = |request: &Value| {
        let point = point(request, "orders_placed_total", "sum", &[]).unwrap();
        (
            uint(&point["startTimeUnixNano"]),
            uint(&point["timeUnixNano"]),
        )
    };
    let (first_start, mut previous_time) = start(with_events[0]);
    assert!(first_start > 0 && first_start < previous_time);
    for request in &with_events[1..] {
        let (start, time) = start(request);
        assert_eq!(start, first_start, "the counter's start time changed");
        assert!(time > previous_time, "{time} after {previous_time}");
        previous_time = time;
    }
    let duration_start = uint(&job_duration(last).unwrap()["startTimeUnixNano"]);
    assert!(
        duration_start > 0 && duration_start < uint(&job_duration(last).unwrap()["timeUnixNano"])
    );

    // The receiver goes down for a while: ingest goes on and the failed exports are counted.
    receiver.stop();
    let decoded_before = receiver.requests().len();
    let failed_before = failed_exports(&agent.scrape());
    for sent in 1..=5 {
        agent.send_udp(b"orders.placed:3|c\n");
        agent.wait_for("orders_placed_total", &[], 2.0 + 3.0 * f64::from(sent));
    }
    let scrape = agent.wait_until_within(WAIT, "three more failed exports", |scrape| {
        failed_exports(scrape) >= failed_before + 3.0
    });
    assert_eq!(scrape.value("orders_placed_total", &[]), Some(17.0));
    let succeeded_while_down = successful_exports(&scrape);
    assert_eq!(
        receiver.requests().len(),
        decoded_before,
        "nothing is decoded while the receiver is down"
    );

    // Back on the same port: the exports resume, with the new values and the same start.
    receiver.restart();
    let requests = receiver.wait_until(&agent, "an export with the new value", |requests| {
        requests[decoded_before..]
            .iter()
            .any(|request| counter(request) == Some(17.0))
    });
    let resumed = requests[decoded_before..]
        .iter()
        .find(|request| counter(request) == Some(17.0))
        .unwrap();
    assert_eq!(
        start(resumed).0,
        first_start,
        "the start time survives the outage"
    );
    let sum = &metric(resumed, "orders_placed_total").unwrap()["sum"];
    assert_eq!(sum["aggregationTemporality"], CUMULATIVE, "{sum}");
    assert_eq!(sum["isMonotonic"], true, "{sum}");
    agent.wait_until_within(WAIT, "successful exports again", |scrape| {
        successful_exports(scrape) > succeeded_while_down
    });

    // A restarted agent restarts its counters: a new start time, after every point of the old one.
    let (status, log) = agent.terminate();
    assert!(status.success(), "{log}");
    let last_time = receiver
        .requests()
        .iter()
        .filter_map(|request| point(request, "orders_placed_total", "sum", &[]))
        .map(|point| uint(&point["timeUnixNano"]))
        .max()
        .unwrap();
    let decoded_before = receiver.requests().len();
    let agent = Agent::start_with_env(&config, &POD_ENV);
    agent.send_udp(b"orders.placed:1|c\n");
    agent.wait_for("orders_placed_total", &[], 1.0);
    let requests = receiver.wait_until(&agent, "an export of the restarted counter", |requests| {
        requests[decoded_before..]
            .iter()
            .any(|request| counter(request) == Some(1.0))
    });
    let restarted = requests[decoded_before..]
        .iter()
        .find(|request| counter(request) == Some(1.0))
        .unwrap();
    let (new_start, new_time) = start(restarted);
    assert!(
        first_start < last_time && last_time <= new_start && new_start < new_time,
        "a new start after the old agent's last point: {first_start} < {last_time} <= {new_start} < {new_time}"
    );
}

#[test]
fn python_decodes_the_grpc_export_and_it_recovers_from_an_outage() {
    export_to_python(Protocol::Grpc);
}

#[test]
fn python_decodes_the_http_protobuf_export_and_it_recovers_from_an_outage() {
    export_to_python(Protocol::Http);
}
