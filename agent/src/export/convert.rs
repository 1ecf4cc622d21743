//! The families of `/metrics` as one OTLP `ExportMetricsServiceRequest`.
//!
//! The input is exactly what `/metrics` renders ([`Exposition::families`]), so both outputs
//! always carry the same families, names, values and bucket counts. Names stay as exposed
//! (`_total` included): a collector that writes them back to Prometheus then keeps the names
//! dashboards use. Types map as the OpenTelemetry Prometheus compatibility rules say:
//! counter → monotonic cumulative sum, gauge → gauge, histogram → cumulative explicit-bucket
//! histogram with the same bounds, summary → summary.
//!
//! A cumulative point carries the time its series began counting, the same on every export
//! while the series lives ([`Starts`]): the agent's start for series seen in the first export,
//! otherwise the previous export, the last instant the series was known not to exist. A series
//! that expired and came back, or whose total went down, starts again from the previous export,
//! so a consumer sees a reset instead of a wrong increase.
//!
//! [`Exposition::families`]: crate::expose::Exposition::families

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

/// The start times being assigned for one export.
struct Stamper<'a> {
    starts: &'a Starts,
    next: HashMap<u64, Seen>,
    now: u64,
}

impl Stamper<'_> {
    /// The start of the series `name{labels}` whose running total is now `total`.
    fn start(&mut self, name: &str, metric: &proto::Metric, total: f64) -> u64 {
        let key = series_key(name, metric);
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
}

/// A fixed-key hash of a series' identity; a collision would cost a start time, and is about
/// as likely as 1 in 10^9 at 100 000 series.
fn series_key(name: &str, metric: &proto::Metric) -> u64 {
    let mut hasher = DefaultHasher::new();
    name.hash(&mut hasher);
    for label in metric.get_label() {
        label.name().hash(&mut hasher);
        label.value().hash(&mut hasher);
    }
    hasher.finish()
}

/// One request holding every family, under `resource` and heartwire's instrumentation scope,
/// read at `now` (Unix nanoseconds). Updates `starts` for the next export.
pub fn request(
    families: &[MetricFamily],
    resource: &[KeyValue],
    starts: &mut Starts,
    now: u64,
) -> ExportMetricsServiceRequest {
    let mut stamper = Stamper {
        starts,
        next: HashMap::with_capacity(starts.seen.len()),
        now,
    };
    let metrics = families
        .iter()
        .filter(|family| !family.get_metric().is_empty())
        .map(|family| metric(family, &mut stamper))
        .collect();
    let next = stamper.next;
    starts.seen = next;
    starts.previous_export = Some(now);
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
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
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

fn metric(family: &MetricFamily, stamper: &mut Stamper<'_>) -> Metric {
    let name = family.name();
    let series = family.get_metric();
    let now = stamper.now;
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match family.get_field_type() {
        MetricType::COUNTER => metric::Data::Sum(Sum {
            data_points: series
                .iter()
                .map(|m| {
                    let value = m.get_counter().get_value();
                    number(m, value, stamper.start(name, m, value), now)
                })
                .collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        MetricType::GAUGE => metric::Data::Gauge(Gauge {
            data_points: series
                .iter()
                .map(|m| number(m, m.get_gauge().get_value(), 0, now))
                .collect(),
        }),
        MetricType::UNTYPED => metric::Data::Gauge(Gauge {
            data_points: series
                .iter()
                .map(|m| number(m, untyped(m), 0, now))
                .collect(),
        }),
        MetricType::HISTOGRAM => metric::Data::Histogram(Histogram {
            data_points: series
                .iter()
                .map(|m| {
                    let count = m.get_histogram().get_sample_count() as f64;
                    histogram(m, stamper.start(name, m, count), now)
                })
                .collect(),
            aggregation_temporality: cumulative,
        }),
        MetricType::SUMMARY => metric::Data::Summary(Summary {
            data_points: series
                .iter()
                .map(|m| {
                    let count = m.get_summary().sample_count() as f64;
                    summary(m, stamper.start(name, m, count), now)
                })
                .collect(),
        }),
    };
    Metric {
        name: family.name().to_owned(),
        description: family.help().to_owned(),
        data: Some(data),
        ..Metric::default()
    }
}

#[allow(deprecated)] // The only accessor of an untyped value; no family heartwire has is untyped.
fn untyped(metric: &proto::Metric) -> f64 {
    metric.get_untyped().get_value()
}

fn attributes(metric: &proto::Metric) -> Vec<KeyValue> {
    metric
        .get_label()
        .iter()
        .map(|label| string_attribute(label.name(), label.value()))
        .collect()
}

fn number(metric: &proto::Metric, value: f64, start: u64, now: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(metric),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..NumberDataPoint::default()
    }
}

/// Prometheus buckets are cumulative and may end with `+Inf`; OTLP wants one count per bucket,
/// the last for values above the last bound.
fn histogram(metric: &proto::Metric, start: u64, now: u64) -> HistogramDataPoint {
    let source = metric.get_histogram();
    let buckets: Vec<&proto::Bucket> = source
        .get_bucket()
        .iter()
        .filter(|bucket| bucket.upper_bound().is_finite())
        .collect();
    let mut counts = Vec::with_capacity(buckets.len() + 1);
    let mut below = 0u64;
    for bucket in &buckets {
        let cumulative = bucket.cumulative_count().max(below);
        counts.push(cumulative - below);
        below = cumulative;
    }
    let count = source.get_sample_count().max(below);
    counts.push(count - below);
    HistogramDataPoint {
        attributes: attributes(metric),
        start_time_unix_nano: start,
        time_unix_nano: now,
        count,
        sum: Some(source.get_sample_sum()),
        bucket_counts: counts,
        explicit_bounds: buckets.iter().map(|bucket| bucket.upper_bound()).collect(),
        ..HistogramDataPoint::default()
    }
}

fn summary(metric: &proto::Metric, start: u64, now: u64) -> SummaryDataPoint {
    let source = metric.get_summary();
    SummaryDataPoint {
        attributes: attributes(metric),
        start_time_unix_nano: start,
        time_unix_nano: now,
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

#[cfg(test)]
mod tests {
    use prometheus::core::Collector;
    use prometheus::{CounterVec, Histogram as PromHistogram, HistogramOpts, IntGauge, Opts};

    use super::*;

    const AGENT_START: u64 = 1_000;
    const NOW: u64 = 2_000;

    fn export(families: &[MetricFamily]) -> ExportMetricsServiceRequest {
        request(families, &[], &mut Starts::new(AGENT_START), NOW)
    }

    fn sum_points(request: &ExportMetricsServiceRequest) -> Vec<(u64, f64)> {
        let Some(metric::Data::Sum(sum)) = &only_metric(request).data else {
            panic!("not a sum")
        };
        sum.data_points
            .iter()
            .map(|point| match point.value {
                Some(number_data_point::Value::AsDouble(value)) => {
                    (point.start_time_unix_nano, value)
                }
                _ => panic!("not a double"),
            })
            .collect()
    }

    fn collect(collector: &dyn Collector) -> Vec<MetricFamily> {
        collector.collect()
    }

    fn only_metric(request: &ExportMetricsServiceRequest) -> &Metric {
        let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1);
        &metrics[0]
    }

    #[test]
    fn counters_are_monotonic_cumulative_sums_from_the_agent_start() {
        let counter = CounterVec::new(Opts::new("jobs_total", "Jobs."), &["job"]).unwrap();
        counter.with_label_values(&["poll"]).inc_by(3.0);
        let request = export(&collect(&counter));
        let metric = only_metric(&request);
        assert_eq!(metric.name, "jobs_total");
        assert_eq!(metric.description, "Jobs.");
        let Some(metric::Data::Sum(sum)) = &metric.data else {
            panic!("not a sum: {metric:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &sum.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsDouble(3.0)));
        assert_eq!(
            (point.start_time_unix_nano, point.time_unix_nano),
            (1_000, 2_000)
        );
        assert_eq!(point.attributes, vec![string_attribute("job", "poll")]);
    }

    #[test]
    fn gauges_carry_no_start_time() {
        let gauge = IntGauge::new("depth", "Depth.").unwrap();
        gauge.set(-4);
        let request = export(&collect(&gauge));
        let Some(metric::Data::Gauge(gauge)) = &only_metric(&request).data else {
            panic!("not a gauge")
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(number_data_point::Value::AsDouble(-4.0))
        );
        assert_eq!(gauge.data_points[0].start_time_unix_nano, 0);
    }

    #[test]
    fn histograms_keep_their_bounds_and_count_each_bucket_once() {
        let histogram =
            PromHistogram::with_opts(HistogramOpts::new("latency", "L.").buckets(vec![0.1, 1.0]))
                .unwrap();
        for value in [0.05, 0.5, 0.7, 3.0] {
            histogram.observe(value);
        }
        let request = export(&collect(&histogram));
        let Some(metric::Data::Histogram(histogram)) = &only_metric(&request).data else {
            panic!("not a histogram")
        };
        assert_eq!(
            histogram.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let point = &histogram.data_points[0];
        assert_eq!(point.explicit_bounds, vec![0.1, 1.0]);
        assert_eq!(point.bucket_counts, vec![1, 2, 1]);
        assert_eq!(point.count, 4);
        assert_eq!(point.sum, Some(4.25));
        assert_eq!(point.start_time_unix_nano, 1_000);
    }

    #[test]
    fn families_without_series_are_left_out_and_the_resource_is_carried() {
        let empty = CounterVec::new(Opts::new("unused_total", "U."), &["x"]).unwrap();
        let resource = vec![string_attribute("service.name", "shop")];
        let request = request(
            &collect(&empty),
            &resource,
            &mut Starts::new(AGENT_START),
            NOW,
        );
        let resource_metrics = &request.resource_metrics[0];
        assert!(resource_metrics.scope_metrics[0].metrics.is_empty());
        assert_eq!(
            resource_metrics.resource.as_ref().unwrap().attributes,
            resource
        );
        assert_eq!(
            resource_metrics.scope_metrics[0]
                .scope
                .as_ref()
                .unwrap()
                .name,
            "heartwire"
        );
        assert_eq!(data_points(&request), 0);
    }

    #[test]
    fn a_series_keeps_its_start_until_it_goes_back_to_zero() {
        let counter = CounterVec::new(Opts::new("runs_total", "Runs."), &["job"]).unwrap();
        counter.with_label_values(&["a"]).inc_by(5.0);
        let mut starts = Starts::new(AGENT_START);
        let first = request(&collect(&counter), &[], &mut starts, 2_000);
        assert_eq!(sum_points(&first), vec![(AGENT_START, 5.0)]);

        // A series born between two exports starts at the earlier one.
        counter.with_label_values(&["a"]).inc();
        counter.with_label_values(&["b"]).inc();
        let second = request(&collect(&counter), &[], &mut starts, 3_000);
        assert_eq!(sum_points(&second), vec![(AGENT_START, 6.0), (2_000, 1.0)]);

        // `a` expired and came back: its total went down, so it is a new series.
        counter.remove_label_values(&["a"]).unwrap();
        counter.with_label_values(&["a"]).inc();
        let third = request(&collect(&counter), &[], &mut starts, 4_000);
        assert_eq!(sum_points(&third), vec![(3_000, 1.0), (2_000, 1.0)]);
        assert_eq!(starts.seen.len(), 2, "one entry per live series");
    }
}
