//! What `/metrics` shows, as one OTLP `ExportMetricsServiceRequest`.
//!
//! The input is exactly what `/metrics` is written from ([`Parts`]): the snapshot's stored
//! families, its bookkeeping and its verdicts at the time of the read, then the registry's
//! self-metrics; so both outputs always carry the same families, names, values and bucket
//! counts (histogram counts rounded once, as the page rounds them). Names stay as exposed
//! (`_total` included): a collector that writes them back to Prometheus then keeps the names
//! dashboards use. Types map as the OpenTelemetry Prometheus compatibility rules say:
//! counter → monotonic cumulative sum, gauge → gauge, histogram → cumulative explicit-bucket
//! histogram with the same bounds, summary → summary.
//!
//! The snapshot's families are converted straight from its shared strings, as the text writer
//! writes them: no `prometheus` `MetricFamily` in between, which would cost a `String` per label
//! per series before OTLP's own attributes copy them again (1.5 to 2 times the allocations of
//! an export, and up to 1.7 times its time: `benches/render.rs`, `page/otlp_*`). Only the registry's self-metrics, a few dozen series,
//! come as `MetricFamily` values and take that path ([`RequestBuilder::prometheus`]); the tests
//! check that the two paths give the same request for the same page.
//!
//! A cumulative point carries the time its series began counting, the same on every export
//! while the series lives ([`Starts`]): the agent's start for series seen in the first export,
//! otherwise the previous export, the last instant the series was known not to exist. A series
//! that expired and came back, or whose total went down, starts again from the previous export,
//! so a consumer sees a reset instead of a wrong increase. Series are told apart by a hash of
//! their name and labels, computed from the borrowed strings.
//!
//! [`Parts`]: crate::expose::Parts

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, metric, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prometheus::proto::{self, MetricFamily, MetricType};

use super::resource::string_attribute;
use crate::aggregate::snapshot::{Family, Kind, Series, Value};
use crate::expose::Parts;
use crate::expose::collector::Bookkeeping;

/// The start time of every cumulative series, carried from one export to the next. Holds one
/// entry per series of the last export, so it is bounded as the series are.
#[derive(Debug)]
pub struct Starts {
    agent_start: u64,
    previous_export: Option<u64>,
    seen: HashMap<u64, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    start: u64,
    total: f64,
}

impl Starts {
    /// Start times for an agent started at `agent_start` (Unix nanoseconds).
    pub fn new(agent_start: u64) -> Starts {
        Starts {
            agent_start,
            previous_export: None,
            seen: HashMap::new(),
        }
    }
}

/// One request holding everything `parts` shows, under `resource` and heartwire's
/// instrumentation scope, read at `now` (Unix nanoseconds). Updates `starts` for the next
/// export.
pub fn request(
    parts: &Parts<'_>,
    resource: &[KeyValue],
    starts: &mut Starts,
    now: u64,
) -> ExportMetricsServiceRequest {
    let taken = parts.taken();
    let free = |name: &str| !taken.contains(name);
    let mut builder = RequestBuilder::new(starts, now);
    for family in parts.snapshot.families.iter().filter(|f| free(&f.name)) {
        builder.family(family);
    }
    for family in parts.bookkeeping().iter().filter(|f| free(f.name)) {
        builder.bookkeeping(family);
    }
    for family in parts.health.iter().filter(|f| free(&f.name)) {
        builder.family(family);
    }
    for family in &parts.own {
        builder.prometheus(family);
    }
    builder.finish(resource)
}

/// The number of data points in a request, for logs.
pub fn data_points(request: &ExportMetricsServiceRequest) -> usize {
    request
        .resource_metrics
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| &scope.metrics)
        .map(|metric| match &metric.data {
            Some(metric::Data::Sum(sum)) => sum.data_points.len(),
            Some(metric::Data::Gauge(gauge)) => gauge.data_points.len(),
            Some(metric::Data::Histogram(histogram)) => histogram.data_points.len(),
            Some(metric::Data::Summary(summary)) => summary.data_points.len(),
            _ => 0,
        })
        .sum()
}

/// A request being built, one family at a time, with the start times of its series. A family
/// without series is left out.
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    starts: &'a mut Starts,
    next: HashMap<u64, Seen>,
    now: u64,
    metrics: Vec<Metric>,
}

impl<'a> RequestBuilder<'a> {
    /// A request read at `now` (Unix nanoseconds), its start times carried in `starts`.
    pub fn new(starts: &'a mut Starts, now: u64) -> RequestBuilder<'a> {
        RequestBuilder {
            next: HashMap::with_capacity(starts.seen.len()),
            starts,
            now,
            metrics: Vec::new(),
        }
    }

    /// Adds a family of the snapshot, straight from its shared strings.
    pub fn family(&mut self, family: &Family) {
        if family.series.is_empty() {
            return;
        }
        let series = family.series.iter();
        let data = match family.kind {
            Kind::Counter => sum(series.map(|series| self.counter(family, series))),
            Kind::Gauge => gauge(series.map(|series| self.gauge(family, series))),
            Kind::Histogram => histogram(series.map(|series| self.histogram_of(family, series))),
        };
        self.push(&family.name, &family.help, data);
    }

    fn counter(&mut self, family: &Family, series: &Series) -> NumberDataPoint {
        let value = number_of(&series.value);
        let labels = family.labels(series);
        let start = self.start(series_key(&family.name, labels.clone()), value);
        self.number(labels, value, start)
    }

    fn gauge(&self, family: &Family, series: &Series) -> NumberDataPoint {
        self.number(family.labels(series), number_of(&series.value), 0)
    }

    fn histogram_of(&mut self, family: &Family, series: &Series) -> HistogramDataPoint {
        // Never a number: the aggregator gives a histogram family histogram values (a number
        // would read as an empty histogram, as the `prometheus` structs have it).
        let source = match &series.value {
            Value::Histogram(histogram) => Some(histogram),
            Value::Number(_) => None,
        };
        let labels = family.labels(series);
        let count = source.map_or(0, |histogram| rounded(histogram.count));
        let start = self.start(series_key(&family.name, labels.clone()), count as f64);
        let buckets = source
            .into_iter()
            .flat_map(|histogram| histogram.cumulative())
            .map(|(bound, weight)| (bound, rounded(weight)));
        let sum = source.map_or(0.0, |histogram| histogram.sum);
        self.histogram(labels, buckets, count, sum, start)
    }

    /// Adds one of the aggregator's bookkeeping families.
    pub fn bookkeeping(&mut self, family: &Bookkeeping<'_>) {
        if family.series.is_empty() {
            return;
        }
        let series = family.series.iter();
        let data = if family.kind == Kind::Counter {
            sum(series.map(|(pair, value)| {
                let start = self.start(series_key(family.name, pair.iter().copied()), *value);
                self.number(pair.iter().copied(), *value, start)
            }))
        } else {
            gauge(series.map(|(pair, value)| self.number(pair.iter().copied(), *value, 0)))
        };
        self.push(family.name, family.help, data);
    }

    /// Adds a family gathered from a `prometheus` registry.
    pub fn prometheus(&mut self, family: &MetricFamily) {
        let series = family.get_metric();
        if series.is_empty() {
            return;
        }
        let name = family.name();
        let labels = prometheus_labels;
        let data = match family.get_field_type() {
            MetricType::COUNTER => sum(series.iter().map(|m| {
                let value = m.get_counter().get_value();
                let start = self.start(series_key(name, labels(m)), value);
                self.number(labels(m), value, start)
            })),
            MetricType::GAUGE => gauge(
                series
                    .iter()
                    .map(|m| self.number(labels(m), m.get_gauge().get_value(), 0)),
            ),
            MetricType::UNTYPED => {
                gauge(series.iter().map(|m| self.number(labels(m), untyped(m), 0)))
            }
            MetricType::HISTOGRAM => histogram(series.iter().map(|m| {
                let source = m.get_histogram();
                let count = source.get_sample_count();
                let start = self.start(series_key(name, labels(m)), count as f64);
                let buckets = source
                    .get_bucket()
                    .iter()
                    .map(|bucket| (bucket.upper_bound(), bucket.cumulative_count()));
                self.histogram(labels(m), buckets, count, source.get_sample_sum(), start)
            })),
            MetricType::SUMMARY => metric::Data::Summary(Summary {
                data_points: series
                    .iter()
                    .map(|m| {
                        let count = m.get_summary().sample_count();
                        let start = self.start(series_key(name, labels(m)), count as f64);
                        self.summary(m, start)
                    })
                    .collect(),
            }),
        };
        self.push(name, family.help(), data);
    }

    /// The request, under `resource` and heartwire's instrumentation scope; `starts` now holds
    /// the start times of this export's series.
    pub fn finish(self, resource: &[KeyValue]) -> ExportMetricsServiceRequest {
        self.starts.seen = self.next;
        self.starts.previous_export = Some(self.now);
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource.to_vec(),
                    ..Resource::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "heartwire".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    metrics: self.metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn push(&mut self, name: &str, help: &str, data: metric::Data) {
        self.metrics.push(Metric {
            name: name.to_owned(),
            description: help.to_owned(),
            data: Some(data),
            ..Metric::default()
        });
    }

    /// The start of the series `key` whose running total is now `total`.
    fn start(&mut self, key: u64, total: f64) -> u64 {
        let start = match self.starts.seen.get(&key) {
            Some(seen) if total >= seen.total => seen.start,
            _ => self
                .starts
                .previous_export
                .unwrap_or(self.starts.agent_start),
        };
        self.next.insert(key, Seen { start, total });
        start
    }

    fn number<'l>(
        &self,
        labels: impl Iterator<Item = (&'l str, &'l str)>,
        value: f64,
        start: u64,
    ) -> NumberDataPoint {
        NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..NumberDataPoint::default()
        }
    }

    /// Prometheus buckets are cumulative (`buckets` gives each bound and the count at or below
    /// it) and may end with `+Inf`; OTLP wants one count per bucket, the last for values above
    /// the last bound.
    fn histogram<'l>(
        &self,
        labels: impl Iterator<Item = (&'l str, &'l str)>,
        buckets: impl Iterator<Item = (f64, u64)>,
        count: u64,
        sum: f64,
        start: u64,
    ) -> HistogramDataPoint {
        let (lower, _) = buckets.size_hint();
        let mut bounds = Vec::with_capacity(lower);
        let mut counts = Vec::with_capacity(lower + 1);
        let mut below = 0u64;
        for (bound, cumulative) in buckets.filter(|(bound, _)| bound.is_finite()) {
            let cumulative = cumulative.max(below);
            bounds.push(bound);
            counts.push(cumulative - below);
            below = cumulative;
        }
        let count = count.max(below);
        counts.push(count - below);
        HistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            count,
            sum: Some(sum),
            bucket_counts: counts,
            explicit_bounds: bounds,
            ..HistogramDataPoint::default()
        }
    }

    fn summary(&self, metric: &proto::Metric, start: u64) -> SummaryDataPoint {
        let source = metric.get_summary();
        SummaryDataPoint {
            attributes: attributes(prometheus_labels(metric)),
            start_time_unix_nano: start,
            time_unix_nano: self.now,
            count: source.sample_count(),
            sum: source.sample_sum(),
            quantile_values: source
                .get_quantile()
                .iter()
                .map(|quantile| ValueAtQuantile {
                    quantile: quantile.quantile(),
                    value: quantile.value(),
                })
                .collect(),
            ..SummaryDataPoint::default()
        }
    }
}

fn sum(points: impl Iterator<Item = NumberDataPoint>) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: points.collect(),
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
        is_monotonic: true,
    })
}

fn gauge(points: impl Iterator<Item = NumberDataPoint>) -> metric::Data {
    metric::Data::Gauge(Gauge {
        data_points: points.collect(),
    })
}

fn histogram(points: impl Iterator<Item = HistogramDataPoint>) -> metric::Data {
    metric::Data::Histogram(Histogram {
        data_points: points.collect(),
        aggregation_temporality: AggregationTemporality::Cumulative as i32,
    })
}

/// The labels of a series gathered from a `prometheus` registry.
fn prometheus_labels(metric: &proto::Metric) -> impl Iterator<Item = (&str, &str)> {
    metric
        .get_label()
        .iter()
        .map(|label| (label.name(), label.value()))
}

/// The value of a counter or gauge series. Never a histogram: the aggregator gives a counter or
/// gauge family number values (a histogram would read as 0, as the `prometheus` structs have it).
fn number_of(value: &Value) -> f64 {
    match value {
        Value::Number(value) => *value,
        Value::Histogram(_) => 0.0,
    }
}

/// A histogram weight as the integer count the page shows: rounded once, here, so that the
/// cumulative counts stay non-decreasing (a negative or NaN weight reads as 0).
fn rounded(weight: f64) -> u64 {
    weight.round() as u64
}

/// A fixed-key hash of a series' identity, from its borrowed strings; a collision would cost a
/// start time, and is about as likely as 1 in 10^9 at 100 000 series.
fn series_key<'l>(name: &str, labels: impl Iterator<Item = (&'l str, &'l str)>) -> u64 {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    for (label, value) in labels {
        label.hash(&mut hasher);
        value.hash(&mut hasher);
    }
    hasher.finish()
}

fn attributes<'l>(labels: impl Iterator<Item = (&'l str, &'l str)>) -> Vec<KeyValue> {
    labels
        .map(|(name, value)| string_attribute(name, value))
        .collect()
}

#[allow(deprecated)] // The only accessor of an untyped value; no family heartwire has is untyped.
fn untyped(metric: &proto::Metric) -> f64 {
    metric.get_untyped().get_value()
}

#[cfg(test)]
mod tests;
