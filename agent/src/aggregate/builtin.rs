//! The built-in families other than jobs: outbound calls (`http`), worker heartbeats (`hb`),
//! DogStatsD service checks (`_sc`) and events (`_e`).

use std::sync::Arc;

use hashbrown::DefaultHashBuilder;
use heartwire_proto::{AlertType, Event, Heartbeat, Http, HttpStatus, ServiceCheck};
use indexmap::{Equivalent, IndexMap};

use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::settings::{CheckFamilies, ConstLabels, EventFamilies, HttpFamilies, WorkerFamilies};
use super::snapshot::{ConstLabelPairs, Family, Kind, LabelValues, Series, Value};
use crate::clock::Now;

/// The fixed parts of a built-in family, shared by every snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    name: Arc<str>,
    help: Arc<str>,
    const_labels: ConstLabelPairs,
    label_names: LabelValues,
}

impl Meta {
    pub(crate) fn new(
        name: &str,
        help: &str,
        label_names: &[&str],
        const_labels: &ConstLabels,
    ) -> Meta {
        Meta {
            name: name.into(),
            help: help.into(),
            const_labels: const_labels
                .iter()
                .map(|(name, value)| (Arc::from(name.as_str()), Arc::from(value.as_str())))
                .collect(),
            label_names: label_names.iter().map(|name| Arc::from(*name)).collect(),
        }
    }

    /// The family with these series, or nothing if there are none (an empty family is not
    /// valid in the text format).
    pub(crate) fn family(&self, kind: Kind, series: Vec<Series>) -> Option<Family> {
        (!series.is_empty()).then(|| Family {
            name: self.name.clone(),
            help: self.help.clone(),
            kind,
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
    pub(crate) fn new(names: &HttpFamilies, bounds: Bounds, accounting: &mut Accounting) -> Calls {
        Calls {
            requests: Meta::new(
                &names.requests,
                "Outbound calls by service, endpoint and status code (network and timeout when no response came).",
                &["service", "endpoint", "status_code"],
                &names.labels,
            ),
            duration: Meta::new(
                &names.duration,
                "Outbound call duration in seconds.",
                &["service", "endpoint"],
                &names.labels,
            ),
            bounds,
            calls: IndexMap::default(),
            series: 0,
            slot: accounting.slot(&names.requests),
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
        out.extend(self.requests.family(Kind::Counter, requests));
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
        out.extend(self.duration.family(Kind::Histogram, durations));
    }
}

/// Last heartbeat per worker.
#[derive(Debug)]
pub(crate) struct Workers {
    last_heartbeat: Meta,
    workers: IndexMap<Arc<str>, (LabelValues, f64), DefaultHashBuilder>,
    slot: Slot,
}

impl Workers {
    pub(crate) fn new(names: &WorkerFamilies, accounting: &mut Accounting) -> Workers {
        Workers {
            last_heartbeat: Meta::new(
                &names.last_heartbeat,
                "Unix time of the last heartbeat of a worker.",
                &["worker"],
                &names.labels,
            ),
            workers: IndexMap::default(),
            slot: accounting.slot(&names.last_heartbeat),
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        line: &Heartbeat<'_>,
        now: Now,
        accounting: &mut Accounting,
    ) {
        let at = now.unix_seconds();
        if let Some((_, last)) = self.workers.get_mut(line.worker) {
            *last = last.max(at);
            return;
        }
        if !accounting.admit(self.slot, self.workers.len()) {
            return accounting.dropped(self.slot);
        }
        let labels = labels([line.worker]);
        self.workers.insert(labels[0].clone(), (labels, at));
    }

    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let series = self
            .workers
            .values()
            .map(|(labels, at)| Series {
                labels: labels.clone(),
                value: Value::Number(*at),
            })
            .collect();
        out.extend(self.last_heartbeat.family(Kind::Gauge, series));
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
    pub(crate) fn new(names: &CheckFamilies, accounting: &mut Accounting) -> Checks {
        Checks {
            status: Meta::new(
                &names.status,
                "Last status reported by a service check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
                &["check"],
                &names.labels,
            ),
            last: Meta::new(
                &names.last,
                "Unix time a service check last reported.",
                &["check"],
                &names.labels,
            ),
            checks: IndexMap::default(),
            slot: accounting.slot(&names.status),
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
        out.extend(
            self.status
                .family(Kind::Gauge, series(|status, _| f64::from(status))),
        );
        out.extend(self.last.family(Kind::Gauge, series(|_, at| at)));
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
    pub(crate) fn new(names: &EventFamilies) -> Events {
        Events {
            total: Meta::new(
                &names.total,
                "DogStatsD events by alert type.",
                &["alert_type"],
                &names.labels,
            ),
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
        out.extend(self.total.family(Kind::Counter, series));
    }
}
