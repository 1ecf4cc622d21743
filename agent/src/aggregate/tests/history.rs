//! Each job's recent runs, as the aggregator records them where runs end, crash or are skipped.

use super::*;
use crate::health::history::{PastRun, RECENT_RUNS, RunResult};
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;

fn watching(job: &str) -> Harness {
    let spec = JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap());
    Harness::with(Settings {
        jobs: vec![(job.to_owned(), spec)],
        ..Settings::default()
    })
}

/// The job's recent runs as published, oldest first.
fn recent(h: &Harness, job: &str) -> Vec<PastRun> {
    let health = h.snapshot().health(h.now);
    let status = health.jobs.iter().find(|status| &*status.job == job);
    status
        .unwrap()
        .recent_runs
        .oldest_first()
        .cloned()
        .collect()
}

#[test]
fn every_way_a_run_ends_is_recorded_with_its_details() {
    let mut h = watching("sync");
    h.send("job.start sync id=a\n");
    h.advance(2.0);
    h.send("job.ok sync id=a\n");
    h.advance(1.0);
    h.send("job.error sync 1.5 reason=timeout exit=3\n");
    h.advance(1.0);
    h.send("job.skip sync reason=not_leader\n");
    h.send("job.error sync signal=TERM\n");
    h.send_on(7, "hello app=sync\njob.start sync id=b\n");
    h.advance(4.0);
    h.close(7);
    let runs = recent(&h, "sync");
    let results: Vec<RunResult> = runs.iter().map(|run| run.result).collect();
    let expected = [
        RunResult::Ok,
        RunResult::Error,
        RunResult::Skipped,
        RunResult::Cancelled,
        RunResult::Crashed,
    ];
    assert_eq!(results, expected);

    assert_eq!(runs[0].started, Some(T0));
    assert_eq!(runs[0].ended, T0 + 2.0);
    assert!((runs[0].duration_seconds.unwrap() - 2.0).abs() < 1e-3);

    assert_eq!(runs[1].started, None, "no start was seen");
    assert_eq!(
        runs[1].duration_seconds,
        Some(1.5),
        "as the app reported it"
    );
    assert_eq!(runs[1].reason.as_deref(), Some("timeout"));
    assert_eq!(runs[1].exit_code, Some(3));

    assert_eq!(runs[2].reason.as_deref(), Some("not_leader"));
    assert_eq!(runs[3].signal.as_deref(), Some("TERM"));
    assert_eq!(runs[3].reason, None, "the signal is its own field");

    assert_eq!(runs[4].started, Some(T0 + 4.0));
    assert_eq!(runs[4].ended, T0 + 8.0);
    assert!((runs[4].duration_seconds.unwrap() - 4.0).abs() < 1e-3);
}

#[test]
fn a_job_keeps_only_its_last_runs() {
    let mut h = watching("tick");
    for n in 0..RECENT_RUNS + 5 {
        h.send(&format!("job.ok tick 0.1 reason=n{n}\n"));
        h.advance(1.0);
    }
    let runs = recent(&h, "tick");
    assert_eq!(runs.len(), RECENT_RUNS);
    assert_eq!(runs[0].reason.as_deref(), Some("n5"));
    assert_eq!(
        runs[RECENT_RUNS - 1].reason.as_deref(),
        Some(format!("n{}", RECENT_RUNS + 4).as_str())
    );
}
