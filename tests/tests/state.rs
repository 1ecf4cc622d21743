//! The state file, end to end: the real agent, restarted. A stale daily job is stale again on
//! the first scrape after a restart a day later, with its last-success timestamp (the agent's
//! clocks moved by libfaketime, wall and monotonic alike); an agent killed with SIGKILL comes
//! back with what its last periodic write held; a corrupt file is set aside, counted, and the
//! agent starts anyway.
//!
//! Needs `faketime` (`.ci/install-peers.sh`); without it the restart-across-days test skips
//! loudly, or fails when `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::Write;
use std::path::{Path, PathBuf};

use heartwire_tests::agent::{Agent, Scrape, all_listeners};
use heartwire_tests::peers::{REQUIRE_PEERS, peers_required};
use nix::sys::signal::Signal;

/// 2026-12-01T03:00:00Z: the daily job at 04:22 succeeds before its slot.
const SUCCESS_AT: f64 = 1_796_094_000.0;

/// libfaketime, installed with Debian's `faketime`; a loud skip if missing.
fn libfaketime_or_skip() -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        assert!(
            !peers_required(),
            "no libfaketime; run .ci/install-peers.sh ({REQUIRE_PEERS}=1)"
        );
        let notice =
            "\n********** SKIPPED: no libfaketime; run .ci/install-peers.sh **********\n\n";
        let _ = std::io::stderr().write_all(notice.as_bytes());
    }
    found
}

/// A daily job and a worker, with the state kept in `store` and written every second.
fn config(dir: &Path, store: &Path, state: bool) -> String {
    let state = if state {
        format!(
            "state: {{ path: \"{}\", interval: 1s }}\n",
            store.join("state.json").display()
        )
    } else {
        String::new()
    };
    format!(
        "{}jobs:\n  daily: {{ cron: \"22 4 * * *\" }}\nworkers:\n  mailer: {{ ttl: 1h }}\n{state}",
        all_listeners(dir)
    )
}

fn at(faketime: &Path, when: &str, store: &Path, state: bool) -> Agent {
    let preload = faketime.display().to_string();
    Agent::try_start_env(
        |dir| config(dir, store, state),
        &[
            ("LD_PRELOAD", preload.as_str()),
            ("FAKETIME", when),
            ("TZ", "UTC"),
        ],
    )
    .unwrap_or_else(|failure| panic!("{failure}"))
}

fn daily<'a>() -> [(&'a str, &'a str); 1] {
    [("job", "daily")]
}

#[track_caller]
fn assert_stale(scrape: &Scrape) {
    assert_eq!(scrape.value("heartwire_job_stale", &daily()), Some(1.0));
    assert_eq!(
        scrape.value(
            "heartwire_job_state",
            &[("job", "daily"), ("state", "stale")]
        ),
        Some(1.0)
    );
    let success = scrape
        .value("heartwire_job_last_success_timestamp_seconds", &daily())
        .expect("the last success is exported again");
    assert!(
        (SUCCESS_AT..SUCCESS_AT + 120.0).contains(&success),
        "last success {success}, sent at about {SUCCESS_AT}"
    );
    // Its deadline is the first slot after the success (04:22) plus 6 h of headroom.
    let deadline = scrape
        .value("heartwire_job_stale_deadline_timestamp_seconds", &daily())
        .unwrap();
    assert!(
        (deadline - (SUCCESS_AT + 82.0 * 60.0 + 6.0 * 3600.0)).abs() < 1.0,
        "deadline {deadline}"
    );
}

#[test]
fn a_stale_daily_job_is_stale_again_after_a_restart_a_day_later() {
    let Some(faketime) = libfaketime_or_skip() else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let first = at(&faketime, "@2026-12-01 03:00:00", store.path(), true);
    first.send_udp(b"job.ok daily 12\nhb mailer\n");
    first.wait_until("the success", |scrape| {
        scrape
            .value("heartwire_job_last_success_timestamp_seconds", &daily())
            .is_some()
    });
    let (status, log) = first.terminate();
    assert!(status.success(), "{log}");
    assert!(store.path().join("state.json").is_file(), "{log}");

    // 29 hours later: stale since 10:22 the day before.
    let second = at(&faketime, "@2026-12-02 08:00:00", store.path(), true);
    let scrape = second.scrape();
    assert_stale(&scrape);
    assert_eq!(
        scrape.value(
            "heartwire_job_runs_total",
            &[("job", "daily"), ("result", "ok")]
        ),
        Some(0.0),
        "counters restart at 0"
    );
    assert_eq!(
        scrape
            .value(
                "heartwire_worker_last_heartbeat_timestamp_seconds",
                &[("worker", "mailer")]
            )
            .map(|beat| (beat - SUCCESS_AT).abs() < 120.0),
        Some(true),
        "{}",
        scrape.lines_about("heartwire_worker_last_heartbeat_timestamp_seconds")
    );

    // Without the state file the same agent would have forgotten it: warming, not stale.
    let forgetful = at(&faketime, "@2026-12-02 08:00:00", store.path(), false);
    let scrape = forgetful.scrape();
    assert_eq!(scrape.value("heartwire_job_stale", &daily()), Some(0.0));
    assert_eq!(
        scrape.value("heartwire_job_last_success_timestamp_seconds", &daily()),
        None
    );
}

#[test]
fn an_agent_killed_comes_back_with_its_last_periodic_write() {
    let store = tempfile::tempdir().unwrap();
    let agent = Agent::start_config(|dir| config(dir, store.path(), true));
    agent.send_udp(b"job.error daily 3 reason=timeout\n");
    let failed = agent.wait_for("heartwire_job_consecutive_failures", &daily(), 1.0);
    let last_run = failed
        .value("heartwire_job_last_run_timestamp_seconds", &daily())
        .unwrap();
    // Two writes after the line: the second surely holds it.
    let written = failed.total("heartwire_state_writes_total", &[("result", "success")]);
    agent.wait_until("two more state writes", |scrape| {
        scrape.total("heartwire_state_writes_total", &[("result", "success")]) >= written + 2.0
    });
    agent.signal(Signal::SIGKILL).unwrap();
    let (_, log) = agent.wait_exit();

    let again = Agent::start_config(|dir| config(dir, store.path(), true));
    let scrape = again.scrape();
    assert_eq!(
        scrape.value("heartwire_job_consecutive_failures", &daily()),
        Some(1.0),
        "{log}"
    );
    assert_eq!(
        scrape.value("heartwire_job_last_run_timestamp_seconds", &daily()),
        Some(last_run)
    );
    assert_eq!(
        scrape.value(
            "heartwire_job_last_result",
            &[("job", "daily"), ("result", "error"), ("reason", "timeout")]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.value(
            "heartwire_state_load_failures_total",
            &[("reason", "corrupt")]
        ),
        Some(0.0)
    );
}

#[test]
fn a_corrupt_state_file_is_set_aside_counted_and_replaced() {
    let store = tempfile::tempdir().unwrap();
    let path = store.path().join("state.json");
    std::fs::write(&path, b"{\"version\": 1, \"jobs\": {\"daily\": trunc").unwrap();
    let agent = Agent::start_config(|dir| config(dir, store.path(), true));
    let scrape = agent.scrape();
    assert_eq!(
        scrape.value(
            "heartwire_state_load_failures_total",
            &[("reason", "corrupt")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.value("heartwire_job_stale", &daily()), Some(0.0));
    let aside: Vec<String> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept aside for a look");
    agent.wait_until("a state write", |scrape| {
        scrape.total("heartwire_state_writes_total", &[("result", "success")]) >= 1.0
    });
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"daily\""), "{text}");
    assert!(agent.log().contains("set aside"), "{}", agent.log());
}
