//! A config file that is invalid at start, as a sidecar meets it when a bad ConfigMap reaches a
//! new pod. By default the agent exits 64 naming the key; with `--on-invalid-config default`
//! (the Helm chart's setting, `HEARTWIRE_ON_INVALID_CONFIG`) it serves the embedded default with
//! the file's listeners and `/metrics` address, so the pod's probes pass, the app starts and its
//! lines still count, and reports the
//! failed load (`heartwire_config_last_reload_successful 0`, the generated
//! `HeartwireConfigReloadFailed`) until the file is fixed; then it applies the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use heartwire_tests::agent::{Agent, all_listeners};

/// A job whose `readiness` is no word the agent knows.
const BAD: &str = "jobs:\n  nightly: { every: 1h, readiness: maybe }\n";
const GOOD: &str = "jobs:\n  nightly: { every: 1h, readiness: true }\n";

#[test]
fn an_invalid_file_stops_the_agent_unless_it_is_told_to_serve_the_default() {
    let failure = Agent::try_start(|dir| format!("{}{BAD}", all_listeners(dir)))
        .expect_err("the agent refuses an invalid file by default");
    assert_eq!(
        failure.status.and_then(|s| s.code()),
        Some(64),
        "{}",
        failure.log
    );
    assert!(
        failure.log.contains("jobs.nightly.readiness"),
        "{}",
        failure.log
    );

    let agent = Agent::try_start_env(
        |dir| format!("{}{BAD}", all_listeners(dir)),
        &[("HEARTWIRE_ON_INVALID_CONFIG", "default")],
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert!(
        agent.log().contains("serving with the embedded default"),
        "{}",
        agent.log()
    );
    let health = agent.http().get(agent.http_url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200, "the pod's probes pass");
    let scrape = agent.scrape();
    assert_eq!(
        scrape.value("heartwire_config_last_reload_successful", &[]),
        Some(0.0),
        "the failed load is reported"
    );
    assert_eq!(
        scrape.value("heartwire_config_reloads_total", &[("result", "failure")]),
        Some(1.0)
    );
    assert_eq!(
        scrape.value("heartwire_job_stale", &[("job", "nightly")]),
        None,
        "nothing of the invalid file's jobs is applied"
    );
    // Its listeners are kept (they read and check on their own): the app's lines still count.
    agent.send_unix_stream(b"job.ok nightly 1\n");
    agent.wait_for(
        "heartwire_job_runs_total",
        &[("job", "nightly"), ("result", "ok")],
        1.0,
    );

    // The file is fixed: its jobs apply at once, and nothing needs a restart.
    let path = agent.dir().join("agent.yaml");
    std::fs::write(&path, format!("{}{GOOD}", all_listeners(agent.dir()))).unwrap();
    let scrape = agent.wait_until("the fixed file reloaded", |scrape| {
        scrape.value("heartwire_config_last_reload_successful", &[]) == Some(1.0)
            && scrape
                .value("heartwire_job_stale", &[("job", "nightly")])
                .is_some()
    });
    assert_eq!(
        scrape.value("heartwire_config_restart_required", &[]),
        Some(0.0),
        "the listeners and endpoints of the file were in force already"
    );
}
