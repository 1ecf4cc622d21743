//! Live configuration: a ConfigMap-style swap of the config's `..data` symlink, an invalid file,
//! SIGHUP and `POST /-/reload`, against the real agent. Counters survive every reload.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::os::unix::fs::symlink;
use std::path::Path;
use std::thread;
use std::time::Duration;

use heartwire_tests::agent::{Agent, Scrape, all_listeners};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Writes `text` as version `version` of a Kubernetes-style ConfigMap volume in `dir`: the file
/// lives in `..<version>/`, `..data` points at that directory (swapped atomically by a rename),
/// and `agent.yaml` points at `..data/agent.yaml`.
fn publish(dir: &Path, version: &str, text: &str) {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir(&versioned).unwrap();
    std::fs::write(versioned.join("agent.yaml"), text).unwrap();
    let staged = dir.join("..data_tmp");
    symlink(format!("..{version}"), &staged).unwrap();
    std::fs::rename(&staged, dir.join("..data")).unwrap();
    let link = dir.join("agent.yaml");
    if !link.is_symlink() {
        let staged = dir.join("agent.yaml.tmp");
        symlink("..data/agent.yaml", &staged).unwrap();
        std::fs::rename(&staged, &link).unwrap();
    }
}

fn reloads(scrape: &Scrape, result: &str) -> f64 {
    scrape
        .value("heartwire_config_reloads_total", &[("result", result)])
        .unwrap_or_else(|| panic!("no reload counter:\n{}", scrape.text))
}

fn watched(scrape: &Scrape, job: &str) -> bool {
    scrape
        .value("heartwire_job_stale", &[("job", job)])
        .is_some()
}

#[test]
fn a_configmap_swap_reloads_and_counters_keep_their_values() {
    let listeners = std::cell::RefCell::new(String::new());
    let agent = Agent::start_config(|dir| {
        *listeners.borrow_mut() = all_listeners(dir);
        format!("{}jobs:\n  export: {{ every: 1m }}\n", all_listeners(dir))
    });
    let listeners = listeners.into_inner();
    let dir = agent.dir().to_path_buf();
    agent.send_udp(b"job.ok export 1\njob.ok export 2\njob.error export 3\nhits:5|c\n");
    let scrape = agent.wait_for("hits_total", &[], 5.0);
    assert!(watched(&scrape, "export"));
    assert_eq!(reloads(&scrape, "success"), 0.0);
    let first_hash = scrape
        .samples
        .iter()
        .find(|s| s.name == "heartwire_config_info")
        .map(|s| s.labels.clone());

    // The first swap turns the plain file into the ConfigMap layout; a new job appears.
    publish(
        &dir,
        "v2",
        &format!(
            "{listeners}jobs:\n  export: {{ every: 1m }}\n  backup: {{ cron: \"0 3 * * *\" }}\n"
        ),
    );
    // The new jobs are published as the aggregator applies them; the reload is counted right
    // after, so a scrape may see the one a moment before the other.
    let scrape = agent.wait_until("the backup job after the first swap, counted", |s| {
        watched(s, "backup") && reloads(s, "success") == 1.0
    });
    assert_eq!(reloads(&scrape, "success"), 1.0);
    assert_eq!(
        scrape.value(
            "heartwire_job_runs_total",
            &[("job", "export"), ("result", "ok")]
        ),
        Some(2.0),
        "counters survive"
    );
    assert_eq!(
        scrape.value(
            "heartwire_job_runs_total",
            &[("job", "export"), ("result", "error")]
        ),
        Some(1.0)
    );
    assert_eq!(scrape.value("hits_total", &[]), Some(5.0));
    let second_hash = scrape
        .samples
        .iter()
        .find(|s| s.name == "heartwire_config_info")
        .map(|s| s.labels.clone());
    assert_ne!(first_hash, second_hash, "the config hash follows the file");

    // The second swap changes only `..data`: the file's own path is never touched.
    publish(
        &dir,
        "v3",
        &format!(
            "{listeners}jobs:\n  backup: {{ cron: \"0 3 * * *\" }}\n  report: {{ every: 1h }}\n"
        ),
    );
    let scrape = agent.wait_until("the report job after the second swap, counted", |s| {
        watched(s, "report") && reloads(s, "success") == 2.0
    });
    assert!(
        !watched(&scrape, "export"),
        "a removed job loses its verdict"
    );
    assert_eq!(
        scrape.value(
            "heartwire_job_runs_total",
            &[("job", "export"), ("result", "ok")]
        ),
        Some(2.0),
        "what it reported stays"
    );
    assert_eq!(reloads(&scrape, "success"), 2.0);
    assert_eq!(
        scrape.value("heartwire_config_restart_required", &[]),
        Some(0.0)
    );

    // An invalid file is refused and counted; the running config stays.
    publish(
        &dir,
        "v4",
        &format!("{listeners}jobs:\n  report: {{ every: 1h, cron: \"* * * * *\" }}\n"),
    );
    let scrape = agent.wait_until("a refused reload", |s| reloads(s, "failure") == 1.0);
    assert_eq!(
        scrape.value("heartwire_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert!(
        watched(&scrape, "report") && watched(&scrape, "backup"),
        "the old config keeps running"
    );
    assert!(
        agent
            .log()
            .contains("a job has `every` or `cron`, not both"),
        "the errors are logged:\n{}",
        agent.log()
    );

    // No reload loop: the agent's own reads of the file trigger nothing.
    thread::sleep(Duration::from_millis(1500));
    let settled = agent.scrape();
    assert_eq!(
        (reloads(&settled, "success"), reloads(&settled, "failure")),
        (2.0, 1.0)
    );
}

#[test]
fn sighup_and_post_reload_apply_the_file_and_report_the_outcome() {
    let agent =
        Agent::start_config(|dir| format!("{}jobs:\n  a: {{ every: 1m }}\n", all_listeners(dir)));
    let config = agent.dir().join("agent.yaml");
    let base = std::fs::read_to_string(&config).unwrap();

    std::fs::write(&config, format!("{base}  b: {{ every: 5m }}\n")).unwrap();
    kill(Pid::from_raw(agent.pid() as i32), Signal::SIGHUP).unwrap();
    // The counter follows the published jobs (the reload counts once the aggregator applied
    // it): wait for both, as the ConfigMap test does.
    let scrape = agent.wait_until("job b after SIGHUP, counted", |s| {
        watched(s, "b") && reloads(s, "success") >= 1.0
    });
    assert!(reloads(&scrape, "success") >= 1.0);

    let reload_url = agent.ingest_url().replace("/ingest", "/-/reload");
    let before = reloads(&agent.scrape(), "success");
    let response = agent.http().post(&reload_url).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().unwrap().starts_with("config reloaded"));
    assert_eq!(
        reloads(&agent.scrape(), "success"),
        before + 1.0,
        "POST /-/reload answers once the config is in force"
    );

    std::fs::write(&config, format!("{base}  b: {{ every: soon }}\n")).unwrap();
    let response = agent.http().post(&reload_url).send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body = response.text().unwrap();
    assert!(
        body.contains("config refused, the running config stays") && body.contains("jobs.b.every"),
        "{body}"
    );
    assert!(watched(&agent.scrape(), "b"));

    // A change to a listener is applied at the next start, and the reload says so.
    std::fs::write(&config, format!("{base}pipeline:\n  queue_batches: 32\n")).unwrap();
    let response = agent.http().post(&reload_url).send().unwrap();
    let body = response.text().unwrap();
    assert!(
        body.contains("changes to pipeline take effect after a restart"),
        "{body}"
    );
    assert_eq!(
        agent
            .scrape()
            .value("heartwire_config_restart_required", &[]),
        Some(1.0)
    );
}
