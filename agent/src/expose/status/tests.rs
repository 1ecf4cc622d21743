use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::aggregate::snapshot::ScheduleSource;
use crate::health::history::{PastRun, RecentRuns, RunResult};

const NOW: f64 = 1_700_000_000.0;

fn job(name: &str, state: JobState, readiness: bool) -> JobStatus {
    JobStatus {
        job: Arc::from(name),
        schedule: "every 1m".to_owned(),
        schedule_source: ScheduleSource::Config,
        zone: "UTC".to_owned(),
        state,
        readiness: if readiness {
            Readiness::Success
        } else {
            Readiness::Off
        },
        // What the verdict decides for `readiness: success` (see health::job's tests).
        unready: readiness && state == JobState::Stale,
        last_end: Some(NOW - 180.0),
        last_success: Some(NOW - 180.0),
        seconds_since_success: 180.0,
        deadline: NOW + 120.0,
        next_expected: NOW - 120.0,
        running: 0,
        overrun: 0,
        consecutive_failures: 0,
        crashes: 0,
        recent_runs: RecentRuns::default(),
        progress: None,
    }
}

/// A run that ended `ago` seconds before [`NOW`].
fn past(result: RunResult, ago: f64) -> PastRun {
    PastRun {
        started: None,
        ended: NOW - ago,
        duration_seconds: None,
        result,
        reason: None,
        exit_code: None,
        signal: None,
    }
}

/// A job whose runs were: ok (started 10 min ago, 1.25 s), error `timeout` exit 3, skipped,
/// cancelled by TERM, crashed; newest last.
fn with_history(name: &str) -> JobStatus {
    let mut recent = RecentRuns::default();
    recent.push(PastRun {
        started: Some(NOW - 600.0),
        duration_seconds: Some(1.25),
        ..past(RunResult::Ok, 598.75)
    });
    recent.push(PastRun {
        duration_seconds: Some(30.0),
        reason: Some("timeout".into()),
        exit_code: Some(3),
        ..past(RunResult::Error, 480.0)
    });
    recent.push(PastRun {
        reason: Some("not_leader".into()),
        ..past(RunResult::Skipped, 360.0)
    });
    recent.push(PastRun {
        signal: Some("TERM".into()),
        ..past(RunResult::Cancelled, 240.0)
    });
    recent.push(PastRun {
        started: Some(NOW - 150.0),
        duration_seconds: Some(30.0),
        ..past(RunResult::Crashed, 120.0)
    });
    JobStatus {
        recent_runs: recent,
        ..job(name, JobState::Failing, false)
    }
}

fn stale(name: &str, readiness: bool) -> JobStatus {
    JobStatus {
        last_success: None,
        seconds_since_success: 420.0,
        deadline: NOW - 120.0,
        ..job(name, JobState::Stale, readiness)
    }
}

fn worker(name: &str, state: WorkerState, last_heartbeat: Option<f64>) -> WorkerStatus {
    WorkerStatus {
        worker: Arc::from(name),
        state,
        last_heartbeat,
        ttl_seconds: 90.0,
    }
}

fn health(jobs: Vec<JobStatus>, workers: Vec<WorkerStatus>) -> Health {
    Health {
        taken_at: NOW,
        jobs,
        unscheduled: Vec::new(),
        workers,
        families: Vec::new(),
    }
}

fn json_of(health: &Health) -> Value {
    serde_json::from_slice(&json(health).unwrap()).unwrap()
}

#[test]
fn readiness_fails_only_for_stale_jobs_marked_readiness() {
    let ready = health(
        vec![job("fresh", JobState::Ok, true), stale("other", false)],
        vec![],
    );
    assert_eq!(unready(&ready), None, "a stale job without readiness");
    let not_ready = health(
        vec![
            stale("viewer-poll", true),
            job("late", JobState::Late, true),
            stale("other", false),
        ],
        vec![],
    );
    let body = unready(&not_ready).unwrap();
    assert_eq!(
        body,
        "not ready: jobs marked readiness\n\
         viewer-poll: stale, no success for 7 min (none since heartwire started), \
         deadline 2 min ago (2023-11-14T22:11:20.000Z)\n"
    );
}

#[test]
fn readiness_completed_names_the_last_run_end() {
    let mut poll = job("viewer-poll", JobState::Failing, false);
    poll.readiness = Readiness::Completed;
    poll.unready = true;
    poll.last_end = Some(NOW - 420.0);
    let mut never = job("chat-export", JobState::Warming, false);
    never.readiness = Readiness::Completed;
    never.unready = true;
    never.last_end = None;
    let body = unready(&health(vec![poll, never], vec![])).unwrap();
    assert_eq!(
        body,
        "not ready: jobs marked readiness\n\
         viewer-poll: no run ended (ok or error) for 7 min\n\
         chat-export: no run ended (ok or error) since heartwire started\n"
    );
    let report = json_of(&health(vec![job("a", JobState::Ok, true)], vec![]));
    assert_eq!(report["jobs"][0]["readiness_on"], "success");
}

#[test]
fn status_json_carries_every_field_with_rfc3339_twins() {
    let mut running = job("crawl", JobState::Failing, false);
    running.running = 2;
    running.overrun = 1;
    running.consecutive_failures = 3;
    running.crashes = 1;
    running.progress = Some(Progress::Stalled);
    let report = json_of(&health(
        vec![running, stale("viewer-poll", true)],
        vec![worker("mailer", WorkerState::Up, Some(NOW - 12.0))],
    ));
    assert_eq!(report["generated_at"], NOW);
    assert_eq!(report["generated_at_rfc3339"], "2023-11-14T22:13:20.000Z");
    assert_eq!(report["ready"], false);
    let crawl = &report["jobs"][0];
    let expected = serde_json::json!({
        "job": "crawl", "state": "failing", "stale": false, "readiness": false, "readiness_on": null,
        "schedule": "every 1m", "schedule_source": "config", "zone": "UTC",
        "last_success": NOW - 180.0, "last_success_rfc3339": "2023-11-14T22:10:20.000Z",
        "seconds_since_success": 180.0,
        "deadline": NOW + 120.0, "deadline_rfc3339": "2023-11-14T22:15:20.000Z",
        "next_expected": NOW - 120.0, "next_expected_rfc3339": "2023-11-14T22:11:20.000Z",
        "running": 2, "overrun": 1, "consecutive_failures": 3, "crashes": 1, "stalled": true,
        "progress": "stalled", "recent_runs": [],
    });
    assert_eq!(crawl, &expected);
    let never = &report["jobs"][1];
    assert_eq!(never["state"], "stale");
    assert_eq!(never["stale"], true);
    assert!(never["last_success"].is_null());
    assert!(never["last_success_rfc3339"].is_null());
    assert!(never["stalled"].is_null(), "not a progress job");
    assert!(never["progress"].is_null(), "not a progress job");
    let mailer = &report["workers"][0];
    let expected = serde_json::json!({
        "worker": "mailer", "state": "up", "up": true,
        "last_heartbeat": NOW - 12.0, "last_heartbeat_rfc3339": "2023-11-14T22:13:08.000Z",
        "seconds_since_heartbeat": 12.0, "ttl_seconds": 90.0,
    });
    assert_eq!(mailer, &expected);
}

#[test]
fn a_worker_never_heard_from_has_null_times() {
    let report = json_of(&health(
        vec![],
        vec![worker("idle", WorkerState::NeverSeen, None)],
    ));
    let idle = &report["workers"][0];
    assert_eq!(idle["state"], "never_seen");
    assert_eq!(idle["up"], false);
    assert!(idle["last_heartbeat"].is_null());
    assert!(idle["last_heartbeat_rfc3339"].is_null());
    assert!(idle["seconds_since_heartbeat"].is_null());
    assert_eq!(report["ready"], true);
    assert_eq!(report["jobs"], serde_json::json!([]));
}

#[test]
fn the_page_shows_each_job_and_worker_with_its_state_and_ages_in_words() {
    let mut failing = job("nightly-export", JobState::Failing, false);
    failing.schedule = "0 3 * * *".to_owned();
    failing.zone = "Europe/Berlin".to_owned();
    failing.consecutive_failures = 2;
    failing.crashes = 1;
    let page = page::render(&health(
        vec![
            job("fresh", JobState::Ok, false),
            stale("viewer-poll", true),
            failing,
        ],
        vec![
            worker("mailer", WorkerState::Up, Some(NOW - 12.0)),
            worker("sync", WorkerState::Expired, Some(NOW - 3.0 * 86_400.0)),
        ],
    ));
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>heartwire: 3 need attention</title>"));
    assert!(page.contains("Not ready: viewer-poll stale"));
    assert!(page.contains("3 jobs: 1 stale, 1 failing, 1 ok · 2 workers: 1 ttl expired, 1 up"));
    assert!(page.contains(
        "<tr data-job=\"fresh\" data-state=\"ok\"><th>fresh</th><td><span class=\"state ok\">ok</span></td>"
    ));
    assert!(page.contains(
        "<time datetime=\"2023-11-14T22:10:20.000Z\" title=\"2023-11-14T22:10:20.000Z\">3 min ago</time>"
    ));
    assert!(page.contains(">in 2 min</time>"), "a deadline ahead");
    assert!(page.contains(">2 min ago</time>"), "a deadline passed");
    assert!(
        page.contains("<td class=\"\">due <time datetime=\"2023-11-14T22:11:20.000Z\""),
        "a next run in the past is due, not next: {page}"
    );
    assert!(page.contains("<span class=\"muted\">never</span>"));
    assert!(page.contains("0 3 * * * <span class=\"muted\">Europe/Berlin</span>"));
    assert!(page.contains("2 <span class=\"bad\">(1 crash)</span>"));
    assert!(page.contains("<tr data-worker=\"sync\" data-state=\"ttl_expired\">"));
    assert!(page.contains("<span class=\"state ttl_expired\">ttl expired</span>"));
    assert!(page.contains(">12 s ago</time>"));
    assert!(page.contains(">3 d ago</time>"));
    assert!(page.contains("<td>1m 30s</td>"), "the ttl as configured");
}

#[test]
fn the_page_loads_nothing_from_outside() {
    let page = page::render(&health(
        vec![job("fresh", JobState::Ok, false)],
        vec![worker("mailer", WorkerState::Up, Some(NOW))],
    ));
    for external in [
        "<script", "<link", "<img", "src=", "url(", "@import", "http://", "https://",
    ] {
        assert!(!page.contains(external), "the page holds `{external}`");
    }
    assert!(page.contains("<style>"));
}

#[test]
fn the_page_escapes_names() {
    let page = page::render(&health(
        vec![job("<b>\"x\"&'y'</b>", JobState::Ok, false)],
        vec![worker("<i>w</i>", WorkerState::Up, Some(NOW))],
    ));
    assert!(!page.contains("<b>"));
    assert!(!page.contains("<i>"));
    assert!(page.contains("data-job=\"&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/b&gt;\""));
    assert!(page.contains("<th>&lt;i&gt;w&lt;/i&gt;</th>"));
}

#[test]
fn an_agent_with_nothing_configured_says_so() {
    let page = page::render(&health(vec![], vec![]));
    assert!(page.contains("<title>heartwire: all ok</title>"));
    assert!(page.contains("id=\"readiness\">Ready</span>"));
    assert!(page.contains("0 jobs · 0 workers"));
    assert!(page.contains("No jobs configured"));
    assert!(page.contains("No workers yet"));
}

#[test]
fn status_json_lists_recent_runs_newest_first_with_rfc3339_twins() {
    let report = json_of(&health(vec![with_history("sync")], vec![]));
    let runs = report["jobs"][0]["recent_runs"].as_array().unwrap();
    let results: Vec<&str> = runs
        .iter()
        .map(|run| run["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["crashed", "cancelled", "skipped", "error", "ok"]);
    let expected = serde_json::json!({
        "started": null, "started_rfc3339": null,
        "ended": NOW - 480.0, "ended_rfc3339": "2023-11-14T22:05:20.000Z",
        "duration_seconds": 30.0, "result": "error", "reason": "timeout", "exit_code": 3,
        "signal": null,
    });
    assert_eq!(runs[3], expected);
    assert_eq!(runs[4]["started"], NOW - 600.0);
    assert_eq!(runs[4]["started_rfc3339"], "2023-11-14T22:03:20.000Z");
    assert_eq!(runs[4]["duration_seconds"], 1.25);
    assert_eq!(runs[1]["signal"], "TERM");
    assert!(runs[1]["exit_code"].is_null());
    assert!(
        runs[2]["duration_seconds"].is_null(),
        "a skip has no duration"
    );
    assert_eq!(runs[0]["duration_seconds"], 30.0);
}

#[test]
fn the_page_shows_recent_runs_as_a_strip_oldest_left_with_a_tooltip_each() {
    let page = page::render(&health(
        vec![with_history("sync"), job("quiet", JobState::Ok, false)],
        vec![],
    ));
    let strip = "<ol class=\"runs\" aria-label=\"last 5 runs, oldest first\">\
        <li class=\"run-ok\" title=\"ok&#10;ended 2023-11-14T22:03:21.250Z (10 min ago)&#10;\
        took 1.25 s, started 2023-11-14T22:03:20.000Z\"></li>\
        <li class=\"run-error\" title=\"error: timeout · exit code 3&#10;\
        ended 2023-11-14T22:05:20.000Z (8 min ago)&#10;took 30 s\"></li>\
        <li class=\"run-skipped\" title=\"skipped: not_leader&#10;\
        skipped 2023-11-14T22:07:20.000Z (6 min ago)\"></li>\
        <li class=\"run-cancelled\" title=\"cancelled · signal TERM&#10;\
        ended 2023-11-14T22:09:20.000Z (4 min ago)&#10;duration unknown\"></li>\
        <li class=\"run-crashed\" title=\"crashed&#10;\
        session closed 2023-11-14T22:11:20.000Z (2 min ago)&#10;\
        took 30 s, started 2023-11-14T22:10:50.000Z\"></li></ol>";
    assert!(page.contains(strip), "{page}");
    assert!(
        page.contains("<span class=\"state failing\">failing</span></td><td class=\"strip\"><ol class=\"runs\""),
        "the strip follows the state"
    );
    assert!(
        page.contains(
            "<span class=\"state ok\">ok</span></td><td class=\"strip\"><span class=\"muted\">none yet</span></td>"
        ),
        "a job without runs says so"
    );
    for class in [
        "run-ok",
        "run-error",
        "run-crashed",
        "run-skipped",
        "run-cancelled",
    ] {
        assert!(
            page.contains(&format!(".{class} {{ background: #")),
            "no colour for {class}"
        );
    }
}

#[test]
fn the_page_escapes_what_a_run_says_in_its_tooltip() {
    let mut job = with_history("sync");
    let mut recent = RecentRuns::default();
    recent.push(PastRun {
        reason: Some("\"><script>".into()),
        signal: Some("<b>".into()),
        ..past(RunResult::Error, 1.0)
    });
    job.recent_runs = recent;
    let page = page::render(&health(vec![job], vec![]));
    assert!(!page.contains("<script>"));
    assert!(!page.contains("<b>"));
    assert!(page.contains("title=\"error: &quot;&gt;&lt;script&gt; · signal &lt;b&gt;&#10;"));
}

#[test]
fn status_json_says_where_each_schedule_comes_from_and_lists_jobs_without_one() {
    let learned = JobStatus {
        schedule_source: ScheduleSource::Learned,
        ..job("sync", JobState::Ok, false)
    };
    let mut health = health(vec![learned], vec![]);
    health.unscheduled.push(UnscheduledJob {
        job: Arc::from("adhoc"),
        last_success: Some(NOW - 60.0),
        last_run: Some(NOW - 30.0),
        successes_seen: 2,
    });
    let report = json_of(&health);
    assert_eq!(report["jobs"][0]["schedule_source"], "learned");
    let expected = serde_json::json!([{
        "job": "adhoc", "schedule_source": null, "schedule": null,
        "last_success": NOW - 60.0, "last_success_rfc3339": "2023-11-14T22:12:20.000Z",
        "last_run": NOW - 30.0, "last_run_rfc3339": "2023-11-14T22:12:50.000Z",
        "successes_seen": 2,
    }]);
    assert_eq!(report["unscheduled_jobs"], expected);
}
