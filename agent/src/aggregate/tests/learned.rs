//! Learned schedules and missed runs, through the aggregator: jobs nobody configured that
//! succeed steadily get a schedule, verdicts and a schedule-info series; missed slots are
//! counted on the tick, once each.

use super::*;
use crate::aggregate::snapshot::ScheduleSource;
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;

const INFO: &str = "heartwire_job_schedule_info";
const MISSED: &str = "heartwire_job_missed_runs_total";

/// `job.ok NAME` every `period` seconds, `count` times, the clock ending on the last one.
fn succeed(h: &mut Harness, name: &str, period: f64, count: usize) {
    for i in 0..count {
        if i > 0 {
            h.advance(period);
        }
        h.send(&format!("job.ok {name}\n"));
    }
}

fn info(h: &Harness, job: &str, source: &str, schedule: &str) -> Option<Value> {
    h.value(
        INFO,
        &[("job", job), ("source", source), ("schedule", schedule)],
    )
}

fn configured(jobs: &[(&str, JobSpec)]) -> Harness {
    Harness::with(Settings {
        jobs: jobs
            .iter()
            .map(|(name, spec)| ((*name).to_owned(), spec.clone()))
            .collect(),
        ..Settings::default()
    })
}

#[test]
fn a_job_nobody_configured_gets_a_learned_schedule_and_goes_stale_by_it() {
    let mut h = Harness::new();
    succeed(&mut h, "sync", 60.0, 4);
    let job = [("job", "sync")];
    assert!(
        h.value("heartwire_job_stale", &job).is_none(),
        "not learned yet"
    );
    assert!(h.snapshot().family(INFO).is_none());
    let health = h.snapshot().health(h.now);
    assert_eq!(health.unscheduled.len(), 1);
    assert_eq!(health.unscheduled[0].successes_seen, 4);
    h.advance(60.0);
    h.send("job.ok sync\n");
    assert!(matches!(info(&h, "sync", "learned", "every 1m"), Some(Value::Number(v)) if v == 1.0));
    assert_eq!(h.number("heartwire_job_stale", &job), 0.0);
    assert_eq!(h.number(MISSED, &job), 0.0);
    let health = h.snapshot().health(h.now);
    assert!(health.unscheduled.is_empty());
    assert_eq!(health.jobs[0].schedule_source, ScheduleSource::Learned);
    // alert_after by the default formula: 60 s + 4 × 60 s.
    h.advance(299.0);
    assert_eq!(h.number("heartwire_job_stale", &job), 0.0);
    h.advance(1.0);
    assert_eq!(h.number("heartwire_job_stale", &job), 1.0);
}

#[test]
fn config_wins_over_a_learned_schedule_and_its_removal_lets_the_learned_one_in() {
    let hourly = JobSpec::new(Schedule::every(Duration::from_secs(3600)).unwrap());
    let mut h = configured(&[("sync", hourly.clone())]);
    succeed(&mut h, "sync", 60.0, 6);
    assert!(info(&h, "sync", "config", "every 1h").is_some());
    assert!(info(&h, "sync", "learned", "every 1m").is_none());
    let now = h.now;
    h.aggregator.reconfigure(&Settings::default(), now);
    assert!(info(&h, "sync", "learned", "every 1m").is_some());
    assert!(info(&h, "sync", "config", "every 1h").is_none());
}

#[test]
fn learning_can_be_turned_off() {
    let mut h = Harness::with(Settings {
        learn_schedules: false,
        ..Settings::default()
    });
    succeed(&mut h, "sync", 60.0, 6);
    assert!(h.snapshot().family(INFO).is_none());
    assert!(h.value("heartwire_job_stale", &[("job", "sync")]).is_none());
}

#[test]
fn missed_slots_are_counted_on_the_tick_once_each() {
    let every_minute = JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap());
    let mut h = configured(&[("poll", every_minute)]);
    let job = [("job", "poll")];
    h.send("job.ok poll\n");
    let count = |h: &mut Harness| {
        let now = h.now;
        h.aggregator.count_missed(now)
    };
    // Due at +60 s, late_after 15 s.
    h.advance(74.0);
    assert_eq!(count(&mut h), 0);
    h.advance(1.0);
    assert_eq!(count(&mut h), 1);
    assert_eq!(
        count(&mut h),
        0,
        "once per slot, however often the tick comes"
    );
    assert_eq!(h.number(MISSED, &job), 1.0);
    // A run within late_after of the next slot: not missed.
    h.advance(50.0);
    h.send("job.start poll\n");
    h.advance(120.0);
    assert_eq!(count(&mut h), 1, "only the slot after the start");
    assert_eq!(h.number(MISSED, &job), 2.0);
}
