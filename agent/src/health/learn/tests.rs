use super::*;

/// 2026-01-01T00:00:00Z.
const T0: f64 = 1_767_225_600.0;

/// A learner fed successes whose runs started at `T0 + offset` for each offset.
fn fed(offsets: &[f64]) -> Learner {
    let mut learner = Learner::default();
    for offset in offsets {
        learner.observe(T0 + offset);
    }
    learner
}

/// Offsets `first, first + period, …`, `count` of them, each moved by the matching `jitter`.
fn cadence(first: f64, period: f64, count: usize, jitter: &[f64]) -> Vec<f64> {
    (0..count)
        .map(|i| first + period * i as f64 + jitter.get(i).copied().unwrap_or(0.0))
        .collect()
}

#[track_caller]
fn learned(learner: &Learner) -> (LearnedKind, &str) {
    let learned = learner.learned().expect("a learned schedule");
    (learned.kind, learned.schedule.as_str())
}

#[test]
fn four_successes_teach_nothing_and_the_fifth_teaches_a_steady_interval() {
    let mut learner = fed(&cadence(0.0, 60.0, 4, &[]));
    assert_eq!(learner.learned(), None);
    assert_eq!(learner.successes_seen(), 4);
    assert!(learner.observe(T0 + 240.0), "the fifth success teaches");
    assert_eq!(learned(&learner), (LearnedKind::Every, "1m"));
    assert_eq!(learner.learned().unwrap().gaps, [60.0; 4]);
    let spec = learner.spec().unwrap();
    assert_eq!(spec.schedule.describe(), "every 1m");
    assert_eq!(
        spec.alert_after,
        Duration::from_secs(300),
        "the default formula"
    );
    assert!(
        !learner.observe(T0 + 300.0),
        "the same cadence changes nothing"
    );
}

#[test]
fn a_jittery_cadence_is_learned_as_its_median_rounded_to_seconds() {
    let learner = fed(&cadence(7.0, 90.0, 5, &[0.0, 4.0, -3.0, 5.0, 1.0]));
    assert_eq!(learned(&learner), (LearnedKind::Every, "1m 30s"));
    // A one-second job whose reports wobble by a few hundred milliseconds.
    let learner = fed(&cadence(0.3, 1.0, 5, &[0.0, 0.2, -0.1, 0.4, 0.1]));
    assert_eq!(learned(&learner), (LearnedKind::Every, "1s"));
    assert_eq!(learner.spec().unwrap().alert_after, Duration::from_secs(5));
}

#[test]
fn an_unstable_cadence_is_not_learned() {
    // 60, 60, 90, 60: one gap is 30 s off a 60 s median (tolerance 6 s).
    let learner = fed(&[0.0, 60.0, 120.0, 210.0, 270.0]);
    assert_eq!(learner.learned(), None);
    // Bursts: two successes at once, then a pause.
    let learner = fed(&[0.0, 0.0, 60.0, 60.0, 120.0, 120.0]);
    assert_eq!(learner.learned(), None);
    // Faster than a second.
    let learner = fed(&cadence(0.0, 0.2, 5, &[]));
    assert_eq!(learner.learned(), None);
}

#[test]
fn an_hourly_cadence_at_a_fixed_minute_is_learned_as_cron() {
    // Starts at 00:00:05, 01:00:41, 02:00:12, … in UTC.
    let learner = fed(&cadence(5.0, HOUR, 5, &[0.0, 36.0, 7.0, 50.0, 1.0]));
    assert_eq!(learned(&learner), (LearnedKind::Cron, "0 * * * *"));
    let spec = learner.spec().unwrap();
    assert_eq!(spec.alert_after, Duration::from_secs(2 * 3600));
    assert_eq!(spec.schedule.zone(), "UTC");
    let at_45 = fed(&cadence(45.0 * 60.0 + 2.0, HOUR, 5, &[]));
    assert_eq!(learned(&at_45), (LearnedKind::Cron, "45 * * * *"));
}

#[test]
fn a_daily_cadence_at_a_fixed_time_is_learned_as_cron() {
    let at_0345 = 3.0 * HOUR + 45.0 * 60.0;
    let learner = fed(&cadence(
        at_0345 + 3.0,
        DAY,
        5,
        &[0.0, 20.0, 2.0, 40.0, 9.0],
    ));
    assert_eq!(learned(&learner), (LearnedKind::Cron, "45 3 * * *"));
    assert_eq!(
        learner.spec().unwrap().alert_after,
        Duration::from_secs(30 * 3600)
    );
}

#[test]
fn an_hourly_cadence_that_drifts_across_minutes_is_an_interval() {
    // A timer that fires every 3600 s from 00:17:30 plus a run of a minute and a half.
    let learner = fed(&cadence(17.0 * 60.0 + 30.0, HOUR + 90.0, 5, &[]));
    assert_eq!(learned(&learner), (LearnedKind::Every, "1h 1m 30s"));
}

#[test]
fn a_changed_cadence_is_relearned_once_four_gaps_agree_on_it() {
    let mut learner = fed(&cadence(0.0, 60.0, 5, &[]));
    assert_eq!(learned(&learner), (LearnedKind::Every, "1m"));
    let last = 240.0;
    let mut changed = Vec::new();
    for i in 1..=4 {
        changed.push(learner.observe(T0 + last + 300.0 * f64::from(i)));
    }
    assert_eq!(changed, [false, false, false, true]);
    assert_eq!(learned(&learner), (LearnedKind::Every, "5m"));
}

#[test]
fn a_learned_cron_does_not_flap_to_an_interval_when_a_start_slips_a_minute() {
    let mut learner = fed(&cadence(5.0, HOUR, 5, &[]));
    assert_eq!(learned(&learner), (LearnedKind::Cron, "0 * * * *"));
    // 05:01:02: same cadence, another minute; the window is an `every 1h` candidate.
    assert!(!learner.observe(T0 + 5.0 * HOUR + 62.0));
    assert_eq!(learned(&learner), (LearnedKind::Cron, "0 * * * *"));
    // Moved to minute 30 for good: re-learned once every start of the window agrees.
    let mut relearned = false;
    for hour in 6..=10 {
        relearned |= learner.observe(T0 + f64::from(hour) * HOUR + 30.0 * 60.0 + 4.0);
    }
    assert!(relearned);
    assert_eq!(learned(&learner), (LearnedKind::Cron, "30 * * * *"));
}

#[test]
fn a_start_earlier_than_the_last_is_ignored() {
    let mut learner = fed(&cadence(0.0, 60.0, 4, &[]));
    assert!(!learner.observe(T0 + 100.0));
    assert_eq!(learner.successes_seen(), 4);
    assert!(learner.observe(T0 + 240.0));
}

#[test]
fn a_learner_survives_serde_with_its_schedule_rebuilt() {
    let learner = fed(&cadence(5.0, HOUR, 5, &[]));
    let saved = serde_json::to_value(&learner).unwrap();
    assert_eq!(saved["learned"]["kind"], "cron");
    assert_eq!(saved["learned"]["schedule"], "0 * * * *");
    assert_eq!(saved["recent_starts"].as_array().unwrap().len(), 5);
    let loaded: Learner = serde_json::from_value(saved).unwrap();
    assert_eq!(loaded, learner);
    assert_eq!(loaded.spec().unwrap().schedule.describe(), "0 * * * *");
    // A schedule that no longer parses is forgotten, not trusted.
    let broken = serde_json::json!({
        "recent_starts": [1.0, 2.0],
        "learned": { "kind": "every", "schedule": "soon", "gaps": [] },
    });
    let loaded: Learner = serde_json::from_value(broken).unwrap();
    assert_eq!((loaded.learned(), loaded.successes_seen()), (None, 2));
}
