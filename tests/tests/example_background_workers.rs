//! Seed 001 end to end: `examples/background-workers`, a Rust program on heartwire-proto's
//! encoder whose five tokio workers heartbeat over one Unix stream session, against the real
//! agent running the example's config with a short ttl.
//!
//! The seed's own design sets `worker_status` to 1 from inside each worker and to 0 on a clean
//! stop: a worker that dies, and a process that dies, leave it at 1. Here a dead worker task goes
//! to 0 after its ttl while the others stay 1, and a killed process takes every worker to 0
//! within a second, through its closed session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{Agent, Expected, Scrape, all_listeners};
use heartwire_tests::prometheus::tool_or_skip;
use heartwire_tests::rule_file;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The seed's five workers.
const WORKERS: [&str; 5] = [
    "email_queue",
    "blockchain_sync",
    "blockchain_tx_monitor",
    "rate_limiter_cleanup",
    "newsletter_cleanup",
];
/// The workers' ttl in the test config (90 s in the example).
const TTL: Duration = Duration::from_secs(3);
/// The app's heartbeat interval in the test (30 s in the seed).
const INTERVAL: Duration = Duration::from_millis(250);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/background-workers")
}

/// The example's config with the test listeners and a ttl of [`TTL`].
fn agent() -> Agent {
    let path = example_dir().join("heartwire.yaml");
    let example = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        example.matches("ttl: 90s").count(),
        WORKERS.len(),
        "{example}"
    );
    let config = example.replace("ttl: 90s", &format!("ttl: {}s", TTL.as_secs()));
    Agent::start_config(|dir| format!("{}{config}", all_listeners(dir)))
}

/// The example's binary, built once per test process into the same target directory and
/// profile as the tests (cargo builds only the tested package's binaries by itself).
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let test = std::env::current_exe().unwrap();
        let profile_dir = test.parent().and_then(Path::parent).unwrap();
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "heartwire-example-background-workers",
                "--bin",
                "background-workers",
                "--profile",
                profile,
                "--target-dir",
            ])
            .arg(profile_dir.parent().unwrap())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the example failed: {status}");
        profile_dir.join("background-workers")
    })
}

/// The example app, heartbeating to `agent`. Killed when dropped.
struct App {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl App {
    fn start(agent: &Agent) -> App {
        let mut child = Command::new(example_binary())
            .arg("--socket")
            .arg(agent.unix_stream())
            .arg("--interval")
            .arg(format!("{}ms", INTERVAL.as_millis()))
            .env("RUST_LOG", "info")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the example starts");
        let stdin = child.stdin.take();
        App { child, stdin }
    }

    /// Types one command on the app's standard input.
    fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn statuses(value: f64) -> Vec<Expected<'static>> {
    WORKERS
        .iter()
        .map(|name| {
            let labels: &'static [(&str, &str)] = Box::leak(Box::new([("name", *name)]));
            ("worker_status", labels, value)
        })
        .collect()
}

fn status(scrape: &Scrape, name: &str) -> Option<f64> {
    scrape.value("worker_status", &[("name", name)])
}

#[test]
fn a_worker_task_that_dies_goes_to_0_after_its_ttl_while_the_others_stay_1() {
    let agent = agent();
    let mut app = App::start(&agent);
    agent.wait_for_all(&statuses(1.0));

    app.command("panic email_queue");
    let broken = Instant::now();
    let scrape = agent.wait_for("worker_status", &[("name", "email_queue")], 0.0);
    // Its last heartbeat came at most one interval before the command.
    assert!(
        broken.elapsed() >= TTL - INTERVAL,
        "down after {:?}, before its ttl of {TTL:?}",
        broken.elapsed()
    );
    // The process lives on and so do the other workers, for longer than a ttl.
    let watched = Instant::now();
    let mut scrape = scrape;
    loop {
        for name in &WORKERS[1..] {
            assert_eq!(status(&scrape, name), Some(1.0), "{name}:\n{scrape}");
        }
        assert_eq!(status(&scrape, "email_queue"), Some(0.0));
        if watched.elapsed() > TTL {
            break;
        }
        std::thread::sleep(INTERVAL);
        scrape = agent.scrape();
    }
    assert_eq!(app.child.try_wait().unwrap(), None, "the process is alive");
}

#[test]
fn a_hung_worker_loop_goes_to_0_after_its_ttl() {
    let agent = agent();
    let mut app = App::start(&agent);
    agent.wait_for_all(&statuses(1.0));
    app.command("hang blockchain_tx_monitor");
    let scrape = agent.wait_for("worker_status", &[("name", "blockchain_tx_monitor")], 0.0);
    assert_eq!(status(&scrape, "blockchain_sync"), Some(1.0));
}

#[test]
fn a_killed_process_takes_every_worker_to_0_within_a_second() {
    let agent = agent();
    let mut app = App::start(&agent);
    agent.wait_for_all(&statuses(1.0));

    kill(app.pid(), Signal::SIGKILL).unwrap();
    app.child.wait().unwrap();
    let killed = Instant::now();
    let scrape = agent.wait_for_all(&statuses(0.0));
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "every worker down {:?} after the kill; the ttl is {TTL:?}, so only the closed session explains it within a second",
        killed.elapsed()
    );
    for name in WORKERS {
        assert_eq!(
            scrape.value("heartwire_worker_stopped", &[("name", name)]),
            Some(0.0),
            "{name} crashed; it did not stop cleanly"
        );
    }
}

#[test]
fn sigterm_stops_every_worker_cleanly_with_worker_stop() {
    let agent = agent();
    let mut app = App::start(&agent);
    agent.wait_for_all(&statuses(1.0));

    kill(app.pid(), Signal::SIGTERM).unwrap();
    let status = app.child.wait().unwrap();
    assert!(status.success(), "the app exits 0 on SIGTERM: {status}");
    let stopped: Vec<Expected<'static>> = statuses(1.0)
        .into_iter()
        .map(|(_, labels, value)| ("heartwire_worker_stopped", labels, value))
        .chain(statuses(0.0))
        .collect();
    agent.wait_for_all(&stopped);
}

#[test]
fn background_worker_down_comes_out_of_heartwire_rules() {
    let text = rule_file::heartwire_rules(&example_dir().join("heartwire.yaml"));
    let rules = rule_file::parse(&text);
    let down = rule_file::find(&rules, "BackgroundWorkerDown", &[]);
    assert!(
        down.expr.contains("worker_status == 0"),
        "the seed's expression: {}",
        down.expr
    );
    assert_eq!(down.for_.as_deref(), Some("1m"), "the seed's `for`");
    assert_eq!(down.labels["severity"], "critical");

    let Some(promtool) = tool_or_skip("promtool") else {
        return;
    };
    rule_file::check(&promtool, &text).unwrap();
    // A worker at 0 fires after one minute; a worker that said worker.stop does not.
    let tests = "  - interval: 1m
    input_series:
      - series: 'worker_status{name=\"email_queue\"}'
        values: '1 0 0 0'
      - series: 'heartwire_worker_stopped{name=\"email_queue\"}'
        values: '0 0 0 0'
      - series: 'worker_status{name=\"newsletter_cleanup\"}'
        values: '1 0 0 0'
      - series: 'heartwire_worker_stopped{name=\"newsletter_cleanup\"}'
        values: '0 1 1 1'
    alert_rule_test:
      - eval_time: 1m
        alertname: BackgroundWorkerDown
        exp_alerts: []
      - eval_time: 2m
        alertname: BackgroundWorkerDown
        exp_alerts:
          - exp_labels: { severity: critical, name: email_queue }
";
    rule_file::test(&promtool, std::slice::from_ref(down), tests).unwrap();
}
