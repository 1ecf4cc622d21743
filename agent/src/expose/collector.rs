//! The one custom `prometheus` [`Collector`]: a snapshot turned into metric families, as the
//! oracle of the text writer and of the OTLP conversion in the tests (`/metrics` and the
//! textfile are written by [`super::text`], OTLP by `export::convert`, straight from the
//! snapshot). [`bookkeeping`] lists the aggregator's own families for all of them.
//!
//! Series are built as plain `MetricFamily` values from the snapshot's label names and values,
//! never through `*Vec::with_label_values`, which panics when a label set does not match.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};

use heartwire_proto::ErrorKind;

use crate::aggregate::Tally;
use crate::aggregate::snapshot::{
    Family, FamilyAccount, HistogramSnapshot, Kind, Series, Snapshot, Value,
};
use crate::ingest::batch::Transport;
use crate::telemetry::{Listening, names};

/// Collects one snapshot. It is not registered: a registry collects without arguments, while
/// each scrape brings its own snapshot, so the exposition collects it beside the registry. It
/// therefore describes no fixed descriptors (the "unchecked collector" of the Prometheus
/// clients); the aggregator guarantees the names are unique instead.
#[derive(Debug)]
pub struct SnapshotCollector<'a> {
    snapshot: &'a Snapshot,
    listening: Listening,
}

impl<'a> SnapshotCollector<'a> {
    /// A collector for `snapshot`, showing lines read on the transports in `listening`.
    pub fn new(snapshot: &'a Snapshot, listening: Listening) -> SnapshotCollector<'a> {
        SnapshotCollector {
            snapshot,
            listening,
        }
    }
}

impl Collector for SnapshotCollector<'_> {
    fn desc(&self) -> Vec<&Desc> {
        Vec::new()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut families: Vec<MetricFamily> = self.snapshot.families.iter().map(family).collect();
        families.extend(
            bookkeeping(self.snapshot, self.listening)
                .iter()
                .map(Bookkeeping::family),
        );
        families
    }
}

/// `list` as Prometheus families.
pub fn families(list: &[Family]) -> Vec<MetricFamily> {
    list.iter().map(family).collect()
}

fn family(source: &Family) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(source.name.to_string());
    family.set_help(source.help.to_string());
    family.set_field_type(match source.kind {
        Kind::Counter => MetricType::COUNTER,
        Kind::Gauge => MetricType::GAUGE,
        Kind::Histogram => MetricType::HISTOGRAM,
    });
    family.set_metric(
        source
            .series
            .iter()
            .map(|series| metric(source, series))
            .collect(),
    );
    family
}

fn metric(family: &Family, series: &Series) -> proto::Metric {
    let constant = family
        .const_labels
        .iter()
        .map(|(name, value)| label(name, value));
    let variable = family
        .label_names
        .iter()
        .zip(series.labels.iter())
        .map(|(name, value)| label(name, value));
    let mut metric = proto::Metric::from_label(constant.chain(variable).collect());
    match (&series.value, family.kind) {
        (Value::Number(value), Kind::Counter) => {
            let mut counter = proto::Counter::default();
            counter.set_value(*value);
            metric.set_counter(counter);
        }
        (Value::Number(value), _) => metric.set_gauge(gauge(*value)),
        (Value::Histogram(histogram), _) => metric.set_histogram(self::histogram(histogram)),
    }
    metric
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn gauge(value: f64) -> proto::Gauge {
    let mut gauge = proto::Gauge::default();
    gauge.set_value(value);
    gauge
}

/// The text format holds integer counts: the float weights are rounded here, once, so the
/// error stays under one half whatever the number of samples. Rounding keeps the cumulative
/// counts non-decreasing.
fn histogram(source: &HistogramSnapshot) -> proto::Histogram {
    let mut histogram = proto::Histogram::default();
    histogram.set_sample_count(source.count.round() as u64);
    histogram.set_sample_sum(source.sum);
    histogram.set_bucket(
        source
            .cumulative()
            .map(|(bound, count)| {
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(bound);
                bucket.set_cumulative_count(count.round() as u64);
                bucket
            })
            .collect(),
    );
    histogram
}

/// One of the aggregator's bookkeeping families (lines read and rejected, series held): a
/// counter or gauge whose series carry at most one label.
#[derive(Debug)]
pub struct Bookkeeping<'a> {
    /// The family name.
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// The series: their one label, if any, and value.
    pub series: Vec<(Option<(&'static str, &'a str)>, f64)>,
}

impl Bookkeeping<'_> {
    fn family(&self) -> MetricFamily {
        let mut family = MetricFamily::default();
        family.set_name(self.name.to_owned());
        family.set_help(self.help.to_owned());
        family.set_field_type(match self.kind {
            Kind::Counter => MetricType::COUNTER,
            _ => MetricType::GAUGE,
        });
        family.set_metric(
            self.series
                .iter()
                .map(|(pair, value)| {
                    let labels = pair
                        .iter()
                        .map(|(name, value)| label(name, value))
                        .collect();
                    let mut metric = proto::Metric::from_label(labels);
                    if self.kind == Kind::Counter {
                        let mut counter = proto::Counter::default();
                        counter.set_value(*value);
                        metric.set_counter(counter);
                    } else {
                        metric.set_gauge(gauge(*value));
                    }
                    metric
                })
                .collect(),
        );
        family
    }
}

/// The snapshot's bookkeeping families, in the order `/metrics` lists them: lines, then series
/// accounts.
pub fn bookkeeping(snapshot: &Snapshot, listening: Listening) -> Vec<Bookkeeping<'_>> {
    let mut all = lines(&snapshot.lines, listening);
    all.extend(accounts(&snapshot.accounts));
    all
}

fn accounts(accounts: &[FamilyAccount]) -> [Bookkeeping<'_>; 4] {
    let build = |name, help, kind, value: fn(&FamilyAccount) -> u64| Bookkeeping {
        name,
        help,
        kind,
        series: accounts
            .iter()
            .map(|account| (Some(("family", &*account.family)), value(account) as f64))
            .collect(),
    };
    [
        build(
            names::SERIES,
            "Series held, by family (families past the label budget under \"other\").",
            Kind::Gauge,
            |a| a.series,
        ),
        build(
            names::SERIES_DROPPED,
            "Samples dropped because their new series was past the global or per-family series cap, by family.",
            Kind::Counter,
            |a| a.dropped,
        ),
        build(
            names::SERIES_CONFLICTS,
            "Samples rejected because their type, label names or exposed names conflict with an existing family, by family.",
            Kind::Counter,
            |a| a.conflicts,
        ),
        build(
            names::SERIES_EXPIRED,
            "Series removed after their ttl passed without samples, by family.",
            Kind::Counter,
            |a| a.expired,
        ),
    ]
}

/// The aggregator's counts of lines and samples. Every reason, and every transport whose
/// listener started, is listed at 0 before anything happens, so that alerts on them have a
/// series from the start; a transport that is off has no series (nor any line read).
fn lines(tally: &Tally, listening: Listening) -> Vec<Bookkeeping<'static>> {
    let labelled = |name, help, label, values: Vec<(&'static str, u64)>| Bookkeeping {
        name,
        help,
        kind: Kind::Counter,
        series: values
            .into_iter()
            .map(|(value, count)| (Some((label, value)), count as f64))
            .collect(),
    };
    let single = |name, help, count: u64| Bookkeeping {
        name,
        help,
        kind: Kind::Counter,
        series: vec![(None, count as f64)],
    };
    vec![
        labelled(
            names::LINES_RECEIVED,
            "Lines read (accepted or rejected), by transport.",
            "transport",
            Transport::ALL
                .iter()
                .map(|transport| (transport.as_str(), tally.received[transport.index()]))
                .enumerate()
                .filter(|(index, (_, count))| {
                    *count > 0 || listening.contains(Transport::ALL[*index])
                })
                .map(|(_, series)| series)
                .collect(),
        ),
        labelled(
            names::LINES_REJECTED,
            "Lines rejected, by reason.",
            "reason",
            ErrorKind::ALL
                .iter()
                .map(|kind| (kind.as_str(), tally.rejected[kind.index()]))
                .collect(),
        ),
        single(
            names::LINES_UNKNOWN_FIELDS,
            "Accepted lines that carried fields this version does not know (a newer client).",
            tally.unknown_fields,
        ),
        single(
            names::SAMPLE_RATES_CLAMPED,
            "Metric lines whose sample rate was above 1 or below the smallest honoured rate, and was clamped.",
            tally.rates_clamped,
        ),
        single(
            names::SAMPLES_NON_FINITE,
            "Samples ignored because applying them would leave a value that is not a finite number.",
            tally.non_finite,
        ),
        single(
            names::OPEN_STARTS_EVICTED,
            "Open job starts dropped at the per-job or global bound before a matching end arrived.",
            tally.starts_evicted,
        ),
        single(
            names::SET_MEMBERS_DROPPED,
            "Set members not counted because their series already held the most distinct members allowed.",
            tally.set_members_dropped,
        ),
        single(
            names::LINES_DROPPED_BY_MAPPING,
            "StatsD lines discarded by a mapping rule with `action: drop`.",
            tally.mapping_dropped,
        ),
    ]
}
