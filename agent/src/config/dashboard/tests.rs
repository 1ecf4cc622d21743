use std::time::Duration;

use super::*;
use crate::config::from_str;

/// A config declaring the StatsD families the panels below read, then `panels` in one row.
fn config(panels: &str) -> String {
    format!(
        "statsd:\n  mapping:\n    mappings:\n      - {{ match: relay.jobs.*.*, match_metric_type: counter, name: 'relay_jobs_${{1}}_total', labels: {{ queue: $2 }} }}\n      - {{ match: relay.job.latency.*, match_metric_type: observer, name: relay_job_latency_seconds }}\n      - {{ match: relay.queue.depth.*.*, match_metric_type: gauge, name: relay_queue_depth }}\ndashboard:\n  rows:\n    - title: Relay\n      panels:\n{panels}"
    )
}

#[track_caller]
fn panels(panels: &str) -> Vec<Panel> {
    let loaded = from_str(&config(panels), "agent.yaml").unwrap_or_else(|e| panic!("{e}"));
    loaded.live.dashboard.rows[0].panels.clone()
}

/// The message of the error loading `panels` gives.
#[track_caller]
fn refused(panels: &str) -> String {
    from_str(&config(panels), "agent.yaml")
        .unwrap_err()
        .to_string()
}

#[test]
fn a_panel_of_each_kind_takes_its_defaults() {
    let panels = panels(
        "        - { title: Enqueued, rate: relay_jobs_enqueued_total }\n        - { title: Hourly, increase: [relay_jobs_enqueued_total, relay_jobs_dead_total], by: [queue], windows: [1h] }\n        - { title: Depth, value: relay_queue_depth, where: 'state!=\"dlq\"', by: [queue, state] }\n        - { title: Age, value: heartwire_job_last_success_timestamp_seconds, age: true, by: [job] }\n        - { title: Latency, quantile: relay_job_latency_seconds_bucket, by: [] }\n        - title: Dead share\n          ratio: { numerator: { rate: relay_jobs_dead_total }, denominator: { rate: relay_jobs_claimed_total } }\n        - { title: Raw, expr: 'sum(relay_queue_depth)', type: stat, width: 6, height: 4 }\n",
    );
    let [rate, increase, value, age, quantile, ratio, expr] = &panels[..] else {
        panic!("{panels:#?}");
    };
    let Query::Series {
        measure: Measure::Rate,
        families,
        matchers,
        shape,
    } = &rate.query
    else {
        panic!("{rate:#?}");
    };
    assert_eq!(families[0].name, "relay_jobs_enqueued_total");
    assert!(matchers.is_empty());
    assert_eq!(shape.by, None, "every series as it is");
    assert_eq!(shape.windows, [Window::Auto]);
    assert_eq!(shape.aggregate, Aggregate::Sum);
    assert_eq!(
        (rate.unit.as_str(), rate.width, rate.height),
        ("short", 12, 8)
    );
    assert_eq!(rate.display, Display::Timeseries);
    let Query::Series {
        families, shape, ..
    } = &increase.query
    else {
        panic!("{increase:#?}");
    };
    assert_eq!(families[1].key, "increase[1]");
    assert_eq!(shape.windows, [Window::Over(Duration::from_secs(3600))]);
    let Query::Series { matchers, .. } = &value.query else {
        panic!("{value:#?}");
    };
    assert_eq!(
        matchers,
        &[LabelMatcher {
            label: "state".into(),
            op: MatchOp::NotEqual,
            value: "dlq".into()
        }]
    );
    let Query::Series { measure, shape, .. } = &age.query else {
        panic!("{age:#?}");
    };
    assert_eq!((*measure, shape.aggregate), (Measure::Age, Aggregate::Max));
    assert_eq!(age.unit, "s");
    let Query::Quantile {
        family, quantiles, ..
    } = &quantile.query
    else {
        panic!("{quantile:#?}");
    };
    assert_eq!(
        family.name, "relay_job_latency_seconds",
        "_bucket is implied"
    );
    assert_eq!(quantiles, &[0.5, 0.95, 0.99]);
    assert_eq!(quantile.unit, "s");
    let Query::Ratio { shape, .. } = &ratio.query else {
        panic!("{ratio:#?}");
    };
    assert_eq!(
        shape.by,
        Some(Vec::new()),
        "a ratio is one total by default"
    );
    assert_eq!(ratio.unit, "percentunit");
    assert_eq!(expr.query, Query::Expr("sum(relay_queue_depth)".into()));
    assert_eq!(
        (expr.display, expr.width, expr.height),
        (Display::Stat, 6, 4)
    );
}

#[test]
fn thresholds_take_a_base_colour_and_increasing_steps() {
    let panels = panels(
        "        - title: Depth\n          value: relay_queue_depth\n          thresholds: [{ color: blue }, { value: 10, color: orange }, { value: 100, color: '#e02f44' }]\n        - { title: Depth, value: relay_queue_depth, thresholds: [{ value: 10, color: red }] }\n",
    );
    assert_eq!(
        panels[0].thresholds,
        Some(Thresholds {
            base: "blue".into(),
            steps: vec![(10.0, "orange".into()), (100.0, "#e02f44".into())]
        })
    );
    assert_eq!(panels[1].thresholds.as_ref().unwrap().base, "green");
}

#[test]
fn a_panel_gives_exactly_one_kind() {
    let message = refused(
        "        - { title: Two, rate: relay_jobs_dead_total, value: relay_queue_depth }\n",
    );
    assert!(
        message.starts_with(
            "agent.yaml:11:11: dashboard.rows[0].panels[0]: a panel gives exactly one of"
        ),
        "{message}"
    );
    assert!(
        message.ends_with("this one gives rate and value"),
        "{message}"
    );
    let message = refused("        - { title: None }\n");
    assert!(message.contains("this one gives none"), "{message}");
    let message = refused("        - { title: Typo, rates: relay_jobs_dead_total }\n");
    assert!(message.contains("unknown field `rates`"), "{message}");
}

#[test]
fn options_a_kind_does_not_take_are_refused_with_what_to_do() {
    for (panel, key, said) in [
        (
            "{ title: x, expr: up, by: [job] }",
            "panels[0].by",
            "write it into the expression",
        ),
        (
            "{ title: x, value: relay_queue_depth, age: true, windows: [30m] }",
            "panels[0].windows",
            "an age is read as it is",
        ),
        (
            "{ title: x, quantile: relay_job_latency_seconds, aggregate: max }",
            "panels[0].aggregate",
            "the buckets are always summed",
        ),
        (
            "{ title: x, ratio: { numerator: { rate: relay_jobs_dead_total }, denominator: { rate: relay_jobs_claimed_total } }, where: 'queue=\"a\"' }",
            "panels[0].where",
            "give `where` to the numerator or the denominator",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, quantiles: [0.9] }",
            "panels[0].quantiles",
            "does not apply to a `rate` panel",
        ),
    ] {
        let message = refused(&format!("        - {panel}\n"));
        assert!(
            message.contains(&format!("dashboard.rows[0].{key}: ")) && message.contains(said),
            "{panel}: {message}"
        );
    }
}

#[test]
fn values_out_of_bounds_are_refused_at_their_key() {
    for (panel, key, said) in [
        (
            "{ title: '', rate: relay_jobs_dead_total }",
            "panels[0].title",
            "is empty",
        ),
        (
            "{ title: x, rate: relay.jobs.dead }",
            "panels[0].rate",
            "is not a family name",
        ),
        (
            "{ title: x, rate: [relay_jobs_dead_total, relay_jobs_dead_total] }",
            "panels[0].rate[1]",
            "listed twice",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, by: [queue, le] }",
            "panels[0].by[1]",
            "is not a label name",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, windows: [auto, 30] }",
            "panels[0].windows[1]",
            "neither `auto` nor a duration",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, windows: [2y] }",
            "panels[0].windows[0]",
            "out of range: use 1s to 1y",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, windows: [] }",
            "panels[0].windows",
            "0 is out of range: use 1 to 4",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, scale: 0 }",
            "panels[0].scale",
            "0 is out of range",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, where: 'queue=' }",
            "panels[0].where",
            "label matchers as PromQL writes them",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, where: 'a=\"b\"} or up{c=\"d\"' }",
            "panels[0].where",
            "label matchers",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, where: '__name__=\"up\"' }",
            "panels[0].where",
            "metric name must not be set twice",
        ),
        (
            "{ title: x, quantile: relay_job_latency_seconds, quantiles: [95] }",
            "panels[0].quantiles[0]",
            "write 0.95 for p95",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, width: 25 }",
            "panels[0].width",
            "25 is out of range: use 1 to 24",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, thresholds: [{ value: 2, color: red }, { value: 1, color: green }] }",
            "panels[0].thresholds[1].value",
            "above the step before it",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, thresholds: [{ value: 2, color: red }, { color: green }] }",
            "panels[0].thresholds[1].value",
            "only the first step",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, thresholds: [{ color: 'red; x' }] }",
            "panels[0].thresholds[0].color",
            "is not a colour",
        ),
        (
            "{ title: x, rate: relay_jobs_dead_total, legend: \"a\\nb\" }",
            "panels[0].legend",
            "control character",
        ),
        (
            "{ title: x, ratio: { numerator: { rate: relay_jobs_dead_total, value: relay_queue_depth }, denominator: { rate: relay_jobs_claimed_total } } }",
            "panels[0].ratio.numerator",
            "exactly one of rate, increase and value",
        ),
    ] {
        let message = refused(&format!("        - {panel}\n"));
        assert!(
            message.contains(&format!("dashboard.rows[0].{key}: ")) && message.contains(said),
            "{panel}: {message}"
        );
    }
    let message = refused(
        "        - { title: x, rate: [a_total, b_total, c_total, d_total, e_total, f_total, g_total], windows: [auto, 1m, 5m, 1h] }\n",
    );
    assert!(
        message.contains("dashboard.rows[0].panels[0]: makes 28 queries"),
        "{message}"
    );
}

#[test]
fn families_the_config_does_not_know_or_cannot_read_so_are_refused_at_their_key() {
    for (panel, key, said) in [
        (
            "{ title: x, rate: relay_lost_total }",
            "panels[0].rate",
            "`relay_lost_total` is no family this config knows",
        ),
        (
            "{ title: x, value: [relay_queue_depth, app_active] }",
            "panels[0].value[1]",
            "match: app.active, name: app_active",
        ),
        (
            "{ title: x, rate: heartwire_job_running }",
            "panels[0].rate",
            "is a gauge: its rate means nothing; draw it with `value: heartwire_job_running`",
        ),
        (
            "{ title: x, value: heartwire_job_duration_seconds }",
            "panels[0].value",
            "is a histogram: draw its quantiles with `quantile: heartwire_job_duration_seconds`",
        ),
        (
            "{ title: x, quantile: relay_queue_depth }",
            "panels[0].quantile",
            "`relay_queue_depth` is not a histogram",
        ),
        (
            "{ title: x, ratio: { numerator: { rate: relay_jobs_dead_total }, denominator: { rate: relay_claims_total } } }",
            "panels[0].ratio.denominator.rate",
            "`relay_claims_total` is no family",
        ),
        (
            "{ title: x, expr: 'sum(rate(relay_jobs_dead_total[$__rate_interval])) / sum(rate(relay_lost_total[5m]))' }",
            "panels[0].expr",
            "`relay_lost_total` is no family",
        ),
        (
            "{ title: x, expr: 'sum(rate(relay_jobs_dead_total[5m])' }",
            "panels[0].expr",
            "not PromQL",
        ),
    ] {
        let message = refused(&format!("        - {panel}\n"));
        assert!(
            message.contains(&format!("dashboard.rows[0].{key}: ")) && message.contains(said),
            "{panel}: {message}"
        );
        assert!(message.starts_with("agent.yaml:11:"), "{panel}: {message}");
    }
    // Grafana's variables and the rate of a histogram's _count are fine.
    panels(
        "        - { title: x, expr: 'sum by (queue) (rate(relay_job_latency_seconds_count{queue=~\"$queue\"}[$__rate_interval]))' }\n        - { title: y, rate: heartwire_job_duration_seconds_count }\n",
    );
}

#[test]
fn no_rows_is_the_default_and_rows_need_panels() {
    assert_eq!(
        from_str("", "agent.yaml").unwrap().live.dashboard,
        Dashboard::default()
    );
    let message = from_str(
        "dashboard:\n  rows:\n    - { title: Empty, panels: [] }\n",
        "agent.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("dashboard.rows[0].panels: 0 is out of range: use 1 to 50"),
        "{message}"
    );
}
