//! `heartwire run` end to end: the real wrapper around real commands, reporting to the real
//! agent over its sockets; exit codes, signals and `/metrics` asserted.

// Test helpers: a failure to set up is the calling test's failure, reported where it happened.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixListener;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartwire_proto::Line;
use heartwire_tests::agent::{Agent, DEADLINE, heartwire};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const POLL: Duration = Duration::from_millis(10);

/// A shell command that writes its pid to `file`, then becomes `sleep 60` under that pid.
fn sleeper(file: &Path) -> String {
    format!("echo $$ > '{}'; exec sleep 60", file.display())
}

/// `heartwire run --job JOB --to TARGET -- COMMAND…`, standard input closed.
fn wrapper(job: &str, target: &str, command: &[&str]) -> Command {
    let mut wrapper = heartwire();
    wrapper
        .args(["run", "--job", job, "--to", target, "--"])
        .args(command)
        .env_remove("HEARTWIRE_TO")
        .stdin(Stdio::null());
    wrapper
}

fn unix_target(agent: &Agent) -> String {
    format!("unix://{}", agent.unix_stream().display())
}

/// Runs the wrapper to completion, capturing its output.
fn run(job: &str, target: &str, command: &[&str]) -> Output {
    wrapper(job, target, command)
        .output()
        .expect("heartwire run starts")
}

#[track_caller]
fn wait_for_runs(agent: &Agent, job: &str, result: &str, expected: f64) {
    agent.wait_for(
        "heartwire_job_runs_total",
        &[("job", job), ("result", result)],
        expected,
    );
}

/// A process started by a test: SIGKILLed and reaped when dropped, so a failing test leaves
/// nothing running.
struct Running(Child);

impl Running {
    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.0.id()).unwrap())
    }

    /// Waits (polling, up to [`DEADLINE`]) for the process to exit.
    #[track_caller]
    fn exit_status(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the wrapper did not exit in time"
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pid read from a file: SIGKILLed when dropped (a command outliving its killed wrapper).
struct Orphan(Pid);

impl Drop for Orphan {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
    }
}

/// Polls until `file` holds a whole line, and returns it.
#[track_caller]
fn wait_for_line(file: &Path) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Some(line) = text.strip_suffix('\n')
        {
            return line.to_owned();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{} was not written in time",
            file.display()
        );
        thread::sleep(POLL);
    }
}

#[track_caller]
fn wait_for_pid(file: &Path) -> Orphan {
    Orphan(Pid::from_raw(wait_for_line(file).trim().parse().unwrap()))
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("hw-run").tempdir().unwrap()
}

#[test]
fn a_failing_command_passes_its_exit_code_through_and_counts_an_error_run() {
    let agent = Agent::start();
    let output = run("j", &unix_target(&agent), &["sh", "-c", "exit 3"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    wait_for_runs(&agent, "j", "error", 1.0);
    let scrape = agent.scrape();
    let ok_runs = scrape.value(
        "heartwire_job_runs_total",
        &[("job", "j"), ("result", "ok")],
    );
    assert_eq!(ok_runs.unwrap_or(0.0), 0.0, "no run succeeded");
    assert_eq!(
        scrape.value("heartwire_job_duration_seconds_count", &[("job", "j")]),
        Some(1.0)
    );
}

#[test]
fn a_succeeding_command_counts_an_ok_run_with_a_duration_and_a_last_success() {
    let agent = Agent::start();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let output = run("j", &unix_target(&agent), &["true"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let scrape = agent.wait_for_all(&[
        (
            "heartwire_job_runs_total",
            &[("job", "j"), ("result", "ok")],
            1.0,
        ),
        ("heartwire_job_duration_seconds_count", &[("job", "j")], 1.0),
    ]);
    let last_success = scrape
        .value(
            "heartwire_job_last_success_timestamp_seconds",
            &[("job", "j")],
        )
        .expect("a last success timestamp");
    assert!(
        last_success >= before.floor() && last_success < before + DEADLINE.as_secs_f64(),
        "last success {last_success}, run started at {before}"
    );
    assert_eq!(
        scrape.value("heartwire_job_running", &[("job", "j")]),
        Some(0.0)
    );
}

#[test]
fn the_command_keeps_standard_output_and_error_and_the_wrapper_adds_nothing() {
    let agent = Agent::start();
    let output = run(
        "j",
        &unix_target(&agent),
        &["sh", "-c", "echo out; echo err >&2"],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");
}

#[test]
fn a_command_killed_by_sigkill_makes_the_wrapper_exit_137_and_counts_an_error_run() {
    let agent = Agent::start();
    let dir = scratch();
    let pidfile = dir.path().join("pid");
    let mut wrapper = Running(
        wrapper("j", &unix_target(&agent), &["sh", "-c", &sleeper(&pidfile)])
            .spawn()
            .unwrap(),
    );
    let command = wait_for_pid(&pidfile);
    kill(command.0, Signal::SIGKILL).unwrap();
    assert_eq!(wrapper.exit_status().code(), Some(137));
    wait_for_runs(&agent, "j", "error", 1.0);
}

#[test]
fn the_session_says_hello_starts_the_run_and_ends_it_with_the_signal_that_killed_the_command() {
    let dir = scratch();
    let socket = dir.path().join("stream.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let pidfile = dir.path().join("pid");
    let target = format!("unix://{}", socket.display());
    let mut wrapper = Running(
        wrapper("nightly", &target, &["sh", "-c", &sleeper(&pidfile)])
            .spawn()
            .unwrap(),
    );
    let (session, _) = listener.accept().unwrap();
    session.set_read_timeout(Some(DEADLINE)).unwrap();
    let command = wait_for_pid(&pidfile);
    kill(command.0, Signal::SIGKILL).unwrap();
    // Read until the wrapper closes the session: proof that it closes it cleanly.
    let lines: Vec<String> = BufReader::new(session)
        .lines()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(wrapper.exit_status().code(), Some(137));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let parsed: Vec<Line<'_>> = lines
        .iter()
        .map(|line| heartwire_proto::parse_line(line.as_bytes()).unwrap())
        .collect();
    let Line::Hello(hello) = &parsed[0] else {
        panic!("the session opens with hello: {lines:?}")
    };
    assert_eq!(hello.app, "nightly");
    assert_eq!(hello.pid, Some(wrapper.0.id()));
    let Line::JobStart(start) = &parsed[1] else {
        panic!("then job.start: {lines:?}")
    };
    assert_eq!(start.job, "nightly");
    let Line::JobError(end) = &parsed[2] else {
        panic!("then job.error: {lines:?}")
    };
    assert_eq!(end.job, "nightly");
    assert_eq!(end.id, start.id, "start and end carry the same run id");
    assert!(start.id.is_some());
    assert_eq!(end.signal, Some("KILL"));
    assert_eq!(end.exit, None);
    assert!(
        end.seconds.is_some_and(|seconds| seconds >= 0.0),
        "{lines:?}"
    );
}

#[test]
fn a_wrapper_killed_by_sigkill_is_a_crash_on_the_agent() {
    // The job is configured, as a monitored job is: the agent lists crashes of configured jobs.
    let agent = Agent::start_with("jobs:\n  j:\n    every: 1h\n");
    let dir = scratch();
    let pidfile = dir.path().join("pid");
    let mut wrapper = Running(
        wrapper("j", &unix_target(&agent), &["sh", "-c", &sleeper(&pidfile)])
            .spawn()
            .unwrap(),
    );
    // The command outlives its wrapper; it is killed when the test ends.
    let _command = wait_for_pid(&pidfile);
    agent.wait_for("heartwire_job_running", &[("job", "j")], 1.0);
    kill(wrapper.pid(), Signal::SIGKILL).unwrap();
    let killed = std::time::Instant::now();
    assert_eq!(wrapper.exit_status().signal(), Some(Signal::SIGKILL as i32));
    agent.wait_for_all(&[
        ("heartwire_job_crashes_total", &[("job", "j")], 1.0),
        (
            "heartwire_job_runs_total",
            &[("job", "j"), ("result", "error")],
            1.0,
        ),
    ]);
    // And /status says so, all within a second of the kill: the session's close is the signal.
    let body = agent
        .http()
        .get(agent.metrics_url().replace("/metrics", "/status"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    let job = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["job"] == "j")
        .unwrap_or_else(|| panic!("no job j in /status: {status}"));
    assert_eq!(job["crashes"], 1, "{job}");
    assert_eq!(job["running"], 0, "{job}");
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(1),
        "seen {:?} after the kill",
        killed.elapsed()
    );
}

#[test]
fn sigterm_to_the_wrapper_reaches_the_command_and_its_exit_code_comes_back() {
    let agent = Agent::start();
    let dir = scratch();
    let ready = dir.path().join("ready");
    let script = format!(
        "trap 'kill $sleeper; exit 7' TERM; sleep 60 & sleeper=$!; echo ready > '{}'; wait $sleeper",
        ready.display()
    );
    let mut wrapper = Running(
        wrapper("j", &unix_target(&agent), &["sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    wait_for_line(&ready);
    kill(wrapper.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(wrapper.exit_status().code(), Some(7));
    wait_for_runs(&agent, "j", "error", 1.0);
}

#[test]
fn every_forwarded_signal_reaches_the_command() {
    let dir = scratch();
    for (index, signal) in ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM"]
        .into_iter()
        .enumerate()
    {
        let ready = dir.path().join(format!("ready-{signal}"));
        let code = 10 + index as i32;
        let script = format!(
            "trap 'kill $sleeper; exit {code}' {signal}; sleep 60 & sleeper=$!; echo ready > '{}'; wait $sleeper",
            ready.display()
        );
        // No agent: the forwarding does not depend on reporting.
        let mut wrapper = Running(
            wrapper(
                "j",
                "unix:///nonexistent/stream.sock",
                &["sh", "-c", &script],
            )
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        );
        wait_for_line(&ready);
        let number: Signal = format!("SIG{signal}").parse().unwrap();
        kill(wrapper.pid(), number).unwrap();
        assert_eq!(wrapper.exit_status().code(), Some(code), "SIG{signal}");
    }
}

#[test]
fn a_command_ended_by_a_forwarded_sigterm_makes_the_wrapper_exit_143() {
    let agent = Agent::start();
    let dir = scratch();
    let pidfile = dir.path().join("pid");
    let mut wrapper = Running(
        wrapper("j", &unix_target(&agent), &["sh", "-c", &sleeper(&pidfile)])
            .spawn()
            .unwrap(),
    );
    let _command = wait_for_pid(&pidfile);
    kill(wrapper.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(wrapper.exit_status().code(), Some(143));
}

#[test]
fn an_unreachable_agent_costs_one_warning_and_the_command_still_runs() {
    let output = run(
        "j",
        "unix:///nonexistent/stream.sock",
        &["sh", "-c", "echo ran; exit 4"],
    );
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ran\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr
            .starts_with("heartwire run: cannot report job `j` to unix:///nonexistent/stream.sock"),
        "{stderr}"
    );
}

#[test]
fn a_command_that_does_not_exist_exits_127_and_counts_an_error_run() {
    let agent = Agent::start();
    let output = run("j", &unix_target(&agent), &["heartwire-no-such-command"]);
    assert_eq!(output.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "heartwire run: `heartwire-no-such-command`: command not found\n"
    );
    wait_for_runs(&agent, "j", "error", 1.0);
}

#[test]
fn a_file_that_is_not_executable_exits_126() {
    let agent = Agent::start();
    let dir = scratch();
    let script: PathBuf = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    let output = run("j", &unix_target(&agent), &[script.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(126), "{output:?}");
    wait_for_runs(&agent, "j", "error", 1.0);
}

#[test]
fn udp_targets_get_the_start_and_the_end_as_plain_lines() {
    let agent = Agent::start();
    let output = run("j", &format!("udp://{}", agent.udp()), &["true"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{output:?}");
    wait_for_runs(&agent, "j", "ok", 1.0);
}

#[test]
fn heartwire_to_in_the_environment_names_the_agent() {
    let agent = Agent::start();
    let output = heartwire()
        .args(["run", "--job", "from-env", "--", "true"])
        .env("HEARTWIRE_TO", unix_target(&agent))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{output:?}");
    wait_for_runs(&agent, "from-env", "ok", 1.0);
}
