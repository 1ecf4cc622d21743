//! The API's five background workers, as tokio tasks. Each heartbeats from inside its own loop,
//! beside its real work: a worker whose loop panics or hangs stops beating, and heartwire sets
//! it to 0 once its ttl passes. On a clean stop it says `worker.stop` and is 0 at once.

use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{MissedTickBehavior, interval};

use crate::session::Session;

/// One background worker: its name (the `name` label of `worker_status`) and its work.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The worker's name.
    pub name: &'static str,
    /// How often it does its work.
    pub work_every: Duration,
    /// What its work is, for the log.
    pub work: &'static str,
}

/// The five workers of the API, with the names its dashboards and alerts use.
pub const WORKERS: [Spec; 5] = [
    Spec {
        name: "email_queue",
        work_every: Duration::from_secs(5),
        work: "sends queued emails",
    },
    Spec {
        name: "blockchain_sync",
        work_every: Duration::from_secs(15),
        work: "syncs contract events",
    },
    Spec {
        name: "blockchain_tx_monitor",
        work_every: Duration::from_secs(10),
        work: "checks pending transactions",
    },
    Spec {
        name: "rate_limiter_cleanup",
        work_every: Duration::from_secs(5 * 60),
        work: "drops expired rate-limit buckets",
    },
    Spec {
        name: "newsletter_cleanup",
        work_every: Duration::from_secs(60 * 60),
        work: "purges unconfirmed newsletter sign-ups",
    },
];

/// What the control loop can do to one worker, to show what heartwire sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The worker's loop panics: the task dies, the rest of the process goes on.
    Panic,
    /// The worker's loop blocks forever: the task is alive but does nothing.
    Hang,
}

/// Runs one worker until `shutdown` turns true (or its sender is dropped).
pub async fn run(
    spec: Spec,
    session: Session,
    heartbeat_every: Duration,
    mut faults: mpsc::Receiver<Fault>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut heartbeat = interval(heartbeat_every);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut work = interval(spec.work_every);
    work.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = heartbeat.tick() => {
                if let Err(error) = session.heartbeat(spec.name) {
                    tracing::warn!(worker = spec.name, %error, "heartbeat not sent");
                }
            }
            _ = work.tick() => tracing::debug!(worker = spec.name, "{}", spec.work),
            Some(fault) = faults.recv() => match fault {
                Fault::Panic => panic!("{}: a simulated bug in the worker's loop", spec.name),
                Fault::Hang => {
                    tracing::warn!(worker = spec.name, "hanging: no more work, no more heartbeats");
                    std::future::pending::<()>().await;
                }
            },
        }
    }
    match session.stop(spec.name).await {
        Ok(()) => tracing::info!(worker = spec.name, "stopped"),
        Err(error) => tracing::warn!(worker = spec.name, %error, "stopped, but could not say so"),
    }
}
