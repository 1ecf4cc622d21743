//! Seed 003, the uptime worker (`examples/uptime-worker/`): three Python workers consume check
//! jobs from a real Redis stream in one consumer group, GET real local HTTP servers, and each
//! reports to its own heartwire sidecar. Each sidecar's `/metrics` holds exactly what its worker
//! did; a real Prometheus scraping all three answers the seed's questions (uptime % and average
//! response time per site) over their union; a killed worker shows as down, a stopped one as
//! stopped.
//!
//! Needs `redis-server`, `redis-cli` and the example's venv (`.ci/install-uptime-example.sh`)
//! and Prometheus (`.ci/install-peers.sh`); without them the test skips loudly, or fails when
//! `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, all_listeners, heartwire};
use heartwire_tests::expect::{Expect, exact, near, series_count, settle};
use heartwire_tests::prometheus::{Prometheus, QuerySample};

// The test crate's root resolves modules beside it, so the helpers' folder is named.
#[path = "example_uptime_worker/redis.rs"]
mod redis;
#[path = "example_uptime_worker/sites.rs"]
mod sites;
#[path = "example_uptime_worker/worker.rs"]
mod worker;

use redis::Redis;
use sites::{Behaviour, serve};
use worker::{Check, Worker, example_dir, python_or_skip};

/// Jobs per site. A multiple of 4: the flaky site fails every fourth request.
const ROUNDS: usize = 8;
/// How long the slow site takes to answer.
const SLOW: Duration = Duration::from_millis(300);
/// The workers' check timeout, in seconds (the example's default is 10). Their other settings
/// are the defaults: batches of 10, reads that wait 5 s, heartbeats with a 15 s ttl.
const CHECK_TIMEOUT: &str = "1";
/// How long the workers may take for all the checks.
const WORK_DEADLINE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(50);

/// The seed's questions, as the example's README asks them of Prometheus (checked below).
const UPTIME_PERCENT: &str = r#"100 * (sum by (websiteId) (uptime_checks_total{status_code=~"2.."}) or 0 * sum by (websiteId) (uptime_checks_total)) / sum by (websiteId) (uptime_checks_total)"#;
const AVERAGE_RESPONSE_SECONDS: &str = "sum by (websiteId) (uptime_check_duration_seconds_sum) / sum by (websiteId) (uptime_check_duration_seconds_count)";
/// Checks by status code, summed over all workers.
type Outcomes = &'static [(&'static str, usize)];

/// The sites, how each answers, and the outcome of their checks.
const SITES: [(&str, Behaviour, Outcomes); 6] = [
    ("site-ok", Behaviour::Ok, &[("200", ROUNDS)]),
    ("site-slow", Behaviour::Slow, &[("200", ROUNDS)]),
    (
        "site-flaky",
        Behaviour::Flaky,
        &[("200", ROUNDS * 3 / 4), ("500", ROUNDS / 4)],
    ),
    ("site-error", Behaviour::Error, &[("500", ROUNDS)]),
    ("site-hang", Behaviour::Hang, &[("timeout", ROUNDS)]),
    ("site-refused", Behaviour::Refused, &[("network", ROUNDS)]),
];

/// The uptime each site must show, in percent.
const UPTIME: [(&str, f64); 6] = [
    ("site-ok", 100.0),
    ("site-slow", 100.0),
    ("site-flaky", 75.0),
    ("site-error", 0.0),
    ("site-hang", 0.0),
    ("site-refused", 0.0),
];

/// A sidecar running the example's config, on ephemeral ports.
fn sidecar() -> Agent {
    let path = example_dir().join("heartwire.yaml");
    let config =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)))
}

/// Runs `enqueue.py`: ROUNDS jobs for every site, the sites in turn.
fn enqueue(python: &Path, redis: &Redis, sites: &[(&str, String)]) {
    let output = Command::new(python)
        .arg(example_dir().join("enqueue.py"))
        .args(["--rounds", &ROUNDS.to_string()])
        .args(sites.iter().map(|(site, url)| format!("{site}={url}")))
        .env_clear()
        .env("REDIS_URL", redis.url())
        .output()
        .expect("enqueue.py runs");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "enqueue.py: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        said.trim(),
        format!("{} jobs added to uptime:jobs", ROUNDS * SITES.len())
    );
}

/// Waits until the workers together logged `total` checks; every worker's checks.
fn wait_for_checks(workers: &mut [Worker], total: usize) -> Vec<Vec<Check>> {
    let started = Instant::now();
    loop {
        for worker in workers.iter_mut() {
            worker.assert_running();
        }
        let checks: Vec<Vec<Check>> = workers.iter().map(Worker::checks).collect();
        let done = checks.iter().map(Vec::len).sum::<usize>();
        if done == total {
            return checks;
        }
        assert!(done < total, "{done} checks for {total} jobs");
        if started.elapsed() > WORK_DEADLINE {
            let logs: Vec<String> = workers
                .iter()
                .map(|w| format!("{}:\n{}", w.name, w.log()))
                .collect();
            panic!(
                "{done} of {total} checks after {WORK_DEADLINE:?}\n{}",
                logs.join("\n")
            );
        }
        thread::sleep(POLL);
    }
}

/// What a worker's sidecar must show: exactly the checks the worker logged, by site and status,
/// with their response times; the worker alive; no line rejected.
fn sidecar_expects(worker: &Worker, checks: &[Check]) -> Vec<Expect> {
    let mut by_status: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    let mut by_site: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for check in checks {
        *by_status.entry((&check.site, &check.status)).or_default() += 1.0;
        let (count, seconds) = by_site.entry(&check.site).or_default();
        *count += 1.0;
        *seconds += check.seconds;
    }
    let mut expects = vec![
        series_count("uptime_checks_total", by_status.len()),
        series_count("uptime_check_duration_seconds_count", by_site.len()),
        exact("heartwire_worker_status", &[("worker", &worker.name)], 1.0),
        exact("heartwire_worker_stopped", &[("worker", &worker.name)], 0.0),
    ];
    for ((site, status), count) in by_status {
        let labels = [
            ("websiteId", site),
            ("endpoint", "check"),
            ("status_code", status),
        ];
        expects.push(exact("uptime_checks_total", &labels, count));
    }
    for (site, (count, seconds)) in by_site {
        let labels = [("websiteId", site), ("endpoint", "check")];
        expects.push(exact("uptime_check_duration_seconds_count", &labels, count));
        expects.push(near("uptime_check_duration_seconds_sum", &labels, seconds));
    }
    expects
}

/// The checks of all workers, summed: site → status → count.
fn totals(checks: &[Vec<Check>]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut totals: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for check in checks.iter().flatten() {
        *totals
            .entry(check.site.clone())
            .or_default()
            .entry(check.status.clone())
            .or_default() += 1;
    }
    totals
}

/// A query's answer as `websiteId → value`.
fn by_site(samples: &[QuerySample]) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|sample| {
            (
                sample.labels.get("websiteId").cloned().unwrap_or_default(),
                sample.value,
            )
        })
        .collect()
}

/// Per site, the average response time over every worker's checks: the total of the seconds
/// each worker sent, over the number of checks.
fn average_seconds(checks: &[Vec<Check>]) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for check in checks.iter().flatten() {
        let (count, seconds) = sums.entry(check.site.clone()).or_default();
        *count += 1.0;
        *seconds += check.seconds;
    }
    sums.into_iter()
        .map(|(site, (count, seconds))| (site, seconds / count))
        .collect()
}

/// Asks Prometheus the seed's two questions and checks the answers against the script.
fn assert_the_seeds_questions(prometheus: &Prometheus, checks: &[Vec<Check>]) {
    let total = (ROUNDS * SITES.len()) as f64;
    // The last scrape of every sidecar holds all the checks.
    prometheus.wait_for("sum(uptime_checks_total)", &format!("{total}"), |samples| {
        samples.len() == 1 && samples[0].value == total
    });
    let instances = prometheus
        .query("count(count by (instance) (uptime_checks_total))")
        .unwrap();
    assert_eq!(instances[0].value, 3.0, "every sidecar holds checks");

    let uptime = by_site(&prometheus.query(UPTIME_PERCENT).unwrap());
    let expected: BTreeMap<String, f64> = UPTIME
        .iter()
        .map(|(site, percent)| ((*site).to_owned(), *percent))
        .collect();
    assert_eq!(uptime, expected, "{UPTIME_PERCENT}");

    let average = by_site(&prometheus.query(AVERAGE_RESPONSE_SECONDS).unwrap());
    let expected = average_seconds(checks);
    assert_eq!(
        average.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (site, seconds) in &expected {
        let got = average[site];
        assert!(
            (got - seconds).abs() <= 1e-9 * seconds,
            "{site}: Prometheus says {got} s, the workers sent {seconds} s on average"
        );
    }
    // What the sites did shows in the averages: the slow one took its delay, the hung one the timeout.
    assert!(average["site-slow"] >= SLOW.as_secs_f64(), "{average:?}");
    assert!(
        average["site-hang"] >= CHECK_TIMEOUT.parse::<f64>().unwrap(),
        "{average:?}"
    );
}

/// The expression of the BackgroundWorkerDown rule that `heartwire rules` derives from the
/// example's config.
fn worker_down_rule() -> String {
    let output = heartwire()
        .args(["rules", "--config"])
        .arg(example_dir().join("heartwire.yaml"))
        .output()
        .expect("heartwire rules runs");
    assert!(output.status.success(), "heartwire rules: {output:?}");
    let rules = String::from_utf8(output.stdout).expect("UTF-8 rules");
    let mut lines = rules
        .lines()
        .skip_while(|line| line.trim() != "- alert: BackgroundWorkerDown");
    let expr = lines
        .find_map(|line| line.trim().strip_prefix("expr: "))
        .unwrap_or_else(|| panic!("no BackgroundWorkerDown rule in:\n{rules}"));
    // A single-quoted YAML scalar.
    expr.trim_matches('\'').replace("''", "'")
}

/// Kills one worker and stops another cleanly: Prometheus sees the first down (an alert), the
/// second stopped (no alert), the third still up.
fn assert_dead_and_stopped_workers_show(prometheus: &Prometheus, workers: &mut [Worker]) {
    prometheus.wait_for("sum(heartwire_worker_status)", "3", |s| {
        s.len() == 1 && s[0].value == 3.0
    });
    workers[0].signal(nix::sys::signal::Signal::SIGKILL);
    workers[1].signal(nix::sys::signal::Signal::SIGTERM);
    let status = |worker: &str| format!("heartwire_worker_status{{worker=\"{worker}\"}}");
    prometheus.wait_for(
        &status("uptime-worker-1"),
        "0 (killed: its heartbeats stopped)",
        |s| s.len() == 1 && s[0].value == 0.0,
    );
    prometheus.wait_for(&status("uptime-worker-2"), "0 (stopped)", |s| {
        s.len() == 1 && s[0].value == 0.0
    });
    let stopped = prometheus
        .query(r#"heartwire_worker_stopped == 1"#)
        .unwrap();
    let stopped: Vec<&str> = stopped
        .iter()
        .map(|s| s.labels["worker"].as_str())
        .collect();
    assert_eq!(
        stopped,
        ["uptime-worker-2"],
        "only the worker sent SIGTERM said worker.stop"
    );
    let rule = worker_down_rule();
    let down = prometheus.query(&rule).unwrap();
    let down: Vec<&str> = down.iter().map(|s| s.labels["worker"].as_str()).collect();
    assert_eq!(down, ["uptime-worker-1"], "BackgroundWorkerDown: {rule}");
    let up = prometheus.query(&status("uptime-worker-3")).unwrap();
    assert_eq!(up[0].value, 1.0, "the third worker is still up");
    // By now it has waited out several empty reads (a ttl is three of them) and kept going.
    workers[2].assert_running();
    let stop = workers[1]
        .child
        .wait()
        .expect("the stopped worker's status");
    assert!(
        stop.success(),
        "SIGTERM ends the worker cleanly: {stop}\n{}",
        workers[1].log()
    );
    assert!(
        workers[1]
            .log()
            .ends_with("Worker uptime-worker-2 stopped\n"),
        "{}",
        workers[1].log()
    );
}

/// The consumer group handed every job to exactly one worker, each worker got some, every job
/// was acknowledged (the invalid one too), and every site's checks came out as scripted.
fn assert_each_job_was_checked_once(redis: &Redis, workers: &[Worker], checks: &[Vec<Check>]) {
    let total = ROUNDS * SITES.len();
    let ids: BTreeSet<&str> = checks
        .iter()
        .flatten()
        .map(|check| check.id.as_str())
        .collect();
    assert_eq!(ids.len(), total, "a job was checked twice");
    for (worker, checks) in workers.iter().zip(checks) {
        assert!(
            !checks.is_empty(),
            "{} checked nothing:\n{}",
            worker.name,
            worker.log()
        );
    }
    let pending = redis.cli(&["XPENDING", "uptime:jobs", "uptime-group"]);
    assert_eq!(pending.lines().next(), Some("0"), "XPENDING: {pending}");
    let expected: BTreeMap<String, BTreeMap<String, usize>> = SITES
        .iter()
        .map(|(site, _, outcomes)| {
            let outcomes = outcomes
                .iter()
                .map(|(status, n)| ((*status).to_owned(), *n));
            ((*site).to_owned(), outcomes.collect())
        })
        .collect();
    assert_eq!(totals(checks), expected, "what the workers checked");
}

/// Each sidecar holds exactly its own worker's checks, and rejected none of its lines.
fn assert_sidecars_hold_their_workers_checks(
    sidecars: &[Agent],
    workers: &[Worker],
    checks: &[Vec<Check>],
) {
    for ((agent, worker), checks) in sidecars.iter().zip(workers).zip(checks) {
        let scrape = settle(agent, &sidecar_expects(worker, checks));
        let rejected: f64 = scrape
            .samples
            .iter()
            .filter(|sample| sample.name == "heartwire_lines_rejected_total")
            .map(|sample| sample.value)
            .sum();
        let lines = scrape.lines_about("heartwire_lines_rejected_total");
        assert_eq!(rejected, 0.0, "{}: {lines}", worker.name);
    }
}

#[test]
fn the_readme_asks_prometheus_the_queries_this_test_checks() {
    let path = example_dir().join("README.md");
    let readme =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for query in [UPTIME_PERCENT, AVERAGE_RESPONSE_SECONDS] {
        assert!(
            readme.contains(&format!("```promql\n{query}\n```")),
            "{} does not show {query}",
            path.display()
        );
    }
}

#[test]
fn uptime_workers_share_a_redis_stream_and_prometheus_answers_uptime_and_response_time() {
    let Some(python) = python_or_skip() else {
        return;
    };
    let redis = Redis::start();
    let sites: Vec<(&str, String)> = SITES
        .iter()
        .map(|(site, behaviour, _)| (*site, serve(*behaviour)))
        .collect();
    let sidecars: Vec<Agent> = (0..3).map(|_| sidecar()).collect();
    let targets: Vec<&str> = sidecars.iter().map(|agent| agent.address("http")).collect();
    let Some(prometheus) = Prometheus::start_all(&targets) else {
        return;
    };
    let mut workers: Vec<Worker> = sidecars
        .iter()
        .enumerate()
        .map(|(index, agent)| Worker::start(&python, index + 1, &redis, agent))
        .collect();
    redis.wait_for_blocked_readers(workers.len());

    // A job no check can report (a websiteId with a space breaks heartwire's name rule): the
    // worker acknowledges it and counts it as rejected instead of leaving it pending for ever.
    let bad = redis.cli(&[
        "XADD",
        "uptime:jobs",
        "*",
        "websiteId",
        "bad site",
        "url",
        "http://127.0.0.1:9/",
    ]);
    assert!(bad.contains('-'), "XADD: {bad}");
    enqueue(&python, &redis, &sites);
    let total = ROUNDS * SITES.len();
    let checks = wait_for_checks(&mut workers, total);

    assert_each_job_was_checked_once(&redis, &workers, &checks);
    prometheus.wait_for(
        r#"sum(uptime_jobs_rejected_total{reason="invalid_website_id"})"#,
        "1: the job with a bad websiteId, counted once",
        |s| s.len() == 1 && s[0].value == 1.0,
    );
    assert_sidecars_hold_their_workers_checks(&sidecars, &workers, &checks);
    assert_the_seeds_questions(&prometheus, &checks);
    assert_dead_and_stopped_workers_show(&prometheus, &mut workers);
}
