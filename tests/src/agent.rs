//! The real `heartwire` binary, started for a test: ephemeral ports, socket files in a temporary
//! directory, helpers to send over every transport and to scrape `/metrics`.
//!
//! The agent reports the addresses it bound (port 0 becomes a real port) through its
//! `--ready-file`, which it writes once every listener is up: a test that has an [`Agent`] can
//! send at once. Waiting is always polling with a deadline, never a fixed sleep.

// Test support: a failure to set up is the calling test's failure, reported where it happened.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod scrape;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub use self::scrape::{Sample, Scrape};

/// How long anything a test waits for may take.
pub const DEADLINE: Duration = Duration::from_secs(15);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// The `heartwire` binary, built once per test process.
///
/// `HEARTWIRE_BIN` names a prebuilt binary. Otherwise the binary is built with the cargo that
/// runs the tests, into the same target directory and profile, so that it is never stale (cargo
/// builds a package's binaries only for that package's own tests).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| match std::env::var_os("HEARTWIRE_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_binary(),
    })
}

fn build_binary() -> PathBuf {
    let test = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    let profile_dir = test
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let target_dir = profile_dir.parent().expect("the target directory");
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
            "heartwire",
            "--bin",
            "heartwire",
            // HEARTWIRE_FAULT, for the supervision tests; inert unless that variable is set.
            "--features",
            "heartwire/fault-injection",
            "--profile",
            profile,
            "--target-dir",
        ])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the heartwire binary failed: {status}"
    );
    profile_dir.join("heartwire")
}

/// A command running the `heartwire` binary, e.g. for `heartwire send`.
pub fn heartwire() -> Command {
    Command::new(binary())
}

/// A config with every listener on: UDP, TCP and both HTTP listeners on ephemeral loopback ports,
/// both Unix sockets in `dir`.
pub fn all_listeners(dir: &Path) -> String {
    format!(
        "listen:
  udp: {{ address: \"127.0.0.1:0\" }}
  tcp: {{ address: \"127.0.0.1:0\" }}
  unix_datagram: {{ enabled: true, path: \"{dgram}\" }}
  unix_stream: {{ enabled: true, path: \"{stream}\" }}
  http: {{ address: \"127.0.0.1:0\" }}
http:
  address: \"127.0.0.1:0\"
",
        dgram = dir.join("dgram.sock").display(),
        stream = dir.join("stream.sock").display(),
    )
}

/// A sample to wait for: name, exact labels, value.
pub type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// The agent exited (or never became ready) while starting.
#[derive(Debug)]
pub struct StartFailure {
    /// The exit status, if it exited.
    pub status: Option<ExitStatus>,
    /// What it logged.
    pub log: String,
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heartwire did not start (status {:?}); its log:\n{}",
            self.status, self.log
        )
    }
}

/// A running `heartwire serve`. Killed when dropped, if still running.
#[derive(Debug)]
pub struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    addresses: BTreeMap<String, String>,
    http: reqwest::blocking::Client,
}

impl Agent {
    /// An agent with [`all_listeners`].
    pub fn start() -> Agent {
        Agent::start_with("")
    }

    /// An agent with [`all_listeners`] plus `extra`: further top-level sections (not `listen`
    /// or `http`), e.g. `"limits:\n  max_series: 10\n"`.
    pub fn start_with(extra: &str) -> Agent {
        Agent::start_config(|dir| format!("{}{extra}", all_listeners(dir)))
    }

    /// An agent with the config `config` writes for its temporary directory.
    pub fn start_config(config: impl FnOnce(&Path) -> String) -> Agent {
        Agent::try_start(config).unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Like [`Agent::start_with`], with `env` added to the agent's environment.
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Agent {
        Agent::try_start_env(|dir| format!("{}{extra}", all_listeners(dir)), env)
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Like [`Agent::start_config`], but a failure to start is returned, not a panic.
    pub fn try_start(config: impl FnOnce(&Path) -> String) -> Result<Agent, StartFailure> {
        Agent::try_start_env(config, &[])
    }

    /// Like [`Agent::try_start`], with `env` added to the agent's environment. The test's own
    /// `OTEL_*` and `K8S_*` variables are never passed on: they would change what the agent
    /// exports.
    pub fn try_start_env(
        config: impl FnOnce(&Path) -> String,
        env: &[(&str, &str)],
    ) -> Result<Agent, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("hw")
            .tempdir()
            .expect("a temporary directory");
        let config_path = dir.path().join("agent.yaml");
        std::fs::write(&config_path, config(dir.path())).expect("the config is written");
        let ready = dir.path().join("ready");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("the log file");
        let mut command = heartwire();
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("OTEL_") || text.starts_with("K8S_") {
                command.env_remove(&name);
            }
        }
        // An agent whose config leaves the Unix stream socket at its default location makes it
        // in its own directory, not in the shared /run/heartwire of a root test run.
        let child = command
            .env("XDG_RUNTIME_DIR", dir.path())
            .envs(env.iter().copied())
            .args(["serve", "--config"])
            .arg(&config_path)
            .arg("--ready-file")
            .arg(&ready)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("heartwire starts");
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(DEADLINE)
            .build()
            .expect("an HTTP client");
        let mut agent = Agent {
            child,
            dir,
            addresses: BTreeMap::new(),
            http,
        };
        let started = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                return Err(StartFailure {
                    status: Some(status),
                    log: agent.log(),
                });
            }
            if started.elapsed() > DEADLINE {
                return Err(StartFailure {
                    status: None,
                    log: agent.log(),
                });
            }
            thread::sleep(POLL);
        }
        let listing = std::fs::read_to_string(&ready).expect("the ready file");
        agent.addresses = listing
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, address)| (name.to_owned(), address.to_owned()))
            .collect();
        Ok(agent)
    }

    /// The agent's temporary directory (config, log, socket files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address or path the agent reported for the listener `name` (`udp`, `tcp`,
    /// `unix_datagram`, `unix_stream`, `http_ingest`, `http`).
    pub fn address(&self, name: &str) -> &str {
        self.addresses
            .get(name)
            .unwrap_or_else(|| panic!("no listener `{name}` in {:?}", self.addresses))
    }

    fn socket_address(&self, name: &str) -> SocketAddr {
        self.address(name)
            .parse()
            .unwrap_or_else(|_| panic!("`{}` is not an address", self.address(name)))
    }

    /// The UDP listener.
    pub fn udp(&self) -> SocketAddr {
        self.socket_address("udp")
    }

    /// The TCP listener.
    pub fn tcp(&self) -> SocketAddr {
        self.socket_address("tcp")
    }

    /// The Unix datagram socket.
    pub fn unix_datagram(&self) -> PathBuf {
        PathBuf::from(self.address("unix_datagram"))
    }

    /// The Unix stream socket.
    pub fn unix_stream(&self) -> PathBuf {
        PathBuf::from(self.address("unix_stream"))
    }

    /// `http://…/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.address("http"))
    }

    /// `http://…/ingest`.
    pub fn ingest_url(&self) -> String {
        format!("http://{}/ingest", self.address("http_ingest"))
    }

    /// The shared HTTP client (no proxy, [`DEADLINE`] timeout).
    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Sends one UDP datagram.
    pub fn send_udp(&self, payload: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        socket
            .send_to(payload, self.udp())
            .expect("the datagram is sent");
    }

    /// Sends one Unix datagram.
    pub fn send_unix_datagram(&self, payload: &[u8]) {
        let socket = UnixDatagram::unbound().expect("a Unix datagram socket");
        socket
            .send_to(payload, self.unix_datagram())
            .expect("the datagram is sent");
    }

    /// Connects over TCP, writes `payload`, closes.
    pub fn send_tcp(&self, payload: &[u8]) {
        let mut stream = TcpStream::connect(self.tcp()).expect("TCP connects");
        stream.write_all(payload).expect("the payload is written");
    }

    /// Connects to the Unix stream socket, writes `payload`, closes.
    pub fn send_unix_stream(&self, payload: &[u8]) {
        let mut stream =
            UnixStream::connect(self.unix_stream()).expect("the Unix stream socket connects");
        stream.write_all(payload).expect("the payload is written");
    }

    /// `POST /ingest` with `body`; the response status.
    pub fn post_ingest(&self, body: impl Into<Vec<u8>>) -> u16 {
        let response = self
            .http
            .post(self.ingest_url())
            .body(body.into())
            .send()
            .expect("POST /ingest answers");
        response.status().as_u16()
    }

    /// `GET /metrics`, parsed. Panics unless the answer is `200` with a valid exposition.
    pub fn scrape(&self) -> Scrape {
        let response = self
            .http
            .get(self.metrics_url())
            .send()
            .expect("GET /metrics answers");
        assert_eq!(response.status().as_u16(), 200, "GET /metrics");
        Scrape::parse(response.text().expect("a text body"))
    }

    /// Polls `/metrics` until the sample `name{labels}` equals `expected`; returns that scrape.
    /// Panics with the relevant lines and the agent's log after [`DEADLINE`].
    #[track_caller]
    pub fn wait_for(&self, name: &str, labels: &[(&str, &str)], expected: f64) -> Scrape {
        self.wait_until(&format!("{name}{labels:?} == {expected}"), |scrape| {
            scrape.value(name, labels) == Some(expected)
        })
    }

    /// Polls `/metrics` until every `(name, labels, value)` holds at once; returns that scrape.
    #[track_caller]
    pub fn wait_for_all(&self, expected: &[Expected<'_>]) -> Scrape {
        let what = expected
            .iter()
            .map(|(name, labels, value)| format!("{name}{labels:?} == {value}"))
            .collect::<Vec<_>>();
        self.wait_until(&what.join(" and "), |scrape| {
            expected
                .iter()
                .all(|(name, labels, value)| scrape.value(name, labels) == Some(*value))
        })
    }

    /// Polls `/metrics` until `condition` holds; returns that scrape.
    #[track_caller]
    pub fn wait_until(&self, what: &str, condition: impl Fn(&Scrape) -> bool) -> Scrape {
        self.wait_until_within(DEADLINE, what, condition)
    }

    /// Like [`Agent::wait_until`], with `deadline` instead of [`DEADLINE`]: for work that takes
    /// longer in a debug build (a million lines, say).
    #[track_caller]
    pub fn wait_until_within(
        &self,
        deadline: Duration,
        what: &str,
        condition: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        let started = Instant::now();
        loop {
            let scrape = self.scrape();
            if condition(&scrape) {
                return scrape;
            }
            if started.elapsed() > deadline {
                let names: Vec<&str> = what
                    .split(" and ")
                    .filter_map(|part| part.split(['{', '[', ' ']).next())
                    .collect();
                let lines: Vec<String> =
                    names.iter().map(|name| scrape.lines_about(name)).collect();
                panic!(
                    "timed out waiting for {what}; the scrape says:\n{}\nagent log:\n{}",
                    lines.join("\n"),
                    self.log()
                );
            }
            thread::sleep(POLL);
        }
    }

    /// Polls `/metrics` until `condition` holds or `deadline` passes: `Ok` with the scrape that
    /// satisfied it, else `Err` with the last one, for a test that explains the failure itself.
    pub fn scrape_until(
        &self,
        deadline: Duration,
        condition: impl Fn(&Scrape) -> bool,
    ) -> Result<Scrape, Scrape> {
        let started = Instant::now();
        loop {
            let scrape = self.scrape();
            if condition(&scrape) {
                return Ok(scrape);
            }
            if started.elapsed() > deadline {
                return Err(scrape);
            }
            thread::sleep(POLL);
        }
    }

    /// `http://…/PATH` on the read-only HTTP listener (`/metrics`, `/readyz`, `/healthz`, …);
    /// `path` starts with `/`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address("http"))
    }

    /// What the agent has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// Polls the agent's log until it holds `needle`. Panics with the log after [`DEADLINE`].
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) {
        let started = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for {needle:?} in the agent's log:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the agent. An error means the process is gone (`ESRCH`).
    pub fn signal(&self, signal: Signal) -> nix::Result<()> {
        kill(
            Pid::from_raw(i32::try_from(self.child.id()).expect("a pid")),
            signal,
        )
    }

    /// The exit status, if the agent has exited (without waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the agent's status")
    }

    /// Waits for the agent to exit on its own (after signals the test sent); returns its status
    /// and log. Panics with the log if it is still running after [`DEADLINE`].
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return (status, self.log());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the agent did not exit; its log:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }

    /// Sends SIGTERM and waits for the agent to exit; returns its status and log.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM is delivered");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("the agent's status") {
                return (status, self.log());
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the agent did not exit after SIGTERM; its log:\n{}",
                self.log()
            );
            thread::sleep(POLL);
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads from `stream` until the peer closes it (or [`DEADLINE`] passes): true if it closed.
pub fn closed_by_peer(mut stream: impl Read) -> bool {
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    while started.elapsed() < DEADLINE {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}
