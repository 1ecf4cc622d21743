//! Configured jobs and workers: present from the start, verdicts at read time, sessions.

use super::*;
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;

fn watching(jobs: &[(&str, JobSpec)], workers: &[(&str, u64)]) -> Harness {
    Harness::with(Settings {
        jobs: jobs
            .iter()
            .map(|(name, spec)| ((*name).to_owned(), spec.clone()))
            .collect(),
        workers: workers
            .iter()
            .map(|(name, ttl)| ((*name).to_owned(), Duration::from_secs(*ttl)))
            .collect(),
        ..Settings::default()
    })
}

fn every_minute() -> JobSpec {
    JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap())
}

fn state(h: &Harness, job: &str) -> String {
    let snapshot = h.snapshot();
    let family = snapshot.family("heartwire_job_state").unwrap();
    let on: Vec<String> = family
        .series
        .iter()
        .filter(|s| &*s.labels[0] == job && matches!(s.value, Value::Number(v) if v == 1.0))
        .map(|s| s.labels[1].to_string())
        .collect();
    assert_eq!(on.len(), 1, "exactly one state is 1: {on:?}");
    on[0].clone()
}

#[test]
fn a_configured_job_is_present_from_the_first_snapshot_and_goes_stale_if_it_never_reports() {
    let mut h = watching(&[("viewer-poll", every_minute())], &[]);
    let job = [("job", "viewer-poll")];
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "ok")]
        ),
        0.0
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "error")]
        ),
        0.0
    );
    assert_eq!(h.number("heartwire_job_stale", &job), 0.0);
    assert_eq!(h.number("heartwire_job_running", &job), 0.0);
    assert_eq!(state(&h, "viewer-poll"), "warming");
    assert_eq!(
        h.number("heartwire_job_stale_deadline_timestamp_seconds", &job),
        T0 + 300.0
    );
    assert!(
        h.value("heartwire_job_last_success_timestamp_seconds", &job)
            .is_none(),
        "never 0"
    );
    h.advance(299.0);
    assert_eq!(h.number("heartwire_job_stale", &job), 0.0);
    h.advance(1.0);
    assert_eq!(h.number("heartwire_job_stale", &job), 1.0);
    assert_eq!(state(&h, "viewer-poll"), "stale");
    assert_eq!(h.number("heartwire_job_seconds_since_success", &job), 300.0);
    h.send("job.ok viewer-poll 0.3\n");
    assert_eq!(h.number("heartwire_job_stale", &job), 0.0);
    assert_eq!(state(&h, "viewer-poll"), "ok");
    assert_eq!(
        h.number("heartwire_job_stale_deadline_timestamp_seconds", &job),
        T0 + 600.0
    );
    assert_eq!(
        h.number("heartwire_job_next_expected_timestamp_seconds", &job),
        T0 + 360.0
    );
}

#[test]
fn failures_make_a_job_failing_and_count_in_a_row() {
    let mut h = watching(&[("sync", every_minute())], &[]);
    h.send("job.ok sync 1\njob.error sync 1\njob.error sync 1 reason=timeout\n");
    assert_eq!(state(&h, "sync"), "failing");
    assert_eq!(
        h.number("heartwire_job_consecutive_failures", &[("job", "sync")]),
        2.0
    );
    h.send("job.error sync signal=TERM\n");
    assert_eq!(
        h.number("heartwire_job_consecutive_failures", &[("job", "sync")]),
        2.0,
        "a cancelled run is no failure"
    );
    h.send("job.ok sync 1\n");
    assert_eq!(state(&h, "sync"), "ok");
    assert_eq!(
        h.number("heartwire_job_consecutive_failures", &[("job", "sync")]),
        0.0
    );
}

#[test]
fn a_run_open_when_its_session_closes_has_crashed_at_once() {
    let mut h = watching(&[("export", every_minute())], &[]);
    h.send_on(7, "hello app=exporter\njob.start export id=run-1\n");
    h.send_on(8, "job.start export id=run-2\n");
    assert_eq!(h.number("heartwire_job_running", &[("job", "export")]), 2.0);
    h.advance(3.0);
    h.close(7);
    let job = [("job", "export")];
    assert_eq!(h.number("heartwire_job_crashes_total", &job), 1.0);
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "export"), ("result", "error")]
        ),
        1.0
    );
    assert_eq!(
        h.number("heartwire_job_running", &job),
        1.0,
        "run-2 came on a connection without hello"
    );
    assert_eq!(h.histogram("heartwire_job_duration_seconds", &job).sum, 3.0);
    h.close(8);
    assert_eq!(
        h.number("heartwire_job_running", &job),
        1.0,
        "closing a connection that never said hello crashes nothing"
    );
    h.close(7);
    assert_eq!(
        h.number("heartwire_job_crashes_total", &job),
        1.0,
        "a session ends once"
    );
}

#[test]
fn a_run_that_ends_before_its_session_closes_is_no_crash() {
    let mut h = watching(&[], &[]);
    h.send_on(
        3,
        "hello app=cron\njob.start backup id=a\njob.ok backup id=a\n",
    );
    h.close(3);
    assert!(
        h.value("heartwire_job_crashes_total", &[("job", "backup")])
            .is_none(),
        "unconfigured jobs have no verdict families"
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "backup"), ("result", "ok")]
        ),
        1.0
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "backup"), ("result", "error")]
        ),
        0.0
    );
}

#[test]
fn an_open_run_past_max_runtime_is_overrun() {
    let mut spec = every_minute();
    spec.max_runtime = Duration::from_secs(120);
    let mut h = watching(&[("report", spec)], &[]);
    h.send("job.start report\n");
    h.advance(119.0);
    assert_eq!(
        h.number("heartwire_job_overrun_runs", &[("job", "report")]),
        0.0
    );
    h.advance(1.0);
    assert_eq!(
        h.number("heartwire_job_overrun_runs", &[("job", "report")]),
        1.0
    );
}

#[test]
fn a_progress_job_that_never_started_is_not_stalled() {
    // Seed 002: a queued crawl that has not begun is not a stalled one.
    let mut spec = JobSpec::new(Schedule::every(Duration::from_secs(3600)).unwrap());
    spec.stall_after = Some(Duration::from_secs(900));
    let mut h = watching(&[("crawl", spec)], &[]);
    h.advance(10_000.0);
    assert_eq!(h.number("heartwire_job_stalled", &[("job", "crawl")]), 0.0);
    h.send("job.progress crawl 5\n");
    h.advance(900.0);
    assert_eq!(h.number("heartwire_job_stalled", &[("job", "crawl")]), 1.0);
}

#[test]
fn a_progress_job_is_stalled_after_its_quiet_period() {
    let mut spec = JobSpec::new(Schedule::every(Duration::from_secs(3600)).unwrap());
    spec.stall_after = Some(Duration::from_secs(900));
    let mut h = watching(&[("crawl", spec)], &[]);
    h.send("job.progress crawl 50\n");
    h.advance(899.0);
    assert_eq!(h.number("heartwire_job_stalled", &[("job", "crawl")]), 0.0);
    h.advance(1.0);
    assert_eq!(h.number("heartwire_job_stalled", &[("job", "crawl")]), 1.0);
    h.send("job.progress crawl\n");
    assert_eq!(h.number("heartwire_job_stalled", &[("job", "crawl")]), 0.0);
    assert_eq!(
        h.number("heartwire_job_progress_total", &[("job", "crawl")]),
        51.0
    );
}

#[test]
fn a_worker_goes_down_when_heartbeats_stop_its_session_closes_or_it_stops() {
    let mut h = watching(&[], &[("email_queue", 30), ("blockchain_sync", 30)]);
    let email = [("worker", "email_queue")];
    assert_eq!(
        h.number("heartwire_worker_status", &email),
        0.0,
        "configured, never seen"
    );
    h.send("hb email_queue\n");
    assert_eq!(h.number("heartwire_worker_status", &email), 1.0);
    h.advance(29.0);
    assert_eq!(h.number("heartwire_worker_status", &email), 1.0);
    h.advance(1.0);
    assert_eq!(
        h.number("heartwire_worker_status", &email),
        0.0,
        "a crashed worker cannot set its own gauge to 0"
    );
    h.send_on(4, "hello app=api\nhb blockchain_sync\n");
    let sync = [("worker", "blockchain_sync")];
    assert_eq!(h.number("heartwire_worker_status", &sync), 1.0);
    h.close(4);
    assert_eq!(
        h.number("heartwire_worker_status", &sync),
        0.0,
        "down the moment its session closes"
    );
    h.send("hb email_queue\nworker.stop email_queue\n");
    assert_eq!(h.number("heartwire_worker_status", &email), 0.0);
    assert_eq!(h.number("heartwire_worker_stopped", &email), 1.0);
    let statuses = h.snapshot().health(h.now).workers;
    assert_eq!(
        statuses
            .iter()
            .map(|w| w.state.as_str())
            .collect::<Vec<_>>(),
        ["stopped", "disconnected"]
    );
}

#[test]
fn seed_000_names_come_out_exactly() {
    let settings = Settings {
        jobs: vec![("viewer-poll".into(), every_minute())],
        names: FamilyNames::seed_000(),
        ..Settings::default()
    };
    let mut h = Harness::with(settings);
    h.send("job.ok viewer-poll 0.3\nhttp kick oauth/token 401\n");
    let snapshot = h.snapshot();
    let runs = snapshot.family("vf_worker_poll_runs_total").unwrap();
    assert_eq!(&*runs.const_labels[0].0, "service");
    assert_eq!(&*runs.const_labels[0].1, "worker");
    assert_eq!(
        runs.label_names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["job", "result"]
    );
    assert!(snapshot.family("vf_worker_poll_duration_seconds").is_some());
    assert!(
        snapshot
            .family("vf_worker_poll_last_success_timestamp_seconds")
            .is_some()
    );
    let http = snapshot.family("vf_external_http_total").unwrap();
    assert_eq!(
        http.label_names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["service", "endpoint", "status_code"]
    );
}

#[test]
fn a_crash_of_a_job_nobody_configured_still_shows() {
    let mut h = watching(&[], &[]);
    h.send_on(9, "hello app=cron\njob.start backup\n");
    h.close(9);
    assert_eq!(
        h.number("heartwire_job_crashes_total", &[("job", "backup")]),
        1.0
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "backup"), ("result", "error")]
        ),
        1.0
    );
}

#[test]
fn a_reload_drops_silent_jobs_and_workers_and_gives_their_budget_back() {
    let mut h = watching(
        &[("a", every_minute()), ("b", every_minute())],
        &[("w", 30), ("v", 30)],
    );
    h.send("job.ok a 1\nhb w\n");
    assert_eq!(h.account("heartwire_job_runs_total").series, 2);
    assert_eq!(h.account("heartwire_worker_status").series, 2);
    let settings = Settings {
        jobs: vec![("c".to_owned(), every_minute())],
        ..Settings::default()
    };
    h.aggregator.reconfigure(&settings, h.now);
    assert!(
        h.value("heartwire_job_stale", &[("job", "a")]).is_none(),
        "a is no longer watched"
    );
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "a"), ("result", "ok")]
        ),
        1.0,
        "what a reported stays"
    );
    assert!(
        h.value(
            "heartwire_job_runs_total",
            &[("job", "b"), ("result", "ok")]
        )
        .is_none(),
        "b never reported: gone"
    );
    assert_eq!(
        h.number("heartwire_job_stale", &[("job", "c")]),
        0.0,
        "c is watched from the reload"
    );
    assert_eq!(h.account("heartwire_job_runs_total").series, 2, "a and c");
    assert!(
        h.value("heartwire_worker_status", &[("worker", "v")])
            .is_none()
    );
    assert_eq!(
        h.account("heartwire_worker_status").series,
        1,
        "only w, which beat"
    );
}

#[test]
fn a_reload_drops_a_silent_job_even_while_another_job_has_a_run_open() {
    // Jobs were identified by position: a removal would have moved `etl`, so silent jobs had to
    // stay while any run was open (issue 12). With handles, `etl`'s open run still ends in it.
    let mut settings = Settings {
        jobs: vec![
            ("silent".to_owned(), every_minute()),
            ("etl".to_owned(), every_minute()),
        ],
        ..Settings::default()
    };
    settings.limits.max_open_starts = 2;
    let mut h = Harness::with(settings);
    let etl = [("job", "etl")];
    h.send("job.start etl\n");
    h.advance(12.0);
    let reloaded = Settings {
        jobs: vec![("etl".to_owned(), every_minute())],
        ..Settings::default()
    };
    h.aggregator.reconfigure(&reloaded, h.now);
    assert!(
        h.value("heartwire_job_running", &[("job", "silent")])
            .is_none(),
        "silent never reported: gone although etl has a run open"
    );
    assert_eq!(h.account("heartwire_job_runs_total").series, 1, "etl only");
    assert_eq!(h.number("heartwire_job_running", &etl), 1.0);
    h.advance(3.0);
    h.send("job.ok etl\n");
    assert_eq!(h.number("heartwire_job_running", &etl), 0.0);
    let duration = h.histogram("heartwire_job_duration_seconds", &etl);
    assert_eq!(
        (duration.count, duration.sum),
        (1.0, 15.0),
        "the run took its duration from its own start"
    );
    // The bound across jobs still evicts the oldest open run from the job that holds it.
    h.send("job.start etl id=1\njob.start other\njob.start other id=2\n");
    assert_eq!(h.number("heartwire_job_running", &etl), 0.0);
    assert_eq!(h.number("heartwire_job_running", &[("job", "other")]), 2.0);
    assert_eq!(
        h.telemetry("heartwire_open_starts_evicted_total", None),
        1.0
    );
}

#[test]
fn a_job_with_runs_is_stalled_only_while_a_run_is_open() {
    // Seed 002's rule: a *running* crawl that stopped making progress.
    let mut spec = JobSpec::new(Schedule::every(Duration::from_secs(3600)).unwrap());
    spec.stall_after = Some(Duration::from_secs(60));
    let mut h = watching(&[("crawl", spec)], &[]);
    let crawl = [("job", "crawl")];
    h.send("job.start crawl\njob.progress crawl 10\n");
    h.advance(59.0);
    assert_eq!(h.number("heartwire_job_stalled", &crawl), 0.0);
    h.advance(1.0);
    assert_eq!(h.number("heartwire_job_stalled", &crawl), 1.0);
    h.send("job.ok crawl\n");
    assert_eq!(
        h.number("heartwire_job_stalled", &crawl),
        0.0,
        "a finished crawl is not stalled"
    );
    h.advance(600.0);
    h.send("job.start crawl\n");
    h.advance(30.0);
    assert_eq!(
        h.number("heartwire_job_stalled", &crawl),
        0.0,
        "a new run gets its full quiet period"
    );
    h.advance(30.0);
    assert_eq!(
        h.number("heartwire_job_stalled", &crawl),
        1.0,
        "no progress since the new run started"
    );
}

#[test]
fn a_crashed_run_leaves_crashed_as_its_last_result() {
    let mut h = watching(&[], &[]);
    h.send_on(5, "hello app=cron\njob.start backup\n");
    h.close(5);
    assert_eq!(
        h.number(
            "heartwire_job_last_result",
            &[
                ("job", "backup"),
                ("result", "error"),
                ("reason", "crashed")
            ]
        ),
        1.0
    );
}
