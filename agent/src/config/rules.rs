//! The `alerts:` and `alert_guards:` sections: alert rules that `heartwire rules` prints beside
//! the ones it derives from `jobs:` and `workers:`. The agent itself does not evaluate them.
//!
//! Each alert says what it measures with exactly one kind key, how it compares (a comparison
//! key), and how it is routed. The families it names must be ones the config knows (a built-in
//! family, a self-metric, or a StatsD family a `statsd.mapping` rule declares): the check is in
//! [`crate::rules::check`], which runs when the config is loaded.
//!
//! ```yaml
//! alert_guards:                                   # conditions, defined once, named by alerts
//!   deploy_lock: healtharchive_crawl_auto_recover_deploy_lock_present == 1
//!   output_dir_stale_mount:                       # matched on these labels (default: on())
//!     expr: healtharchive_crawl_running_job_output_dir_errno == 107
//!     on: [source]
//! alerts:
//!   CrawlStalled:
//!     threshold:                                  # a family's value
//!       family: healtharchive_crawl_running_job_stalled
//!       where: { task: { regex: "crawl-.+" } }    # label matchers (see below)
//!       aggregate: max                            # sum | min | max | avg | count, optional
//!       by: [task]
//!     equals: 1                                   # or above, below, at_least, at_most, not_equals
//!     for: 30m
//!   PagesSlow:
//!     rate: { family: pages_total, window: 10m, per: 1m }   # also increase, delta
//!     below: 2
//!     unless: [deploy_lock]                       # guards: `unless on() (…)`, `and on() (…)`
//!   RestartsHigh:
//!     threshold: { family: restarts_done }
//!     at_least: { source: { hc: 19, phac: 24 } } # a threshold per value of one label
//!   WatchdogSilent:
//!     not_updated: { timestamp: last_run_timestamp_seconds, after: 10m, or_absent: true }
//!   NoHeartbeatSeries:
//!     absent: { family: worker_active, over: 10m }
//!   ScraperProviderHighFailureRate:
//!     failure_ratio:
//!       counter: vf_scraper_requests_total
//!       failures: { outcome: [http_5xx, timeout] }   # or { status_code: { regex: "5.." } }
//!       by: [provider]
//!     above: 0.2
//!   Raw:
//!     expr: should_be_running == 1 and active == 0   # any PromQL, parsed when checked
//! ```
//!
//! Label matchers (`where:`, `failures:`): `label: value` (`=`), `label: [a, b]` (any of, values
//! matched literally), `label: { not: value }` (`!=`), `label: { not: [a, b] }` (none of),
//! `label: { regex: "5.." }` (`=~`, RE2, anchored), `label: { not_regex: "2.." }` (`!~`); or
//! PromQL's own text between braces, as `dashboard:` panels take it: `'errno!="107"'`.
//!
//! Common keys of every alert: `for` (default `5m`, 0s to 1y), `severity` (default `warning`),
//! `group` (the rule group, default `heartwire-alerts`), `labels` (extra labels for routing),
//! `summary`, `description`, `runbook` (Prometheus template text such as `{{ $labels.source }}`
//! and `{{ $value }}` passes through unchanged), `unless` and `and` (names of `alert_guards`).

mod raw;
mod values;

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::naming::is_metric_name;

pub use values::{LabelMatch, Matchers, Threshold};

/// The `alerts:` map, by alert name, in config order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerts(pub IndexMap<String, Alert>);

impl Alerts {
    /// The failure-ratio alerts, with their ratio and the threshold they fire above.
    pub fn failure_ratios(&self) -> impl Iterator<Item = (&str, &FailureRatio, f64)> {
        self.0
            .iter()
            .filter_map(|(name, alert)| match (&alert.kind, &alert.compare) {
                (
                    AlertKind::FailureRatio(ratio),
                    Some(Compare {
                        threshold: Threshold::Value(value),
                        ..
                    }),
                ) => Some((name.as_str(), ratio, *value)),
                _ => None,
            })
    }
}

/// One alert of `alerts:`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "raw::RawAlert")]
pub struct Alert {
    /// What is measured.
    pub kind: AlertKind,
    /// How the measure compares; `None` for kinds that carry their own condition (`absent`,
    /// `not_updated`, and `expr` without a comparison).
    pub compare: Option<Compare>,
    /// Guards (names in `alert_guards:`) that silence the alert while they hold.
    pub unless: Vec<String>,
    /// Guards that must all hold for the alert to fire.
    pub and: Vec<String>,
    /// How long the condition must hold before the alert fires; default `5m`, 0s to 1y.
    pub for_: Duration,
    /// The `severity` label; default `warning`.
    pub severity: String,
    /// The rule group; default `heartwire-alerts`.
    pub group: Option<String>,
    /// Further labels, for routing.
    pub labels: IndexMap<String, String>,
    /// The `summary` annotation; default: one generated from the measure and the comparison.
    pub summary: Option<String>,
    /// The `description` annotation; default: one generated from the measure and the comparison.
    pub description: Option<String>,
    /// The `runbook` annotation: what to look at first; default: none.
    pub runbook: Option<String>,
}

/// What an alert measures: one kind key of the alert.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertKind {
    /// `threshold:`: a family's value.
    Threshold(Selection),
    /// `increase:`: a counter's increase over a window.
    Increase(Windowed),
    /// `rate:`: a counter's rate over a window, per `per`.
    Rate(Windowed, Duration),
    /// `delta:`: a gauge's change over a window.
    Delta(Windowed),
    /// `not_updated:`: a timestamp older than, or a series unchanged for, `after`.
    NotUpdated(NotUpdated),
    /// `absent:`: no series of a family (matching the matchers).
    Absent(Absent),
    /// `failure_ratio:`: the failed share of a counter.
    FailureRatio(FailureRatio),
    /// `expr:`: PromQL as written.
    Expr(String),
}

impl AlertKind {
    /// The kind's key in the config.
    pub fn key(&self) -> &'static str {
        match self {
            AlertKind::Threshold(_) => "threshold",
            AlertKind::Increase(_) => "increase",
            AlertKind::Rate(..) => "rate",
            AlertKind::Delta(_) => "delta",
            AlertKind::NotUpdated(_) => "not_updated",
            AlertKind::Absent(_) => "absent",
            AlertKind::FailureRatio(_) => "failure_ratio",
            AlertKind::Expr(_) => "expr",
        }
    }
}

/// The series of one family an alert measures, optionally aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The family as `/metrics` names it.
    pub family: String,
    /// `where:`: label matchers, all of which must match.
    pub matchers: Matchers,
    /// The aggregation over the series; default none (one alert per series).
    pub aggregate: Option<Aggregate>,
    /// The labels the aggregation keeps; default none (one value over all series).
    pub by: Vec<String>,
}

/// A selection measured over a window (`increase`, `rate`, `delta`).
#[derive(Debug, Clone, PartialEq)]
pub struct Windowed {
    /// The series.
    pub selection: Selection,
    /// The window; default `5m`, 1s to 1y.
    pub window: Duration,
}

/// An aggregation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// `sum`.
    Sum,
    /// `min`.
    Min,
    /// `max`.
    Max,
    /// `avg`.
    Avg,
    /// `count`.
    Count,
}

impl Aggregate {
    /// The PromQL operator.
    pub fn promql(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
            Aggregate::Count => "count",
        }
    }
}

/// `not_updated:`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotUpdated {
    /// The series: a timestamp gauge (`timestamp:`) or any series (`series:`).
    pub selection: Selection,
    /// What "updated" means.
    pub of: Updated,
    /// How old the timestamp, or how long the series unchanged, before the alert fires; 1s to 1y.
    pub after: Duration,
    /// Whether no series at all fires too (`or absent(…)`); default false.
    pub or_absent: bool,
}

/// What `not_updated` watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// `timestamp:`: the value is a Unix time: `time() - value > after`.
    Timestamp,
    /// `series:`: the value itself: `changes(series[after]) == 0`.
    Value,
}

/// `absent:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Absent {
    /// The family.
    pub family: String,
    /// `where:`: label matchers.
    pub matchers: Matchers,
    /// Absent for this whole window (`absent_over_time`); default: absent now (`absent`).
    pub over: Option<Duration>,
}

/// The failed share of a counter's increase: `rate(failed) / rate(all)` over `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureRatio {
    /// The counter's family name as `/metrics` shows it, e.g. `vf_scraper_requests_total` for
    /// the StatsD counter `vf.scraper.requests`.
    pub counter: String,
    /// Which series count as failures: label name → the values that mean failure (all labels
    /// must match); a list is any of its values, `{ regex: "5.." }` a class of values.
    pub failures: Matchers,
    /// One ratio per value of these labels; default none: one ratio over all series.
    pub by: Vec<String>,
    /// The rate window; default `5m`, 1s to 1y.
    pub window: Duration,
}

/// A comparison key and its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    /// The operator.
    pub op: Op,
    /// The number compared with, or one per value of a label.
    pub threshold: Threshold,
}

/// A comparison operator, by its config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `above`: `>`.
    Above,
    /// `below`: `<`.
    Below,
    /// `at_least`: `>=`.
    AtLeast,
    /// `at_most`: `<=`.
    AtMost,
    /// `equals`: `==`.
    Equals,
    /// `not_equals`: `!=`.
    NotEquals,
}

impl Op {
    /// Every operator, in the order the config's keys are listed.
    pub const ALL: [Op; 6] = [
        Op::Above,
        Op::Below,
        Op::AtLeast,
        Op::AtMost,
        Op::Equals,
        Op::NotEquals,
    ];

    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            Op::Above => "above",
            Op::Below => "below",
            Op::AtLeast => "at_least",
            Op::AtMost => "at_most",
            Op::Equals => "equals",
            Op::NotEquals => "not_equals",
        }
    }

    /// The PromQL operator.
    pub fn promql(self) -> &'static str {
        match self {
            Op::Above => ">",
            Op::Below => "<",
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
            Op::Equals => "==",
            Op::NotEquals => "!=",
        }
    }

    /// The operator in words, for generated annotations: `is above`, `is at least`.
    pub fn words(self) -> &'static str {
        match self {
            Op::Above => "is above",
            Op::Below => "is below",
            Op::AtLeast => "is at least",
            Op::AtMost => "is at most",
            Op::Equals => "is",
            Op::NotEquals => "is not",
        }
    }
}

/// The `alert_guards:` map: named PromQL conditions that alerts list under `unless` or `and`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertGuards(pub IndexMap<String, AlertGuard>);

/// One guard: a PromQL condition, and the labels an alert's series are matched on (none by
/// default, so that one label-less series such as a lock flag guards every series of the alert).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "values::RawGuard")]
pub struct AlertGuard {
    /// The condition.
    pub expr: String,
    /// `on(…)`: the labels a guard series must share with an alert series; default none.
    pub on: Vec<String>,
}

/// Whether `name` can name an alert or a guard: the metric name grammar, which every tool
/// accepts.
fn is_alert_name(name: &str) -> bool {
    is_metric_name(name)
}

/// A map of names to definitions, each name checked and each error prefixed with its name.
fn named_map<'de, D, T>(
    deserializer: D,
    (section, what, example): (&'static str, &'static str, &'static str),
) -> Result<IndexMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Visit<T> {
        section: &'static str,
        what: &'static str,
        example: &'static str,
        of: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
        type Value = IndexMap<String, T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a map of {} names to their definitions", self.what)
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut map: M,
        ) -> Result<Self::Value, M::Error> {
            let mut entries = IndexMap::new();
            while let Some(name) = map.next_key::<String>()? {
                if !is_alert_name(&name) {
                    return Err(serde::de::Error::custom(format_args!(
                        "{} name {name:?} is not usable: use letters, digits and '_', e.g. {}",
                        self.what, self.example
                    )));
                }
                // The reader names the place of errors below the entry itself (`alerts.X.key`),
                // with their line; only a check of the whole entry needs its name added.
                let within = format!("{}.{name}", self.section);
                let entry = map.next_value::<T>().map_err(|error| {
                    if error.to_string().contains(&within) {
                        error
                    } else {
                        serde::de::Error::custom(format_args!("{name}: {error}"))
                    }
                })?;
                entries.insert(name, entry);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_map(Visit {
        section,
        what,
        example,
        of: std::marker::PhantomData,
    })
}

impl<'de> Deserialize<'de> for Alerts {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Alerts, D::Error> {
        named_map(
            deserializer,
            ("alerts", "alert", "ScraperProviderHighFailureRate"),
        )
        .map(Alerts)
    }
}

impl<'de> Deserialize<'de> for AlertGuards {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<AlertGuards, D::Error> {
        named_map(deserializer, ("alert_guards", "guard", "deploy_lock")).map(AlertGuards)
    }
}

#[cfg(test)]
mod tests;
