//! The built-in families other than jobs and workers: outbound calls (`http`), DogStatsD service
//! checks (`_sc`) and events (`_e`); and [`Meta`], the fixed parts every built-in family shares.

use std::sync::Arc;

use hashbrown::DefaultHashBuilder;
use heartwire_proto::{AlertType, Event, Http, HttpStatus, ServiceCheck};
use indexmap::{Equivalent, IndexMap};

use super::families::{self, FamilyNames};
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::snapshot::{Family, FamilyMeta, LabelValues, Series, Value};
use crate::clock::Now;

/// The fixed parts of a built-in family, shared by every snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Meta(Arc<FamilyMeta>);

impl Meta {
    /// The family's row of the catalogue, under the names `names` give.
    pub(crate) fn of(names: &FamilyNames, family: families::Family) -> Meta {
        let row = family.row();
        Meta(Arc::new(FamilyMeta {
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
        }))
    }

    /// The family with these series, or nothing if there are none (an empty family is not
    /// valid in the text format).
    pub(crate) fn family(&self, series: Vec<Series>) -> Option<Family> {
        (!series.is_empty()).then(|| Family {
            meta: self.0.clone(),
            series: series.into(),
        })
    }
}

/// Label values from string slices.
pub(crate) fn labels<const N: usize>(values: [&str; N]) -> LabelValues {
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
                    value: Value::Histogram(Box::new(histogram.snapshot(&self.bounds))),
                })
            })
            .collect();
        out.extend(self.duration.family(durations));
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
