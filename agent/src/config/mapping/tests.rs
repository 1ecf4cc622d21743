//! The `statsd:` section's errors, table by table, and mapping files read as statsd_exporter
//! writes them.

use std::path::Path;

use crate::aggregate::mapping::{MatchType, MetricType};
use crate::config::load::document_of_file;
use crate::config::{from_file, from_str};

/// The error for `rule`, one entry of inline `mappings`, after the common prefix.
fn rule_error(rule: &str) -> String {
    let yaml = format!("statsd:\n  mapping:\n    mappings:\n      - {rule}\n");
    from_str(&yaml, "agent.yaml").unwrap_err().to_string()
}

/// The error with its `line:column: ` place, which must be there, taken out.
#[track_caller]
fn placed(error: String) -> String {
    let (origin, rest) = error.split_once(':').unwrap();
    let (line, rest) = rest.split_once(':').unwrap();
    let (column, message) = rest.split_once(": ").unwrap();
    assert!(
        line.parse::<usize>().is_ok() && column.parse::<usize>().is_ok(),
        "no place: {error}"
    );
    format!("{origin}: {message}")
}

const NO_SUMMARIES: &str = "is not supported: heartwire builds no summaries, it exposes \
    histograms (quantiles come from histogram_quantile() in PromQL); remove the key and \
    choose buckets with `histogram_options.buckets`";
const SUMMARY_OBSERVER: &str = "is not supported: heartwire exposes every timer, histogram \
    and distribution as a histogram (buckets from `histogram_options.buckets`; quantiles \
    with histogram_quantile()); remove the key or set";
const SHORT_TTL: &str = "one that comes back restarts from 0, and rate() and increase() \
    cannot count the increment that recreated it, so a sparse counter would read as flat. \
    Counters and histograms expire only after 1h or more: raise the ttl to at least 1h, or \
    limit it to gauges (`match_metric_type: gauge` on a mapping rule, or \
    `statsd.gauge_ttl`)";

#[test]
fn unsupported_rule_keys_are_refused_naming_the_key_the_rule_and_what_heartwire_does() {
    let at = "agent.yaml:4:7: statsd.mapping.mappings: rule [0] (match `a.*`): ";
    let table = [
        (
            "observer_type: summary",
            format!("`observer_type: summary` {SUMMARY_OBSERVER} `observer_type: histogram`"),
        ),
        (
            "timer_type: summary",
            format!("`timer_type: summary` {SUMMARY_OBSERVER} `timer_type: histogram`"),
        ),
        (
            "quantiles: [{ quantile: 0.5, error: 0.05 }]",
            format!("`quantiles` {NO_SUMMARIES}"),
        ),
        (
            "summary_options: { max_age: 1m }",
            format!("`summary_options` {NO_SUMMARIES}"),
        ),
        (
            "scale: 0.001",
            "`scale` is not supported: heartwire converts `ms` timers to seconds itself and \
             keeps `h` and `d` values as sent; remove the key and send values in the unit \
             the metric's name says"
                .to_owned(),
        ),
        (
            "honor_labels: true",
            "`honor_labels: true` is not supported: a rule's labels always win over the \
             line's tags of the same name (statsd_exporter's `honor_labels: false`); remove \
             the key, or give the rule's label another name"
                .to_owned(),
        ),
        (
            "histogram_options: { native_histogram_bucket_factor: 1.1 }",
            "`histogram_options.native_histogram_bucket_factor` is not supported: heartwire \
             exposes classic histograms with explicit buckets; remove the key and list \
             `histogram_options.buckets`"
                .to_owned(),
        ),
        (
            "histogram_options: { native_histogram_max_buckets: 100 }",
            "`histogram_options.native_histogram_max_buckets` is not supported: heartwire \
             exposes classic histograms with explicit buckets; remove the key and list \
             `histogram_options.buckets`"
                .to_owned(),
        ),
        (
            "histogram_options: { buckets: [1] }, buckets: [2]",
            "buckets are given twice: keep `histogram_options.buckets` and remove the \
             top-level `buckets`"
                .to_owned(),
        ),
        (
            "action: keep",
            "`action: keep` is not an action: use map or drop".to_owned(),
        ),
        (
            "match_metric_type: timer",
            "`match_metric_type: timer` is not a metric type: use counter, gauge or \
             observer (observer matches ms, h and d)"
                .to_owned(),
        ),
        (
            "match_type: exact",
            "`match_type: exact` is not a match type: use glob or regex".to_owned(),
        ),
    ];
    for (key, message) in table {
        let error = rule_error(&format!("{{ match: a.*, name: x, {key} }}"));
        assert_eq!(error, format!("{at}{message}"), "{key}");
    }
}

#[test]
fn unsupported_defaults_are_refused_with_what_heartwire_does() {
    let at = "agent.yaml:3:5: statsd.mapping: defaults: ";
    let table = [
        (
            "observer_type: summary",
            format!("`observer_type: summary` {SUMMARY_OBSERVER} `observer_type: histogram`"),
        ),
        ("quantiles: []", format!("`quantiles` {NO_SUMMARIES}")),
        (
            "summary_options: {}",
            format!("`summary_options` {NO_SUMMARIES}"),
        ),
        (
            "glob_disable_ordering: true",
            "`glob_disable_ordering: true` is not supported: heartwire always applies the \
             first matching glob in file order (its glob matching costs the same either \
             way); remove the key or set it to false"
                .to_owned(),
        ),
    ];
    for (key, message) in table {
        let yaml = format!("statsd:\n  mapping:\n    defaults:\n      {key}\n");
        let error = from_str(&yaml, "agent.yaml").unwrap_err().to_string();
        assert_eq!(error, format!("{at}{message}"), "{key}");
    }
}

#[test]
fn broken_rules_name_the_rule_key_and_the_fix() {
    let table = [
        (
            "{ match: a.*, name: x_$1_total }",
            "statsd.mapping.mappings[0].name: `$1_total` refers to a capture named \
             `1_total` (a reference takes every letter, digit and `_` after the `$`): write \
             `${1}_total`",
        ),
        (
            "{ match: a.*, name: x_$2 }",
            "statsd.mapping.mappings[0].name: `$2` refers to no capture: the glob has 1 \
             `*`, captured as `$1` to `$1`",
        ),
        (
            "{ match: 'a(.*)', match_type: regex, name: 'x_${nope}' }",
            "statsd.mapping.mappings[0].name: `$nope` refers to no capture: the regex has \
             no group named `nope`",
        ),
        (
            "{ match: a.*, name: x.y }",
            "statsd.mapping.mappings[0].name: `x.y` is not a metric name: use letters, \
             digits and `_` (not starting with a digit), with captures such as `${1}` \
             mixed in",
        ),
        (
            "{ match: a.* }",
            "statsd.mapping.mappings[0].name: is missing: give the family name (captures \
             such as `${1}` allowed)",
        ),
        (
            "{ match: a*.b, name: x }",
            "statsd.mapping.mappings[0].match: `a*.b`: a `*` stands for a whole \
             dot-separated component (`a.*.c`); for part of a component use `match_type: \
             regex`",
        ),
        (
            "{ match: '(a', match_type: regex, name: x }",
            "statsd.mapping.mappings[0].match: `(a` is not a valid regex: unclosed group",
        ),
        (
            "{ match: a.*, name: x, labels: { le: $1 } }",
            "statsd.mapping.mappings[0].labels.le: `le` is not a usable label name: use \
             letters, digits and `_`, not starting with a digit, and not `le`, `quantile` \
             or a name starting with `__`",
        ),
        (
            "{ match: a.*, name: x, buckets: [2, 1] }",
            "statsd.mapping.mappings[0].buckets: 2 is not below 1: bounds are strictly \
             increasing",
        ),
    ];
    for (rule, message) in table {
        let error = rule_error(rule);
        // A missing key has no place in the file: the message names it alone.
        let error = if message.contains("is missing") {
            error
        } else {
            placed(error)
        };
        assert_eq!(error, format!("agent.yaml: {message}"), "{rule}");
    }
}

#[test]
fn a_short_ttl_that_could_expire_counters_is_refused_saying_why() {
    assert_eq!(
        placed(rule_error("{ match: a.*, name: x, ttl: 10s }")),
        format!(
            "agent.yaml: statsd.mapping.mappings[0].ttl: a ttl of 10s would expire the \
             counters and histograms this rule matches: {SHORT_TTL}"
        )
    );
    assert_eq!(
        placed(rule_error(
            "{ match: a.*, name: x, match_metric_type: counter, ttl: 59m }"
        )),
        format!(
            "agent.yaml: statsd.mapping.mappings[0].ttl: a ttl of 59m would expire the \
             counters and histograms this rule matches: {SHORT_TTL}"
        )
    );
    let defaults = "statsd:\n  mapping:\n    defaults:\n      ttl: 5m\n";
    assert_eq!(
        placed(from_str(defaults, "agent.yaml").unwrap_err().to_string()),
        format!(
            "agent.yaml: statsd.mapping.defaults.ttl: a ttl of 5m would expire every \
             counter and histogram, mapped or not: {SHORT_TTL}"
        )
    );
    assert_eq!(
        placed(
            from_str("statsd:\n  counter_ttl: 10m\n", "agent.yaml")
                .unwrap_err()
                .to_string()
        ),
        format!(
            "agent.yaml: statsd.counter_ttl: a ttl of 10m would expire counters and \
             histograms: {SHORT_TTL}"
        )
    );
    // Gauge rules may expire quickly; counters after an hour or more.
    for rule in [
        "{ match: a.*, name: x, match_metric_type: gauge, ttl: 10s }",
        "{ match: a.*, name: x, ttl: 1h }",
    ] {
        let yaml = format!("statsd:\n  mapping:\n    mappings:\n      - {rule}\n");
        assert!(from_str(&yaml, "agent.yaml").is_ok(), "{rule}");
    }
}

#[test]
fn a_ttl_without_a_unit_is_refused() {
    assert_eq!(
        rule_error("{ match: a.*, name: x, match_metric_type: gauge, ttl: 60 }"),
        "agent.yaml:4:9: statsd.mapping.mappings[0]: ttl `60` is not a duration: give a \
         number with a unit, e.g. 90s, 10m, 1h30m (0 for none)"
    );
}

#[test]
fn typos_are_unknown_fields() {
    let error = rule_error("{ match: a.*, name: x, bukets: [1] }");
    assert!(
        error.starts_with(
            "agent.yaml:4:32: statsd.mapping.mappings[0]: unknown field `bukets`, expected"
        ),
        "{error}"
    );
}

/// A statsd_exporter mapping file as such files are written, with every key heartwire
/// honours, and the accepted no-op values of keys it otherwise refuses.
const EXPORTER_FILE: &str = r#"defaults:
  observer_type: histogram
  match_type: glob
  glob_disable_ordering: false
  ttl: 0 # metrics do not expire
  histogram_options:
    buckets: [0.01, 0.1, 1]
mappings:
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "(.*)\\.(.*)--(.*)\\.status\\.(.*)\\.count"
  match_type: regex
  match_metric_type: counter
  name: "request_total"
  labels:
    hostname: "$1"
    exec: "$2"
    protocol: "$3"
    code: "$4"
  honor_labels: false
- match: "*.timer"
  timer_type: histogram
  buckets: [0.5, 1]
  name: "timer_seconds"
  help: "A timer."
- match: "depth.*"
  match_metric_type: gauge
  name: "depth"
  labels: { code: 200 }
  ttl: 30s
- match: "."
  match_type: regex
  action: drop
  name: "dropped"
"#;

#[test]
fn a_statsd_exporter_mapping_file_loads_unchanged_from_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mapping.yml"), EXPORTER_FILE).unwrap();
    let config_path = dir.path().join("agent.yaml");
    std::fs::write(&config_path, "statsd:\n  mapping_file: mapping.yml\n").unwrap();
    let document = document_of_file(&config_path).unwrap();
    let document = document.statsd.loaded_file.as_ref().unwrap();
    assert_eq!(document.defaults.0.buckets, Some(vec![0.01, 0.1, 1.0]));
    let rules: Vec<_> = document.mappings.iter().map(|rule| &rule.0).collect();
    assert_eq!(rules.len(), 5);
    assert_eq!(rules[1].match_type, Some(MatchType::Regex));
    assert_eq!(rules[1].metric_type, Some(MetricType::Counter));
    assert_eq!(rules[2].buckets, Some(vec![0.5, 1.0]));
    assert_eq!(rules[3].labels, vec![("code".to_owned(), "200".to_owned())]);
    assert!(rules[4].drop);
    let config = from_file(&config_path).unwrap();
    assert_eq!(config.live.statsd.mapping.len(), 5);
}

#[test]
fn mapping_file_errors_name_the_file_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yml");
    let config = format!("statsd:\n  mapping_file: {}\n", mapping.display());
    std::fs::write(&mapping, "mappings:\n- match: a.*\n  name: x\n  scale: 2\n").unwrap();
    let error = from_str(&config, "agent.yaml").unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "{}:2:1: mappings: rule [0] (match `a.*`): `scale` is not supported",
            mapping.display()
        )),
        "{error}"
    );
    std::fs::write(&mapping, "mappings:\n- match: a.*\n  name: x_$9\n").unwrap();
    assert_eq!(
        placed(from_str(&config, "agent.yaml").unwrap_err().to_string()),
        format!(
            "agent.yaml: statsd.mapping_file: {}: `mappings[0].name`: `$9` refers to no \
             capture: the glob has 1 `*`, captured as `$1` to `$1`",
            mapping.display()
        )
    );
    std::fs::remove_file(&mapping).unwrap();
    let error = placed(from_str(&config, "agent.yaml").unwrap_err().to_string());
    assert!(
        error.starts_with(&format!(
            "agent.yaml: statsd.mapping_file: cannot read {}: ",
            mapping.display()
        )),
        "{error}"
    );
}

#[test]
fn rules_come_inline_or_from_a_file_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.yml");
    std::fs::write(&mapping, "mappings: []\n").unwrap();
    let yaml = format!(
        "statsd:\n  mapping_file: {}\n  mapping:\n    mappings:\n      - {{ match: a, name: b }}\n",
        mapping.display()
    );
    assert_eq!(
        placed(from_str(&yaml, "agent.yaml").unwrap_err().to_string()),
        "agent.yaml: statsd.mapping_file: give the rules inline in `statsd.mapping` or in \
         a mapping file, not both"
    );
    assert!(Path::new(&mapping).exists());
}

#[test]
fn the_watched_text_changes_with_the_mapping_file_beside_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    let text = "statsd:\n  mapping_file: mapping.yml\n";
    std::fs::write(dir.path().join("mapping.yml"), "mappings: []\n").unwrap();
    let before = crate::config::watched_text(text, Some(&config));
    std::fs::write(
        dir.path().join("mapping.yml"),
        "mappings: [{ match: a, name: b }]\n",
    )
    .unwrap();
    assert_ne!(crate::config::watched_text(text, Some(&config)), before);
    assert_eq!(
        crate::config::watched_text("jobs: {}\n", Some(&config)),
        "jobs: {}\n"
    );
}
