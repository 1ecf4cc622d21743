//! The aggregation rules, driven with explicit time and read back from snapshots.

mod builtin;
mod health;
mod jobs;
mod mapping;
mod statsd;

use std::time::Duration;

use prometheus::Registry;

use super::snapshot::{HistogramSnapshot, Value};
use super::*;
use crate::batch::Transport;

const T0: f64 = 1_700_000_000.0;

struct Harness {
    aggregator: Aggregator,
    registry: Registry,
    now: Now,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Settings::default())
    }

    fn with(settings: Settings) -> Harness {
        let registry = Registry::new();
        let telemetry = Arc::new(Telemetry::new(&registry).unwrap());
        let now = Now::at_unix_seconds(T0);
        Harness {
            aggregator: Aggregator::starting_at(settings, telemetry, now),
            registry,
            now,
        }
    }

    fn send(&mut self, lines: &str) {
        let batch = Batch::new(Transport::Udp, lines.as_bytes().to_vec());
        self.aggregator.ingest(&batch, self.now);
        // As the aggregating thread does when it publishes.
        self.aggregator.report();
    }

    /// Lines on the stream connection `connection`.
    fn send_on(&mut self, connection: u64, lines: &str) {
        let batch = Batch::on(connection, Transport::UnixStream, lines.as_bytes().to_vec());
        self.aggregator.ingest(&batch, self.now);
        self.aggregator.report();
    }

    /// The peer closes `connection`.
    fn close(&mut self, connection: u64) {
        self.aggregator
            .ingest(&Batch::closed(connection, Transport::UnixStream), self.now);
    }

    fn advance(&mut self, seconds: f64) {
        self.now = self.now.advance(Duration::from_secs_f64(seconds));
    }

    /// The published state with its verdicts evaluated now, as one list of families.
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.aggregator.snapshot(self.now);
        snapshot.families = snapshot.families_at(self.now);
        snapshot
    }

    #[track_caller]
    fn value(&self, family: &str, labels: &[(&str, &str)]) -> Option<Value> {
        let snapshot = self.snapshot();
        let family = snapshot.family(family)?;
        family
            .series
            .iter()
            .find(|series| {
                labels.len() == family.label_names.len()
                    && labels.iter().all(|(name, value)| {
                        family
                            .label_names
                            .iter()
                            .position(|n| &**n == *name)
                            .is_some_and(|i| &*series.labels[i] == *value)
                    })
            })
            .map(|series| series.value.clone())
    }

    #[track_caller]
    fn number(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        match self.value(family, labels) {
            Some(Value::Number(value)) => value,
            other => panic!("{family}{labels:?}: expected a number, got {other:?}"),
        }
    }

    #[track_caller]
    fn histogram(&self, family: &str, labels: &[(&str, &str)]) -> HistogramSnapshot {
        match self.value(family, labels) {
            Some(Value::Histogram(histogram)) => histogram,
            other => panic!("{family}{labels:?}: expected a histogram, got {other:?}"),
        }
    }

    fn telemetry(&self, name: &str, label: Option<&str>) -> f64 {
        let family = self
            .registry
            .gather()
            .into_iter()
            .find(|family| family.name() == name)
            .unwrap();
        let metric = family
            .get_metric()
            .iter()
            .find(|metric| {
                label
                    .is_none_or(|label| metric.get_label().iter().any(|pair| pair.value() == label))
            })
            .unwrap();
        metric.get_counter().get_value()
    }

    fn account(&self, family: &str) -> FamilyAccountView {
        let snapshot = self.snapshot();
        let account = snapshot
            .accounts
            .iter()
            .find(|account| &*account.family == family);
        account.map_or(FamilyAccountView::default(), |a| FamilyAccountView {
            series: a.series,
            dropped: a.dropped,
            conflicts: a.conflicts,
        })
    }
}

#[derive(Debug, Default, PartialEq)]
struct FamilyAccountView {
    series: u64,
    dropped: u64,
    conflicts: u64,
}

fn bucket(histogram: &HistogramSnapshot, bound: f64) -> f64 {
    histogram
        .cumulative()
        .find(|(b, _)| *b == bound)
        .map(|(_, count)| count)
        .unwrap()
}

#[test]
fn lines_are_counted_by_transport_and_rejections_by_reason() {
    let mut h = Harness::new();
    h.send("job.ok a 1\nbogus line\nx:NaN|c\nx:-1|c\nx:1:-1|c\n\n\nhits:1|c\n");
    assert_eq!(
        h.telemetry("heartwire_lines_received_total", Some("udp")),
        6.0
    );
    assert_eq!(
        h.telemetry("heartwire_lines_rejected_total", Some("unknown_verb")),
        1.0
    );
    assert_eq!(
        h.telemetry("heartwire_lines_rejected_total", Some("invalid_value")),
        1.0
    );
    assert_eq!(
        h.telemetry("heartwire_lines_rejected_total", Some("negative_counter")),
        2.0
    );
    assert_eq!(h.number("hits_total", &[]), 1.0);
    // A rejected counter line creates no series, not even with its positive values.
    assert!(h.snapshot().family("x_total").is_none());
}
