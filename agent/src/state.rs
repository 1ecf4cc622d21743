//! The state file: what the agent knows of its jobs and workers, kept across a restart so that a
//! deploy, an OOM kill or a node drain does not hide a dead job for another period.
//!
//! Every `state.interval` the aggregator is asked for its [`Memory`] (between two batches) and
//! the file is replaced atomically: a temporary file in the same directory, synced, renamed over
//! the old one, and the directory synced, so that a crash at any point leaves the old file or
//! the new one, never half of one. After the drain at shutdown the aggregator's final memory is
//! written once more.
//!
//! At start, before any line is applied, the file is read back ([`StateKeeper::load`]): a
//! missing file is a first start; a file that cannot be read, does not parse, or was written by
//! another version is logged, counted in `heartwire_state_load_failures_total{reason}`, moved
//! aside (`<file>.unreadable-<unix time>`) and ignored. The agent never refuses to start over
//! its state, nor stops over a failed write: a sidecar must not take its app down for a cache.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::aggregate::Handle;
use crate::aggregate::memory::{Memory, VERSION};
use crate::clock::Now;
use crate::config::State;
use crate::export::textfile::replace;
use crate::telemetry::names;

/// Why a state file was set aside, for the `reason` label.
const LOAD_FAILURES: [&str; 3] = ["unreadable", "corrupt", "version"];

/// The state file's metrics, on the agent's registry (only when `state.path` is set).
#[derive(Debug, Clone)]
struct Counters {
    written: IntCounter,
    failed: IntCounter,
    last_write: Gauge,
    load_failures: IntCounterVec,
}

impl Counters {
    fn register(registry: &Registry) -> Result<Counters, prometheus::Error> {
        let writes = IntCounterVec::new(
            Opts::new(
                names::STATE_WRITES,
                "State file writes, by result (success, failure).",
            ),
            &["result"],
        )?;
        let last_write = Gauge::new(
            names::STATE_LAST_WRITE,
            "Unix time of the last complete state file write (0: none yet).",
        )?;
        let load_failures = IntCounterVec::new(
            Opts::new(
                names::STATE_LOAD_FAILURES,
                "State files set aside at start, by reason: unreadable, corrupt (not the format), version (written by another version).",
            ),
            &["reason"],
        )?;
        for reason in LOAD_FAILURES {
            load_failures.with_label_values(&[reason]);
        }
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(last_write.clone()))?;
        registry.register(Box::new(load_failures.clone()))?;
        Ok(Counters {
            written: writes.get_metric_with_label_values(&["success"])?,
            failed: writes.get_metric_with_label_values(&["failure"])?,
            last_write,
            load_failures,
        })
    }
}

/// Keeps the state file: loads it at start, writes it every interval and at shutdown.
#[derive(Debug, Clone)]
pub struct StateKeeper {
    path: PathBuf,
    directory: PathBuf,
    interval: Duration,
    counters: Counters,
}

impl StateKeeper {
    /// The keeper of `config`'s file, with its metrics on `registry`; `None` when `state.path`
    /// is not set.
    pub fn new(
        config: &State,
        registry: &Registry,
    ) -> Result<Option<StateKeeper>, prometheus::Error> {
        let Some(path) = &config.path else {
            return Ok(None);
        };
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Some(StateKeeper {
            path: path.clone(),
            directory,
            interval: config.interval,
            counters: Counters::register(registry)?,
        }))
    }

    /// What the previous run of the agent left, if anything usable. A file that cannot be used
    /// is set aside and counted; the agent then starts with no memory.
    pub fn load(&self) -> Option<Memory> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                tracing::info!(path = %self.path.display(), "no state file: a first start");
                return None;
            }
            Err(error) => {
                self.set_aside("unreadable", &error.to_string());
                return None;
            }
        };
        match read(&text) {
            Ok(memory) => {
                tracing::info!(
                    path = %self.path.display(),
                    jobs = memory.jobs.len(),
                    workers = memory.workers.len(),
                    "state recalled"
                );
                Some(memory)
            }
            Err((reason, message)) => {
                self.set_aside(reason, &message);
                None
            }
        }
    }

    fn set_aside(&self, reason: &'static str, message: &str) {
        self.counters
            .load_failures
            .with_label_values(&[reason])
            .inc();
        let aside = PathBuf::from(format!(
            "{}.{reason}-{}",
            self.path.display(),
            Now::read().unix_seconds() as u64
        ));
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => tracing::error!(
                path = %self.path.display(),
                moved_to = %aside.display(),
                %message,
                "the state file cannot be used ({reason}); it is set aside and the agent starts without it"
            ),
            Err(error) => tracing::error!(
                path = %self.path.display(),
                %message,
                %error,
                "the state file cannot be used ({reason}) nor moved aside; the agent starts without it and overwrites it"
            ),
        }
    }

    /// Writes the aggregator's memory every interval until `stop` is set. The final write, after
    /// the drain, is [`StateKeeper::write_final`].
    pub async fn run(self, handle: Handle, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = crate::ingest::stopped(&mut stop) => break,
            }
            let Some(memory) = handle.remember().await else {
                break;
            };
            self.write(&memory, &mut failing).await;
        }
    }

    /// Writes what the aggregator kept when it ended; nothing if it did not end gracefully
    /// (the last periodic write stands).
    pub async fn write_final(&self, handle: &Handle) {
        match handle.final_memory() {
            Some(memory) => self.write(&memory, &mut false).await,
            None => {
                tracing::warn!(path = %self.path.display(), "no final state to write: the last periodic write stands")
            }
        }
    }

    async fn write(&self, memory: &Memory, failing: &mut bool) {
        let body = match serde_json::to_vec(memory) {
            Ok(body) => body,
            Err(error) => {
                self.failed(&io::Error::other(error), failing);
                return;
            }
        };
        let (directory, path) = (self.directory.clone(), self.path.clone());
        match tokio::task::spawn_blocking(move || replace(&directory, &path, &body)).await {
            Ok(Ok(())) => {
                self.counters.written.inc();
                self.counters.last_write.set(Now::read().unix_seconds());
                if std::mem::take(failing) {
                    tracing::info!(path = %self.path.display(), "the state file is written again");
                }
            }
            Ok(Err(error)) => self.failed(&error, failing),
            Err(error) => self.failed(&io::Error::other(error), failing),
        }
    }

    fn failed(&self, error: &io::Error, failing: &mut bool) {
        self.counters.failed.inc();
        if !std::mem::replace(failing, true) {
            tracing::warn!(path = %self.path.display(), %error, "cannot write the state file; a restart would forget what changed since the last write");
        }
    }
}

/// The memory in `text`, or why it cannot be used: `corrupt` or `version`.
fn read(text: &[u8]) -> Result<Memory, (&'static str, String)> {
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: u32,
    }
    let versioned: Versioned = serde_json::from_slice(text)
        .map_err(|error| ("corrupt", format!("not a heartwire state file: {error}")))?;
    if versioned.version != VERSION {
        return Err((
            "version",
            format!(
                "written in version {} of the format; this agent reads version {VERSION}",
                versioned.version
            ),
        ));
    }
    serde_json::from_slice(text).map_err(|error| ("corrupt", error.to_string()))
}

#[cfg(test)]
mod tests;
