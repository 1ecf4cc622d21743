use std::sync::Arc;

use serde_json::Value;

use super::*;

const NOW: f64 = 1_700_000_000.0;

fn job(name: &str, state: JobState, readiness: bool) -> JobStatus {
    JobStatus {
        job: Arc::from(name),
        schedule: "every 1m".to_owned(),
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
        progress: None,
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
        "schedule": "every 1m", "zone": "UTC",
        "last_success": NOW - 180.0, "last_success_rfc3339": "2023-11-14T22:10:20.000Z",
        "seconds_since_success": 180.0,
        "deadline": NOW + 120.0, "deadline_rfc3339": "2023-11-14T22:15:20.000Z",
        "next_expected": NOW - 120.0, "next_expected_rfc3339": "2023-11-14T22:11:20.000Z",
        "running": 2, "overrun": 1, "consecutive_failures": 3, "crashes": 1, "stalled": true,
        "progress": "stalled",
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
