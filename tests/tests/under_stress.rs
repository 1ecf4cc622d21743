//! Issue 11, end to end: what the agent must still get right under pressure. A UDP flood that
//! overflows a small queue while apps run `hello` sessions; a million-line TCP burst; a job
//! period too long to compute with, at `heartwire check` and at a hot reload; SIGHUP arriving
//! while the agent shuts down; connections that go quiet.
//!
//! Each test drives the real binary over real sockets and reads `/metrics` (or the OTLP receiver)
//! by polling with a deadline. The two throughput rows of the issue (loss with and without
//! `/metrics` readers) are measured by the load benchmark's `readers` case, not asserted here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use heartwire_tests::agent::{Agent, DEADLINE, Scrape, all_listeners, closed_by_peer, heartwire};
use heartwire_tests::otlp_receiver::{Behaviour, Protocol, Receiver, sum_point, value};
use nix::errno::Errno;
use nix::sys::signal::Signal;

/// The queue between the listeners and the aggregator, small enough that a UDP flood fills it
/// for certain, even in a debug build on one core.
const SMALL_QUEUE: &str = "pipeline:\n  queue_batches: 4\n";

/// Held by the tests that load the machine (the flood, the burst), so that they do not run at
/// once and stretch each other's deadlines on a small machine.
fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    // A test that failed while holding it poisons nothing the next one needs.
    HEAVY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `heartwire_job_runs_total{job, result}`, 0 when absent.
fn runs(scrape: &Scrape, job: &str, result: &str) -> f64 {
    scrape.total(
        "heartwire_job_runs_total",
        &[("job", job), ("result", result)],
    )
}

/// What the agent had to drop of UDP: batches it could not queue plus what the kernel dropped.
fn udp_overflow(scrape: &Scrape) -> f64 {
    scrape.total("heartwire_datagrams_dropped_total", &[("transport", "udp")])
        + scrape.total("heartwire_kernel_drops_total", &[])
}

// ---------------------------------------------------------------------------------------------
// 300 `hello` sessions during a UDP flood
// ---------------------------------------------------------------------------------------------

/// Sessions run, and threads running them concurrently.
const SESSIONS: usize = 300;
const SESSION_THREADS: usize = 10;

/// Sends 1400-byte datagrams of counter lines to `target` as fast as the socket takes them
/// until `stop`; returns how many were sent.
fn flood_udp(target: SocketAddr, stop: &AtomicBool) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
    socket.connect(target).expect("the flood's socket connects");
    let line = b"flood.lines:1|c|#shard:7,env:stress\n";
    let datagram: Vec<u8> = line.repeat(1400 / line.len());
    let mut sent = 0;
    while !stop.load(Ordering::Relaxed) {
        match socket.send(&datagram) {
            Ok(_) => sent += 1,
            // Loopback reports a full receive queue as ECONNREFUSED or ENOBUFS at times.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::WouldBlock
                ) || error.raw_os_error() == Some(nix::libc::ENOBUFS) => {}
            Err(error) => panic!("the UDP flood failed: {error}"),
        }
    }
    sent
}

/// Sets its flag when dropped, on the way out of a panic too.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One app session on the Unix stream socket: `hello`, a run started and ended ok, close. Each
/// line is its own write, as an app sends them as they happen. Returns once the agent has
/// closed its end too, so that a thread's sessions follow one another at the agent as well.
fn run_session(socket: &Path, n: usize) {
    let mut stream = UnixStream::connect(socket)
        .unwrap_or_else(|error| panic!("session {n}: the Unix stream socket connects: {error}"));
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("a write timeout");
    for line in [
        format!("hello app=stress-{n} pid={}\n", 1000 + n),
        format!("job.start stress id=run-{n}\n"),
        format!("job.ok stress id=run-{n}\n"),
    ] {
        stream
            .write_all(line.as_bytes())
            .unwrap_or_else(|error| panic!("session {n}: writing {line:?}: {error}"));
    }
    stream
        .shutdown(Shutdown::Write)
        .unwrap_or_else(|error| panic!("session {n}: closing: {error}"));
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    assert!(
        closed_by_peer(&mut stream),
        "session {n}: the agent kept the connection open {DEADLINE:?} after it closed"
    );
}

/// A burst of short sessions far past `max_connections`, each closing as soon as it wrote: the
/// connections past the cap wait in the backlog with what they wrote, none is closed unread, and
/// every run counts as ok.
#[test]
fn a_burst_of_sessions_past_max_connections_loses_no_run() {
    let _alone = heavy();
    let agent = Agent::start_config(|dir| {
        format!(
            "{}{SMALL_QUEUE}jobs:\n  burst:\n    every: 1h\n",
            all_listeners(dir).replace(
                "unix_stream: { enabled: true,",
                "unix_stream: { enabled: true, max_connections: 4,"
            )
        )
    });
    let socket = agent.unix_stream();
    thread::scope(|scope| {
        for first in 0..30 {
            let socket = socket.clone();
            scope.spawn(move || {
                for n in (first..SESSIONS).step_by(30) {
                    let mut stream = UnixStream::connect(&socket).unwrap();
                    stream.set_write_timeout(Some(DEADLINE)).unwrap();
                    let lines = format!(
                        "hello app=burst-{n}\njob.start burst id=b-{n}\njob.ok burst id=b-{n}\n"
                    );
                    stream.write_all(lines.as_bytes()).unwrap();
                    // Closed at once: the agent may not even have accepted it yet.
                }
            });
        }
    });
    let scrape = agent.wait_until("every burst session's run counted", |scrape| {
        runs(scrape, "burst", "ok") + runs(scrape, "burst", "error") >= SESSIONS as f64
    });
    assert_eq!(runs(&scrape, "burst", "ok"), SESSIONS as f64);
    assert_eq!(runs(&scrape, "burst", "error"), 0.0);
    assert_eq!(
        scrape.total("heartwire_job_crashes_total", &[("job", "burst")]),
        0.0
    );
    assert_eq!(
        scrape.total(
            "heartwire_connections_opened_total",
            &[("transport", "unix")]
        ),
        SESSIONS as f64
    );
}

#[test]
fn every_run_of_300_sessions_counts_ok_while_a_udp_flood_overflows_the_queue() {
    let _alone = heavy();
    let agent = Agent::start_with(&format!("{SMALL_QUEUE}jobs:\n  stress:\n    every: 1h\n"));
    let stop = AtomicBool::new(false);
    let (flooded, scrape) = thread::scope(|scope| {
        let flood = scope.spawn(|| flood_udp(agent.udp(), &stop));
        // Whatever fails below, the flood stops, or the scope would wait for it forever.
        let stop_flood = StopOnDrop(&stop);
        // The pressure is certain before the first session starts: the queue has overflowed.
        agent.wait_until("the UDP flood overflowing the queue", |scrape| {
            udp_overflow(scrape) > 0.0
        });
        let socket = agent.unix_stream();
        let sessions: Vec<_> = (0..SESSION_THREADS)
            .map(|first| {
                let socket = socket.clone();
                scope.spawn(move || {
                    for n in (first..SESSIONS).step_by(SESSION_THREADS) {
                        run_session(&socket, n);
                    }
                })
            })
            .collect();
        for session in sessions {
            session.join().expect("a session thread");
        }
        // The flood outlives every session, so each one ran under it.
        drop(stop_flood);
        let flooded = flood.join().expect("the flood thread");
        (flooded, agent.scrape())
    });
    assert!(
        udp_overflow(&scrape) > 0.0,
        "the flood never overflowed the queue: the test proves nothing"
    );
    // Every session closed; once each close and each run is applied, ok reaches 300.
    let settled = agent.scrape_until(DEADLINE, |scrape| {
        runs(scrape, "stress", "ok") + runs(scrape, "stress", "error") >= SESSIONS as f64
            && scrape.total(
                "heartwire_connections_closed_total",
                &[("transport", "unix")],
            ) >= SESSIONS as f64
    });
    let (Ok(scrape) | Err(scrape)) = settled;
    let report = format!(
        "of {SESSIONS} sessions: ok {}, error {}, crashed {}, still running {}; unix stream \
         connections opened {}, closed {}, open {}; \
         UDP: {flooded} datagrams sent, {} dropped at the queue, {} by the kernel",
        runs(&scrape, "stress", "ok"),
        runs(&scrape, "stress", "error"),
        scrape.total("heartwire_job_crashes_total", &[("job", "stress")]),
        scrape.total("heartwire_job_running", &[("job", "stress")]),
        scrape.total(
            "heartwire_connections_opened_total",
            &[("transport", "unix")]
        ),
        scrape.total(
            "heartwire_connections_closed_total",
            &[("transport", "unix")]
        ),
        scrape.total("heartwire_connections", &[("transport", "unix")]),
        scrape.total("heartwire_datagrams_dropped_total", &[("transport", "udp")]),
        scrape.total("heartwire_kernel_drops_total", &[]),
    );
    assert_eq!(
        runs(&scrape, "stress", "ok"),
        SESSIONS as f64,
        "every ok run counts: {report}"
    );
    assert_eq!(
        scrape.total("heartwire_job_crashes_total", &[("job", "stress")]),
        0.0,
        "no run ends as crashed: {report}"
    );
    assert_eq!(runs(&scrape, "stress", "error"), 0.0, "{report}");
    assert_eq!(
        scrape.total("heartwire_job_running", &[("job", "stress")]),
        0.0,
        "no run is left open: {report}"
    );
    // A stream transport waits for room instead of dropping: it has no drop counter at all,
    // and every run above counted.
    assert_eq!(
        scrape.value(
            "heartwire_datagrams_dropped_total",
            &[("transport", "unix")]
        ),
        None,
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// A million-line TCP burst
// ---------------------------------------------------------------------------------------------

const BURST_LINES: u64 = 1_000_000;
const BURST_CONNECTIONS: u64 = 4;
const BURST_LINE: &[u8] = b"burst.total:1|c\n";
/// A million lines through a debug build on a shared core: generous.
const BURST_DEADLINE: Duration = Duration::from_secs(180);

/// Writes `lines` lines over one TCP connection in 64 KiB writes, then closes it.
fn burst(target: SocketAddr, lines: u64) {
    let mut stream = TcpStream::connect(target).expect("TCP connects");
    stream
        .set_write_timeout(Some(BURST_DEADLINE))
        .expect("a write timeout");
    let per_write = 4096;
    let chunk = BURST_LINE.repeat(per_write);
    let mut left = lines;
    while left > 0 {
        let now = left.min(per_write as u64);
        stream
            .write_all(&chunk[..now as usize * BURST_LINE.len()])
            .unwrap_or_else(|error| {
                panic!(
                    "writing the burst ({} of {lines} lines written): {error}",
                    lines - left
                )
            });
        left -= now;
    }
}

#[test]
fn a_million_line_tcp_burst_is_counted_exactly_through_a_small_queue() {
    let _alone = heavy();
    let agent = Agent::start_with(SMALL_QUEUE);
    let target = agent.tcp();
    // Every writer has written all its lines when the scope ends (a failed write panics).
    thread::scope(|scope| {
        for _ in 0..BURST_CONNECTIONS {
            scope.spawn(|| burst(target, BURST_LINES / BURST_CONNECTIONS));
        }
    });
    let counted = agent.scrape_until(BURST_DEADLINE, |scrape| {
        scrape.value("burst_total", &[]) == Some(BURST_LINES as f64)
    });
    let (Ok(scrape) | Err(scrape)) = counted;
    let report = format!(
        "burst_total {:?} of {BURST_LINES}; TCP lines received {}, bytes received {}",
        scrape.value("burst_total", &[]),
        scrape.total("heartwire_lines_received_total", &[("transport", "tcp")]),
        scrape.total("heartwire_bytes_received_total", &[("transport", "tcp")]),
    );
    assert_eq!(
        scrape.total("heartwire_bytes_received_total", &[("transport", "tcp")]),
        (BURST_LINES as usize * BURST_LINE.len()) as f64,
        "every byte written was read: {report}"
    );
    // TCP waits for room rather than drop a read: it has no drop counter to show one.
    for family in [
        "heartwire_datagrams_dropped_total",
        "heartwire_bytes_dropped_total",
    ] {
        assert_eq!(
            scrape.value(family, &[("transport", "tcp")]),
            None,
            "{report}"
        );
    }
    assert_eq!(
        scrape.value("burst_total", &[]),
        Some(BURST_LINES as f64),
        "{report}"
    );
    assert_eq!(
        scrape.value("heartwire_lines_received_total", &[("transport", "tcp")]),
        Some(BURST_LINES as f64),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// `every: 300000y`
// ---------------------------------------------------------------------------------------------

/// A job whose period no clock can add: 300 000 years. The line of `every` in [`FOREVER`].
const FOREVER: &str = "# a period longer than any clock can count\njobs:\n  nightly: { every: 1d }\n  forever:\n    every: 300000y\n";
const FOREVER_EVERY_LINE: usize = 5;

#[test]
fn check_refuses_an_every_of_300000_years_and_names_its_file_and_line() {
    assert_eq!(
        FOREVER.lines().nth(FOREVER_EVERY_LINE - 1).map(str::trim),
        Some("every: 300000y")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forever.yaml");
    std::fs::write(&file, FOREVER).unwrap();
    let output = heartwire()
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .expect("heartwire check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(64),
        "`heartwire check` must refuse the file (EX_USAGE)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let place = format!("{}:{FOREVER_EVERY_LINE}:", file.display());
    assert!(
        stderr.contains(&place) && stderr.contains("every"),
        "stderr names the file and the line of `every` ({place}):\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "an error, not a panic:\n{stderr}"
    );
}

/// Writes `text` to `path` through a rename, so the watcher never reads half of it.
fn replace_file(path: &Path, text: &str) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

fn reloads(scrape: &Scrape, result: &str) -> f64 {
    scrape.total("heartwire_config_reloads_total", &[("result", result)])
}

/// `GET /metrics`, parsed; panics with the agent's log unless it answers 200.
#[track_caller]
fn scrape_or_explain(agent: &Agent, after: &str) -> Scrape {
    let response = agent
        .http()
        .get(agent.metrics_url())
        .send()
        .unwrap_or_else(|error| panic!("{after}: GET /metrics failed: {error}\n{}", agent.log()));
    let status = response.status().as_u16();
    let text = response.text().unwrap_or_default();
    assert_eq!(
        status,
        200,
        "{after}: GET /metrics answered {status}: {text}\nthe agent's log:\n{}",
        agent.log()
    );
    Scrape::parse(text)
}

/// Polls until the agent has made `attempts` reload attempts (applied or refused), checking
/// that every scrape on the way answers 200.
#[track_caller]
fn wait_reload_attempts(agent: &Agent, attempts: f64, after: &str) -> Scrape {
    let started = Instant::now();
    loop {
        let scrape = scrape_or_explain(agent, after);
        if reloads(&scrape, "failure") + reloads(&scrape, "success") >= attempts {
            return scrape;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{after}: no reload attempt {attempts} was counted:\n{}\n{}",
            scrape.lines_about("heartwire_config_reloads_total"),
            agent.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// `/metrics` and `/readyz` answer 200, and a line sent now is counted: the `probe`-th.
#[track_caller]
fn still_serving(agent: &Agent, probe: f64, after: &str) {
    scrape_or_explain(agent, after);
    let ready = agent
        .http()
        .get(agent.http_url("/readyz"))
        .send()
        .unwrap_or_else(|error| panic!("{after}: GET /readyz failed: {error}\n{}", agent.log()));
    assert_eq!(
        ready.status().as_u16(),
        200,
        "{after}: /readyz\n{}",
        agent.log()
    );
    agent.send_udp(b"reload.probe:1|c\n");
    let scrape = agent.wait_for("reload_probe_total", &[], probe);
    // The running config stays: the job's deadline is an hour away, not 300 000 years.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let deadline = scrape
        .value(
            "heartwire_job_stale_deadline_timestamp_seconds",
            &[("job", "forever")],
        )
        .unwrap_or_else(|| panic!("{after}: the running job is gone:\n{}", scrape.text));
    assert!(
        deadline < now.as_secs_f64() + 86_400.0,
        "{after}: the running job's deadline is {deadline}"
    );
}

#[test]
fn a_reload_to_an_every_of_300000_years_is_refused_and_the_agent_keeps_serving() {
    let listeners = std::cell::RefCell::new(String::new());
    let agent = Agent::start_config(|dir| {
        *listeners.borrow_mut() = all_listeners(dir);
        format!("{}jobs:\n  forever: {{ every: 1h }}\n", all_listeners(dir))
    });
    let listeners = listeners.into_inner();
    let config = agent.dir().join("agent.yaml");
    still_serving(&agent, 1.0, "before any reload");
    let bad = format!("{listeners}{FOREVER}");
    let every_line = listeners.lines().count() + FOREVER_EVERY_LINE;

    // 1. The file changes: the watcher reads it and must refuse it.
    replace_file(&config, &bad);
    let scrape = wait_reload_attempts(&agent, 1.0, "after the file changed");
    assert_eq!(
        (reloads(&scrape, "success"), reloads(&scrape, "failure")),
        (0.0, 1.0),
        "the watcher must refuse the file\n{}",
        agent.log()
    );
    still_serving(&agent, 2.0, "after the file changed");
    let place = format!("agent.yaml:{every_line}:");
    assert!(
        agent.log().contains(&place),
        "the refusal names the file and the line of `every` ({place}):\n{}",
        agent.log()
    );

    // 2. SIGHUP forces a reload of the same file.
    agent.signal(Signal::SIGHUP).expect("SIGHUP is delivered");
    let scrape = wait_reload_attempts(&agent, 2.0, "after SIGHUP");
    assert_eq!(
        (reloads(&scrape, "success"), reloads(&scrape, "failure")),
        (0.0, 2.0),
        "SIGHUP must refuse the file\n{}",
        agent.log()
    );
    still_serving(&agent, 3.0, "after SIGHUP");

    // 3. POST /-/reload answers with the refusal.
    let reload_url = agent.ingest_url().replace("/ingest", "/-/reload");
    let response = agent
        .http()
        .post(&reload_url)
        .send()
        .expect("POST /-/reload answers");
    let status = response.status().as_u16();
    let body = response.text().unwrap_or_default();
    assert_eq!(status, 400, "POST /-/reload must refuse the file: {body}");
    assert!(
        body.contains("every") && body.contains(&place),
        "the answer names `every` and its line ({place}): {body}"
    );
    let scrape = scrape_or_explain(&agent, "after POST /-/reload");
    assert_eq!(
        (reloads(&scrape, "success"), reloads(&scrape, "failure")),
        (0.0, 3.0)
    );
    assert_eq!(
        scrape.value("heartwire_config_last_reload_successful", &[]),
        Some(0.0)
    );
    still_serving(&agent, 4.0, "after POST /-/reload");

    let (status, log) = agent.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
}

// ---------------------------------------------------------------------------------------------
// SIGHUP during shutdown
// ---------------------------------------------------------------------------------------------

/// How long the collector takes to answer the final push: the shutdown's window for SIGHUP.
const SLOW_COLLECTOR: Duration = Duration::from_secs(2);
const UDP_DATAGRAMS: u64 = 100;
const LINES_PER_DATAGRAM: u64 = 50;
const TCP_LINES: u64 = 5_000;

/// SIGHUP, tolerating an agent that already exited (the test then fails on what it shows).
fn hangup(agent: &Agent) {
    match agent.signal(Signal::SIGHUP) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(error) => panic!("SIGHUP: {error}"),
    }
}

#[test]
fn sighup_during_shutdown_is_ignored_and_the_final_push_holds_every_line() {
    let receiver = Receiver::start(Protocol::Http);
    receiver.set_behaviour(Behaviour::Delay(SLOW_COLLECTOR));
    // An interval no test waits for: only the final push can arrive.
    let section = format!(
        "otlp:\n  endpoint: \"{}\"\n  protocol: http/protobuf\n  interval: 1h\n  timeout: 10s\nshutdown:\n  drain_timeout: 30s\n",
        receiver.endpoint()
    );
    let mut agent = Agent::start_with(&section);
    let datagram = b"shutdown.lines:1|c\n".repeat(LINES_PER_DATAGRAM as usize);
    for _ in 0..UDP_DATAGRAMS {
        agent.send_udp(&datagram);
    }
    agent.send_tcp(&b"shutdown.lines:1|c\n".repeat(TCP_LINES as usize));
    let lines = (UDP_DATAGRAMS * LINES_PER_DATAGRAM + TCP_LINES) as f64;
    agent.wait_for("shutdown_lines_total", &[], lines);
    assert_eq!(receiver.requests(), 0, "no push before SIGTERM");

    agent.signal(Signal::SIGTERM).expect("SIGTERM is delivered");
    agent.wait_for_log("shutting down");
    // One SIGHUP while the listeners stop, more while the final push is in flight.
    hangup(&agent);
    let started = Instant::now();
    while receiver.requests() == 0 && agent.exited().is_none() {
        assert!(
            started.elapsed() < DEADLINE,
            "neither a push nor an exit; log:\n{}",
            agent.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        hangup(&agent);
        thread::sleep(Duration::from_millis(50));
    }
    let (status, log) = agent.wait_exit();
    assert!(status.success(), "exit status {status}; log:\n{log}");
    let exports = receiver.exports();
    assert_eq!(
        exports.len(),
        1,
        "the final push arrives despite SIGHUP ({} requests); log:\n{log}",
        receiver.requests()
    );
    let pushed = sum_point(&exports[0].request, "shutdown_lines_total", &[]).map(value);
    assert_eq!(pushed, Some(lines), "every line is in the final push");
    assert!(
        !log.contains("second signal"),
        "SIGHUP is no stop signal:\n{log}"
    );
    let after_stop = log.split_once("shutting down").map_or("", |(_, rest)| rest);
    assert!(
        after_stop.contains("SIGHUP"),
        "the ignored SIGHUP is logged:\n{log}"
    );
    assert!(log.contains("queue drained"), "the drain ran:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// Idle connections
// ---------------------------------------------------------------------------------------------

const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// [`all_listeners`] with `idle_timeout: 1s` on TCP and the Unix stream socket.
fn idle_listeners(dir: &Path) -> String {
    let listeners = all_listeners(dir);
    let tcp = "tcp: { address: \"127.0.0.1:0\" }";
    let unix = "unix_stream: { enabled: true,";
    assert!(listeners.contains(tcp) && listeners.contains(unix));
    listeners
        .replace(tcp, "tcp: { address: \"127.0.0.1:0\", idle_timeout: 1s }")
        .replace(unix, "unix_stream: { enabled: true, idle_timeout: 1s,")
}

#[test]
fn quiet_connections_are_closed_after_the_idle_timeout_and_hello_sessions_are_exempt() {
    let agent = Agent::start_config(|dir| {
        format!(
            "{}jobs:\n  idle-job: {{ every: 1h }}\n",
            idle_listeners(dir)
        )
    });
    // The session first: it has been quiet the longest when the others are closed.
    let mut session = UnixStream::connect(agent.unix_stream()).unwrap();
    session
        .write_all(b"hello app=idler\njob.start idle-job id=kept\n")
        .unwrap();
    let quiet_since = Instant::now();
    agent.wait_for("heartwire_job_running", &[("job", "idle-job")], 1.0);

    let mut plain_tcp = TcpStream::connect(agent.tcp()).unwrap();
    plain_tcp.write_all(b"idle.tcp:1|c\n").unwrap();
    let mut plain_unix = UnixStream::connect(agent.unix_stream()).unwrap();
    plain_unix.write_all(b"idle.unix:1|c\n").unwrap();
    agent.wait_for_all(&[("idle_tcp_total", &[], 1.0), ("idle_unix_total", &[], 1.0)]);

    plain_tcp
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        closed_by_peer(&mut plain_tcp),
        "the quiet TCP connection was still open {DEADLINE:?} after its last line, with idle_timeout {IDLE_TIMEOUT:?}"
    );
    plain_unix
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        closed_by_peer(&mut plain_unix),
        "the quiet Unix stream connection was still open {DEADLINE:?} after its last line, with idle_timeout {IDLE_TIMEOUT:?}"
    );

    // The session has now been quiet for three timeouts at least, and is still open.
    let quiet = quiet_since.elapsed();
    if quiet < 3 * IDLE_TIMEOUT {
        thread::sleep(3 * IDLE_TIMEOUT - quiet);
    }
    session
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buffer = [0u8; 16];
    match session.read(&mut buffer) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!(
            "the hello session was closed after {:?} quiet: read gave {other:?}\n{}",
            quiet_since.elapsed(),
            agent.log()
        ),
    }
    let scrape = agent.wait_for_all(&[
        ("heartwire_connections", &[("transport", "tcp")], 0.0),
        ("heartwire_connections", &[("transport", "unix")], 1.0),
    ]);
    assert_eq!(
        scrape.total("heartwire_job_crashes_total", &[("job", "idle-job")]),
        0.0,
        "the session's run did not crash"
    );
    session
        .write_all(b"job.ok idle-job id=kept\n")
        .expect("the session still takes lines");
    let scrape = agent.wait_for_all(&[
        (
            "heartwire_job_runs_total",
            &[("job", "idle-job"), ("result", "ok")],
            1.0,
        ),
        ("heartwire_job_running", &[("job", "idle-job")], 0.0),
    ]);
    assert_eq!(
        scrape.total("heartwire_job_crashes_total", &[("job", "idle-job")]),
        0.0
    );
}
