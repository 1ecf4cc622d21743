//! Job families: runs, durations, timestamps, open starts, progress.

use super::*;

#[test]
fn job_results_are_counted_by_result_with_ok_and_error_always_present() {
    let mut h = Harness::new();
    h.send("job.ok viewer-poll 0.3\njob.ok viewer-poll 0.2\njob.error viewer-poll 1.5 reason=timeout\n");
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "ok")]
        ),
        2.0
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "error")]
        ),
        1.0
    );
    assert!(
        h.value(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "skipped")]
        )
        .is_none()
    );
    h.send("job.skip viewer-poll reason=not_leader\n");
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "skipped")]
        ),
        1.0
    );
}

#[test]
fn job_durations_from_the_line_feed_the_histogram() {
    let mut h = Harness::new();
    h.send("job.ok export 0.3\njob.error export 12\n");
    let duration = h.histogram("heartwire_job_duration_seconds", &[("job", "export")]);
    assert_eq!(duration.count, 2.0);
    assert_eq!(duration.sum, 12.3);
    assert_eq!(bucket(&duration, 0.25), 0.0);
    assert_eq!(bucket(&duration, 0.5), 1.0);
    assert_eq!(bucket(&duration, 10.0), 1.0);
}

#[test]
fn a_job_end_without_seconds_takes_its_duration_from_the_matching_start_by_id() {
    let mut h = Harness::new();
    h.send("job.start export id=a\n");
    h.advance(1.0);
    h.send("job.start export id=b\n");
    assert_eq!(h.number("heartwire_job_running", &[("job", "export")]), 2.0);
    h.advance(2.0);
    h.send("job.ok export id=b\n");
    let duration = h.histogram("heartwire_job_duration_seconds", &[("job", "export")]);
    assert_eq!((duration.count, duration.sum), (1.0, 2.0));
    assert_eq!(h.number("heartwire_job_running", &[("job", "export")]), 1.0);
    h.send("job.error export id=a\n");
    let duration = h.histogram("heartwire_job_duration_seconds", &[("job", "export")]);
    assert_eq!((duration.count, duration.sum), (2.0, 5.0));
    assert_eq!(h.number("heartwire_job_running", &[("job", "export")]), 0.0);
}

#[test]
fn a_job_end_without_id_closes_the_latest_open_start_so_a_hung_run_stays_open() {
    // Last in, first out (JOB-HEALTH 8.9 "Overlap"): a run that hangs while later runs of the
    // same job come and go stays open, and shows as overrun, instead of being paired away.
    let mut h = Harness::new();
    h.send("job.start crawl\n");
    h.advance(4.0);
    h.send("job.start crawl\n");
    h.advance(1.0);
    h.send("job.ok crawl\n");
    let duration = h.histogram("heartwire_job_duration_seconds", &[("job", "crawl")]);
    assert_eq!((duration.count, duration.sum), (1.0, 1.0));
    assert_eq!(h.number("heartwire_job_running", &[("job", "crawl")]), 1.0);
}

#[test]
fn a_job_end_with_an_unknown_id_observes_no_duration_and_leaves_other_starts_open() {
    let mut h = Harness::new();
    h.send("job.start sync id=a\n");
    h.send("job.ok sync id=zzz\n");
    assert!(
        h.value("heartwire_job_duration_seconds", &[("job", "sync")])
            .is_none()
    );
    assert_eq!(h.number("heartwire_job_running", &[("job", "sync")]), 1.0);
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "sync"), ("result", "ok")]
        ),
        1.0
    );
}

#[test]
fn last_success_never_moves_backwards_and_last_run_follows_any_result() {
    let mut h = Harness::new();
    h.send("job.ok nightly 1\n");
    assert_eq!(
        h.number(
            "heartwire_job_last_success_timestamp_seconds",
            &[("job", "nightly")]
        ),
        T0
    );
    h.advance(60.0);
    h.send("job.error nightly 1\n");
    assert_eq!(
        h.number(
            "heartwire_job_last_success_timestamp_seconds",
            &[("job", "nightly")]
        ),
        T0
    );
    assert_eq!(
        h.number(
            "heartwire_job_last_run_timestamp_seconds",
            &[("job", "nightly")]
        ),
        T0 + 60.0
    );
    // The wall clock steps back (NTP); the timestamps stay where they were.
    h.now = Now::at_unix_seconds(T0 - 3600.0);
    h.send("job.ok nightly 1\n");
    assert_eq!(
        h.number(
            "heartwire_job_last_success_timestamp_seconds",
            &[("job", "nightly")]
        ),
        T0
    );
    assert_eq!(
        h.number(
            "heartwire_job_last_run_timestamp_seconds",
            &[("job", "nightly")]
        ),
        T0 + 60.0
    );
}

#[test]
fn a_skip_moves_neither_last_run_nor_open_starts() {
    let mut h = Harness::new();
    h.send("job.start leader-only\njob.skip leader-only\n");
    assert!(
        h.value(
            "heartwire_job_last_run_timestamp_seconds",
            &[("job", "leader-only")]
        )
        .is_none()
    );
    assert_eq!(
        h.number("heartwire_job_running", &[("job", "leader-only")]),
        1.0
    );
}

#[test]
fn progress_adds_up_and_records_its_time() {
    let mut h = Harness::new();
    h.send("job.progress crawl 120\njob.progress crawl\n");
    h.advance(5.0);
    h.send("job.progress crawl 0.5\n");
    assert_eq!(
        h.number("heartwire_job_progress_total", &[("job", "crawl")]),
        121.5
    );
    assert_eq!(
        h.number(
            "heartwire_job_last_progress_timestamp_seconds",
            &[("job", "crawl")]
        ),
        T0 + 5.0
    );
    // A progress-only job has no run families.
    assert!(h.snapshot().family("heartwire_job_runs_total").is_none());
}

#[test]
fn open_starts_are_bounded_per_job_and_evictions_are_counted() {
    let mut settings = Settings::default();
    settings.limits.max_open_starts_per_job = 3;
    let mut h = Harness::with(settings);
    for id in 0..5 {
        h.send(&format!("job.start batch id={id}\n"));
        h.advance(1.0);
    }
    assert_eq!(h.number("heartwire_job_running", &[("job", "batch")]), 3.0);
    assert_eq!(
        h.telemetry("heartwire_open_starts_evicted_total", None),
        2.0
    );
    // The two oldest went: id=0 no longer matches, id=2 still does (started 3 s ago).
    h.send("job.ok batch id=0\njob.ok batch id=2\n");
    let duration = h.histogram("heartwire_job_duration_seconds", &[("job", "batch")]);
    assert_eq!((duration.count, duration.sum), (1.0, 3.0));
}

#[test]
fn open_starts_are_bounded_globally_by_evicting_the_oldest_of_any_job() {
    let mut settings = Settings::default();
    settings.limits.max_open_starts = 2;
    let mut h = Harness::with(settings);
    h.send("job.start a\n");
    h.send("job.start b\n");
    h.send("job.start c\n");
    assert_eq!(h.number("heartwire_job_running", &[("job", "a")]), 0.0);
    assert_eq!(h.number("heartwire_job_running", &[("job", "b")]), 1.0);
    assert_eq!(h.number("heartwire_job_running", &[("job", "c")]), 1.0);
    assert_eq!(
        h.telemetry("heartwire_open_starts_evicted_total", None),
        1.0
    );
}

#[test]
fn the_last_result_is_one_hot_over_the_results_and_reasons_seen() {
    // Seed 002's `last_result{result,reason}`: exactly one combination is 1.
    let mut h = Harness::new();
    let last = |h: &Harness, result: &str, reason: &str| {
        h.value(
            "heartwire_job_last_result",
            &[("job", "watchdog"), ("result", result), ("reason", reason)],
        )
        .map(|value| match value {
            Value::Number(n) => n,
            other => panic!("{other:?}"),
        })
    };
    h.send("job.ok watchdog 0.1 reason=started\n");
    assert_eq!(last(&h, "ok", "started"), Some(1.0));
    h.send("job.error watchdog 0.1 reason=exception\n");
    assert_eq!(last(&h, "ok", "started"), Some(0.0));
    assert_eq!(last(&h, "error", "exception"), Some(1.0));
    h.send("job.skip watchdog reason=nothing_to_do\njob.ok watchdog\n");
    assert_eq!(last(&h, "skipped", "nothing_to_do"), Some(0.0));
    assert_eq!(last(&h, "ok", "none"), Some(1.0), "no reason given");
    assert_eq!(last(&h, "error", "exception"), Some(0.0));
    h.send("job.error watchdog signal=TERM\n");
    assert_eq!(
        last(&h, "error", "TERM"),
        Some(1.0),
        "a signal stands for the reason"
    );
}

#[test]
fn reasons_per_job_are_bounded_and_the_rest_fold_into_other() {
    let mut h = Harness::new();
    for i in 0..40 {
        h.send(&format!("job.error flaky reason=r{i}\n"));
    }
    let snapshot = h.snapshot();
    let family = snapshot.family("heartwire_job_last_result").unwrap();
    assert_eq!(family.series.len(), 17, "16 combinations and `other`");
    let on: Vec<&str> = family
        .series
        .iter()
        .filter(|s| matches!(s.value, Value::Number(v) if v == 1.0))
        .map(|s| &*s.labels[2])
        .collect();
    assert_eq!(on, ["other"]);
}
