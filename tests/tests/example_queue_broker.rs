//! Seed 004, the Relay queue broker (`examples/queue-broker/`): a Go program standing in for the
//! seed's broker reports every job transition, end-to-end latency and queue depth as plain
//! StatsD lines, and the example's config with its statsd_exporter mapping file, both loaded
//! unchanged, gives them the names of the seed's own Prometheus recorder. The program's fixed
//! scenario must come out exactly as worked out by hand; a live run exactly as the program says
//! it went; the example's shell script, sending with `heartwire send`, exactly as the scenario.
//!
//! The program's tests need `go` (`.ci/install-queue-example.sh`); the exposition is judged by
//! promtool (`.ci/install-peers.sh`). Without them the test skips loudly, or fails when
//! `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use heartwire_tests::agent::{Agent, Scrape, all_listeners, binary};
use heartwire_tests::expect::{Expect, absent, exact, near, series_count, settle};
use heartwire_tests::peers::{REQUIRE_PEERS, peers_required};
use heartwire_tests::prometheus::{check_metrics, tool_or_skip};

/// The seed's transitions, each a `relay_jobs_<transition>_total{queue}` counter, with the help
/// text of the seed's recorder.
const TRANSITIONS: [(&str, &str); 8] = [
    ("enqueued", "Jobs accepted into a queue."),
    (
        "deduplicated",
        "Enqueues dropped as idempotency-key duplicates.",
    ),
    ("claimed", "Jobs claimed by a worker."),
    ("processed", "Jobs acked after successful processing."),
    ("retried", "Failed jobs requeued for retry."),
    ("dead", "Jobs moved to the dead-letter queue."),
    ("reaped", "Expired in-flight jobs requeued by the reaper."),
    ("promoted", "Delayed jobs promoted to ready."),
];
/// The seed's depth states, the `state` label of `relay_queue_depth`.
const STATES: [&str; 4] = ["ready", "inflight", "delayed", "dlq"];
/// The seed's latency buckets, `ExponentialBuckets(0.001, 3, 13)`, as `le` labels.
const SEED_LE: [&str; 14] = [
    "0.001", "0.003", "0.009", "0.027", "0.081", "0.243", "0.729", "2.187", "6.561", "19.683",
    "59.049", "177.147", "531.441", "+Inf",
];
const LATENCY_HELP: &str =
    "# HELP relay_job_latency_seconds End-to-end time from job creation to ack.";
const DEPTH_HELP: &str = "# HELP relay_queue_depth Number of jobs in a queue, by state.";

/// What one queue went through: transitions in [`TRANSITIONS`] order, latency observations
/// (count and sum in seconds), depth in [`STATES`] order.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    queue: String,
    transitions: [f64; 8],
    latency_count: f64,
    latency_sum: f64,
    depth: [f64; 4],
}

/// `queue-broker -once`, worked out by hand from the scenario in `scenario.go`: emails retries
/// `c` twice before it is dead, reaps `d` after its worker died, promotes `c` twice and the
/// delayed `e` once, acks after 2 ms, 50 ms, 12 s and 31 s; reports kills `r2` at its only
/// attempt and acks `r1` after 700 ms.
fn scenario() -> Vec<(Outcome, &'static [f64])> {
    let emails: &[f64] = &[0.002, 0.05, 12.0, 31.0];
    let reports: &[f64] = &[0.7];
    vec![
        (
            Outcome {
                queue: "emails".to_owned(),
                transitions: [11.0, 1.0, 9.0, 4.0, 2.0, 1.0, 1.0, 3.0],
                latency_count: 4.0,
                latency_sum: 43.052,
                depth: [3.0, 1.0, 2.0, 1.0],
            },
            emails,
        ),
        (
            Outcome {
                queue: "reports".to_owned(),
                transitions: [2.0, 0.0, 2.0, 1.0, 0.0, 1.0, 0.0, 0.0],
                latency_count: 1.0,
                latency_sum: 0.7,
                depth: [0.0, 0.0, 0.0, 1.0],
            },
            reports,
        ),
    ]
}

/// Lines the example's shell script sends: per queue, one per transition that happened, one
/// per latency, four depths.
const SCRIPT_LINES: f64 = 25.0;

/// The samples `outcomes` must show: every counter that counted, and none for a transition that
/// never happened (the seed's recorder records nothing for a non-event); latency count and sum;
/// every depth; no other queue.
fn expects(outcomes: &[Outcome]) -> Vec<Expect> {
    let mut expects = Vec::new();
    for outcome in outcomes {
        let queue = [("queue", outcome.queue.as_str())];
        for ((transition, _), count) in TRANSITIONS.iter().zip(outcome.transitions) {
            let name = format!("relay_jobs_{transition}_total");
            expects.push(if count > 0.0 {
                exact(&name, &queue, count)
            } else {
                absent(&name, &queue)
            });
        }
        expects.push(exact(
            "relay_job_latency_seconds_count",
            &queue,
            outcome.latency_count,
        ));
        expects.push(near(
            "relay_job_latency_seconds_sum",
            &queue,
            outcome.latency_sum,
        ));
        for (state, depth) in STATES.iter().zip(outcome.depth) {
            let labels = [("queue", outcome.queue.as_str()), ("state", state)];
            expects.push(exact("relay_queue_depth", &labels, depth));
        }
    }
    expects.push(series_count(
        "relay_job_latency_seconds_count",
        outcomes.len(),
    ));
    expects.push(series_count(
        "relay_queue_depth",
        outcomes.len() * STATES.len(),
    ));
    expects
}

/// Every bucket of the latency histogram of `queue`, counted from its latencies.
fn bucket_expects(queue: &str, latencies: &[f64]) -> Vec<Expect> {
    SEED_LE
        .iter()
        .map(|le| {
            let bound = if *le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let below = latencies
                .iter()
                .filter(|seconds| **seconds <= bound)
                .count();
            exact(
                "relay_job_latency_seconds_bucket",
                &[("queue", queue), ("le", le)],
                below as f64,
            )
        })
        .collect()
}

/// The scenario's samples, buckets included.
fn scenario_expects() -> Vec<Expect> {
    let runs = scenario();
    let outcomes: Vec<Outcome> = runs.iter().map(|(outcome, _)| outcome.clone()).collect();
    let mut all = expects(&outcomes);
    for (outcome, latencies) in &runs {
        all.extend(bucket_expects(&outcome.queue, latencies));
    }
    all
}

/// The example's directory.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/queue-broker")
}

/// A heartwire running the example's `heartwire.yaml`, with its `mapping.yml` beside it, both
/// unchanged; only the listeners move to ephemeral ports.
fn example_agent() -> Agent {
    let example = example_dir();
    let config = std::fs::read_to_string(example.join("heartwire.yaml")).unwrap();
    Agent::start_config(|dir| {
        std::fs::copy(example.join("mapping.yml"), dir.join("mapping.yml")).unwrap();
        format!("{}{config}", all_listeners(dir))
    })
}

/// `go` on `PATH`; without it a loud skip, or a failure when peers are required.
#[track_caller]
fn go_or_skip() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("go"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let error = "go not installed: no `go` on PATH; run .ci/install-queue-example.sh";
        assert!(!peers_required(), "{error} ({REQUIRE_PEERS}=1)");
        // Straight to stderr: the harness captures the output of a passing test.
        let notice = format!("\n********** SKIPPED: {error} **********\n\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
    }
    found
}

/// Builds the example into `into` with Go's module proxy off and cgo off: the program must
/// build from the standard library alone.
fn build(go: &Path, into: &Path) -> PathBuf {
    let program = into.join("queue-broker");
    let output = Command::new(go)
        .args(["build", "-o"])
        .arg(&program)
        .arg(".")
        .current_dir(example_dir())
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("CGO_ENABLED", "0")
        .output()
        .expect("go runs");
    assert_success("go build", &output);
    program
}

#[track_caller]
fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The table the program prints at the end, one outcome per queue, and the lines it sent.
fn read_report(stdout: &str) -> (Vec<Outcome>, f64) {
    let mut lines = stdout
        .lines()
        .skip_while(|line| !line.starts_with("queue "));
    let header: Vec<&str> = lines.next().expect("a header").split_whitespace().collect();
    let column = |row: &BTreeMap<&str, f64>, name: &str| -> f64 {
        *row.get(name)
            .unwrap_or_else(|| panic!("no column {name} in {stdout}"))
    };
    let mut outcomes = Vec::new();
    let mut sent = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("sent ") {
            sent = rest.split_whitespace().next().map(|n| n.parse().unwrap());
            break;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let row: BTreeMap<&str, f64> = header[1..]
            .iter()
            .zip(&fields[1..])
            .map(|(name, value)| (*name, value.parse().unwrap()))
            .collect();
        outcomes.push(Outcome {
            queue: fields[0].to_owned(),
            transitions: TRANSITIONS.map(|(transition, _)| column(&row, transition)),
            latency_count: column(&row, "latency_count"),
            latency_sum: column(&row, "latency_sum_s"),
            depth: STATES.map(|state| column(&row, state)),
        });
    }
    (
        outcomes,
        sent.unwrap_or_else(|| panic!("no `sent` line in {stdout}")),
    )
}

/// The scrape holds only the seed's `relay_*` names (nothing left unmapped), with their types
/// and help texts; nothing was rejected; promtool accepts it.
#[track_caller]
fn assert_seed_exposition(scrape: &Scrape) {
    let mut allowed: BTreeSet<String> = TRANSITIONS
        .iter()
        .map(|(transition, _)| format!("relay_jobs_{transition}_total"))
        .collect();
    for suffix in ["bucket", "sum", "count"] {
        allowed.insert(format!("relay_job_latency_seconds_{suffix}"));
    }
    allowed.insert("relay_queue_depth".to_owned());
    let stray: BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|sample| sample.name.as_str())
        .filter(|name| name.starts_with("relay") && !allowed.contains(*name))
        .collect();
    assert!(stray.is_empty(), "unmapped: {stray:?}\n{scrape}");
    let mut headers = vec![
        LATENCY_HELP.to_owned(),
        "# TYPE relay_job_latency_seconds histogram".to_owned(),
        DEPTH_HELP.to_owned(),
        "# TYPE relay_queue_depth gauge".to_owned(),
    ];
    for (transition, help) in TRANSITIONS {
        if scrape
            .text
            .contains(&format!("relay_jobs_{transition}_total{{"))
        {
            headers.push(format!("# HELP relay_jobs_{transition}_total {help}"));
            headers.push(format!("# TYPE relay_jobs_{transition}_total counter"));
        }
    }
    for header in headers {
        assert!(
            scrape.text.lines().any(|line| line == header),
            "`{header}` missing:\n{scrape}"
        );
    }
    let rejected: f64 = scrape
        .samples
        .iter()
        .filter(|sample| sample.name == "heartwire_lines_rejected_total")
        .map(|sample| sample.value)
        .sum();
    assert_eq!(rejected, 0.0, "{}", scrape.lines_about("rejected"));
    if let Some(promtool) = tool_or_skip("promtool") {
        check_metrics(&promtool, &scrape.text).unwrap();
    }
}

/// Every line sent was read: the UDP listener's count equals `sent`.
fn lines_received(sent: f64) -> Expect {
    exact(
        "heartwire_lines_received_total",
        &[("transport", "udp")],
        sent,
    )
}

#[test]
fn the_broker_scenario_shows_under_the_seeds_names_exactly() {
    let Some(go) = go_or_skip() else { return };
    let build_dir = tempfile::tempdir().unwrap();
    let program = build(&go, build_dir.path());
    let agent = example_agent();

    let output = Command::new(&program)
        .args(["-once", "-statsd", &agent.udp().to_string()])
        .output()
        .expect("queue-broker runs");
    assert_success("queue-broker -once", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (reported, sent) = read_report(&stdout);
    let by_hand: Vec<Outcome> = scenario().into_iter().map(|(outcome, _)| outcome).collect();
    assert_eq!(reported, by_hand, "the program's own count:\n{stdout}");

    let mut wanted = scenario_expects();
    wanted.push(lines_received(sent));
    let scrape = settle(&agent, &wanted);
    assert_seed_exposition(&scrape);
}

#[test]
fn a_live_run_shows_exactly_what_the_broker_says_it_did() {
    let Some(go) = go_or_skip() else { return };
    let build_dir = tempfile::tempdir().unwrap();
    let program = build(&go, build_dir.path());
    let agent = example_agent();

    // Short visibility and depth period, so that reaps and several depth reports fit the run.
    let output = Command::new(&program)
        .args(["-statsd", &agent.udp().to_string()])
        .args(["-duration", "3s", "-rate", "40", "-visibility", "1s"])
        .args(["-depth-every", "1s", "-seed", "4"])
        .output()
        .expect("queue-broker runs");
    assert_success("queue-broker", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (outcomes, sent) = read_report(&stdout);
    let queues: Vec<&str> = outcomes.iter().map(|o| o.queue.as_str()).collect();
    assert_eq!(queues, ["emails", "reports"], "{stdout}");
    for outcome in &outcomes {
        // Jobs arrived in both queues and workers finished some.
        assert!(outcome.transitions[0] > 0.0, "{stdout}");
        assert!(outcome.latency_count > 0.0, "{stdout}");
    }

    let mut wanted = expects(&outcomes);
    wanted.push(lines_received(sent));
    let scrape = settle(&agent, &wanted);
    assert_seed_exposition(&scrape);
}

#[test]
fn the_shell_script_sends_the_scenario_with_heartwire_send() {
    let agent = example_agent();
    // The script calls `heartwire` by name: put the binary under test first on its PATH.
    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(binary(), bin_dir.path().join("heartwire")).unwrap();
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.path().to_path_buf()).chain(std::env::split_paths(&inherited)),
    )
    .unwrap();

    let output = Command::new("sh")
        .arg(example_dir().join("relay-events.sh"))
        .env("PATH", path)
        .env("HEARTWIRE_TO", format!("udp://{}", agent.udp()))
        .output()
        .expect("sh runs");
    assert_success("relay-events.sh", &output);

    let mut wanted = scenario_expects();
    wanted.push(lines_received(SCRIPT_LINES));
    let scrape = settle(&agent, &wanted);
    assert_seed_exposition(&scrape);
}
