//! The built-in families other than jobs: outbound calls (`http`), worker heartbeats (`hb`),
//! DogStatsD service checks (`_sc`) and events (`_e`).

use std::sync::Arc;
use std::time::Duration;

use hashbrown::DefaultHashBuilder;
use heartwire_proto::{AlertType, Event, Heartbeat, Http, HttpStatus, ServiceCheck, WorkerStop};
use indexmap::{Equivalent, IndexMap};

use super::families::{self, FamilyNames};
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::registry::Registry;
use super::snapshot::{ConstLabelPairs, Family, Kind, LabelValues, Series, Value, WorkerStatus};
use crate::clock::Now;
use crate::health::runs::SessionId;
use crate::health::worker::{WorkerHealth, WorkerState};

/// The fixed parts of a built-in family, shared by every snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    name: Arc<str>,
    help: Arc<str>,
    kind: Kind,
    const_labels: ConstLabelPairs,
    label_names: LabelValues,
}

impl Meta {
    /// The family's row of the catalogue, under the names `names` give.
    pub(crate) fn of(names: &FamilyNames, family: families::Family) -> Meta {
        let row = family.row();
        Meta {
            name: names.name(family).into(),
            help: row.help.into(),
            kind: row.kind,
            const_labels: names
                .labels(row.group)
                .iter()
                .map(|(name, value)| (Arc::from(name.as_str()), Arc::from(value.as_str())))
                .collect(),
            label_names: names
                .label_names(family)
                .into_iter()
                .map(Arc::from)
                .collect(),
        }
    }

    /// The family with these series, or nothing if there are none (an empty family is not
    /// valid in the text format).
    pub(crate) fn family(&self, series: Vec<Series>) -> Option<Family> {
        (!series.is_empty()).then(|| Family {
            name: self.name.clone(),
            help: self.help.clone(),
            kind: self.kind,
            const_labels: self.const_labels.clone(),
            label_names: self.label_names.clone(),
            series,
        })
    }
}

fn labels<const N: usize>(values: [&str; N]) -> LabelValues {
    values.iter().map(|value| Arc::from(*value)).collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CallKey {
    service: Arc<str>,
    endpoint: Arc<str>,
}

#[derive(Debug, Hash)]
struct CallKeyRef<'a> {
    service: &'a str,
    endpoint: &'a str,
}

impl Equivalent<CallKey> for CallKeyRef<'_> {
    fn equivalent(&self, key: &CallKey) -> bool {
        self.service == &*key.service && self.endpoint == &*key.endpoint
    }
}

#[derive(Debug)]
struct Call {
    labels: LabelValues,
    statuses: Vec<(HttpStatus, LabelValues, u64)>,
    duration: Option<Histogram>,
}

/// Outbound calls by service, endpoint and status.
#[derive(Debug)]
pub(crate) struct Calls {
    requests: Meta,
    duration: Meta,
    bounds: Bounds,
    calls: IndexMap<CallKey, Call, DefaultHashBuilder>,
    series: usize,
    slot: Slot,
}

impl Calls {
    pub(crate) fn new(names: &FamilyNames, bounds: Bounds, accounting: &mut Accounting) -> Calls {
        Calls {
            requests: Meta::of(names, families::Family::HttpRequests),
            duration: Meta::of(names, families::Family::HttpDuration),
            bounds,
            calls: IndexMap::default(),
            series: 0,
            slot: accounting.slot(names.name(families::Family::HttpRequests)),
        }
    }

    pub(crate) fn record(&mut self, line: &Http<'_>, accounting: &mut Accounting) {
        let key = CallKeyRef {
            service: line.service,
            endpoint: line.endpoint,
        };
        let index = match self.calls.get_index_of(&key) {
            Some(index) => index,
            None => {
                if !accounting.admit(self.slot, self.series) {
                    return accounting.dropped(self.slot);
                }
                self.series += 1;
                let call = Call {
                    labels: labels([line.service, line.endpoint]),
                    statuses: vec![(
                        line.status,
                        labels([line.service, line.endpoint, &line.status.as_str()]),
                        0,
                    )],
                    duration: None,
                };
                let key = CallKey {
                    service: call.labels[0].clone(),
                    endpoint: call.labels[1].clone(),
                };
                self.calls.insert_full(key, call).0
            }
        };
        let Some((_, call)) = self.calls.get_index_mut(index) else {
            return;
        };
        let position = match call
            .statuses
            .iter()
            .position(|(status, _, _)| *status == line.status)
        {
            Some(position) => position,
            None => {
                if !accounting.admit(self.slot, self.series) {
                    return accounting.dropped(self.slot);
                }
                self.series += 1;
                let status = labels([line.service, line.endpoint, &line.status.as_str()]);
                call.statuses.push((line.status, status, 0));
                call.statuses.len() - 1
            }
        };
        if let Some((_, _, count)) = call.statuses.get_mut(position) {
            *count += 1;
        }
        if let Some(seconds) = line.seconds {
            call.duration
                .get_or_insert_with(|| Histogram::new(&self.bounds))
                .observe(&self.bounds, seconds, 1.0);
        }
    }

    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let requests = self
            .calls
            .values()
            .flat_map(|call| call.statuses.iter())
            .map(|(_, labels, count)| Series {
                labels: labels.clone(),
                value: Value::Number(*count as f64),
            })
            .collect();
        out.extend(self.requests.family(requests));
        let durations = self
            .calls
            .values()
            .filter_map(|call| {
                let histogram = call.duration.as_ref()?;
                Some(Series {
                    labels: call.labels.clone(),
                    value: Value::Histogram(histogram.snapshot(&self.bounds)),
                })
            })
            .collect();
        out.extend(self.duration.family(durations));
    }
}

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

/// Last status and report time per service check.
#[derive(Debug)]
pub(crate) struct Checks {
    status: Meta,
    last: Meta,
    checks: IndexMap<Arc<str>, (LabelValues, u8, f64), DefaultHashBuilder>,
    slot: Slot,
}

impl Checks {
    pub(crate) fn new(names: &FamilyNames, accounting: &mut Accounting) -> Checks {
        Checks {
            status: Meta::of(names, families::Family::CheckStatus),
            last: Meta::of(names, families::Family::CheckLast),
            checks: IndexMap::default(),
            slot: accounting.slot(names.name(families::Family::CheckStatus)),
        }
    }

    /// The agent's receive time is the report time; a `d:` timestamp from the client is ignored
    /// like every client timestamp.
    pub(crate) fn report(
        &mut self,
        line: &ServiceCheck<'_>,
        now: Now,
        accounting: &mut Accounting,
    ) {
        let at = now.unix_seconds();
        let status = line.status.code();
        if let Some((_, current, last)) = self.checks.get_mut(line.name) {
            *current = status;
            *last = last.max(at);
            return;
        }
        if !accounting.admit(self.slot, self.checks.len()) {
            return accounting.dropped(self.slot);
        }
        let labels = labels([line.name]);
        self.checks.insert(labels[0].clone(), (labels, status, at));
    }

    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let series = |value: fn(u8, f64) -> f64| -> Vec<Series> {
            self.checks
                .values()
                .map(|(labels, status, at)| Series {
                    labels: labels.clone(),
                    value: Value::Number(value(*status, *at)),
                })
                .collect()
        };
        out.extend(self.status.family(series(|status, _| f64::from(status))));
        out.extend(self.last.family(series(|_, at| at)));
    }
}

/// Events by alert type: four fixed series, no cap needed.
#[derive(Debug)]
pub(crate) struct Events {
    total: Meta,
    counts: [(LabelValues, u64); 4],
}

const ALERT_TYPES: [AlertType; 4] = [
    AlertType::Error,
    AlertType::Warning,
    AlertType::Info,
    AlertType::Success,
];

impl Events {
    pub(crate) fn new(names: &FamilyNames) -> Events {
        Events {
            total: Meta::of(names, families::Family::Events),
            counts: ALERT_TYPES.map(|alert| (labels([alert.as_str()]), 0)),
        }
    }

    pub(crate) fn record(&mut self, line: &Event<'_>) {
        let alert = line.alert_type.unwrap_or(AlertType::Info);
        if let Some(position) = ALERT_TYPES.iter().position(|known| *known == alert) {
            self.counts[position].1 += 1;
        }
    }

    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let series = self
            .counts
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(labels, count)| Series {
                labels: labels.clone(),
                value: Value::Number(*count as f64),
            })
            .collect();
        out.extend(self.total.family(series));
    }
}
