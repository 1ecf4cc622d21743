//! Worker liveness, fed by `hb` and `worker.stop` (and the close of a session), and the
//! workers as published with their state evaluated at read time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use heartwire_proto::{Heartbeat, WorkerStop};

use super::builtin::{Meta, labels};
use super::families::{self, FamilyNames};
use super::limits::{Accounting, Slot};
use super::registry::Registry;
use super::snapshot::{Family, LabelValues, Series, Value, WorkerStatus};
use crate::clock::Now;
use crate::health::runs::SessionId;
use crate::health::worker::{WorkerHealth, WorkerMemory, WorkerState};

#[derive(Debug)]
struct Worker {
    labels: LabelValues,
    health: WorkerHealth,
    /// The configured ttl, or the default for workers nobody configured.
    ttl: Duration,
    /// The session the last heartbeat came on.
    session: Option<SessionId>,
    /// Named in the config (else it appeared by heartbeating).
    configured: bool,
}

slotmap::new_key_type! {
    /// A worker's handle: valid for as long as the worker is kept, whatever else goes.
    struct WorkerKey;
}

/// Worker liveness: heartbeats, clean stops and sessions (see [`crate::health::worker`]).
#[derive(Debug)]
pub(crate) struct Workers {
    last_heartbeat: Meta,
    verdicts: Arc<WorkerMetas>,
    workers: Registry<WorkerKey, Worker>,
    default_ttl: Duration,
    slot: Slot,
}

impl Workers {
    pub(crate) fn new(
        names: &FamilyNames,
        default_ttl: Duration,
        accounting: &mut Accounting,
    ) -> Workers {
        let meta = |family| Meta::of(names, family);
        Workers {
            last_heartbeat: meta(families::Family::WorkerLastHeartbeat),
            verdicts: Arc::new(WorkerMetas {
                status: meta(families::Family::WorkerStatus),
                stopped: meta(families::Family::WorkerStopped),
            }),
            workers: Registry::new(),
            default_ttl,
            slot: accounting.slot(names.name(families::Family::WorkerStatus)),
        }
    }

    /// Watches the configured workers: present (and down until they beat) from the start.
    pub(crate) fn configure(
        &mut self,
        workers: &[(String, Duration)],
        accounting: &mut Accounting,
    ) {
        for (name, ttl) in workers {
            if let Some(worker) = self.worker(name, accounting) {
                worker.ttl = *ttl;
                worker.configured = true;
            }
        }
    }

    /// Replaces the configured workers and the default ttl. A worker no longer configured falls
    /// back to the default ttl, or vanishes if it never sent a heartbeat.
    pub(crate) fn reconfigure(
        &mut self,
        workers: &[(String, Duration)],
        default_ttl: Duration,
        accounting: &mut Accounting,
    ) {
        self.default_ttl = default_ttl;
        for worker in self.workers.values_mut() {
            worker.configured = false;
            worker.ttl = default_ttl;
        }
        self.configure(workers, accounting);
        let removed = self
            .workers
            .retain(|worker| worker.configured || worker.health.last_beat().is_some());
        accounting.released(self.slot, removed);
    }

    pub(crate) fn heartbeat(
        &mut self,
        line: &Heartbeat<'_>,
        session: Option<SessionId>,
        now: Now,
        accounting: &mut Accounting,
    ) {
        if let Some(worker) = self.worker(line.worker, accounting) {
            let ttl = line
                .ttl
                .and_then(|ttl| Duration::try_from_secs_f64(ttl).ok());
            worker.health.beat(now, ttl);
            worker.session = session;
        }
    }

    pub(crate) fn stop(&mut self, line: &WorkerStop<'_>, accounting: &mut Accounting) {
        if let Some(worker) = self.worker(line.worker, accounting) {
            worker.health.stop();
        }
    }

    /// The session `session` closed: every worker that heartbeated on it is down at once.
    pub(crate) fn session_closed(&mut self, session: SessionId) {
        for worker in self.workers.values_mut() {
            if worker.session == Some(session) {
                worker.health.disconnect();
                worker.session = None;
            }
        }
    }

    /// What to keep of every worker across a restart, by name.
    pub(crate) fn remember(&self) -> BTreeMap<String, WorkerMemory> {
        self.workers
            .iter()
            .filter(|(_, worker)| worker.configured || worker.health.last_beat().is_some())
            .map(|(name, worker)| (name.to_string(), worker.health.remember()))
            .collect()
    }

    /// Takes back what a previous run of the agent remembered, at `now`; a worker nobody
    /// configured comes back too, within the series caps. Sessions do not survive a restart:
    /// a worker that heartbeats on one is up until its ttl passes without a heartbeat.
    pub(crate) fn recall(
        &mut self,
        memories: &BTreeMap<String, WorkerMemory>,
        now: Now,
        accounting: &mut Accounting,
    ) {
        for (name, memory) in memories {
            if let Some(worker) = self.worker(name, accounting) {
                worker.health = WorkerHealth::recall(memory, now);
            }
        }
    }

    fn worker(&mut self, name: &str, accounting: &mut Accounting) -> Option<&mut Worker> {
        let key = match self.workers.find(name) {
            Some(key) => key,
            None => {
                if !accounting.admit(self.slot, self.workers.len()) {
                    accounting.dropped(self.slot);
                    return None;
                }
                let labels = labels([name]);
                let worker = Worker {
                    labels: labels.clone(),
                    health: WorkerHealth::new(),
                    ttl: self.default_ttl,
                    session: None,
                    configured: false,
                };
                self.workers.insert(labels[0].clone(), worker)
            }
        };
        self.workers.get_mut(key)
    }

    /// What the read-time verdicts of the workers need, copied for a published state.
    pub(crate) fn watched(&self) -> WatchedWorkers {
        WatchedWorkers {
            metas: Some(self.verdicts.clone()),
            workers: self
                .workers
                .iter()
                .map(|(name, worker)| WatchedWorker {
                    name: name.clone(),
                    labels: worker.labels.clone(),
                    health: worker.health.clone(),
                    ttl: worker.ttl,
                })
                .collect(),
        }
    }

    /// The families that do not depend on the time they are read at.
    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let series = self
            .workers
            .values()
            .filter_map(|worker| {
                Some(Series {
                    labels: worker.labels.clone(),
                    value: Value::Number(worker.health.last_beat()?),
                })
            })
            .collect();
        out.extend(self.last_heartbeat.family(series));
    }
}

/// The families of worker verdicts, computed at read time.
#[derive(Debug)]
pub(crate) struct WorkerMetas {
    status: Meta,
    stopped: Meta,
}

/// A worker as published: what its read-time state needs.
#[derive(Debug, Clone)]
struct WatchedWorker {
    name: Arc<str>,
    labels: LabelValues,
    health: WorkerHealth,
    ttl: Duration,
}

/// The workers of a published state.
#[derive(Debug, Clone, Default)]
pub struct WatchedWorkers {
    metas: Option<Arc<WorkerMetas>>,
    workers: Vec<WatchedWorker>,
}

impl WatchedWorkers {
    /// Every worker's state at `now`, for `/status`.
    pub(crate) fn statuses(&self, now: Now) -> Vec<WorkerStatus> {
        self.workers
            .iter()
            .map(|worker| WorkerStatus {
                worker: worker.name.clone(),
                state: worker.health.state(worker.ttl, now),
                last_heartbeat: worker.health.last_beat(),
                ttl_seconds: worker.ttl.as_secs_f64(),
            })
            .collect()
    }

    /// The read-time families of the workers at `now`.
    pub(crate) fn families(&self, now: Now, out: &mut Vec<Family>) {
        let Some(metas) = self.metas.as_deref() else {
            return;
        };
        let states: Vec<(&WatchedWorker, WorkerState)> = self
            .workers
            .iter()
            .map(|worker| (worker, worker.health.state(worker.ttl, now)))
            .collect();
        let series = |value: &dyn Fn(WorkerState) -> bool| -> Vec<Series> {
            states
                .iter()
                .map(|(worker, state)| Series {
                    labels: worker.labels.clone(),
                    value: Value::Number(f64::from(u8::from(value(*state)))),
                })
                .collect()
        };
        out.extend(
            metas
                .status
                .family(series(&|state| state == WorkerState::Up)),
        );
        out.extend(
            metas
                .stopped
                .family(series(&|state| state == WorkerState::Stopped)),
        );
    }
}
