//! Generic StatsD metrics: types, weights, names, labels, conflicts and caps.

use super::*;

#[test]
fn counters_get_a_total_suffix_that_is_never_doubled() {
    let mut h = Harness::new();
    h.send("page.views:1|c\npage.views:2|c\nerrors_total:3|c\n");
    assert_eq!(h.number("page_views_total", &[]), 3.0);
    assert_eq!(h.number("errors_total", &[]), 3.0);
    assert!(h.snapshot().family("errors_total_total").is_none());
}

#[test]
fn counter_sample_rates_are_float_weights() {
    let mut h = Harness::new();
    h.send("hits:1|c|@0.1\nhits:2|c|@0.5\nhits:1|c|@0.3\n");
    let hits = h.number("hits_total", &[]);
    assert!((hits - (10.0 + 4.0 + 1.0 / 0.3)).abs() < 1e-9, "{hits}");
}

#[test]
fn clamped_sample_rates_and_unknown_fields_are_counted() {
    let mut h = Harness::new();
    h.send("hits:1|c|@2\nhits:1|c|@0.0000000001\nhits:1|c|x:new\njob.ok a 1 future=1\n");
    assert_eq!(h.number("hits_total", &[]), 1.0 + 1e6 + 1.0);
    assert_eq!(
        h.telemetry("heartwire_sample_rates_clamped_total", None),
        2.0
    );
    assert_eq!(
        h.telemetry("heartwire_lines_unknown_fields_total", None),
        2.0
    );
}

#[test]
fn gauges_are_set_and_moved_by_signed_deltas() {
    let mut h = Harness::new();
    h.send("queue.depth:10|g\nqueue.depth:+5|g\nqueue.depth:-20|g\n");
    assert_eq!(h.number("queue_depth", &[]), -5.0);
    h.send("queue.depth:7|g|@0.5\n");
    assert_eq!(h.number("queue_depth", &[]), 7.0);
}

#[test]
fn timers_are_histograms_in_seconds() {
    let mut h = Harness::new();
    h.send("db.query:250|ms\ndb.query:5|ms\n");
    let histogram = h.histogram("db_query", &[]);
    assert_eq!(histogram.count, 2.0);
    assert_eq!(histogram.sum, 0.255);
    assert_eq!(bucket(&histogram, 0.005), 1.0);
    assert_eq!(bucket(&histogram, 0.25), 2.0);
}

#[test]
fn histogram_and_distribution_samples_are_unscaled_and_weighted() {
    let mut h = Harness::new();
    h.send("payload.size:0.5:2:20|h|@0.25\nlatency:0.1|d\n");
    let histogram = h.histogram("payload_size", &[]);
    assert_eq!(histogram.count, 12.0);
    assert_eq!(histogram.sum, 90.0);
    assert_eq!(bucket(&histogram, 0.5), 4.0);
    assert_eq!(bucket(&histogram, 2.5), 8.0);
    assert_eq!(bucket(&histogram, 10.0), 8.0);
    assert_eq!(h.histogram("latency", &[]).count, 1.0);
}

#[test]
fn configured_statsd_buckets_are_used() {
    let mut settings = Settings::default();
    settings.buckets.statsd = vec![1.0, 100.0];
    let mut h = Harness::with(settings);
    h.send("size:50|h\n");
    let histogram = h.histogram("size", &[]);
    assert_eq!(
        histogram.cumulative().collect::<Vec<_>>(),
        vec![(1.0, 0.0), (100.0, 1.0)]
    );
}

#[test]
fn sets_count_distinct_members_per_window() {
    let mut h = Harness::new();
    h.send("users:alice|s\nusers:bob|s\nusers:alice|s\n");
    assert_eq!(h.number("users", &[]), 2.0);
    h.advance(61.0);
    // The last complete window had two members; the new one has one so far.
    h.send("users:carol|s\n");
    assert_eq!(h.number("users", &[]), 2.0);
    h.advance(60.0);
    assert_eq!(h.number("users", &[]), 1.0);
    h.advance(120.0);
    assert_eq!(h.number("users", &[]), 0.0);
}

#[test]
fn set_members_are_capped_per_series_and_counted() {
    let mut settings = Settings::default();
    settings.limits.max_set_members = 3;
    let mut h = Harness::with(settings);
    for member in 0..10 {
        h.send(&format!("visitors:{member}|s\n"));
    }
    assert_eq!(h.number("visitors", &[]), 3.0);
    assert_eq!(
        h.telemetry("heartwire_set_members_dropped_total", None),
        7.0
    );
}

#[test]
fn tags_become_sorted_sanitised_labels_with_bare_tags_true_and_the_last_duplicate_winning() {
    let mut h = Harness::new();
    h.send("req:1|c|#region:eu,canary,env:a,env:b,http.method:GET,le:x,__meta:y\n");
    let labels = [
        ("canary", "true"),
        ("env", "b"),
        ("exported___meta", "y"),
        ("exported_le", "x"),
        ("http_method", "GET"),
        ("region", "eu"),
    ];
    let snapshot = h.snapshot();
    let family = snapshot.family("req_total").unwrap();
    let names: Vec<&str> = family.label_names.iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "canary",
            "env",
            "exported___meta",
            "exported_le",
            "http_method",
            "region"
        ]
    );
    assert_eq!(h.number("req_total", &labels), 1.0);
}

#[test]
fn the_same_tags_in_another_order_are_the_same_series() {
    let mut h = Harness::new();
    h.send("req:1|c|#a:1,b:2\nreq:1|c|#b:2,a:1\n");
    assert_eq!(h.number("req_total", &[("a", "1"), ("b", "2")]), 2.0);
    assert_eq!(h.snapshot().family("req_total").unwrap().series.len(), 1);
}

#[test]
fn names_are_sanitised_once_and_variants_share_a_family() {
    let mut h = Harness::new();
    h.send("api-latency.p99:1|g\n5xx.count:1|c\napi.latency.p99:2|g\n");
    assert_eq!(h.number("api_latency_p99", &[]), 2.0);
    assert_eq!(h.number("_5xx_count_total", &[]), 1.0);
}

#[test]
fn a_type_conflict_is_rejected_for_that_series_only_and_counted() {
    let mut h = Harness::new();
    h.send("jobs:1|c\njobs:5|g\njobs:1|ms\njobs:2|c\n");
    assert_eq!(h.number("jobs_total", &[]), 3.0);
    assert_eq!(
        h.account("jobs_total"),
        FamilyAccountView {
            series: 1,
            dropped: 0,
            conflicts: 2
        }
    );
}

#[test]
fn a_label_name_conflict_is_rejected_and_counted() {
    let mut h = Harness::new();
    h.send("req:1|c|#env:prod\nreq:1|c|#env:prod,host:a\nreq:1|c\nreq:1|c|#env:dev\n");
    assert_eq!(h.number("req_total", &[("env", "prod")]), 1.0);
    assert_eq!(h.number("req_total", &[("env", "dev")]), 1.0);
    assert_eq!(h.account("req_total").conflicts, 2);
}

#[test]
fn suffix_collisions_between_families_are_conflicts() {
    let mut h = Harness::new();
    h.send("x:1|c\nx_total:1|g\nlat:1|h\nlat_count:1|g\nlat_bucket:1|c\nq_sum:1|g\nq:1|h\n");
    assert_eq!(h.number("x_total", &[]), 1.0);
    assert_eq!(h.account("x_total").conflicts, 1);
    assert_eq!(h.account("lat_count").conflicts, 1);
    assert_eq!(h.account("lat_bucket_total").conflicts, 1);
    assert_eq!(h.account("q").conflicts, 1);
    assert_eq!(h.number("q_sum", &[]), 1.0);
    assert!(h.value("q", &[]).is_none());
}

#[test]
fn statsd_metrics_cannot_take_built_in_or_self_metric_names() {
    let mut h = Harness::new();
    h.send("heartwire.job.runs:1|c\nheartwire_series:1|g\nprocess.cpu.seconds:1|c\njob.ok a 1\n");
    let snapshot = h.snapshot();
    let runs = snapshot.family("heartwire_job_runs_total").unwrap();
    assert_eq!(runs.label_names.len(), 2);
    assert!(snapshot.family("heartwire_series").is_none());
    assert!(snapshot.family("process_cpu_seconds_total").is_none());
    assert_eq!(h.account("heartwire_job_runs_total").conflicts, 1);
    assert_eq!(h.account("heartwire_series").conflicts, 1);
}

#[test]
fn the_per_family_cap_drops_new_series_while_existing_ones_keep_counting() {
    let mut settings = Settings::default();
    settings.limits.max_series_per_family = 3;
    let mut h = Harness::with(settings);
    for user in 0..10 {
        h.send(&format!("logins:1|c|#user:u{user}\n"));
    }
    h.send("logins:1|c|#user:u0\nother:1|c\n");
    assert_eq!(h.snapshot().family("logins_total").unwrap().series.len(), 3);
    assert_eq!(h.number("logins_total", &[("user", "u0")]), 2.0);
    assert_eq!(h.number("other_total", &[]), 1.0);
    assert_eq!(
        h.account("logins_total"),
        FamilyAccountView {
            series: 3,
            dropped: 7,
            conflicts: 0
        }
    );
}

#[test]
fn the_global_cap_applies_to_statsd_and_built_in_series_alike() {
    let mut settings = Settings::default();
    settings.limits.max_series = 2;
    let mut h = Harness::with(settings);
    h.send("a:1|c\njob.ok nightly 1\nb:1|c\nhb mailer\njob.ok nightly 1\n");
    assert_eq!(h.number("a_total", &[]), 1.0);
    assert_eq!(
        h.number(
            "heartwire_job_runs_total",
            &[("job", "nightly"), ("result", "ok")]
        ),
        2.0
    );
    assert!(h.snapshot().family("b_total").is_none());
    assert!(
        h.snapshot()
            .family("heartwire_worker_last_heartbeat_timestamp_seconds")
            .is_none()
    );
    assert_eq!(h.account("b_total").dropped, 1);
    // Workers are accounted under their headline family, the status.
    assert_eq!(h.account("heartwire_worker_status").dropped, 1);
}

#[test]
fn a_flood_of_distinct_names_at_the_cap_creates_no_families() {
    let mut settings = Settings::default();
    settings.limits.max_series = 10;
    settings.limits.max_family_labels = 5;
    let mut h = Harness::with(settings);
    let flood: String = (0..1000).map(|i| format!("flood.{i}:1|c\n")).collect();
    h.send(&flood);
    let snapshot = h.snapshot();
    assert_eq!(snapshot.series_count(), 10);
    assert_eq!(snapshot.families.len(), 10);
    // Four built-in labels and one flood family got their own label; the rest went to "other".
    assert_eq!(snapshot.accounts.len(), 6);
    assert_eq!(
        h.account("other"),
        FamilyAccountView {
            series: 9,
            dropped: 990,
            conflicts: 0
        }
    );
}

#[test]
fn a_full_key_cache_is_emptied_and_values_stay_exact() {
    let mut settings = Settings::default();
    settings.limits.max_cached_keys = 4;
    let mut h = Harness::with(settings);
    for round in 0..3 {
        for i in 0..10 {
            h.send(&format!("c:1|c|#k:{i}\n"));
        }
        assert_eq!(h.number("c_total", &[("k", "9")]), f64::from(round + 1));
    }
    assert_eq!(h.snapshot().family("c_total").unwrap().series.len(), 10);
}

#[test]
fn non_finite_results_are_refused_and_counted() {
    let mut h = Harness::new();
    h.send("big:1e308|g\nbig:+1e308|g\nbig:+1e308|g\n");
    assert_eq!(h.number("big", &[]), 1e308);
    assert_eq!(h.telemetry("heartwire_samples_non_finite_total", None), 2.0);
}

#[test]
fn client_timestamps_are_ignored_for_aggregation() {
    let mut h = Harness::new();
    h.send("hits:1|c|T1000\nhits:1|c|T99999999999\n");
    assert_eq!(h.number("hits_total", &[]), 2.0);
}

#[test]
fn set_members_are_capped_over_all_sets_and_given_back_when_windows_end() {
    let mut settings = Settings::default();
    settings.limits.max_set_members_total = 5;
    let mut h = Harness::with(settings);
    h.send("a:1|s\na:2|s\na:3|s\na:4|s\nb:1|s\nb:2|s\nb:3|s\n");
    assert_eq!(h.number("a", &[]), 4.0);
    assert_eq!(h.number("b", &[]), 1.0);
    assert_eq!(
        h.telemetry("heartwire_set_members_dropped_total", None),
        2.0
    );
    // `a` stops sending; once its window is over, `b` may use what `a` held.
    h.advance(61.0);
    h.send("b:1|s\nb:2|s\nb:3|s\nb:4|s\nb:5|s\n");
    h.advance(60.0);
    assert_eq!(h.number("b", &[]), 5.0);
}
