use std::time::Duration;

use super::super::from_str;
use super::*;

const SCRAPER: &str = "statsd:\n  mapping:\n    mappings:\n      - { match: vf.scraper.requests, name: vf_scraper_requests_total }\nalerts:\n  ScraperAllProvidersDown:\n    failure_ratio:\n      counter: vf_scraper_requests_total\n      failures: { outcome: [http_5xx, cf_block] }\n    above: 0.5\n    severity: critical\n";

/// Gauges declared by mapping rules, for the alerts of the tests below.
const GAUGES: &str = "statsd:\n  mapping:\n    mappings:\n      - { match: app.restarts, name: restarts_done, match_metric_type: gauge }\n      - { match: app.lock, name: lock_present, match_metric_type: gauge }\n      - { match: app.pages, name: pages_total, match_metric_type: counter }\n";

#[track_caller]
fn refused(yaml: &str) -> String {
    from_str(yaml, "agent.yaml").unwrap_err().to_string()
}

#[track_caller]
fn alert(yaml: &str, name: &str) -> Alert {
    let config = from_str(&format!("{GAUGES}{yaml}"), "agent.yaml").unwrap();
    config.live.alerts.0[name].clone()
}

#[test]
fn a_failure_ratio_alert_takes_its_defaults() {
    let config = from_str(SCRAPER, "agent.yaml").unwrap();
    let alert = &config.live.alerts.0["ScraperAllProvidersDown"];
    let AlertKind::FailureRatio(ratio) = &alert.kind else {
        panic!("{alert:?}");
    };
    assert_eq!(ratio.counter, "vf_scraper_requests_total");
    assert_eq!(
        ratio.failures.0,
        [(
            "outcome".to_owned(),
            LabelMatch::AnyOf(vec!["http_5xx".to_owned(), "cf_block".to_owned()])
        )]
    );
    assert!(ratio.by.is_empty());
    assert_eq!(ratio.window, Duration::from_secs(300));
    assert_eq!(alert.for_, Duration::from_secs(300));
    assert_eq!(
        alert.compare,
        Some(Compare {
            op: Op::Above,
            threshold: Threshold::Value(0.5)
        })
    );
    assert_eq!(alert.severity, "critical");
    assert_eq!(
        (alert.summary.as_deref(), alert.group.as_deref()),
        (None, None)
    );
}

#[test]
fn bad_alerts_name_the_alert_the_key_and_the_fix() {
    let message = refused(&SCRAPER.replace("0.5", "20"));
    assert!(message.contains("ScraperAllProvidersDown"), "{message}");
    assert!(message.contains("write 0.2 for 20 %"), "{message}");
    let message = refused(&SCRAPER.replace("counter: vf_", "counter: vf."));
    assert!(message.contains("is not a metric name"), "{message}");
    let message = refused(&SCRAPER.replace("outcome:", "__outcome:"));
    assert!(message.contains("is not a label name"), "{message}");
    let message = refused(&SCRAPER.replace("[http_5xx, cf_block]", "[]"));
    assert!(
        message.contains("one or more non-empty values"),
        "{message}"
    );
    let message = refused(&SCRAPER.replace("severity:", "severty:"));
    assert!(message.contains("unknown field `severty`"), "{message}");
    let message = refused(&SCRAPER.replace("ScraperAllProvidersDown", "scraper down"));
    assert!(message.contains("alert name \"scraper down\""), "{message}");
    let message = refused(&SCRAPER.replace("    above: 0.5\n", ""));
    assert!(
        message.contains("`failure_ratio` needs a comparison"),
        "{message}"
    );
}

#[test]
fn failure_classes_are_regexes_or_promql_matchers() {
    let regex = alert(
        "alerts:\n  Errors:\n    failure_ratio:\n      counter: heartwire_external_http_total\n      failures: { status_code: { regex: \"5..|network\" } }\n    above: 0.05\n",
        "Errors",
    );
    let AlertKind::FailureRatio(ratio) = regex.kind else {
        panic!("{regex:?}");
    };
    assert_eq!(
        ratio.failures.0,
        [(
            "status_code".to_owned(),
            LabelMatch::Regex("5..|network".to_owned())
        )]
    );
    let text = alert(
        "alerts:\n  Errors:\n    failure_ratio:\n      counter: heartwire_external_http_total\n      failures: 'status_code=~\"[45]..\", service!=\"test\"'\n    above: 0.05\n",
        "Errors",
    );
    let AlertKind::FailureRatio(ratio) = text.kind else {
        panic!("{text:?}");
    };
    assert_eq!(
        ratio.failures.0,
        [
            (
                "status_code".to_owned(),
                LabelMatch::Regex("[45]..".to_owned())
            ),
            ("service".to_owned(), LabelMatch::Not("test".to_owned())),
        ]
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  Errors:\n    failure_ratio:\n      counter: heartwire_external_http_total\n      failures: {{ status_code: {{ regex: \"5..(\" }} }}\n    above: 0.05\n"
    ));
    assert!(
        message.contains("`failure_ratio.failures.status_code`: \"5..(\" is not a regex"),
        "{message}"
    );
}

#[test]
fn every_matcher_form_reads_as_its_promql_operator() {
    let threshold = alert(
        "alerts:\n  High:\n    threshold:\n      family: restarts_done\n      where: { source: hc, errno: { not: 107 }, a: [x, y], b: { not: [x, y] }, c: { regex: \"h.*\" }, d: { not_regex: \"p.*\" }, e: \"\" }\n      aggregate: max\n      by: [source]\n    at_least: 19\n",
        "High",
    );
    let AlertKind::Threshold(selection) = threshold.kind else {
        panic!("{threshold:?}");
    };
    let owned = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        selection.matchers.0,
        [
            ("source".to_owned(), LabelMatch::Is("hc".to_owned())),
            ("errno".to_owned(), LabelMatch::Not("107".to_owned())),
            ("a".to_owned(), LabelMatch::AnyOf(owned(&["x", "y"]))),
            ("b".to_owned(), LabelMatch::NoneOf(owned(&["x", "y"]))),
            ("c".to_owned(), LabelMatch::Regex("h.*".to_owned())),
            ("d".to_owned(), LabelMatch::NotRegex("p.*".to_owned())),
            ("e".to_owned(), LabelMatch::Is(String::new())),
        ]
    );
    assert_eq!(selection.aggregate, Some(Aggregate::Max));
    let message = refused(&format!(
        "{GAUGES}alerts:\n  High:\n    threshold: {{ family: restarts_done, where: {{ errno: {{ ne: 107 }} }} }}\n    above: 1\n"
    ));
    assert!(message.contains("unknown matcher `ne`"), "{message}");
}

#[test]
fn an_alert_has_one_kind_and_a_comparison_where_its_kind_needs_one() {
    let message = refused(&format!(
        "{GAUGES}alerts:\n  Two:\n    threshold: {{ family: restarts_done }}\n    absent: {{ family: restarts_done }}\n    above: 1\n"
    ));
    assert!(
        message.contains("`threshold`, `absent` are 2 kinds"),
        "{message}"
    );
    let message = refused(&format!("{GAUGES}alerts:\n  None:\n    above: 1\n"));
    assert!(
        message.contains("None: says what it measures with one of `threshold`"),
        "{message}"
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  Both:\n    threshold: {{ family: restarts_done }}\n    above: 1\n    below: 3\n"
    ));
    assert!(
        message.contains("`above` and `below` are two comparisons"),
        "{message}"
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  Old:\n    not_updated: {{ timestamp: restarts_done, after: 10m }}\n    above: 600\n"
    ));
    assert!(
        message.contains("drop `above` (the age is `not_updated.after`)"),
        "{message}"
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  Inf:\n    threshold: {{ family: restarts_done }}\n    above: .inf\n"
    ));
    assert!(
        message.contains("`above` (inf) is not a finite number"),
        "{message}"
    );
}

#[test]
fn windows_rates_and_ages_stay_within_their_bounds() {
    let rate = alert(
        "alerts:\n  Slow:\n    rate: { family: pages_total, window: 10m, per: 1m }\n    below: 2\n    for: 45m\n",
        "Slow",
    );
    let AlertKind::Rate(windowed, per) = &rate.kind else {
        panic!("{rate:?}");
    };
    assert_eq!(
        (windowed.window, *per, rate.for_),
        (
            Duration::from_secs(600),
            Duration::from_secs(60),
            Duration::from_secs(2700)
        )
    );
    for (yaml, expected) in [
        (
            "increase: { family: pages_total, window: 0s }\n    above: 1",
            "`increase.window`: 0s is out of range: use 1s to 1y",
        ),
        (
            "not_updated: { timestamp: restarts_done, after: 2y }",
            "`not_updated.after`: 2y is out of range",
        ),
        (
            "threshold: { family: restarts_done }\n    above: 1\n    for: 2y",
            "`for`: 2y is out of range",
        ),
        (
            "threshold: { family: restarts_done, by: [source] }\n    above: 1",
            "`threshold.by` needs `threshold.aggregate`",
        ),
        (
            "not_updated: { after: 1h }",
            "`not_updated` names one family",
        ),
    ] {
        let message = refused(&format!("{GAUGES}alerts:\n  Bad:\n    {yaml}\n"));
        assert!(message.contains(expected), "{yaml}: {message}");
    }
}

#[test]
fn thresholds_per_label_value_need_the_label_kept() {
    let high = alert(
        "alerts:\n  High:\n    threshold: { family: restarts_done }\n    at_least: { source: { hc: 19, phac: 24.5 } }\n",
        "High",
    );
    let Some(Compare {
        op: Op::AtLeast,
        threshold: Threshold::PerLabel { label, values },
    }) = &high.compare
    else {
        panic!("{high:?}");
    };
    assert_eq!(label, "source");
    assert_eq!(
        values.iter().collect::<Vec<_>>(),
        [(&"hc".to_owned(), &19.0), (&"phac".to_owned(), &24.5)]
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  High:\n    threshold: {{ family: restarts_done, aggregate: sum, by: [task] }}\n    at_least: {{ source: {{ hc: 19 }} }}\n"
    ));
    assert!(
        message.contains("add `source` to `threshold.by`"),
        "{message}"
    );
    let message = refused(&format!(
        "{GAUGES}alerts:\n  High:\n    expr: restarts_done\n    at_least: {{ source: {{ hc: 19 }} }}\n"
    ));
    assert!(
        message.contains("write the comparison into the expression"),
        "{message}"
    );
}

#[test]
fn routing_labels_groups_and_guards_are_checked() {
    let routed = alert(
        "alert_guards:\n  deploy_lock: lock_present == 1\n  rising: { expr: \"delta(restarts_done[12h]) > 0\", on: [source] }\nalerts:\n  High:\n    threshold: { family: restarts_done }\n    above: 19\n    unless: [deploy_lock]\n    and: [rising]\n    group: crawl\n    labels: { team: crawl, page: \"{{ $labels.source }}\" }\n    summary: \"{{ $labels.source }} restarts: {{ $value }}\"\n",
        "High",
    );
    assert_eq!(
        (routed.unless, routed.and, routed.group.as_deref()),
        (
            vec!["deploy_lock".to_owned()],
            vec!["rising".to_owned()],
            Some("crawl")
        )
    );
    assert_eq!(routed.labels["page"], "{{ $labels.source }}");
    assert_eq!(
        routed.summary.as_deref(),
        Some("{{ $labels.source }} restarts: {{ $value }}")
    );
    for (yaml, expected) in [
        (
            "labels: { severity: page }",
            "`labels.severity`: heartwire sets this label",
        ),
        (
            "group: heartwire-jobs",
            "heartwire-jobs is one of heartwire's own rule groups",
        ),
        ("labels: { 0bad: x }", "is not a label name"),
    ] {
        let message = refused(&format!(
            "{GAUGES}alerts:\n  High:\n    threshold: {{ family: restarts_done }}\n    above: 19\n    {yaml}\n"
        ));
        assert!(message.contains(expected), "{yaml}: {message}");
    }
    let message = refused(&format!(
        "{GAUGES}alert_guards:\n  lock: {{ expr: \"lock_present == 1\", on: [__x] }}\n"
    ));
    assert!(message.contains("is not a label name"), "{message}");
    let message = refused(&format!(
        "{GAUGES}alert_guards:\n  lock: {{ exp: \"lock_present == 1\" }}\n"
    ));
    assert!(message.contains("unknown field `exp`"), "{message}");
}
