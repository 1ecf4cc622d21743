//! Learned schedules, `heartwire config suggest` and missed runs, end to end: the real agent,
//! lines over TCP (never dropped), `/metrics` and `/status` over HTTP, and the real binary's
//! `config suggest` and `check`.
//!
//! The jobs run every second, the shortest period, so that learning (5 successes), staleness
//! (a learned `every: 1s` has `alert_after` 5 s by the default formula) and missed slots are
//! reached within seconds; waiting is polling with a deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, heartwire};

const INFO: &str = "heartwire_job_schedule_info";
const MISSED: &str = "heartwire_job_missed_runs_total";
const STALE: &str = "heartwire_job_stale";

/// Sends `job.ok NAME` over TCP every `period` for `count` times; returns the moment just
/// before the last was sent, which the agent applies no earlier.
fn succeed_every(agent: &Agent, name: &str, period: Duration, count: u32) -> Instant {
    let started = Instant::now();
    let mut last = started;
    for i in 0..count {
        // Paced from the start, so that the gaps do not drift with the time a send takes.
        let due = started + period * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        last = Instant::now();
        agent.send_tcp(format!("job.ok {name}\n").as_bytes());
    }
    last
}

#[test]
fn an_unconfigured_job_that_stops_goes_stale_by_its_learned_alert_after() {
    let agent = Agent::start();
    let job = [("job", "sync")];
    // Seven successes a second apart: 0 s to 6 s.
    let last = succeed_every(&agent, "sync", Duration::from_secs(1), 7);
    let learned = [
        ("job", "sync"),
        ("source", "learned"),
        ("schedule", "every 1s"),
    ];
    let scrape = agent.wait_for(INFO, &learned, 1.0);
    assert_eq!(scrape.value(STALE, &job), Some(0.0), "fresh right after");
    assert_eq!(
        scrape.value("heartwire_job_state", &[("job", "sync"), ("state", "ok")]),
        Some(1.0)
    );
    assert_eq!(scrape.value(MISSED, &job), Some(0.0));
    // alert_after = 1 s + min(4 × 1 s, max(1 h, 0.25 s)) = 5 s after the last success.
    let scrape = agent.wait_for(STALE, &job, 1.0);
    let after = last.elapsed();
    assert!(
        after >= Duration::from_millis(4900),
        "stale {after:?} after the last success; alert_after is 5 s"
    );
    assert!(after < Duration::from_secs(8), "stale only {after:?} after");
    assert_eq!(
        scrape.value(
            "heartwire_job_state",
            &[("job", "sync"), ("state", "stale")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.value(INFO, &learned), Some(1.0), "still learned");
}

#[test]
fn config_suggest_prints_a_block_that_check_accepts() {
    let agent = Agent::start_with("jobs:\n  nightly: { cron: \"0 3 * * *\", tz: Europe/Berlin }\n");
    // Five successes at once, their runs having started a second apart (each line gives its
    // duration): learned as `every: 1s` at the fifth. `adhoc` succeeds once: no schedule yet.
    let batch: String = (0..5)
        .map(|i| format!("job.ok sync {}\njob.ok ns:odd {}\n", 4 - i, 4 - i))
        .collect();
    agent.send_tcp(format!("{batch}job.ok adhoc\n").as_bytes());
    let learned = |job| {
        [
            ("job", job),
            ("source", "learned"),
            ("schedule", "every 1s"),
        ]
    };
    agent.wait_for_all(&[
        (INFO, &learned("sync"), 1.0),
        (INFO, &learned("ns:odd"), 1.0),
        (
            "heartwire_job_runs_total",
            &[("job", "adhoc"), ("result", "ok")],
            1.0,
        ),
    ]);
    let from = agent.http_url("/status");
    let output = heartwire()
        .args(["config", "suggest", "--from", &from])
        .output()
        .expect("heartwire config suggest runs");
    let block = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "config suggest failed: {}\n{block}",
        String::from_utf8_lossy(&output.stderr)
    );
    let entry = |needle: &str| {
        assert!(
            block.lines().any(|line| line.starts_with(needle)),
            "no line starting {needle:?} in:\n{block}"
        );
    };
    entry("jobs:");
    entry("  nightly: { cron: \"0 3 * * *\", tz: \"Europe/Berlin\" }");
    entry("  sync: { every: 1s }");
    entry("  \"ns:odd\": { every: 1s }");
    entry("  # adhoc: ");
    let file = agent.dir().join("suggested.yaml");
    std::fs::write(&file, &block).unwrap();
    let check = heartwire()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .expect("heartwire check runs");
    let summary = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "check refused the suggested block: {}\n{block}",
        String::from_utf8_lossy(&check.stderr)
    );
    for job in ["nightly", "sync", "ns:odd"] {
        assert!(
            summary.contains(job),
            "check does not list {job}:\n{summary}"
        );
    }
    assert!(
        !summary.contains("adhoc"),
        "adhoc is commented out:\n{summary}"
    );
    // An agent that is not there: a clear error and EX_UNAVAILABLE.
    let down = heartwire()
        .args(["config", "suggest", "--from", "http://127.0.0.1:9/status"])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("cannot read http://127.0.0.1:9/status")
    );
}

#[test]
fn missed_runs_are_counted_once_per_slot_after_a_configured_job_stops() {
    let agent = Agent::start_with("jobs:\n  poll: { every: 1s, late_after: 1s }\n");
    let job = [("job", "poll")];
    let config = [
        ("job", "poll"),
        ("source", "config"),
        ("schedule", "every 1s"),
    ];
    agent.wait_for(INFO, &config, 1.0);
    // On time for three seconds (twice a second): nothing missed.
    let last = succeed_every(&agent, "poll", Duration::from_millis(500), 7);
    let scrape = agent.wait_for(
        "heartwire_job_runs_total",
        &[("job", "poll"), ("result", "ok")],
        7.0,
    );
    assert_eq!(scrape.value(MISSED, &job), Some(0.0));
    // Silent: slot k (last + k s) is missed once last + k s + late_after (1 s) has passed, so
    // by t seconds after the last success at most ⌊t − 1⌋ slots are, and the one-second tick
    // counts each within a second.
    let mut seen = 0.0;
    while last.elapsed() < Duration::from_secs(7) {
        let before = last.elapsed().as_secs_f64();
        let count = agent
            .scrape()
            .value(MISSED, &job)
            .expect("the missed-runs counter");
        let after = last.elapsed().as_secs_f64();
        assert!(count >= seen, "the counter went down: {seen} then {count}");
        assert!(
            count <= (after - 1.0).floor().max(0.0),
            "{count} slots missed {after:.2} s after the last success: a slot was counted twice"
        );
        assert!(
            count >= (before - 1.0).floor() - 2.0,
            "only {count} slots missed {before:.2} s after the last success"
        );
        seen = count;
        thread::sleep(Duration::from_millis(100));
    }
    assert!(seen >= 4.0, "{seen} missed slots after 7 s");
}
