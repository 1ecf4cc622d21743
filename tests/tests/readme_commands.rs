//! The README's first commands work together, as written: the agent on its embedded default (the
//! first block's `cargo run --release -p heartwire`, here the `heartwire` cargo built for the
//! tests, started without arguments), then every line of the block that shows what apps send,
//! run verbatim by bash, one at a time, each checked for its effect on `/metrics` before the
//! next runs. `heartwire send` and `heartwire run` must reach the agent on its Unix stream
//! socket (the lines arrive with `transport="unix"`) and print nothing but the command's output.
//!
//! It runs twice: as the test's user with `XDG_RUNTIME_DIR` set (the socket in
//! `$XDG_RUNTIME_DIR/heartwire/`), and as a user who is not root with no `XDG_RUNTIME_DIR` (the
//! socket in `/tmp/heartwire-<uid>/`): as `nobody` when the test runs as root, as CI does. The
//! environment is emptied but for `PATH` (the test's `heartwire` first) and `HOME`, so that
//! `HEARTWIRE_TO` or `HEARTWIRE_CONFIG` cannot change what the README's lines do.
//!
//! The agent listens on its default ports, as the README says: when one is taken the test skips
//! loudly, or fails with `HEARTWIRE_REQUIRE_PEERS=1`. Both runs are in one test, one after the
//! other, for the same reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use heartwire_tests::agent::{self, DEADLINE, Scrape};
use heartwire_tests::peers::{self, REQUIRE_PEERS};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The first block's agent command, which the test replaces with `heartwire` alone.
const AGENT: &str = "cargo run --release -p heartwire";
/// The user the second run drops to when the test runs as root.
const NOBODY: u32 = 65534;
const METRICS: &str = "http://127.0.0.1:8127/metrics";

/// What one README line must change on `/metrics`.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// This sample reaches this value.
    Sample(&'static str, &'static [(&'static str, &'static str)], f64),
    /// As `Sample`, and the line came over the Unix stream socket: `lines` more lines received
    /// on it, and no other transport took any.
    OverTheSocket(
        &'static str,
        &'static [(&'static str, &'static str)],
        f64,
        f64,
    ),
    /// The command prints the page, holding this sample line.
    Prints(&'static str),
}

/// Every line of the README's block, without its comment, and what it does.
const EFFECTS: [(&str, Effect); 7] = [
    (
        "echo 'job.ok viewer-poll 0.3' | nc -u -w1 127.0.0.1 8125",
        Effect::Sample(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "ok")],
            1.0,
        ),
    ),
    (
        "echo 'http kick oauth/token 401 0.21' | nc -u -w1 127.0.0.1 8125",
        Effect::Sample(
            "heartwire_external_http_total",
            &[
                ("service", "kick"),
                ("endpoint", "oauth/token"),
                ("status_code", "401"),
            ],
            1.0,
        ),
    ),
    (
        "echo 'hb mailer ttl=30' | nc -u -w1 127.0.0.1 8125",
        Effect::Sample("heartwire_worker_status", &[("worker", "mailer")], 1.0),
    ),
    (
        "echo 'page.views:1|c|#env:prod' | nc -u -w1 127.0.0.1 8125",
        Effect::Sample("page_views_total", &[("env", "prod")], 1.0),
    ),
    (
        "heartwire send 'job.ok viewer-poll 0.3'",
        Effect::OverTheSocket(
            "heartwire_job_runs_total",
            &[("job", "viewer-poll"), ("result", "ok")],
            2.0,
            1.0,
        ),
    ),
    (
        "heartwire run --job nightly-export -- ./export.sh",
        // hello, job.start, job.ok: a session.
        Effect::OverTheSocket(
            "heartwire_job_runs_total",
            &[("job", "nightly-export"), ("result", "ok")],
            1.0,
            3.0,
        ),
    ),
    (
        "curl -s localhost:8127/metrics",
        Effect::Prints("heartwire_job_runs_total{job=\"nightly-export\",result=\"ok\"} 1"),
    ),
];

/// What `./export.sh` prints: the wrapped command's output, passed through.
const EXPORTED: &str = "exported 3 tables";

/// The README's fenced ```` ```sh ```` blocks, in order.
fn sh_blocks(markdown: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```sh" {
            let body = lines
                .by_ref()
                .take_while(|line| line.trim() != "```")
                .map(str::to_owned)
                .collect();
            blocks.push(body);
        }
    }
    blocks
}

/// A line without its trailing `# comment` (a `#` after whitespace, outside quotes).
fn command_of(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, character) in line.char_indices() {
        match (quote, character) {
            (None, '\'' | '"') => quote = Some(character),
            (Some(open), _) if character == open => quote = None,
            (None, '#') if previous.is_whitespace() => return line[..at].trim_end(),
            _ => {}
        }
        previous = character;
    }
    line.trim_end()
}

/// The two blocks the test runs: the agent command, and the lines apps send.
fn readme_commands() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 2, "the README opens with two sh blocks");
    let agent = command_of(&blocks[0][0]);
    assert_eq!(agent, AGENT, "the README's first command runs the agent");
    blocks[1].clone()
}

/// Who runs the agent and the commands, and with which runtime directory.
#[derive(Debug, Clone, Copy)]
struct User {
    /// `Some(uid)` to drop to that user and group (the test runs as root).
    drop_to: Option<u32>,
    /// Whether `XDG_RUNTIME_DIR` is set (to a fresh directory of the user's).
    runtime_dir: bool,
}

/// A directory tree `user` can use: the binary under `bin/`, a working directory with
/// `export.sh`, and a runtime directory.
struct Place {
    root: tempfile::TempDir,
}

impl Place {
    fn new(user: User) -> Place {
        let root = tempfile::Builder::new()
            .prefix("hw-readme")
            .tempdir()
            .unwrap();
        let place = Place { root };
        fs::set_permissions(place.root.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(place.bin()).unwrap();
        // A copy: the target directory may lie where another user cannot reach.
        fs::copy(agent::binary(), place.bin().join("heartwire")).unwrap();
        fs::create_dir(place.work()).unwrap();
        let script = place.work().join("export.sh");
        fs::write(&script, format!("#!/bin/sh\necho '{EXPORTED}'\n")).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(place.runtime()).unwrap();
        fs::set_permissions(place.runtime(), fs::Permissions::from_mode(0o700)).unwrap();
        if let Some(uid) = user.drop_to {
            for dir in [place.work(), place.runtime()] {
                std::os::unix::fs::chown(&dir, Some(uid), Some(uid)).unwrap();
            }
        }
        place
    }

    fn bin(&self) -> PathBuf {
        self.root.path().join("bin")
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    fn runtime(&self) -> PathBuf {
        self.root.path().join("runtime")
    }

    /// A command run as `user` in the working directory, with nothing of the test's
    /// environment but `PATH`.
    fn command(&self, user: User, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        command
            .env_clear()
            .env("PATH", format!("{}:{path}", self.bin().display()))
            .env("HOME", self.work())
            .current_dir(self.work())
            .stdin(Stdio::null());
        if user.runtime_dir {
            command.env("XDG_RUNTIME_DIR", self.runtime());
        }
        if let Some(uid) = user.drop_to {
            // std drops the supplementary groups too when root sets a uid.
            command.uid(uid).gid(uid);
        }
        command
    }
}

/// The agent on its embedded default, stopped with SIGTERM when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(place: &Place, user: User) -> Running {
        let log = place.root.path().join("agent.log");
        let child = place
            .command(user, place.bin().join("heartwire"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("heartwire starts");
        let mut running = Running { child, log };
        let client = reqwest::blocking::Client::new();
        let healthy = |client: &reqwest::blocking::Client| {
            client
                .get("http://127.0.0.1:8127/healthz")
                .send()
                .is_ok_and(|response| response.status().is_success())
        };
        let started = Instant::now();
        while !healthy(&client) {
            if let Ok(Some(status)) = running.child.try_wait() {
                panic!("heartwire exited ({status}):\n{}", running.log());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "heartwire is not healthy:\n{}",
                running.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        running
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn scrape() -> Scrape {
    let text = reqwest::blocking::get(METRICS)
        .and_then(|response| response.text())
        .expect("/metrics answers");
    Scrape::parse(text)
}

/// Lines received, by transport.
fn received(scrape: &Scrape, transport: &str) -> f64 {
    scrape.total(
        "heartwire_lines_received_total",
        &[("transport", transport)],
    )
}

/// Polls `/metrics` until `holds` says the scrape is as expected; the last scrape otherwise.
fn wait_for(holds: impl Fn(&Scrape) -> bool) -> Result<Scrape, Scrape> {
    let started = Instant::now();
    loop {
        let scrape = scrape();
        if holds(&scrape) {
            return Ok(scrape);
        }
        if started.elapsed() > DEADLINE {
            return Err(scrape);
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one README line with bash and checks its effect.
fn run_line(place: &Place, user: User, line: &str, agent: &Running) {
    let command = command_of(line);
    let effect = EFFECTS
        .iter()
        .find(|(known, _)| *known == command)
        .map(|(_, effect)| *effect)
        .unwrap_or_else(|| {
            panic!("a README line without a known effect: add it to EFFECTS: {line}")
        });
    let before = scrape();
    let output: Output = place
        .command(user, "bash")
        .args(["-c", line])
        .output()
        .expect("bash runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    let context = format!(
        "{user:?}: `{line}` exited {}\nstdout:\n{stdout}\nstderr:\n{stderr}\nagent log:\n{}",
        output.status,
        agent.log()
    );
    assert!(output.status.success(), "{context}");
    assert!(stderr.is_empty(), "the line printed on stderr: {context}");
    match effect {
        Effect::Sample(name, labels, value) => {
            let found = wait_for(|scrape| scrape.value(name, labels) == Some(value));
            if let Err(scrape) = found {
                panic!(
                    "{name}{labels:?} is not {value}:\n{}\n{context}",
                    scrape.lines_about(name)
                );
            }
        }
        Effect::OverTheSocket(name, labels, value, lines) => {
            let unix = received(&before, "unix") + lines;
            let found = wait_for(|scrape| {
                scrape.value(name, labels) == Some(value) && received(scrape, "unix") >= unix
            });
            let scrape = found.unwrap_or_else(|scrape| {
                panic!(
                    "{name}{labels:?} is not {value} after {lines} lines on the Unix socket:\n{}\n{}\n{context}",
                    scrape.lines_about(name),
                    scrape.lines_about("heartwire_lines_received_total")
                )
            });
            assert_eq!(received(&scrape, "unix"), unix, "{context}");
            for transport in ["udp", "tcp", "http"] {
                assert_eq!(
                    received(&scrape, transport),
                    received(&before, transport),
                    "lines over {transport}: {context}"
                );
            }
            if command.starts_with("heartwire run") {
                assert_eq!(stdout.trim_end(), EXPORTED, "{context}");
            }
        }
        Effect::Prints(sample) => {
            assert!(
                stdout.lines().any(|line| line == sample),
                "no `{sample}`: {context}"
            );
        }
    }
}

/// The README's lines, run as `user` against the embedded default it started; returns where
/// the agent put its socket.
fn run_readme(user: User, lines: &[String]) -> PathBuf {
    let place = Place::new(user);
    let agent = Running::start(&place, user);
    let uid = user.drop_to.unwrap_or_else(effective_uid);
    let socket = if user.runtime_dir {
        place.runtime().join("heartwire/stream.sock")
    } else {
        PathBuf::from(format!("/tmp/heartwire-{uid}/stream.sock"))
    };
    let metadata = fs::symlink_metadata(&socket)
        .unwrap_or_else(|e| panic!("no socket at {}: {e}\n{}", socket.display(), agent.log()));
    assert_eq!(metadata.uid(), uid, "the owner of {}", socket.display());
    let directory = fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(directory.mode() & 0o777, 0o700, "{}", socket.display());
    assert_eq!(directory.uid(), uid);
    for line in lines.iter().filter(|line| !command_of(line).is_empty()) {
        run_line(&place, user, line, &agent);
    }
    let log = agent.log();
    assert!(!log.contains("WARN"), "the agent warned:\n{log}");
    drop(agent);
    assert!(!socket.exists(), "{} is left behind", socket.display());
    socket
}

/// This process's effective user: the owner the kernel gives its `/proc` directory.
fn effective_uid() -> u32 {
    fs::metadata("/proc/self").expect("/proc is mounted").uid()
}

#[test]
fn the_readme_commands_reach_the_embedded_default_as_written_for_root_and_other_users() {
    let lines = readme_commands();
    let commands: Vec<&str> = lines.iter().map(|line| command_of(line)).collect();
    for (known, _) in EFFECTS {
        assert!(
            commands.contains(&known),
            "the README no longer shows `{known}`"
        );
    }
    if let Some(unmet) = heartwire_tests::peers::default_ports_unusable("the README") {
        assert!(!peers::peers_required(), "{unmet} ({REQUIRE_PEERS}=1)");
        let notice = format!("\n********** SKIPPED: {unmet} **********\n\n");
        let _ = std::io::stderr().write_all(notice.as_bytes());
        return;
    }
    let root = effective_uid() == 0;
    let user = User {
        drop_to: None,
        runtime_dir: true,
    };
    run_readme(user, &lines);
    let other = User {
        drop_to: root.then_some(NOBODY),
        runtime_dir: false,
    };
    run_readme(other, &lines);
}

#[test]
fn comments_are_cut_outside_quotes_only() {
    assert_eq!(
        command_of("echo 'a # b' | nc x   # c"),
        "echo 'a # b' | nc x"
    );
    assert_eq!(
        command_of("echo 'page.views:1|c|#env:prod'"),
        "echo 'page.views:1|c|#env:prod'"
    );
    assert_eq!(command_of("curl -s x"), "curl -s x");
    assert_eq!(command_of("# only a comment"), "");
}
