//! Nothing dies silently: every long-lived task and thread of the agent is supervised. A fault
//! is injected into one component at a time with the test-only `HEARTWIRE_FAULT` hook (the
//! binary the tests build has the `fault-injection` feature); the real agent must then say so
//! on `/healthz` (503, naming the component), log why, and exit non-zero (70) within seconds,
//! so that Kubernetes restarts it. Without a fault, `/healthz` is 200 and a TERM exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, DEADLINE};

/// `EX_SOFTWARE`: the status of an agent that stopped because a component failed.
const EXIT_FAILED: i32 = 70;
/// When the fault strikes: after the agent is ready and the test is watching.
const FAULT_AFTER: &str = "1500ms";

/// The sections a component needs to run at all, beyond every listener.
fn sections(component: &str, dir: &Path) -> String {
    match component {
        "textfile" => format!(
            "textfile:\n  enabled: true\n  directory: \"{}\"\n  interval: 100ms\n",
            dir.display()
        ),
        // Nothing listens there: the exporter keeps retrying, which is still running.
        "otlp" => "otlp:\n  endpoint: http://127.0.0.1:9\n  interval: 1s\n".to_owned(),
        _ => String::new(),
    }
}

/// Starts an agent whose `component` will fail, checks what `/healthz` says while it runs (when
/// the component is not the HTTP server itself), and returns its exit status and log.
fn fail(component: &str) -> (Option<i32>, String) {
    let out = tempfile::tempdir().unwrap();
    let fault = format!("{component}@{FAULT_AFTER}");
    let agent = Agent::start_with_env(
        &sections(component, out.path()),
        &[("HEARTWIRE_FAULT", fault.as_str())],
    );
    let healthz = agent.http_url("/healthz");
    let ok = agent.http().get(&healthz).send().unwrap();
    assert_eq!(ok.status().as_u16(), 200, "healthy before the fault");
    if component != "http" {
        let started = Instant::now();
        loop {
            // The agent may already be gone: then the exit status below tells.
            let Ok(answer) = agent.http().get(&healthz).send() else {
                break;
            };
            if answer.status().as_u16() == 503 {
                let body = answer.text().unwrap();
                assert!(
                    body.contains(&format!("{component} stopped: panicked")),
                    "{component}: /healthz said {body:?}"
                );
                break;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{component}: /healthz never said 503; log:\n{}",
                agent.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
    let started = Instant::now();
    let (status, log) = agent.wait_exit();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{component}: took {:?} to exit",
        started.elapsed()
    );
    (status.code(), log)
}

#[track_caller]
fn assert_fails_loudly(component: &str) {
    let (code, log) = fail(component);
    assert_eq!(code, Some(EXIT_FAILED), "{component}: log:\n{log}");
    assert!(
        log.contains(&format!("component=\"{component}\""))
            && log.contains("a component of the agent stopped"),
        "{component}: the log must name it:\n{log}"
    );
    assert!(
        log.contains(&format!("fault injected into {component}")),
        "{component}: the log must say why:\n{log}"
    );
}

#[test]
fn a_failed_aggregator_is_reported_and_the_agent_exits() {
    assert_fails_loudly("aggregator");
}

#[test]
fn a_failed_udp_receiver_is_reported_and_the_agent_exits() {
    assert_fails_loudly("udp");
}

#[test]
fn a_failed_unix_datagram_receiver_is_reported_and_the_agent_exits() {
    assert_fails_loudly("unix_datagram");
}

#[test]
fn a_failed_tcp_listener_is_reported_and_the_agent_exits() {
    assert_fails_loudly("tcp");
}

#[test]
fn a_failed_unix_stream_listener_is_reported_and_the_agent_exits() {
    assert_fails_loudly("unix_stream");
}

#[test]
fn a_failed_ingest_server_is_reported_and_the_agent_exits() {
    assert_fails_loudly("http_ingest");
}

#[test]
fn a_failed_metrics_server_makes_the_agent_exit() {
    assert_fails_loudly("http");
}

#[test]
fn a_failed_otlp_exporter_is_reported_and_the_agent_exits() {
    assert_fails_loudly("otlp");
}

#[test]
fn a_failed_textfile_writer_is_reported_and_the_agent_exits() {
    assert_fails_loudly("textfile");
}

#[test]
fn a_failed_config_reloader_is_reported_and_the_agent_exits() {
    assert_fails_loudly("config_reload");
}

#[test]
fn a_lost_aggregator_state_is_not_served_as_if_it_were_current() {
    let agent = Agent::start_with_env("", &[("HEARTWIRE_FAULT", "aggregator@1s")]);
    agent.send_udp(b"before.fault:1|c\n");
    agent.wait_for("before_fault_total", &[], 1.0);
    let metrics = agent.metrics_url();
    let started = Instant::now();
    loop {
        let Ok(answer) = agent.http().get(&metrics).send() else {
            break;
        };
        if answer.status().as_u16() == 503 {
            assert!(answer.text().unwrap().contains("aggregator has failed"));
            break;
        }
        assert!(started.elapsed() < DEADLINE, "/metrics kept serving");
        thread::sleep(Duration::from_millis(20));
    }
    let (status, _) = agent.wait_exit();
    assert_eq!(status.code(), Some(EXIT_FAILED));
}

#[test]
fn without_a_fault_healthz_is_ok_and_a_term_exits_zero() {
    // A fault planned for another process's component name changes nothing here.
    let agent = Agent::start_with_env("", &[("HEARTWIRE_FAULT", "no_such_component@0s")]);
    thread::sleep(Duration::from_millis(300));
    let answer = agent.http().get(agent.http_url("/healthz")).send().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().unwrap(), "ok\n");
    let (status, log) = agent.terminate();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains("a component of the agent stopped"), "{log}");
}
