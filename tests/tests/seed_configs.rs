//! The example configs of seeds 000 and 001 reproduce the seeds' families exactly, and the
//! health verdicts the seeds' own code could not give: a configured job present before it ever
//! ran, and a worker going to 0 when it dies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, Scrape, all_listeners};

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
        .join("heartwire.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example config with test listeners; `edit` may shorten its thresholds.
fn agent_for(name: &str, edit: impl Fn(String) -> String) -> Agent {
    let config = edit(example(name));
    Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)))
}

/// The label names of every sample of `family` (without `le`), sorted and deduplicated.
#[track_caller]
fn label_names(scrape: &Scrape, family: &str) -> Vec<String> {
    let mut names: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| {
            s.name == family
                || s.name
                    .strip_prefix(family)
                    .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))
        })
        .flat_map(|s| s.labels.iter().map(|(k, _)| k.clone()))
        .filter(|k| k != "le")
        .collect();
    names.sort();
    names.dedup();
    assert!(
        !names.is_empty(),
        "no samples of {family}:\n{}",
        scrape.text
    );
    names
}

#[test]
fn seed_000_families_come_out_with_the_seed_names_labels_and_thresholds() {
    let agent = agent_for("vf-worker", |c| c);
    // Every configured job is present before it ever ran: no "no data" hole.
    let scrape = agent.scrape();
    for job in [
        "viewer-poll",
        "chat-export",
        "stale-session-cleanup",
        "kick-token-refresh",
        "x-follower-poll",
        "kick-subscriptions",
        "trust-score-refresh",
        "daily-maintenance",
    ] {
        for result in ["ok", "error"] {
            assert_eq!(
                scrape.value(
                    "vf_worker_poll_runs_total",
                    &[("job", job), ("result", result), ("service", "worker")]
                ),
                Some(0.0),
                "{job} {result}"
            );
        }
        assert_eq!(
            scrape.value(
                "heartwire_job_stale",
                &[("job", job), ("service", "worker")]
            ),
            Some(0.0),
            "{job}"
        );
    }
    agent.send_udp(
        b"job.ok viewer-poll 0.31\njob.error viewer-poll 0.12 reason=http_5xx\njob.ok chat-export 12.5\n\
http kick channels 200 0.2\nhttp kick channels 401\nhttp kick-oauth oauth/token 429 0.05\nhttp x users/me network\n",
    );
    let scrape = agent.wait_for(
        "vf_external_http_total",
        &[
            ("service", "x"),
            ("endpoint", "users/me"),
            ("status_code", "network"),
        ],
        1.0,
    );
    assert_eq!(
        label_names(&scrape, "vf_worker_poll_runs_total"),
        ["job", "result", "service"]
    );
    assert_eq!(
        label_names(&scrape, "vf_worker_poll_duration_seconds"),
        ["job", "service"]
    );
    assert_eq!(
        label_names(&scrape, "vf_worker_poll_last_success_timestamp_seconds"),
        ["job", "service"]
    );
    assert_eq!(
        label_names(&scrape, "vf_external_http_total"),
        ["endpoint", "service", "status_code"]
    );
    let runs = |job, result| {
        scrape.value(
            "vf_worker_poll_runs_total",
            &[("job", job), ("result", result), ("service", "worker")],
        )
    };
    assert_eq!(
        (
            runs("viewer-poll", "ok"),
            runs("viewer-poll", "error"),
            runs("chat-export", "ok")
        ),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert_eq!(
        scrape.value(
            "vf_worker_poll_duration_seconds_count",
            &[("job", "viewer-poll"), ("service", "worker")]
        ),
        Some(2.0)
    );
    assert_eq!(
        scrape.value(
            "vf_worker_poll_duration_seconds_sum",
            &[("job", "viewer-poll"), ("service", "worker")]
        ),
        Some(0.43)
    );
    let last = scrape
        .value(
            "vf_worker_poll_last_success_timestamp_seconds",
            &[("job", "viewer-poll"), ("service", "worker")],
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 60.0, "a unix timestamp of now: {last}");
    assert!(
        scrape
            .value(
                "vf_worker_poll_last_success_timestamp_seconds",
                &[("job", "daily-maintenance"), ("service", "worker")]
            )
            .is_none(),
        "never 0 for a job that never succeeded"
    );
    for (service, endpoint, status) in [
        ("kick", "channels", "200"),
        ("kick", "channels", "401"),
        ("kick-oauth", "oauth/token", "429"),
        ("x", "users/me", "network"),
    ] {
        assert_eq!(
            scrape.value(
                "vf_external_http_total",
                &[
                    ("service", service),
                    ("endpoint", endpoint),
                    ("status_code", status)
                ]
            ),
            Some(1.0),
            "{service} {endpoint} {status}"
        );
    }
    // The seed's alert thresholds, from the schedules: deadlines 5 min, 2 h, 30 h out.
    let deadline = |job| {
        scrape
            .value(
                "heartwire_job_stale_deadline_timestamp_seconds",
                &[("job", job), ("service", "worker")],
            )
            .unwrap()
    };
    let viewer = deadline("viewer-poll") - last;
    assert!(
        viewer > 240.0 && viewer <= 300.0,
        "viewer-poll: next minute slot + 4 min = at most 5 min after its success: {viewer}"
    );
    let hourly = deadline("chat-export") - now;
    assert!(
        hourly > 3600.0 && hourly <= 7200.0 + 60.0,
        "chat-export: next hourly slot + 1 h: {hourly}"
    );
    assert_eq!(
        scrape.value("heartwire_lines_rejected_total", &[("reason", "malformed")]),
        Some(0.0)
    );
}

#[test]
fn seed_001_workers_report_worker_status_by_name_and_go_to_0_when_they_die() {
    let agent = agent_for("background-workers", |c| c.replace("ttl: 90s", "ttl: 1s"));
    let status = |scrape: &Scrape, name| scrape.value("worker_status", &[("name", name)]);
    let scrape = agent.scrape();
    let workers = [
        "email_queue",
        "blockchain_sync",
        "blockchain_tx_monitor",
        "rate_limiter_cleanup",
        "newsletter_cleanup",
    ];
    for name in workers {
        assert_eq!(
            status(&scrape, name),
            Some(0.0),
            "{name} is present, and down until it beats"
        );
    }
    assert_eq!(label_names(&scrape, "worker_status"), ["name"]);

    // Case 1: one worker task dies; its heartbeats stop and it goes to 0 after its ttl.
    agent.send_udp(b"hb email_queue\n");
    agent.wait_for("worker_status", &[("name", "email_queue")], 1.0);
    let died = Instant::now();
    agent.wait_for("worker_status", &[("name", "email_queue")], 0.0);
    assert!(
        died.elapsed() >= Duration::from_millis(900),
        "not before its ttl"
    );

    // Case 2: the whole process dies (SIGKILL). It held a session: every worker that beat on it
    // goes to 0 at once, long before any ttl (here it would be 1 s; the session is faster).
    let mut app = Command::new("python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'hello app=api\\nhb blockchain_sync ttl=3600\\nhb newsletter_cleanup ttl=3600\\n')\nprint('ready',flush=True)\ntime.sleep(600)",
        ])
        .arg(agent.unix_stream())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(app.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    agent.wait_for("worker_status", &[("name", "newsletter_cleanup")], 1.0);
    app.kill().unwrap();
    app.wait().unwrap();
    let killed = Instant::now();
    let scrape = agent.wait_for("worker_status", &[("name", "newsletter_cleanup")], 0.0);
    assert_eq!(status(&scrape, "blockchain_sync"), Some(0.0));
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "down within a second of the crash, though its ttl is an hour"
    );

    // A clean stop is 0 too, and says so.
    let mut stream = UnixStream::connect(agent.unix_stream()).unwrap();
    stream
        .write_all(b"hb rate_limiter_cleanup ttl=3600\nworker.stop rate_limiter_cleanup\n")
        .unwrap();
    drop(stream);
    let scrape = agent.wait_for(
        "heartwire_worker_stopped",
        &[("name", "rate_limiter_cleanup")],
        1.0,
    );
    assert_eq!(status(&scrape, "rate_limiter_cleanup"), Some(0.0));
}
