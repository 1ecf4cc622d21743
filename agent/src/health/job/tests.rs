use super::*;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn unix(text: &str) -> f64 {
    DateTime::parse_from_rfc3339(text).unwrap().timestamp() as f64
}

fn at(text: &str) -> Now {
    Now::at_unix_seconds(unix(text))
}

fn every(period: Duration) -> JobSpec {
    JobSpec::new(Schedule::every(period).unwrap())
}

fn cron(expr: &str, tz: &str) -> JobSpec {
    JobSpec::new(Schedule::cron(expr, tz).unwrap())
}

#[test]
fn a_job_that_never_reports_goes_stale_after_its_first_deadline_and_not_before() {
    let spec = every(MINUTE);
    let t0 = at("2026-01-01T00:00:00Z");
    let job = JobHealth::new(t0);
    let just_before = job.verdict(&spec, t0.advance(Duration::from_secs(299)));
    assert!(!just_before.stale);
    assert_eq!(
        just_before.state,
        JobState::Late,
        "a run was due at T0+60 s and did not come"
    );
    assert_eq!(
        job.verdict(&spec, t0.advance(Duration::from_secs(30)))
            .state,
        JobState::Warming
    );
    let at_deadline = job.verdict(&spec, t0.advance(Duration::from_secs(300)));
    assert!(at_deadline.stale);
    assert_eq!(at_deadline.state, JobState::Stale);
    assert_eq!(at_deadline.deadline, t0.unix_seconds() + 300.0);
    assert_eq!(
        at_deadline.seconds_since_success, 300.0,
        "counted from the baseline"
    );
    assert!(!at_deadline.ever_succeeded);
}

#[test]
fn a_success_moves_the_deadline_and_the_state_to_ok() {
    let spec = every(MINUTE);
    let t0 = at("2026-01-01T00:00:00Z");
    let mut job = JobHealth::new(t0);
    job.succeeded(t0.advance(Duration::from_secs(250)));
    let verdict = job.verdict(&spec, t0.advance(Duration::from_secs(260)));
    assert_eq!(verdict.state, JobState::Ok);
    assert_eq!(verdict.deadline, t0.unix_seconds() + 550.0);
    assert_eq!(verdict.next_expected, t0.unix_seconds() + 310.0);
    assert_eq!(verdict.seconds_since_success, 10.0);
    assert!(
        job.verdict(&spec, t0.advance(Duration::from_secs(550)))
            .stale
    );
}

#[test]
fn a_job_that_fails_every_run_is_failing_then_stale() {
    let spec = every(MINUTE);
    let t0 = at("2026-01-01T00:00:00Z");
    let mut job = JobHealth::new(t0);
    job.succeeded(t0);
    for minute in 1..=4 {
        job.failed(t0.advance(MINUTE * minute));
    }
    let verdict = job.verdict(&spec, t0.advance(Duration::from_secs(250)));
    assert_eq!(
        (verdict.state, verdict.consecutive_failures),
        (JobState::Failing, 4)
    );
    assert_eq!(
        job.verdict(&spec, t0.advance(Duration::from_secs(300)))
            .state,
        JobState::Stale,
        "errors never refresh freshness"
    );
    job.succeeded(t0.advance(Duration::from_secs(301)));
    assert_eq!(
        job.verdict(&spec, t0.advance(Duration::from_secs(302)))
            .state,
        JobState::Ok
    );
}

#[test]
fn a_weekday_job_is_not_stale_over_the_weekend() {
    // JOB-HEALTH 8.9: success Fri 09:00:20 → deadline Mon 09:00 + 6 h.
    let spec = cron("0 9 * * 1-5", "UTC");
    assert_eq!(spec.alert_after, 30 * HOUR);
    let friday = at("2026-01-02T09:00:20Z");
    let mut job = JobHealth::new(friday);
    job.succeeded(friday);
    let saturday_afternoon = at("2026-01-03T15:00:21Z");
    let saturday = job.verdict(
        &spec,
        Now {
            wall: saturday_afternoon.wall,
            mono: friday.mono
                + Duration::from_secs_f64(
                    saturday_afternoon.unix_seconds() - friday.unix_seconds(),
                ),
        },
    );
    assert!(!saturday.stale, "a constant 30 h rule would fire here");
    assert_eq!(saturday.deadline, unix("2026-01-05T15:00:00Z"));
    assert_eq!(saturday.next_expected, unix("2026-01-05T09:00:00Z"));
    assert_eq!(saturday.state, JobState::Ok);
    let monday = friday.advance(Duration::from_secs_f64(
        unix("2026-01-05T15:00:00Z") - friday.unix_seconds(),
    ));
    assert!(job.verdict(&spec, monday).stale);
}

#[test]
fn seed_000_hourly_and_daily_jobs_use_their_slots() {
    let spec = cron("45 3 * * *", "UTC");
    let run = at("2026-03-10T03:45:10Z");
    let mut job = JobHealth::new(run);
    job.succeeded(run);
    let verdict = job.verdict(&spec, run);
    assert_eq!(
        verdict.deadline,
        unix("2026-03-11T09:45:00Z"),
        "next slot + (30 h − 24 h)"
    );
    let spec = cron("0 * * * *", "UTC");
    let verdict = job.verdict(&spec, run);
    assert_eq!(
        verdict.deadline,
        unix("2026-03-10T05:00:00Z"),
        "next slot + (2 h − 1 h)"
    );
}

#[test]
fn a_job_is_late_when_its_slot_passes_without_a_run() {
    let spec = cron("0 * * * *", "UTC");
    let t0 = at("2026-03-10T10:00:05Z");
    let mut job = JobHealth::new(t0);
    job.succeeded(t0);
    let before = t0.advance(Duration::from_secs(3600 + 15 * 60 - 5));
    assert_eq!(
        job.verdict(&spec, before).state,
        JobState::Ok,
        "within the 15 min tolerance of the 11:00 slot"
    );
    let after = t0.advance(Duration::from_secs(3600 + 15 * 60));
    assert_eq!(job.verdict(&spec, after).state, JobState::Late);
    job.ran(after);
    assert_eq!(
        job.verdict(&spec, after).state,
        JobState::Ok,
        "a start clears lateness"
    );
}

#[test]
fn a_wall_clock_step_moves_no_deadline() {
    let spec = every(MINUTE);
    let t0 = at("2026-01-01T00:00:00Z");
    let mut job = JobHealth::new(t0);
    job.succeeded(t0);
    let later = t0.advance(Duration::from_secs(100));
    let stepped = Now {
        wall: later.wall + HOUR,
        mono: later.mono,
    };
    let verdict = job.verdict(&spec, stepped);
    assert!(
        !verdict.stale,
        "one hour of wall clock passed, but only 100 s of real time"
    );
    assert_eq!(verdict.seconds_since_success, 100.0);
    assert_eq!(
        verdict.deadline,
        stepped.unix_seconds() + 200.0,
        "the exported deadline is 200 s ahead"
    );
}

#[test]
fn the_last_success_never_moves_backwards() {
    let spec = every(MINUTE);
    let t0 = at("2026-01-01T00:00:00Z");
    let mut job = JobHealth::new(t0);
    job.succeeded(t0.advance(MINUTE * 2));
    let mut earlier = t0.advance(MINUTE);
    earlier.mono = t0.mono + MINUTE;
    job.succeeded(earlier);
    assert_eq!(
        job.verdict(&spec, t0.advance(MINUTE * 3))
            .seconds_since_success,
        60.0
    );
}

#[test]
fn readiness_completed_counts_failed_runs_and_success_does_not() {
    // Seed 000's /_readiness: "has viewer-poll completed in 5 minutes", an error loop included.
    let t0 = at("2026-01-01T00:00:00Z");
    let mut spec = JobSpec::new(Schedule::every(MINUTE).unwrap());
    spec.alert_after = 5 * MINUTE;
    let mut job = JobHealth::new(t0);
    for minute in 1..=10 {
        job.failed(t0.advance(minute * MINUTE));
    }
    let now = t0.advance(11 * MINUTE);
    spec.readiness = Readiness::Success;
    assert!(job.verdict(&spec, now).unready, "no success for 11 minutes");
    spec.readiness = Readiness::Completed;
    let verdict = job.verdict(&spec, now);
    assert!(!verdict.unready, "a run ended a minute ago");
    assert_eq!(
        verdict.last_end,
        Some(t0.advance(10 * MINUTE).unix_seconds())
    );
    assert!(
        job.verdict(&spec, t0.advance(15 * MINUTE)).unready,
        "no run end for 5 minutes"
    );
    spec.readiness = Readiness::Off;
    assert!(!job.verdict(&spec, t0.advance(60 * MINUTE)).unready);
}

#[test]
fn a_progress_job_stalls_only_while_running_and_silent() {
    // Seed 002: no new page for an hour while a crawl runs is a stall; a queued crawl is not.
    let t0 = at("2026-01-01T00:00:00Z");
    let quiet = 15 * MINUTE;
    let later = t0.advance(10 * quiet);
    assert_eq!(
        Progress::at(quiet, false, None, None, later),
        Progress::NotStarted,
        "never started since the agent started: its own state, not stalled"
    );
    // Progress-only jobs: running once progress was seen.
    let progress = t0.advance(10 * MINUTE);
    let at_quiet = |minutes| {
        Progress::at(
            quiet,
            false,
            None,
            Some(progress),
            t0.advance(minutes * MINUTE),
        )
    };
    assert_eq!(at_quiet(20), Progress::Progressing);
    assert_eq!(at_quiet(25), Progress::Stalled);
    // Jobs that send job.start: running while a run is open, quiet from the later of its start
    // and its last progress.
    assert_eq!(
        Progress::at(quiet, true, None, Some(progress), later),
        Progress::Idle
    );
    let started = t0.advance(30 * MINUTE);
    assert_eq!(
        Progress::at(
            quiet,
            true,
            Some(started),
            Some(progress),
            t0.advance(44 * MINUTE)
        ),
        Progress::Progressing,
        "a new run gets its full quiet period whatever the last run's progress"
    );
    assert_eq!(
        Progress::at(
            quiet,
            true,
            Some(started),
            Some(progress),
            t0.advance(45 * MINUTE)
        ),
        Progress::Stalled
    );
    let fresh = t0.advance(40 * MINUTE);
    assert_eq!(
        Progress::at(
            quiet,
            true,
            Some(started),
            Some(fresh),
            t0.advance(54 * MINUTE)
        ),
        Progress::Progressing
    );
}

/// Issue 11: `every: 300000y` panicked the aggregating task on a chrono date overflow. The
/// loader refuses such specs now; the verdict must not panic on them anyway.
#[test]
fn verdicts_on_absurd_specs_and_clocks_are_finite_and_do_not_panic() {
    let absurd = JobSpec::new(Schedule::every(Duration::MAX).unwrap());
    assert_eq!(absurd.alert_after, Duration::MAX, "the default saturates");
    let mut cron = cron("0 0 29 2 *", "Pacific/Kiritimati");
    cron.alert_after = Duration::MAX;
    let far = [
        UNIX_EPOCH,
        UNIX_EPOCH - Duration::from_secs(100 * 365 * 86_400),
        UNIX_EPOCH + Duration::from_secs(4999 * 31_557_600),
        UNIX_EPOCH + Duration::from_secs(300_000 * 31_557_600),
    ];
    for spec in [&absurd, &cron, &every(MINUTE)] {
        for wall in far {
            let t0 = Now {
                wall,
                mono: tokio::time::Instant::now(),
            };
            let mut job = JobHealth::new(t0);
            let never = job.verdict(spec, t0.advance(HOUR));
            assert!(never.deadline.is_finite() && never.next_expected.is_finite());
            job.succeeded(t0);
            let fresh = job.verdict(spec, t0);
            assert!(!fresh.stale, "{spec:?} at {wall:?}: {fresh:?}");
            assert!(fresh.deadline.is_finite() && fresh.next_expected.is_finite());
        }
    }
}

#[test]
fn a_wall_clock_beyond_chronos_range_saturates() {
    let beyond = UNIX_EPOCH + Duration::from_secs(300_000 * 31_557_600);
    assert_eq!(utc(beyond), DateTime::<Utc>::MAX_UTC);
    assert_eq!(utc(UNIX_EPOCH).timestamp(), 0);
    assert_eq!(
        utc(UNIX_EPOCH - Duration::from_millis(1500)).timestamp_millis(),
        -1500
    );
}

#[test]
fn max_runtime_defaults_to_one_period_within_bounds() {
    assert_eq!(default_max_runtime(Duration::from_secs(10)), MINUTE);
    assert_eq!(default_max_runtime(HOUR), HOUR);
}

#[test]
fn late_tolerance_defaults_to_a_quarter_period_within_bounds() {
    assert_eq!(default_late_after(MINUTE), Duration::from_secs(15));
    assert_eq!(
        default_late_after(Duration::from_secs(20)),
        Duration::from_secs(10)
    );
    assert_eq!(default_late_after(24 * HOUR), 30 * MINUTE);
}
