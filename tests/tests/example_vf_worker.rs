//! Seed 000 end to end: `examples/vf-worker/worker.js`, the vf worker's cron pollers in Node,
//! against the real agent running the example's config.
//!
//! `node worker.js --once` sends one scripted round as a single datagram: every job of the seed
//! wrapped like `instrumentPoll`, the external calls with 200, 401, 429 and `network`, and the
//! scraper providers with every outcome. The tests check the seed's `vf_*` families sample by
//! sample, the seed's PromQL queries against a real Prometheus that scraped the agent, `/readyz`
//! against viewer-poll's threshold, and the alert rules `heartwire rules` derives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use heartwire_tests::agent::{Agent, Scrape, all_listeners};
use heartwire_tests::expect::{DEFAULT_LE, Expect, exact, near, settle, unix_now, within};
use heartwire_tests::peers::{REQUIRE_PEERS, peers_required};
use heartwire_tests::prometheus::{Prometheus, QuerySample};

/// The alert rules `heartwire rules` derives from the example's config.
#[path = "example_vf_worker/rules.rs"]
mod rules;

/// One round of the script, per job of the seed in its order: runs that succeeded, runs that
/// failed, and every run's duration in seconds (`examples/vf-worker/upstream.js`, `pollers.js`).
const RUNS: [(&str, f64, f64, &[f64]); 8] = [
    ("viewer-poll", 3.0, 1.0, &[0.3, 0.41, 0.07, 1.47]),
    ("chat-export", 1.0, 0.0, &[4.2]),
    ("stale-session-cleanup", 1.0, 0.0, &[0.65]),
    ("kick-token-refresh", 0.0, 1.0, &[0.09]),
    ("x-follower-poll", 0.0, 1.0, &[3.0]),
    ("kick-subscriptions", 1.0, 0.0, &[9.09]),
    ("trust-score-refresh", 1.0, 0.0, &[2.3]),
    ("daily-maintenance", 1.0, 0.0, &[7.8]),
];

/// One round's outbound calls: (service, endpoint, status_code) and how many.
const CALLS: [(&str, &str, &str, f64); 6] = [
    ("kick", "channels", "200", 3.0),
    ("kick", "channels", "429", 1.0),
    ("kick-oauth", "oauth/token", "401", 1.0),
    ("kick-oauth", "oauth/token", "200", 1.0),
    ("x", "users/me", "network", 1.0),
    ("kick", "events/subscriptions", "200", 1.0),
];

/// One round's scraper requests by (provider, outcome); the worker creates every pair at 0.
const SCRAPES: [(&str, &str, f64); 12] = [
    ("scraperapi", "success", 2.0),
    ("scraperapi", "upstream_4xx", 0.0),
    ("scraperapi", "http_5xx", 1.0),
    ("scraperapi", "cf_block", 1.0),
    ("scraperapi", "timeout", 0.0),
    ("scraperapi", "network", 0.0),
    ("scrapedo", "success", 2.0),
    ("scrapedo", "upstream_4xx", 1.0),
    ("scrapedo", "http_5xx", 0.0),
    ("scrapedo", "cf_block", 0.0),
    ("scrapedo", "timeout", 1.0),
    ("scrapedo", "network", 1.0),
];

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vf-worker")
}

fn example_config() -> String {
    std::fs::read_to_string(example_dir().join("heartwire.yaml")).unwrap()
}

/// `node`, or `None` after a loud skip notice (a failure with `HEARTWIRE_REQUIRE_PEERS=1`).
fn node_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let missing = "no `node` on PATH; run .ci/install-examples.sh";
        assert!(!peers_required(), "{missing} ({REQUIRE_PEERS}=1)");
        let notice = format!("\n********** SKIPPED: {missing} **********\n\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
    }
    found
}

/// Runs `node worker.js --once` against `agent`; checks the round left as one datagram.
#[track_caller]
fn run_round(node: &Path, agent: &Agent) {
    let output = Command::new(node)
        .arg(example_dir().join("worker.js"))
        .args(["--once", "--address"])
        .arg(agent.udp().to_string())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "worker.js --once failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // One datagram: the agent applies it at once, never half of it in a scrape.
    assert!(
        stdout.contains(" lines in 1 datagram to "),
        "the round left as one datagram:\n{stdout}"
    );
}

/// One expected sample: its name, its sorted labels and what its value must be.
type Row = (String, Vec<(String, String)>, Expect);

/// Every `vf_*` sample after `rounds` rounds; last success timestamps lie in `[since, until]`.
fn vf_samples(rounds: f64, since: f64, until: f64) -> Vec<Row> {
    let mut out = Vec::new();
    let mut add = |name: &str, labels: &[(&str, &str)], expect: Expect| {
        let mut owned: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        owned.sort();
        out.push((name.to_owned(), owned, expect));
    };
    for (job, ok, error, durations) in RUNS {
        for (result, count) in [("ok", ok), ("error", error)] {
            let labels = [("service", "worker"), ("job", job), ("result", result)];
            let runs = "vf_worker_poll_runs_total";
            add(runs, &labels, exact(runs, &labels, rounds * count));
        }
        let labels = [("service", "worker"), ("job", job)];
        for le in DEFAULT_LE {
            let bound: f64 = le.parse().unwrap_or(f64::INFINITY);
            let count = durations.iter().filter(|d| **d <= bound).count() as f64;
            let with_le = [("service", "worker"), ("job", job), ("le", le)];
            let name = "vf_worker_poll_duration_seconds_bucket";
            add(name, &with_le, exact(name, &with_le, rounds * count));
        }
        let name = "vf_worker_poll_duration_seconds_count";
        let count = durations.len() as f64;
        add(name, &labels, exact(name, &labels, rounds * count));
        let name = "vf_worker_poll_duration_seconds_sum";
        add(
            name,
            &labels,
            near(name, &labels, rounds * durations.iter().sum::<f64>()),
        );
        if ok > 0.0 {
            let name = "vf_worker_poll_last_success_timestamp_seconds";
            add(name, &labels, within(name, &labels, since, until));
        }
    }
    for (service, endpoint, status, count) in CALLS {
        let labels = [
            ("service", service),
            ("endpoint", endpoint),
            ("status_code", status),
        ];
        let name = "vf_external_http_total";
        add(name, &labels, exact(name, &labels, rounds * count));
    }
    for (provider, outcome, count) in SCRAPES {
        let labels = [
            ("service", "worker"),
            ("provider", provider),
            ("outcome", outcome),
        ];
        let name = "vf_scraper_requests_total";
        add(name, &labels, exact(name, &labels, rounds * count));
    }
    out
}

#[test]
fn one_round_of_the_node_worker_gives_the_seed_families_sample_by_sample() {
    let Some(node) = node_or_skip() else { return };
    let config = example_config();
    let agent = Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)));
    let since = unix_now();
    run_round(&node, &agent);
    let until = unix_now();

    let table = vf_samples(1.0, since, until);
    let expects: Vec<Expect> = table.iter().map(|(_, _, expect)| expect.clone()).collect();
    let scrape = settle(&agent, &expects);
    // Nothing more: no other vf_* family, label or series than the seed's.
    let mut wanted: Vec<(&str, &[(String, String)])> = table
        .iter()
        .map(|(name, labels, _)| (name.as_str(), labels.as_slice()))
        .collect();
    wanted.sort();
    let mut got: Vec<(&str, &[(String, String)])> = scrape
        .samples
        .iter()
        .filter(|sample| sample.name.starts_with("vf_"))
        .map(|sample| (sample.name.as_str(), sample.labels.as_slice()))
        .collect();
    got.sort();
    assert_eq!(got, wanted, "{}", scrape.lines_about("vf_"));
    assert_nothing_rejected(&scrape);
}

#[track_caller]
fn assert_nothing_rejected(scrape: &Scrape) {
    let rejected: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.name == "heartwire_lines_rejected_total" && s.value != 0.0)
        .collect();
    assert!(rejected.is_empty(), "lines rejected: {rejected:?}");
}

/// Asserts that `samples` hold exactly the label sets of `expected`, each with the value
/// `count × factor / window` for one factor shared by all: Prometheus extrapolates `rate()` and
/// `increase()` by the same factor for series scraped together with the same history, a bit
/// above 1 (less than a scrape interval over the sampled time).
#[track_caller]
fn shared_factor(
    query: &str,
    samples: &[QuerySample],
    expected: &[(&[(&str, &str)], f64)],
    window: f64,
) {
    let shown = || {
        samples
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    assert_eq!(samples.len(), expected.len(), "{query}:\n  {}", shown());
    let mut factors = Vec::new();
    for (labels, count) in expected {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let sample = samples
            .iter()
            .find(|sample| sample.labels == labels)
            .unwrap_or_else(|| panic!("{query}: no {labels:?} in\n  {}", shown()));
        if *count == 0.0 {
            assert_eq!(sample.value, 0.0, "{query}: {labels:?}");
        } else {
            factors.push(sample.value * window / count);
        }
    }
    let factor = factors[0];
    for other in &factors {
        assert!(
            (other / factor - 1.0).abs() < 1e-9,
            "{query}: not proportional to the counts {expected:?}:\n  {}",
            shown()
        );
    }
    assert!(
        (1.0..1.5).contains(&factor),
        "{query}: extrapolated by {factor}:\n  {}",
        shown()
    );
}

#[track_caller]
fn assert_values(query: &str, samples: &[QuerySample], label: &str, expected: &[(&str, f64)]) {
    let got: BTreeMap<&str, f64> = samples
        .iter()
        .map(|s| (s.labels.get(label).map_or("", String::as_str), s.value))
        .collect();
    assert_eq!(got.len(), expected.len(), "{query}: {got:?}");
    for (key, want) in expected {
        let value = got.get(key).copied();
        assert!(
            value.is_some_and(|v| (v - want).abs() <= 1e-9 * want.abs()),
            "{query}: {label}={key} is {value:?}, not {want}; all: {got:?}"
        );
    }
}

#[test]
fn the_seeds_promql_queries_answer_from_a_real_prometheus() {
    let Some(node) = node_or_skip() else { return };
    let config = example_config();
    let agent = Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)));
    let Some(prometheus) = Prometheus::start(agent.address("http")) else {
        return;
    };
    let viewer_ok = "vf_worker_poll_runs_total{job=\"viewer-poll\",result=\"ok\"}";
    // Prometheus sees the runs counters at 0 before the worker runs, so that rate() counts
    // every run.
    prometheus.wait_for(
        &format!("count_over_time({viewer_ok}[10m])"),
        "3 samples",
        |s| s.len() == 1 && s[0].value >= 3.0,
    );
    // Round 1 creates the outbound-call and scraper series; Prometheus scrapes them a few times.
    run_round(&node, &agent);
    prometheus.wait_for(viewer_ok, "3", |s| s.len() == 1 && s[0].value == 3.0);
    prometheus.wait_for(
        "count_over_time(vf_external_http_total{status_code=\"401\"}[10m])",
        "5 samples",
        |s| s.len() == 1 && s[0].value >= 5.0,
    );
    let since = unix_now();
    run_round(&node, &agent);
    let until = unix_now();
    prometheus.wait_for(viewer_ok, "6", |s| s.len() == 1 && s[0].value == 6.0);

    check_job_queries(&prometheus, since, until);
    check_call_queries(&prometheus);
}

/// The poll-job queries: liveness, error rate, runs, p95.
fn check_job_queries(prometheus: &Prometheus, since: f64, until: f64) {
    let query =
        "time() - max by(job) (vf_worker_poll_last_success_timestamp_seconds{service=\"worker\"})";
    let asked = unix_now();
    let ages = prometheus.query(query).unwrap();
    let answered = unix_now();
    // Jobs that never succeeded have no last success: the seed's alert cannot fire for them
    // (heartwire's JobStale does).
    let succeeded: Vec<&str> = RUNS
        .iter()
        .filter(|(_, ok, _, _)| *ok > 0.0)
        .map(|(job, ..)| *job)
        .collect();
    assert_eq!(ages.len(), succeeded.len(), "{query}: {ages:?}");
    for job in succeeded {
        let age = ages
            .iter()
            .find(|s| s.labels.get("job").map(String::as_str) == Some(job))
            .unwrap_or_else(|| panic!("{query}: no {job} in {ages:?}"))
            .value;
        assert!(
            age >= asked - until - 0.01 && age <= answered - since + 0.01,
            "{query}: {job} succeeded {age} s ago, not between the round and the query"
        );
    }

    let query = "sum by(job) (rate(vf_worker_poll_runs_total{result=\"error\"}[10m]))";
    let errors: Vec<(&[(&str, &str)], f64)> = RUNS
        .iter()
        .map(|(job, _, error, _)| (job_label(job), 2.0 * error))
        .collect();
    shared_factor(query, &prometheus.query(query).unwrap(), &errors, 600.0);
    let query = "sum by(job) (increase(vf_worker_poll_runs_total[1h]))";
    let runs: Vec<(&[(&str, &str)], f64)> = RUNS
        .iter()
        .map(|(job, ok, error, _)| (job_label(job), 2.0 * (ok + error)))
        .collect();
    shared_factor(query, &prometheus.query(query).unwrap(), &runs, 1.0);

    // Every round has the same durations, so bucket rates are the round's counts: each p95 is
    // the linear interpolation in the bucket holding the 95th percentile of the round's runs.
    let query = "histogram_quantile(0.95,\nsum by(le, job) (rate(vf_worker_poll_duration_seconds_bucket[10m]))\n)";
    let p95 = prometheus.query(query).unwrap();
    assert_values(
        query,
        &p95,
        "job",
        &[
            ("viewer-poll", 1.0 + 1.5 * 0.8), // 3.8 of 4 runs: 0.8 into (1, 2.5]
            ("chat-export", 2.5 + 2.5 * 0.95),
            ("stale-session-cleanup", 0.5 + 0.5 * 0.95),
            ("kick-token-refresh", 0.05 + 0.05 * 0.95),
            ("x-follower-poll", 2.5 + 2.5 * 0.95),
            ("kick-subscriptions", 5.0 + 5.0 * 0.95),
            ("trust-score-refresh", 1.0 + 1.5 * 0.95),
            ("daily-maintenance", 5.0 + 5.0 * 0.95),
        ],
    );
}

fn job_label(job: &'static str) -> &'static [(&'static str, &'static str)] {
    Box::leak(Box::new([("job", job)]))
}

/// The outbound-call and scraper queries. Their series appeared with round 1 and grew by the
/// same counts in round 2, in the same scrapes, so each query's values share one factor.
fn check_call_queries(prometheus: &Prometheus) {
    let factor = |query: &str, expected: &[(&[(&str, &str)], f64)]| {
        shared_factor(query, &prometheus.query(query).unwrap(), expected, 300.0);
    };
    factor(
        "sum by(service, endpoint) (\nrate(vf_external_http_total{status_code=\"401\"}[5m])\n)",
        &[(
            &[("service", "kick-oauth"), ("endpoint", "oauth/token")],
            1.0,
        )],
    );
    factor(
        "sum by(service, status_code) (\nrate(vf_external_http_total{status_code!~\"2..\"}[5m])\n)",
        &[
            (&[("service", "kick"), ("status_code", "429")], 1.0),
            (&[("service", "kick-oauth"), ("status_code", "401")], 1.0),
            (&[("service", "x"), ("status_code", "network")], 1.0),
        ],
    );
    factor(
        "sum by(service) (\nrate(vf_external_http_total{status_code=\"network\"}[5m])\n)",
        &[(&[("service", "x")], 1.0)],
    );
    factor(
        "sum by(service, endpoint) (\nrate(vf_external_http_total{status_code=\"429\"}[5m])\n)",
        &[(&[("service", "kick"), ("endpoint", "channels")], 1.0)],
    );
    // Round-robin with failover: 4 requests through scraperapi and 5 through scrapedo.
    factor(
        "sum by(provider) (rate(vf_scraper_requests_total[5m]))",
        &[
            (&[("provider", "scraperapi")], 4.0),
            (&[("provider", "scrapedo")], 5.0),
        ],
    );

    // The failure ratio that drives the scraper alerts: 2 of 4 and 2 of 5.
    let query = "sum by(provider) (rate(vf_scraper_requests_total{\noutcome=~\"http_5xx|cf_block|timeout|network\"\n}[5m]))\n/\nclamp_min(sum by(provider) (rate(vf_scraper_requests_total[5m])), 0.0001)";
    let ratios = prometheus.query(query).unwrap();
    assert_values(
        query,
        &ratios,
        "provider",
        &[("scraperapi", 0.5), ("scrapedo", 0.4)],
    );
}

#[test]
fn readyz_follows_viewer_poll_against_its_threshold() {
    let Some(node) = node_or_skip() else { return };
    let cron = "viewer-poll: { cron: \"* * * * *\", readiness: completed }";
    let config = example_config();
    assert!(
        config.contains(cron),
        "the example marks viewer-poll for readiness"
    );
    let config = config.replace(
        cron,
        "viewer-poll: { every: 1s, alert_after: 3s, readiness: completed }",
    );
    let agent = Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)));
    let readyz = |agent: &Agent| {
        let url = format!("http://{}/readyz", agent.address("http"));
        let response = agent.http().get(url).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    let until = |agent: &Agent, status: u16| {
        let started = Instant::now();
        loop {
            let (got, body) = readyz(agent);
            if got == status {
                return body;
            }
            assert!(
                started.elapsed() < heartwire_tests::agent::DEADLINE,
                "/readyz stayed {got}: {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };

    // Never succeeded: not ready once its threshold has passed since heartwire started.
    let body = until(&agent, 503);
    assert!(
        body.contains("viewer-poll"),
        "the late job is listed: {body}"
    );
    let started = Instant::now();
    run_round(&node, &agent);
    assert_eq!(until(&agent, 200), "ok\n");
    // Not ready again once its last run end (ok or error) is older than alert_after.
    let body = until(&agent, 503);
    assert!(body.contains("viewer-poll"), "{body}");
    assert!(
        started.elapsed().as_secs_f64() >= 3.0,
        "not before alert_after: {:?}",
        started.elapsed()
    );
}
