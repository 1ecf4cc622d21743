use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use super::*;

fn command(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[test]
fn run_ids_are_valid_tokens_that_differ_by_pid_and_time() {
    let at = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
    let id = run_id(4242, at);
    assert_eq!(id, "1092-17979cfe3d85cd15");
    assert!(heartwire_proto::is_name(&id));
    assert_ne!(run_id(4243, at), id);
    assert_ne!(run_id(4242, at + Duration::from_nanos(1)), id);
}

#[test]
fn a_zero_exit_is_an_ok_line_with_exit_0() {
    let line = Ending::Exited(0).line("backup", "r1", 2.5).unwrap();
    assert_eq!(line, "job.ok backup 2.5 id=r1 exit=0");
    assert_eq!(Ending::Exited(0).exit_code(), 0);
}

#[test]
fn a_non_zero_exit_is_an_error_line_and_passes_through() {
    let line = Ending::Exited(3).line("backup", "r1", 0.25).unwrap();
    assert_eq!(line, "job.error backup 0.25 id=r1 exit=3");
    assert_eq!(Ending::Exited(3).exit_code(), 3);
}

#[test]
fn a_death_by_signal_names_the_signal_and_exits_128_plus_its_number() {
    let killed = Ending::from_status(ExitStatus::from_raw(libc::SIGKILL));
    assert_eq!(killed, Ending::Killed(9));
    assert_eq!(
        killed.line("backup", "r1", 1.0).unwrap(),
        "job.error backup 1 id=r1 signal=KILL"
    );
    assert_eq!(killed.exit_code(), 137);
    assert_eq!(Ending::Killed(libc::SIGTERM).exit_code(), 143);
    assert_eq!(signal_name(libc::SIGTERM), "TERM");
}

#[test]
fn a_signal_without_a_name_is_sent_as_its_number() {
    let realtime = libc::SIGRTMIN() + 1;
    assert_eq!(signal_name(realtime), realtime.to_string());
    let line = Ending::Killed(realtime).line("j", "r", 0.0).unwrap();
    assert!(
        heartwire_proto::parse_line(line.as_bytes()).is_ok(),
        "{line}"
    );
}

#[test]
fn exit_statuses_map_to_endings() {
    assert_eq!(
        Ending::from_status(ExitStatus::from_raw(3 << 8)),
        Ending::Exited(3)
    );
    assert_eq!(
        Ending::from_status(ExitStatus::from_raw(libc::SIGTERM)),
        Ending::Killed(libc::SIGTERM)
    );
}

#[test]
fn a_missing_command_fails_with_127_and_a_spawn_failed_line() {
    let ending = run_command(&command(&["/nonexistent/heartwire-cmd"]), SigSet::empty());
    assert_eq!(ending.exit_code(), 127);
    assert_eq!(
        ending.line("j", "r", 0.5).unwrap(),
        "job.error j 0.5 reason=spawn_failed id=r exit=127"
    );
    let Ending::Failed { message, .. } = ending else {
        panic!("expected a failure, got {ending:?}");
    };
    assert_eq!(message, "`/nonexistent/heartwire-cmd`: command not found");
}

#[test]
fn a_file_that_is_not_executable_fails_with_126() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ending = run_command(&[script.into_os_string()], SigSet::empty());
    assert_eq!(ending.exit_code(), 126);
}

#[test]
fn a_command_runs_and_its_exit_code_comes_back() {
    let ending = run_command(&command(&["sh", "-c", "exit 3"]), SigSet::empty());
    assert_eq!(ending, Ending::Exited(3));
}

/// A run of job `job` (id `r1`) that exits 0, reported to `destination`, where `listener`
/// accepts it: the lines the agent would read, and what the reporter printed.
fn session(listener: &UnixListener, destination: &Destination) -> (Vec<String>, Vec<u8>) {
    let mut log = Vec::new();
    let reporter = Reporter::open(destination, "app", "job", "r1", &mut log);
    let (stream, _) = listener.accept().unwrap();
    reporter.finish(&Ending::Exited(0).line("job", "r1", 1.5));
    let lines = BufReader::new(stream)
        .lines()
        .collect::<io::Result<_>>()
        .unwrap();
    (lines, log)
}

#[test]
fn a_unix_stream_session_says_hello_starts_ends_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let target = Destination::Given(Target::Unix(path));
    let (lines, log) = session(&listener, &target);
    assert_eq!(
        lines,
        [
            format!("hello app=app pid={}", std::process::id()),
            "job.start job id=r1".to_owned(),
            "job.ok job 1.5 id=r1 exit=0".to_owned(),
        ],
        "read until the wrapper closed the session"
    );
    assert!(log.is_empty(), "{}", String::from_utf8_lossy(&log));
}

#[test]
fn a_session_the_agent_closed_mid_run_gives_way_to_a_new_connection_for_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let target = Destination::Given(Target::Unix(path));
    let mut log = Vec::new();
    let reporter = Reporter::open(&target, "app", "job", "r1", &mut log);
    // The agent restarts: the session's connection is gone.
    drop(listener.accept().unwrap());
    reporter.finish(&Ending::Exited(2).line("job", "r1", 1.0));
    let (stream, _) = listener.accept().unwrap();
    let lines: Vec<String> = BufReader::new(stream)
        .lines()
        .collect::<io::Result<_>>()
        .unwrap();
    assert_eq!(lines, ["job.error job 1 id=r1 exit=2"]);
    assert!(log.is_empty(), "{}", String::from_utf8_lossy(&log));
}

#[test]
fn an_unreachable_agent_costs_exactly_one_warning() {
    let target = Destination::Given("unix:///nonexistent/heartwire.sock".parse().unwrap());
    let mut log = Vec::new();
    let reporter = Reporter::open(&target, "app", "job", "r1", &mut log);
    reporter.finish(&Ending::Exited(0).line("job", "r1", 1.0));
    let log = String::from_utf8(log).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.starts_with(
            "heartwire run: cannot report job `job` to unix:///nonexistent/heartwire.sock: "
        ),
        "{log}"
    );
    assert!(log.ends_with("; running the command anyway\n"), "{log}");
}

fn default_destination(dir: &std::path::Path, tcp: &str) -> Destination {
    Destination::Default {
        sockets: vec![dir.join("stream.sock"), dir.join("shared.sock")],
        tcp: Target::Tcp(tcp.to_owned()),
    }
}

#[test]
fn by_default_the_session_goes_to_the_default_socket_without_a_word() {
    let dir = tempfile::tempdir().unwrap();
    let listener = UnixListener::bind(dir.path().join("stream.sock")).unwrap();
    let destination = default_destination(dir.path(), "127.0.0.1:1");
    let (lines, log) = session(&listener, &destination);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("hello app=app"), "{lines:?}");
    assert!(log.is_empty(), "{}", String::from_utf8_lossy(&log));
}

#[test]
fn without_the_default_socket_the_run_goes_over_tcp_and_says_once_what_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let destination = default_destination(dir.path(), &address);
    let mut log = Vec::new();
    let reporter = Reporter::open(&destination, "app", "job", "r1", &mut log);
    reporter.finish(&Ending::Exited(0).line("job", "r1", 1.5));
    let mut received = Vec::new();
    for _ in 0..2 {
        let (stream, _) = listener.accept().unwrap();
        received.extend(BufReader::new(stream).lines().map(Result::unwrap));
    }
    assert_eq!(
        received,
        ["job.start job id=r1", "job.ok job 1.5 id=r1 exit=0"]
    );
    let log = String::from_utf8(log).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    let socket = dir.path().join("stream.sock");
    assert!(
        log.starts_with(&format!(
            "heartwire run: no agent socket at {} (",
            socket.display()
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!("reported to tcp://{address} instead")),
        "{log}"
    );
    assert!(
        log.contains("crash detection needs the agent's Unix stream socket"),
        "{log}"
    );
}

#[test]
fn when_no_agent_listens_anywhere_one_warning_names_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap().to_string();
    drop(closed);
    let destination = default_destination(dir.path(), &address);
    let mut log = Vec::new();
    let reporter = Reporter::open(&destination, "app", "job", "r1", &mut log);
    reporter.finish(&Ending::Exited(0).line("job", "r1", 1.0));
    let log = String::from_utf8(log).unwrap();
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains(&format!(") or to tcp://{address}: ")), "{log}");
    assert!(log.ends_with("; running the command anyway\n"), "{log}");
}

#[test]
fn names_breaking_the_protocol_rule_are_refused() {
    assert_eq!(
        parse_name("nightly-export"),
        Ok("nightly-export".to_owned())
    );
    assert!(
        parse_name("two words")
            .unwrap_err()
            .contains("not a valid name")
    );
    assert!(parse_name("").is_err());
}
