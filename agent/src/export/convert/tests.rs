//! The conversion: each type and start time on small families, then the straight path from the
//! snapshot against the `prometheus` structs' path (the oracle, which the self-metrics still
//! take) on a realistic page and on random families.

use std::sync::Arc;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{CounterVec, Histogram as PromHistogram, HistogramOpts, IntGauge, Opts};
use proptest::prelude::*;

use super::*;
use crate::aggregate::expiry::Expiry;
use crate::aggregate::snapshot::{HistogramSnapshot, Snapshot};
use crate::aggregate::{Aggregator, FamilyNames, Settings};
use crate::clock::Now;
use crate::expose::Exposition;
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;
use crate::ingest::batch::{Batch, Transport};
use crate::telemetry::Listening;

/// The path every family took before the snapshot was converted straight: all of them as
/// `prometheus` structs.
fn via_prometheus(
    families: &[MetricFamily],
    resource: &[KeyValue],
    starts: &mut Starts,
    now: u64,
) -> ExportMetricsServiceRequest {
    let mut builder = RequestBuilder::new(starts, now);
    for family in families {
        builder.prometheus(family);
    }
    builder.finish(resource)
}

const AGENT_START: u64 = 1_000;
const NOW: u64 = 2_000;

fn export(families: &[MetricFamily]) -> ExportMetricsServiceRequest {
    via_prometheus(families, &[], &mut Starts::new(AGENT_START), NOW)
}

fn sum_points(request: &ExportMetricsServiceRequest) -> Vec<(u64, f64)> {
    let Some(metric::Data::Sum(sum)) = &only_metric(request).data else {
        panic!("not a sum")
    };
    sum.data_points
        .iter()
        .map(|point| match point.value {
            Some(number_data_point::Value::AsDouble(value)) => (point.start_time_unix_nano, value),
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
    let request = via_prometheus(
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
    let first = via_prometheus(&collect(&counter), &[], &mut starts, 2_000);
    assert_eq!(sum_points(&first), vec![(AGENT_START, 5.0)]);

    // A series born between two exports starts at the earlier one.
    counter.with_label_values(&["a"]).inc();
    counter.with_label_values(&["b"]).inc();
    let second = via_prometheus(&collect(&counter), &[], &mut starts, 3_000);
    assert_eq!(sum_points(&second), vec![(AGENT_START, 6.0), (2_000, 1.0)]);

    // `a` expired and came back: its total went down, so it is a new series.
    counter.remove_label_values(&["a"]).unwrap();
    counter.with_label_values(&["a"]).inc();
    let third = via_prometheus(&collect(&counter), &[], &mut starts, 4_000);
    assert_eq!(sum_points(&third), vec![(3_000, 1.0), (2_000, 1.0)]);
    assert_eq!(starts.seen.len(), 2, "one entry per live series");
}

// --- the snapshot converted straight, against the `prometheus` structs' path ---------------

const T0: f64 = 1_700_000_000.0;

fn nanos(now: Now) -> u64 {
    (now.unix_seconds() * 1e9) as u64
}

/// What the two requests differ in, if anything: the first metric that differs, or the rest.
/// Compared as printed, so that a NaN equals a NaN and -0 differs from 0.
fn difference(
    straight: &ExportMetricsServiceRequest,
    oracle: &ExportMetricsServiceRequest,
) -> Option<String> {
    let metrics = |request: &ExportMetricsServiceRequest| {
        request.resource_metrics[0].scope_metrics[0].metrics.clone()
    };
    let (ours, theirs) = (metrics(straight), metrics(oracle));
    let names = |metrics: &[Metric]| metrics.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
    if names(&ours) != names(&theirs) {
        return Some(format!(
            "families {:?}\nwhere the oracle has {:?}",
            names(&ours),
            names(&theirs)
        ));
    }
    for (a, b) in ours.iter().zip(&theirs) {
        if format!("{a:?}") != format!("{b:?}") {
            return Some(format!("{a:#?}\nwhere the oracle has\n{b:#?}"));
        }
    }
    (format!("{straight:?}") != format!("{oracle:?}")).then(|| "outside the metrics".to_owned())
}

/// The start times held after an export: series key, start, total (as bits, NaN included).
fn held(starts: &Starts) -> Vec<(u64, u64, u64)> {
    let mut held: Vec<_> = starts
        .seen
        .iter()
        .map(|(key, seen)| (*key, seen.start, seen.total.to_bits()))
        .collect();
    held.sort_unstable();
    held
}

/// Both paths over the same parts, each with its own start times: the requests and the start
/// times carried to the next export must be the same.
fn compare(
    parts: &Parts<'_>,
    old: &mut Starts,
    new: &mut Starts,
    now: u64,
) -> Result<ExportMetricsServiceRequest, String> {
    let resource = [string_attribute("service.name", "shop")];
    let oracle = via_prometheus(&parts.clone().into_families(), &resource, old, now);
    let straight = request(parts, &resource, new, now);
    if let Some(difference) = difference(&straight, &oracle) {
        return Err(difference);
    }
    if held(old) != held(new) {
        return Err("the start times carried differ".to_owned());
    }
    Ok(straight)
}

fn point_of<'r>(request: &'r ExportMetricsServiceRequest, name: &str) -> &'r NumberDataPoint {
    let metric = request.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|metric| metric.name == name)
        .unwrap_or_else(|| panic!("{name} missing"));
    match &metric.data {
        Some(metric::Data::Sum(sum)) => &sum.data_points[0],
        Some(metric::Data::Gauge(gauge)) => &gauge.data_points[0],
        _ => panic!("{name} is not a number"),
    }
}

/// A page with every kind of family (built-ins with constant labels, jobs with verdicts,
/// workers, calls, checks, events, StatsD counters, gauges, weighted and tagged timers, sets,
/// label values to escape), the bookkeeping and the self-metrics; exported twice, the second
/// time after a counter expired and came back.
#[test]
fn the_snapshot_converts_to_the_request_of_the_prometheus_structs() {
    let settings = Settings {
        names: FamilyNames::seed_000(),
        jobs: vec![(
            "sweep".to_owned(),
            JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap()),
        )],
        workers: vec![("poller".to_owned(), Duration::from_secs(30))],
        expiry: Expiry {
            gauges: Duration::from_secs(600),
            counters: Duration::from_secs(3600),
        },
        ..Settings::default()
    };
    let (exposition, telemetry) = Exposition::new().unwrap();
    telemetry.listening(Transport::Udp);
    telemetry.listening(Transport::Tcp);
    let mut aggregator = Aggregator::new(settings);
    let t0 = Now::at_unix_seconds(T0);
    let lines = "job.start sweep id=1\njob.ok sweep 0.5 id=1\njob.error sweep 1.5 reason=timeout\n\
        job.ok nightly 3\njob.progress nightly 7\nworker.beat poller\nhb mailer\n\
        http api /v1/users 200 0.02\nhttp api /v1/users network\n_sc|db|1\n_e{1,1}:a|b|t:warning\n\
        weird\npage.views:3|c|#env:prod,q:\"x\"\npage.views:1|c|@0.5|#env:prod,q:\"x\"\n\
        gone:5|c|#v:back\\slash,w:lit\\nnewline\nqueue.depth:-2.5|g\nrender.ms:320|ms|@0.3|#route:/a\\b\n\
        render.ms:12|ms|#route:/a\\b\nrender.ms:7000|ms|#route:/c d,zone:é\u{2028}\nsize:1e9|h\n\
        users:alice|s\nusers:bob|s\n";
    aggregator.ingest(&Batch::new(Transport::Udp, lines.as_bytes().to_vec()), t0);
    let (mut old, mut new) = (Starts::new(AGENT_START), Starts::new(AGENT_START));
    let snapshot = aggregator.snapshot(t0);
    let parts = exposition.parts(&snapshot, t0);
    assert!(!parts.health.is_empty() && !parts.own.is_empty());
    let first =
        compare(&parts, &mut old, &mut new, nanos(t0)).unwrap_or_else(|error| panic!("{error}"));
    let names: Vec<&str> = first.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .map(|metric| metric.name.as_str())
        .collect();
    for name in [
        "page_views_total",
        "render_ms",
        "vf_worker_poll_runs_total",
        "heartwire_lines_received_total",
        "heartwire_series",
        "heartwire_build_info",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_eq!(
        point_of(&first, "gone_total").start_time_unix_nano,
        AGENT_START
    );

    // Two hours later: `gone` expired and came back with a smaller total, the job is stale.
    let later = t0.advance(Duration::from_secs(7200));
    let touch = "page.views:2|c|#env:prod,q:\"x\"\nrender.ms:5|ms|#route:/a\\b\n";
    aggregator.ingest(
        &Batch::new(Transport::Tcp, touch.as_bytes().to_vec()),
        later,
    );
    assert!(aggregator.expire(later) > 0);
    let back = "gone:1|c|#v:back\\slash,w:lit\\nnewline\n";
    aggregator.ingest(&Batch::new(Transport::Tcp, back.as_bytes().to_vec()), later);
    let snapshot = aggregator.snapshot(later);
    let parts = exposition.parts(&snapshot, later);
    let second =
        compare(&parts, &mut old, &mut new, nanos(later)).unwrap_or_else(|error| panic!("{error}"));
    let gone = point_of(&second, "gone_total");
    assert_eq!(gone.value, Some(number_data_point::Value::AsDouble(1.0)));
    assert_eq!(
        gone.start_time_unix_nano,
        nanos(t0),
        "restarts from the previous export"
    );
    assert_eq!(
        point_of(&second, "page_views_total").start_time_unix_nano,
        AGENT_START
    );
}

fn any_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..1_000_000).prop_map(f64::from),
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        (-1e-9f64..1e-9),
    ]
}

/// Numbers and histograms, whatever the family's kind (the aggregator never mixes them, but
/// both paths must agree even then); histogram weights may be fractional or negative, and the
/// bounds may end with `+Inf`.
fn any_value() -> impl Strategy<Value = Value> {
    let histogram = (
        proptest::collection::btree_set(0u32..100_000, 0..12),
        any::<bool>(),
        proptest::collection::vec(-1.0f64..1e6, 14),
        any_number(),
    )
        .prop_map(|(bounds, infinite, counts, sum)| {
            let mut bounds: Vec<f64> = bounds.into_iter().map(|b| f64::from(b) / 1000.0).collect();
            if infinite {
                bounds.push(f64::INFINITY);
            }
            let counts: Box<[f64]> = counts[..bounds.len() + 1].into();
            let count = counts.iter().sum();
            Value::Histogram(Box::new(HistogramSnapshot {
                bounds: Arc::from(bounds),
                counts,
                sum,
                count,
            }))
        });
    prop_oneof![
        6 => any_number().prop_map(Value::Number),
        6 => histogram,
    ]
}

fn any_family() -> impl Strategy<Value = Family> {
    (
        0..3usize,
        proptest::collection::btree_set("[a-z_][a-z0-9_]{0,6}", 0..3),
        proptest::collection::vec(any::<String>(), 0..2),
        proptest::collection::vec(
            (proptest::collection::vec(any::<String>(), 3), any_value()),
            0..5,
        ),
    )
        .prop_map(|(kind, names, constant, series)| {
            let names: Vec<String> = names.into_iter().collect();
            let kind = [Kind::Counter, Kind::Gauge, Kind::Histogram][kind];
            Family::of_strings("renamed", "Help.", kind, &constant, &names, series)
        })
}

/// The families of one export: even ones stored, odd ones as verdicts, named by their place
/// so that the same place in the next export is the same family.
fn page_of(mut families: Vec<Family>) -> (Snapshot, Vec<Family>) {
    for (index, family) in families.iter_mut().enumerate() {
        Arc::make_mut(&mut family.meta).name = Arc::from(format!("f{index}").as_str());
    }
    let (stored, health): (Vec<_>, Vec<_>) = families
        .into_iter()
        .enumerate()
        .partition(|(index, _)| index % 2 == 0);
    let snapshot = Snapshot {
        families: stored.into_iter().map(|(_, family)| family).collect(),
        ..Snapshot::empty()
    };
    (
        snapshot,
        health.into_iter().map(|(_, family)| family).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// For any two pages exported one after the other, the snapshot converted straight gives
    /// the request, and carries the start times, of its families as `prometheus` structs.
    #[test]
    fn property_the_straight_path_converts_as_the_prometheus_structs_do(
        rounds in proptest::collection::vec(proptest::collection::vec(any_family(), 0..6), 2),
    ) {
        let (mut old, mut new) = (Starts::new(AGENT_START), Starts::new(AGENT_START));
        for (round, families) in rounds.into_iter().enumerate() {
            let (snapshot, health) = page_of(families);
            let parts = Parts { snapshot: &snapshot, health, listening: Listening::default(), own: Vec::new() };
            compare(&parts, &mut old, &mut new, NOW + round as u64 * 1_000).map_err(TestCaseError::fail)?;
        }
    }
}
