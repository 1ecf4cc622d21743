//! The aggregation rules, driven with explicit time and read back from snapshots.

mod builtin;
mod health;
mod history;
mod jobs;
mod learned;
mod mapping;
mod memory;
mod parsed;
mod statsd;

use std::time::Duration;

use super::snapshot::{HistogramSnapshot, Value};
use super::*;
use crate::ingest::batch::Transport;

const T0: f64 = 1_700_000_000.0;

struct Harness {
    aggregator: Aggregator,
    now: Now,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Settings::default())
    }

    fn with(settings: Settings) -> Harness {
        let now = Now::at_unix_seconds(T0);
        Harness {
            aggregator: Aggregator::starting_at(settings, now),
            now,
        }
    }

    fn send(&mut self, lines: &str) {
        let batch = Batch::new(Transport::Udp, lines.as_bytes().to_vec());
        self.aggregator.ingest(&batch, self.now);
        self.publish();
    }

    /// Lines on the stream connection `connection`.
    fn send_on(&mut self, connection: u64, lines: &str) {
        let batch = Batch::on(connection, Transport::UnixStream, lines.as_bytes().to_vec());
        self.aggregator.ingest(&batch, self.now);
        self.publish();
    }

    /// The peer closes `connection`.
    fn close(&mut self, connection: u64) {
        self.aggregator
            .ingest(&Batch::closed(connection, Transport::UnixStream), self.now);
        self.publish();
    }

    /// Publishes as the aggregating task does after a batch (reusing the parts of the last
    /// snapshot that did not change), and checks that it shows what a fresh snapshot shows:
    /// every test of the aggregation rules is a test of the reuse too.
    #[track_caller]
    fn publish(&mut self) {
        let text = |snapshot: &Snapshot| {
            let mut writer = crate::expose::text::TextWriter::default();
            let mut out = Vec::new();
            for family in &snapshot.families {
                writer.family(family, &mut out);
            }
            String::from_utf8(out).unwrap()
        };
        let published = self.aggregator.next_snapshot(self.now);
        assert_eq!(text(&published), text(&self.aggregator.snapshot(self.now)));
    }

    fn advance(&mut self, seconds: f64) {
        self.now = self.now.advance(Duration::from_secs_f64(seconds));
    }

    /// The published state with its verdicts evaluated now, as one list of families.
    fn snapshot(&self) -> Snapshot {
        let mut snapshot = self.aggregator.snapshot(self.now);
        snapshot.families = snapshot.families_at(self.now).into();
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
            Some(Value::Histogram(histogram)) => *histogram,
            other => panic!("{family}{labels:?}: expected a histogram, got {other:?}"),
        }
    }

    /// A count of the published [`Tally`], by the name of its family (and its label value).
    fn telemetry(&self, name: &str, label: Option<&str>) -> f64 {
        let lines = self.snapshot().lines;
        let index = |values: &[&str]| {
            let label = label.expect("a label value");
            values.iter().position(|value| *value == label).unwrap()
        };
        let count = match name {
            "heartwire_lines_received_total" => {
                lines.received[index(&Transport::ALL.map(|t| t.as_str()))]
            }
            "heartwire_lines_rejected_total" => {
                lines.rejected[index(&ErrorKind::ALL.map(|k| k.as_str()))]
            }
            "heartwire_lines_unknown_fields_total" => lines.unknown_fields,
            "heartwire_sample_rates_clamped_total" => lines.rates_clamped,
            "heartwire_samples_non_finite_total" => lines.non_finite,
            "heartwire_open_starts_evicted_total" => lines.starts_evicted,
            "heartwire_set_members_dropped_total" => lines.set_members_dropped,
            "heartwire_lines_dropped_by_mapping_total" => lines.mapping_dropped,
            other => panic!("{other} is not counted by the aggregator"),
        };
        count as f64
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
