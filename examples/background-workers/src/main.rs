//! An API process's five background workers, reporting to heartwire instead of setting a
//! `worker_status` gauge of their own.
//!
//! Each worker is a tokio task that sends `hb <name>` every `--interval` over one Unix stream
//! session (`hello app=api` first) and `worker.stop <name>` when it stops cleanly. heartwire's
//! `worker_status{name}` is 1 while the heartbeats come, and 0 after a clean stop, after the ttl
//! when a worker's loop dies or hangs, and at once for every worker when the process dies.
//!
//! Commands on standard input show those cases: `panic NAME` and `hang NAME` break one worker,
//! `abort` kills the whole process, `stop` (or SIGTERM, SIGINT) stops every worker cleanly.

mod session;
mod workers;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing_subscriber::EnvFilter;

use crate::session::{Session, SessionError};
use crate::workers::{Fault, WORKERS};

/// How long stopping workers and the session may take before the process exits anyway (a hung
/// worker never stops).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Five tokio background workers heartbeating to heartwire.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// heartwire's Unix stream socket (`listen.unix_stream.path` in its config).
    #[arg(long, default_value = "/run/heartwire/stream.sock")]
    socket: PathBuf,
    /// The app name the session announces (`hello app=<app>`).
    #[arg(long, default_value = "api")]
    app: String,
    /// Time between two heartbeats of a worker; keep it well below the workers' ttl in
    /// heartwire's config (90 s there: three missed 30 s beats).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

/// A line of standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Break(Fault, String),
    Abort,
    Stop,
}

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("cannot install the SIGTERM handler: {0}")]
    Signal(std::io::Error),
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error);
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), AppError> {
    let (session, writer) = Session::start(args.socket.clone(), &args.app)?;
    let (shutdown, stopping) = watch::channel(false);
    let mut faults = HashMap::new();
    let mut tasks = Vec::new();
    for spec in WORKERS {
        let (fault, faulted) = mpsc::channel(1);
        faults.insert(spec.name, fault);
        let worker = workers::run(
            spec,
            session.clone(),
            args.interval,
            faulted,
            stopping.clone(),
        );
        tasks.push((spec.name, tokio::spawn(worker)));
    }
    tracing::info!(
        socket = %args.socket.display(),
        "{} workers heartbeat every {}; type `panic NAME`, `hang NAME`, `abort` or `stop`",
        WORKERS.len(),
        humantime::format_duration(args.interval),
    );
    control(&faults).await?;
    let _ = shutdown.send(true);
    for (name, task) in tasks {
        settle(name, task).await;
    }
    if session.dropped() > 0 {
        tracing::warn!(
            dropped = session.dropped(),
            "heartbeats dropped while heartwire was unreachable"
        );
    }
    drop(session);
    if tokio::time::timeout(STOP_TIMEOUT, writer).await.is_err() {
        tracing::warn!("the session did not close within {STOP_TIMEOUT:?}");
    }
    Ok(())
}

/// Serves commands until `stop`, SIGTERM or SIGINT.
async fn control(faults: &HashMap<&str, mpsc::Sender<Fault>>) -> Result<(), AppError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(AppError::Signal)?;
    let mut commands = commands();
    loop {
        tokio::select! {
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            Some(command) = commands.recv() => match command {
                Command::Stop => return Ok(()),
                Command::Abort => {
                    tracing::warn!("aborting: the session closes with the process");
                    std::process::abort();
                }
                Command::Break(fault, name) => match faults.get(name.as_str()) {
                    Some(worker) => {
                        let _ = worker.try_send(fault);
                    }
                    None => tracing::warn!("no worker named {name:?}"),
                },
            },
        }
    }
}

/// Reads commands on a plain thread: a blocking read of stdin cannot be cancelled, and on a
/// thread of its own it never holds up the runtime's shutdown.
fn commands() -> mpsc::Receiver<Command> {
    let (send, commands) = mpsc::channel(8);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            match parse(&line) {
                Ok(command) => {
                    if send.blocking_send(command).is_err() {
                        return;
                    }
                }
                Err(message) => tracing::warn!("{message}"),
            }
        }
    });
    commands
}

fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["panic", name] => Ok(Command::Break(Fault::Panic, (*name).to_owned())),
        ["hang", name] => Ok(Command::Break(Fault::Hang, (*name).to_owned())),
        ["abort"] => Ok(Command::Abort),
        ["stop"] => Ok(Command::Stop),
        _ => Err(format!(
            "unknown command {line:?}: use `panic NAME`, `hang NAME`, `abort` or `stop`"
        )),
    }
}

/// Waits for a worker to stop, and says how it ended.
async fn settle(name: &str, task: JoinHandle<()>) {
    match tokio::time::timeout(STOP_TIMEOUT, task).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) if error.is_panic() => tracing::warn!(worker = name, "had panicked"),
        Ok(Err(error)) => tracing::warn!(worker = name, %error, "did not finish"),
        Err(_) => tracing::warn!(worker = name, "is hung; leaving it behind"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_commands_and_refuses_the_rest() {
        assert_eq!(
            parse("panic email_queue"),
            Ok(Command::Break(Fault::Panic, "email_queue".to_owned()))
        );
        assert_eq!(
            parse("  hang blockchain_sync "),
            Ok(Command::Break(Fault::Hang, "blockchain_sync".to_owned()))
        );
        assert_eq!(parse("stop"), Ok(Command::Stop));
        assert_eq!(parse("abort"), Ok(Command::Abort));
        assert!(parse("panic").is_err());
        assert!(parse("kill email_queue").is_err());
    }
}
