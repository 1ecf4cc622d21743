//! What the aggregator keeps across a restart, and what a fresh aggregator makes of it.

use super::*;
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;

const HOUR: f64 = 3600.0;

/// A daily job at 04:22 UTC (alert_after 30 h) and a worker with a 90 s ttl.
fn settings() -> Settings {
    let daily = JobSpec::new(Schedule::cron("22 4 * * *", "UTC").unwrap());
    Settings {
        jobs: vec![("daily".to_owned(), daily)],
        workers: vec![("mailer".to_owned(), Duration::from_secs(90))],
        ..Settings::default()
    }
}

/// The same settings in a new process at the harness's wall time: the monotonic clock of a
/// fresh aggregator knows nothing of the old one.
fn restarted(old: &Harness) -> Harness {
    let memory = old.aggregator.remember(old.now);
    let text = serde_json::to_string(&memory).unwrap();
    let memory: Memory = serde_json::from_str(&text).unwrap();
    let now = Now::at_unix_seconds(old.now.unix_seconds());
    let mut aggregator = Aggregator::starting_at(settings(), now);
    aggregator.recall(&memory, now);
    Harness { aggregator, now }
}

#[test]
fn a_stale_daily_job_is_stale_again_after_a_restart_with_its_last_success() {
    let mut h = Harness::with(settings());
    h.send("job.ok daily 12\njob.ok adhoc 1 reason=manual\n");
    h.advance(29.0 * HOUR);
    let daily = [("job", "daily")];
    assert_eq!(h.number("heartwire_job_stale", &daily), 1.0);
    let deadline = h.number("heartwire_job_stale_deadline_timestamp_seconds", &daily);
    let h = restarted(&h);
    assert_eq!(
        h.number("heartwire_job_stale", &daily),
        1.0,
        "stale on the first scrape"
    );
    assert_eq!(
        h.number(
            "heartwire_job_state",
            &[("job", "daily"), ("state", "stale")]
        ),
        1.0
    );
    assert_eq!(
        h.number("heartwire_job_last_success_timestamp_seconds", &daily),
        T0,
        "the last success is exported again"
    );
    let again = h.number("heartwire_job_stale_deadline_timestamp_seconds", &daily);
    assert!((again - deadline).abs() < 1e-3, "{again} vs {deadline}");
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "daily"), ("result", "ok")]
        ),
        0.0,
        "counters restart at 0"
    );
    // A job nobody configured keeps its timestamps and last result too.
    let adhoc = [("job", "adhoc")];
    assert_eq!(
        h.number("heartwire_job_last_success_timestamp_seconds", &adhoc),
        T0
    );
    assert_eq!(
        h.number(
            "heartwire_job_last_result",
            &[("job", "adhoc"), ("result", "ok"), ("reason", "manual")]
        ),
        1.0
    );
}

#[test]
fn open_runs_and_workers_come_back_and_age_on() {
    let mut h = Harness::with(settings());
    h.send("job.start daily id=r1\nhb mailer\n");
    h.advance(30.0);
    let mut h = restarted(&h);
    let daily = [("job", "daily")];
    assert_eq!(
        h.number("heartwire_job_running", &daily),
        1.0,
        "not dropped, not crashed"
    );
    assert_eq!(h.number("heartwire_job_crashes_total", &daily), 0.0);
    assert_eq!(
        h.number("heartwire_worker_status", &[("worker", "mailer")]),
        1.0
    );
    h.advance(60.0);
    assert_eq!(
        h.number("heartwire_worker_status", &[("worker", "mailer")]),
        0.0,
        "down once 90 s passed since the heartbeat before the restart"
    );
    h.send("job.ok daily id=r1\n");
    assert_eq!(h.number("heartwire_job_running", &daily), 0.0);
    let duration = h.value("heartwire_job_duration_seconds", &daily);
    match duration {
        Some(Value::Histogram(histogram)) => {
            assert!((histogram.sum - 90.0).abs() < 1e-6, "{histogram:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_learned_schedule_recent_runs_and_counted_slots_survive_a_restart() {
    let mut h = Harness::with(settings());
    for i in 0..5 {
        if i > 0 {
            h.advance(60.0);
        }
        h.send("job.ok sync\n");
    }
    let learned = [
        ("job", "sync"),
        ("source", "learned"),
        ("schedule", "every 1m"),
    ];
    assert_eq!(h.number("heartwire_job_schedule_info", &learned), 1.0);
    // Two slots missed and counted before the restart.
    h.advance(150.0);
    let now = h.now;
    assert_eq!(h.aggregator.count_missed(now), 2);
    let mut h = restarted(&h);
    assert_eq!(
        h.number("heartwire_job_schedule_info", &learned),
        1.0,
        "the learned schedule is in force again"
    );
    let health = h.snapshot().health(h.now);
    let sync = health.jobs.iter().find(|job| &*job.job == "sync").unwrap();
    assert_eq!(sync.recent_runs.len(), 5, "{:?}", sync.recent_runs);
    let now = h.now;
    assert_eq!(h.aggregator.count_missed(now), 0, "no slot counted twice");
    h.advance(60.0);
    let now = h.now;
    assert_eq!(h.aggregator.count_missed(now), 1, "the next slot is");
}
