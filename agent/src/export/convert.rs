//! The families of `/metrics` as one OTLP `ExportMetricsServiceRequest`.
//!
//! The input is exactly what `/metrics` renders ([`Exposition::families`]), so both outputs
//! always carry the same families, names, values and bucket counts. Names stay as exposed
//! (`_total` included): a collector that writes them back to Prometheus then keeps the names
//! dashboards use. Types map as the OpenTelemetry Prometheus compatibility rules say:
//! counter → monotonic cumulative sum, gauge → gauge, histogram → cumulative explicit-bucket
//! histogram with the same bounds, summary → summary. Cumulative points start at one stable
//! instant, the agent's start: heartwire's series live as long as the agent, so that is when
//! every one of them began counting.
//!
//! [`Exposition::families`]: crate::expose::Exposition::families

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

/// When the points of one export were taken and when their counting began, in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    /// The start of every cumulative point: the agent's start.
    pub start: u64,
    /// When the values were read.
    pub now: u64,
}

/// One request holding every family, under `resource` and heartwire's instrumentation scope.
pub fn request(
    families: &[MetricFamily],
    resource: &[KeyValue],
    times: Times,
) -> ExportMetricsServiceRequest {
    let metrics = families
        .iter()
        .filter(|family| !family.get_metric().is_empty())
        .map(|family| metric(family, times))
        .collect();
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

fn metric(family: &MetricFamily, times: Times) -> Metric {
    let series = family.get_metric();
    let cumulative = AggregationTemporality::Cumulative as i32;
    let data = match family.get_field_type() {
        MetricType::COUNTER => metric::Data::Sum(Sum {
            data_points: series
                .iter()
                .map(|m| number(m, m.get_counter().get_value(), times.start, times.now))
                .collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        MetricType::GAUGE => metric::Data::Gauge(Gauge {
            data_points: series
                .iter()
                .map(|m| number(m, m.get_gauge().get_value(), 0, times.now))
                .collect(),
        }),
        MetricType::UNTYPED => metric::Data::Gauge(Gauge {
            data_points: series
                .iter()
                .map(|m| number(m, untyped(m), 0, times.now))
                .collect(),
        }),
        MetricType::HISTOGRAM => metric::Data::Histogram(Histogram {
            data_points: series.iter().map(|m| histogram(m, times)).collect(),
            aggregation_temporality: cumulative,
        }),
        MetricType::SUMMARY => metric::Data::Summary(Summary {
            data_points: series.iter().map(|m| summary(m, times)).collect(),
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
fn histogram(metric: &proto::Metric, times: Times) -> HistogramDataPoint {
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
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
        count,
        sum: Some(source.get_sample_sum()),
        bucket_counts: counts,
        explicit_bounds: buckets.iter().map(|bucket| bucket.upper_bound()).collect(),
        ..HistogramDataPoint::default()
    }
}

fn summary(metric: &proto::Metric, times: Times) -> SummaryDataPoint {
    let source = metric.get_summary();
    SummaryDataPoint {
        attributes: attributes(metric),
        start_time_unix_nano: times.start,
        time_unix_nano: times.now,
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

    const TIMES: Times = Times {
        start: 1_000,
        now: 2_000,
    };

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
        let request = request(&collect(&counter), &[], TIMES);
        let metric = only_metric(&request);
        assert_eq!(metric.name, "jobs_total");
        assert_eq!(metric.description, "Jobs.");
        let Some(metric::Data::Sum(sum)) = &metric.data else {
            panic!("not a sum: {metric:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(sum.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        let point = &sum.data_points[0];
        assert_eq!(point.value, Some(number_data_point::Value::AsDouble(3.0)));
        assert_eq!((point.start_time_unix_nano, point.time_unix_nano), (1_000, 2_000));
        assert_eq!(point.attributes, vec![string_attribute("job", "poll")]);
    }

    #[test]
    fn gauges_carry_no_start_time() {
        let gauge = IntGauge::new("depth", "Depth.").unwrap();
        gauge.set(-4);
        let request = request(&collect(&gauge), &[], TIMES);
        let Some(metric::Data::Gauge(gauge)) = &only_metric(&request).data else {
            panic!("not a gauge")
        };
        assert_eq!(gauge.data_points[0].value, Some(number_data_point::Value::AsDouble(-4.0)));
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
        let request = request(&collect(&histogram), &[], TIMES);
        let Some(metric::Data::Histogram(histogram)) = &only_metric(&request).data else {
            panic!("not a histogram")
        };
        assert_eq!(histogram.aggregation_temporality, AggregationTemporality::Cumulative as i32);
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
        let request = request(&collect(&empty), &resource, TIMES);
        let resource_metrics = &request.resource_metrics[0];
        assert!(resource_metrics.scope_metrics[0].metrics.is_empty());
        assert_eq!(resource_metrics.resource.as_ref().unwrap().attributes, resource);
        assert_eq!(resource_metrics.scope_metrics[0].scope.as_ref().unwrap().name, "heartwire");
        assert_eq!(data_points(&request), 0);
    }
}
