//! `heartwire run --job NAME -- CMD…`: runs a command as a monitored job.
//!
//! The wrapper reports `job.start` before the command and `job.ok`/`job.error` after it, with the
//! monotonic duration and the exit code or the signal that ended the command. On a Unix stream
//! target it holds one connection for the whole run, opened with `hello`: if the wrapper itself
//! is killed outright, the kernel closes that connection and the agent sees the run crash, which
//! no process can report about itself. On the other transports start and end are plain lines.
//!
//! Without `--to` the wrapper opens its session on the agent's Unix stream socket at its default
//! location (where the embedded default listens); when nothing listens there it reports plain
//! lines over TCP to `127.0.0.1:8125`, and says once on stderr that crash detection is lost.
//!
//! Reporting is best effort: an unreachable agent costs one warning on stderr, never the job.
//!
//! The forwarded signals are blocked before anything else and taken by one thread with
//! `sigwait`: none is lost between start-up and spawn, no handler is needed (a handler-less PID 1
//! in a container would drop them), and the command gets an empty mask back before `exec`.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

use heartwire_proto::{Hello, JobEnd, JobStart, Line, ParseError};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::clock::Now;
use crate::cmd::cli::RunArgs;
use crate::cmd::send::{self, Destination, Target, Undelivered};

/// Signals passed on to the command, as `cronitor exec` and container init processes do.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// What a shell exits with when the command does not exist.
const NOT_FOUND: u8 = 127;
/// What a shell exits with when the command exists but cannot be executed.
const NOT_EXECUTABLE: u8 = 126;

/// Checks a job or app name against the protocol's `name` rule, for the command line.
pub fn parse_name(text: &str) -> Result<String, String> {
    if heartwire_proto::is_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a valid name: use 1 to {} letters, digits, `_`, `.`, `:`, `/` or `-`",
            heartwire_proto::MAX_NAME_LEN
        ))
    }
}

/// Runs `heartwire run`: the command's exit code, or the shell's code for a failed start.
pub fn main(args: &RunArgs) -> ExitCode {
    let signals: SigSet = FORWARDED.into_iter().collect();
    let mut stderr = io::stderr();
    if let Err(error) = signals.thread_block() {
        let _ = writeln!(
            stderr,
            "heartwire run: cannot block signals ({error}); they will not be forwarded"
        );
    }
    let app = args.app.as_deref().unwrap_or(&args.job);
    let id = run_id(std::process::id(), Now::read().wall);
    let destination = Destination::new(args.to.clone());
    let mut reporter = Reporter::open(&destination, app, &args.job, &id, stderr);
    let started = Now::read();
    let ending = run_command(&args.command, signals);
    let seconds = Now::read().seconds_since(started.mono);
    if let Ending::Failed { message, .. } = &ending {
        let _ = writeln!(reporter.log, "heartwire run: {message}");
    }
    reporter.finish(&ending.line(&args.job, &id, seconds));
    ExitCode::from(ending.exit_code())
}

/// A run id: the wrapper's pid and the wall clock in nanoseconds, both in hex.
///
/// Unique among the runs one agent sees (one pod): two wrappers alive at once have different
/// pids in one pid namespace, and containers with separate namespaces differ in the nanosecond
/// clock. Readable in logs, and no dependency for randomness.
fn run_id(pid: u32, wall: SystemTime) -> String {
    let nanos = wall
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    format!("{pid:x}-{nanos:x}")
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it.
    Killed(i32),
    /// It never ran, or could not be waited for: the `reason=` token, the exit code a shell
    /// would give, and what to tell the user.
    Failed {
        reason: &'static str,
        exit: u8,
        message: String,
    },
}

impl Ending {
    fn from_status(status: ExitStatus) -> Ending {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited(code),
            (None, Some(signal)) => Ending::Killed(signal),
            // `wait` only reports exits and deaths by signal, never stops.
            (None, None) => Ending::Failed {
                reason: "wait_failed",
                exit: 1,
                message: format!("the command ended with an unknown status {status:?}"),
            },
        }
    }

    /// The shell convention: the command's code, 128 + the signal, 127/126 for a failed start.
    fn exit_code(&self) -> u8 {
        match self {
            Ending::Exited(code) => u8::try_from(*code & 0xff).unwrap_or(1),
            Ending::Killed(signal) => u8::try_from(128 + signal).unwrap_or(255),
            Ending::Failed { exit, .. } => *exit,
        }
    }

    /// The `job.ok`/`job.error` line for this ending.
    fn line(&self, job: &str, id: &str, seconds: f64) -> Result<String, ParseError> {
        let signal;
        let mut end = JobEnd {
            job,
            seconds: Some(seconds),
            id: Some(id),
            ..JobEnd::default()
        };
        match self {
            Ending::Exited(0) => {
                end.exit = Some(0);
                return text(&Line::JobOk(end));
            }
            Ending::Exited(code) => end.exit = Some(*code),
            Ending::Killed(number) => {
                signal = signal_name(*number);
                end.signal = Some(&signal);
            }
            Ending::Failed { reason, exit, .. } => {
                end.reason = Some(reason);
                end.exit = Some(i32::from(*exit));
            }
        }
        text(&Line::JobError(end))
    }
}

/// `TERM`, `KILL`…: the name without `SIG`, or the number for signals without a name.
fn signal_name(number: i32) -> String {
    match Signal::try_from(number) {
        Ok(signal) => signal.as_str().trim_start_matches("SIG").to_owned(),
        Err(_) => number.to_string(),
    }
}

/// The line as the protocol writes it, without its terminator.
fn text(line: &Line<'_>) -> Result<String, ParseError> {
    let mut bytes = heartwire_proto::encode_line(line)?;
    bytes.pop();
    // The encoder writes names, numbers and tokens only: always UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Starts the command and waits for it, forwarding `signals` (blocked in this thread) to it.
fn run_command(command: &[OsString], signals: SigSet) -> Ending {
    let Some((program, arguments)) = command.split_first() else {
        return Ending::Failed {
            reason: "spawn_failed",
            exit: NOT_FOUND,
            message: "no command given".to_owned(),
        };
    };
    let mut child = match spawn(program, arguments, signals) {
        Ok(child) => child,
        Err(error) => return spawn_failure(program, &error),
    };
    let exited = Arc::new(Mutex::new(false));
    let pid = i32::try_from(child.id()).map(Pid::from_raw);
    if let Ok(pid) = pid {
        let forwarding = Arc::clone(&exited);
        let started = thread::Builder::new()
            .name("signals".into())
            .spawn(move || forward(signals, pid, &forwarding));
        if let Err(error) = started {
            let _ = writeln!(
                io::stderr(),
                "heartwire run: cannot forward signals ({error}); the command runs without them"
            );
        }
    }
    match wait(&mut child, pid.ok(), &exited) {
        Ok(status) => Ending::from_status(status),
        Err(error) => Ending::Failed {
            reason: "wait_failed",
            exit: 1,
            message: format!("cannot wait for the command: {error}"),
        },
    }
}

fn spawn(program: &OsStr, arguments: &[OsString], signals: SigSet) -> io::Result<Child> {
    let mut command = Command::new(program);
    command.args(arguments);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; the closure makes
    // one, pthread_sigmask, and neither allocates nor locks. Without it the command would
    // inherit the blocked mask (std no longer resets it) and ignore SIGTERM.
    unsafe {
        command.pre_exec(move || signals.thread_unblock().map_err(io::Error::from));
    }
    command.spawn()
}

fn spawn_failure(program: &OsStr, error: &io::Error) -> Ending {
    let program = program.to_string_lossy();
    let (exit, message) = match error.kind() {
        io::ErrorKind::NotFound => (NOT_FOUND, format!("`{program}`: command not found")),
        io::ErrorKind::PermissionDenied => (
            NOT_EXECUTABLE,
            format!("`{program}`: permission denied (is it an executable file?)"),
        ),
        _ => (
            NOT_EXECUTABLE,
            format!("`{program}` cannot be run: {error}"),
        ),
    };
    Ending::Failed {
        reason: "spawn_failed",
        exit,
        message,
    }
}

/// Passes each signal taken from `signals` on to `child` until it has exited.
fn forward(signals: SigSet, child: Pid, exited: &Mutex<bool>) {
    while let Ok(signal) = signals.wait() {
        // Holding the lock keeps the child unreaped, so its pid cannot have been reused.
        let exited = exited.lock().unwrap_or_else(PoisonError::into_inner);
        if *exited {
            return;
        }
        let _ = kill(child, signal);
    }
}

/// Waits for the child to exit, then marks it exited before reaping it (see [`forward`]).
fn wait(child: &mut Child, pid: Option<Pid>, exited: &Mutex<bool>) -> io::Result<ExitStatus> {
    if let Some(pid) = pid {
        // WNOWAIT leaves the child a zombie: its pid stays taken until `child.wait()` below.
        while let Err(Errno::EINTR) =
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
    }
    *exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
    child.wait()
}

/// Sends the run's lines to the agent, warning once on `log` if it cannot.
#[derive(Debug)]
struct Reporter<'a, W: Write> {
    destination: &'a Destination,
    job: &'a str,
    /// Where the start went, so that the end follows it; `None` when it went nowhere.
    used: Option<Target>,
    session: Option<UnixStream>,
    warned: bool,
    log: W,
}

impl<'a, W: Write> Reporter<'a, W> {
    /// Reports the start: on a Unix stream a session (`hello`, then `job.start`) kept open
    /// until [`Reporter::finish`], elsewhere one plain line.
    fn open(
        destination: &'a Destination,
        app: &str,
        job: &'a str,
        id: &str,
        log: W,
    ) -> Reporter<'a, W> {
        let mut reporter = Reporter {
            destination,
            job,
            used: None,
            session: None,
            warned: false,
            log,
        };
        let lines = text(&Line::JobStart(JobStart {
            job,
            id: Some(id),
            ..JobStart::default()
        }))
        .and_then(|start| {
            let hello = text(&Line::Hello(Hello {
                app,
                pid: Some(std::process::id()),
                ..Hello::default()
            }))?;
            Ok((hello, start))
        });
        let (hello, start) = match lines {
            Ok(lines) => lines,
            Err(error) => {
                reporter.warn(&invalid(error), "running the command anyway");
                return reporter;
            }
        };
        let sent = match destination {
            Destination::Given(Target::Unix(path)) => send::connect_unix(path)
                .and_then(|session| reporter.hold(path, session, &hello, &start))
                .map_err(|source| Undelivered {
                    tried: destination_text(path),
                    source,
                }),
            Destination::Given(target) => send::deliver(target, std::slice::from_ref(&start))
                .map(|()| reporter.used = Some(target.clone()))
                .map_err(|source| Undelivered {
                    tried: target.to_string(),
                    source,
                }),
            Destination::Default { sockets, tcp } => {
                reporter.open_default(sockets, tcp, &hello, &start)
            }
        };
        if let Err(failed) = sent {
            reporter.warn_undelivered(&failed, "running the command anyway");
        }
        reporter
    }

    /// The default: a session on the first socket that answers, else the start over TCP, with
    /// one notice that a killed run will not be seen as crashed.
    fn open_default(
        &mut self,
        sockets: &[PathBuf],
        tcp: &Target,
        hello: &str,
        start: &str,
    ) -> Result<(), Undelivered> {
        // Only a failed connect falls back: lines written on a socket must not go twice.
        let refused = match send::connect_first(sockets) {
            Ok((socket, session)) => {
                return self
                    .hold(socket, session, hello, start)
                    .map_err(|source| Undelivered {
                        tried: destination_text(socket),
                        source,
                    });
            }
            Err(refused) => refused,
        };
        match send::deliver(tcp, &[start.to_owned()]) {
            Ok(()) => {
                self.used = Some(tcp.clone());
                let _ = writeln!(
                    self.log,
                    "heartwire run: no agent socket at {}; job `{}` is reported to {tcp} instead, where a killed run is not seen as crashed: crash detection needs the agent's Unix stream socket (`listen.unix_stream`, on by default; `--to unix:///PATH` names another)",
                    send::unanswered(&refused),
                    self.job
                );
                Ok(())
            }
            Err(source) => Err(Undelivered::neither(&refused, tcp, source)),
        }
    }

    /// Opens the session on `session`, connected to `path`, and keeps it for the end.
    fn hold(
        &mut self,
        path: &Path,
        mut session: UnixStream,
        hello: &str,
        start: &str,
    ) -> io::Result<()> {
        session.write_all(format!("{hello}\n{start}\n").as_bytes())?;
        self.used = Some(Target::Unix(path.to_path_buf()));
        self.session = Some(session);
        Ok(())
    }

    /// Reports the end and closes the session. A session that broke meanwhile (the agent
    /// restarted) is replaced by a plain connection, so that the result still arrives; a start
    /// that went nowhere (the agent was down) tries the destination again.
    fn finish(mut self, end: &Result<String, ParseError>) {
        let end = match end {
            Ok(end) => end,
            Err(error) => return self.warn(&invalid(*error), "the end is not reported"),
        };
        if let Some(mut session) = self.session.take()
            && session.write_all(format!("{end}\n").as_bytes()).is_ok()
        {
            // The agent reads the end before the end of stream: a clean close, not a crash.
            let _ = session.shutdown(Shutdown::Write);
            return;
        }
        let lines = std::slice::from_ref(end);
        let sent = match &self.used {
            Some(target) => send::deliver(target, lines).map_err(|source| Undelivered {
                tried: target.to_string(),
                source,
            }),
            None => send::deliver_to(self.destination, lines).map(drop),
        };
        if let Err(failed) = sent {
            self.warn_undelivered(&failed, "the end of the run is not reported");
        }
    }

    fn warn(&mut self, error: &io::Error, consequence: &str) {
        let tried = match self.destination {
            Destination::Given(target) => target.to_string(),
            Destination::Default { sockets, .. } => sockets
                .first()
                .map(|socket| destination_text(socket))
                .unwrap_or_default(),
        };
        self.warn_at(&tried, error, consequence);
    }

    fn warn_undelivered(&mut self, failed: &Undelivered, consequence: &str) {
        self.warn_at(&failed.tried, &failed.source, consequence);
    }

    fn warn_at(&mut self, tried: &str, error: &io::Error, consequence: &str) {
        if !self.warned {
            self.warned = true;
            let _ = writeln!(
                self.log,
                "heartwire run: cannot report job `{}` to {tried}: {error}; {consequence}",
                self.job
            );
        }
    }
}

/// A Unix stream socket as `--to` writes it.
fn destination_text(path: &Path) -> String {
    Target::Unix(path.to_path_buf()).to_string()
}

fn invalid(error: ParseError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, error.to_string())
}

#[cfg(test)]
mod tests;
