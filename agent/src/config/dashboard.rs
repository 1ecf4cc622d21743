//! The `dashboard:` section: rows of panels that `heartwire dashboard` adds after the rows it
//! derives from jobs, calls and workers, over any family the config knows (a built-in family
//! under its configured name, a self-metric, a StatsD family a mapping rule names).
//!
//! A panel gives one kind of query and the family (or families) it reads, and options that
//! shape it; whatever is left out takes a default that draws a readable panel:
//!
//! ```yaml
//! dashboard:
//!   rows:
//!     - title: Relay
//!       panels:
//!         - title: Transitions per second
//!           rate: [relay_jobs_enqueued_total, relay_jobs_processed_total]
//!           by: [queue]
//!         - title: End-to-end latency
//!           quantile: relay_job_latency_seconds
//!           quantiles: [0.5, 0.95, 0.99]
//!           by: [queue]
//!         - title: Queue depth
//!           value: relay_queue_depth
//!           where: { state: { not: dlq } }          # or PromQL: 'state!="dlq"'
//!           by: [queue, state]
//! ```
//!
//! [`DashboardDocument`] is the section as written; [`DashboardDocument::resolve`] checks every
//! value against its bound into the [`Dashboard`] model. Whether the families exist, have the
//! type the query needs, and whether the PromQL parses is checked against the whole config by
//! [`crate::rules::check`], which knows the families.

mod panel;
#[cfg(test)]
mod tests;
mod values;

use std::time::Duration;

use serde::Deserialize;

use super::Matchers;
use super::bounds::{DASHBOARD_PANELS, DASHBOARD_ROWS};

/// `dashboard:` as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardDocument {
    /// Rows of panels, drawn after the rows heartwire derives; default none.
    pub rows: Vec<RowDocument>,
}

/// One row of `dashboard.rows`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowDocument {
    /// The row's title.
    pub title: String,
    /// Its panels, left to right, wrapping onto the next line at 24 columns.
    pub panels: Vec<PanelDocument>,
}

/// One panel as written: exactly one of `rate`, `increase`, `value`, `quantile`, `ratio` and
/// `expr`, with the options that kind takes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelDocument {
    /// The panel's title.
    pub title: String,
    /// The panel's description (the `i` in its corner); default: one said from the query.
    pub description: Option<String>,
    /// The per-second rate of a counter, or of each of a list of counters.
    pub rate: Option<FamilyList>,
    /// The increase of a counter (or of each of a list) over the window.
    pub increase: Option<FamilyList>,
    /// A gauge (or each of a list) as it is; with `age: true`, the seconds since the
    /// timestamp it holds.
    pub value: Option<FamilyList>,
    /// Quantiles of a histogram, from its `_bucket` series.
    pub quantile: Option<String>,
    /// One query over another.
    pub ratio: Option<RatioDocument>,
    /// PromQL as it is, Grafana variables allowed.
    pub expr: Option<String>,
    /// Label matchers, as `alerts:` writes them: a map (`{ state: ready }`, `{ outcome: [a, b] }`,
    /// `{ queue: { not: test } }`, `{ code: { regex: "5.." } }`, `{ code: { not_regex: "2.." } }`)
    /// or PromQL's own text between braces (`'outcome=~"5..", queue!="test"'`).
    #[serde(rename = "where")]
    pub matchers: Option<Matchers>,
    /// One series per value of these labels; default: every series as it is (a ratio: one
    /// total). `[]` is one total.
    pub by: Option<Vec<String>>,
    /// How series are combined for `by`; default `sum` (`max` for an age).
    pub aggregate: Option<Aggregate>,
    /// The windows of rates, increases, quantiles and averages of a value: `auto` (Grafana's
    /// `$__rate_interval`; a value as it is) or a duration; one series each; default `[auto]`.
    pub windows: Option<Vec<String>>,
    /// The quantiles of a `quantile` panel; default `[0.5, 0.95, 0.99]`.
    pub quantiles: Option<Vec<f64>>,
    /// `value` only: show `time() - value`, the age of a timestamp in seconds.
    #[serde(default)]
    pub age: bool,
    /// Multiplies every value, e.g. 60 for a rate per minute.
    pub scale: Option<f64>,
    /// Grafana's unit id (`s`, `percentunit`, `reqps`, `short`…); default by kind.
    pub unit: Option<String>,
    /// `timeseries` (default), `stat` or `state-timeline`.
    #[serde(default, rename = "type")]
    pub display: Display,
    /// Colour steps: the first may leave out `value` (the base colour, default green).
    #[serde(default)]
    pub thresholds: Vec<ThresholdDocument>,
    /// The legend of each series, Grafana's `{{label}}` allowed; default from `by`.
    pub legend: Option<String>,
    /// Columns of Grafana's 24; default 12.
    pub width: Option<u64>,
    /// Grid rows; default 8.
    pub height: Option<u64>,
}

/// `ratio:` as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioDocument {
    /// What is counted.
    pub numerator: SideDocument,
    /// What it is counted out of.
    pub denominator: SideDocument,
}

/// One side of a ratio: exactly one of `rate`, `increase` and `value`, and its own matchers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideDocument {
    /// A counter's rate.
    pub rate: Option<String>,
    /// A counter's increase.
    pub increase: Option<String>,
    /// A gauge.
    pub value: Option<String>,
    /// Label matchers, as for a panel.
    #[serde(rename = "where")]
    pub matchers: Option<Matchers>,
}

/// One colour step as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdDocument {
    /// From this value up; none for the base colour.
    pub value: Option<f64>,
    /// A Grafana colour name (`green`, `orange`, `red`, `text`…) or `#rrggbb`.
    pub color: String,
}

/// One family name, or a list of them (one query each).
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyList {
    /// The names, in the order written.
    pub names: Vec<String>,
    /// Whether they were written as a list (errors then name the entry: `rate[1]`).
    pub listed: bool,
}

impl<'de> Deserialize<'de> for FamilyList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FamilyList, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = FamilyList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a family name or a list of family names")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<FamilyList, E> {
                Ok(FamilyList {
                    names: vec![name.to_owned()],
                    listed: false,
                })
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FamilyList, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(FamilyList {
                    names,
                    listed: true,
                })
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// How the series of a panel with `by` are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// `sum by(…)`.
    Sum,
    /// `max by(…)`.
    Max,
    /// `min by(…)`.
    Min,
    /// `avg by(…)`.
    Avg,
    /// `count by(…)`.
    Count,
}

impl Aggregate {
    /// The PromQL aggregation operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Avg => "avg",
            Aggregate::Count => "count",
        }
    }
}

/// The Grafana panel a panel is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Display {
    /// Lines over time.
    #[default]
    Timeseries,
    /// The last value, large.
    Stat,
    /// Coloured bands over time, one per series.
    StateTimeline,
}

/// The `dashboard:` section, checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dashboard {
    /// The rows, in config order.
    pub rows: Vec<Row>,
}

/// A row of the section.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Its title.
    pub title: String,
    /// Its panels.
    pub panels: Vec<Panel>,
}

/// A panel, checked: every bound holds and the options fit its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Its config key, `dashboard.rows[0].panels[2]`, for errors found against the families.
    pub key: String,
    /// Its title.
    pub title: String,
    /// Its description, if the config gives one.
    pub description: Option<String>,
    /// What it shows.
    pub query: Query,
    /// Grafana's unit id.
    pub unit: String,
    /// How it is drawn.
    pub display: Display,
    /// Its colour steps, if any.
    pub thresholds: Option<Thresholds>,
    /// The legend of its series, if the config gives one.
    pub legend: Option<String>,
    /// Columns, 1 to 24.
    pub width: u32,
    /// Grid rows.
    pub height: u32,
}

/// What a panel shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `rate`, `increase` or `value` of one or more families.
    Series {
        /// Which.
        measure: Measure,
        /// The families, one query each (per window).
        families: Vec<Named>,
        /// `where`.
        matchers: Vec<LabelMatcher>,
        /// `by`, `aggregate`, `windows`, `scale`.
        shape: Shape,
    },
    /// `quantile` of a histogram.
    Quantile {
        /// The histogram's family name (without `_bucket`).
        family: Named,
        /// The quantiles, one query each (per window).
        quantiles: Vec<f64>,
        /// `where`.
        matchers: Vec<LabelMatcher>,
        /// `by`, `windows`, `scale` (the buckets are always summed).
        shape: Shape,
    },
    /// `ratio`: numerator over denominator, both aggregated alike.
    Ratio {
        /// What is counted.
        numerator: Side,
        /// What it is counted out of.
        denominator: Side,
        /// `by`, `aggregate`, `windows`, `scale`.
        shape: Shape,
    },
    /// `expr`: PromQL as written.
    Expr(String),
}

/// What is read of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// `rate()`.
    Rate,
    /// `increase()`.
    Increase,
    /// The value as it is (`avg_over_time()` over a window).
    Value,
    /// `time() - value`.
    Age,
}

impl Measure {
    /// The config key that gives it.
    pub fn key(self) -> &'static str {
        match self {
            Measure::Rate => "rate",
            Measure::Increase => "increase",
            Measure::Value | Measure::Age => "value",
        }
    }
}

/// A family name and the key that gives it, relative to the panel (`rate[1]`,
/// `ratio.numerator.rate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The name, as `/metrics` shows it.
    pub name: String,
    /// The key, relative to the panel's.
    pub key: String,
}

/// One side of a ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// Rate, increase or value.
    pub measure: Measure,
    /// The family.
    pub family: Named,
    /// Its matchers.
    pub matchers: Vec<LabelMatcher>,
}

/// How the series of a query are combined and over which windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// `None`: every series as it is; `Some([])`: one total.
    pub by: Option<Vec<String>>,
    /// The aggregation for `by`.
    pub aggregate: Aggregate,
    /// One query per window.
    pub windows: Vec<Window>,
    /// A factor on every value.
    pub scale: Option<f64>,
}

/// The window of a rate, an increase, a quantile or an average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Grafana's `$__rate_interval`; for a value, the value as it is.
    Auto,
    /// A fixed duration.
    Over(Duration),
}

/// A label matcher of `where`, as PromQL writes it (a list of values is an escaped regex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatcher {
    /// The label.
    pub label: String,
    /// How it is matched.
    pub op: MatchOp,
    /// The value or regex, unescaped.
    pub value: String,
}

/// A PromQL match operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`.
    Equal,
    /// `!=`.
    NotEqual,
    /// `=~`.
    Regex,
    /// `!~`.
    NotRegex,
}

impl MatchOp {
    /// The operator as PromQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Colour steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// The colour below the first step.
    pub base: String,
    /// From each value up, its colour; values strictly increasing.
    pub steps: Vec<(f64, String)>,
}

/// A key at fault and what is wrong with it.
type Invalid = (String, String);

impl DashboardDocument {
    /// The section, checked.
    pub fn resolve(&self) -> Result<Dashboard, Invalid> {
        let count = self.rows.len() as u64;
        DASHBOARD_ROWS
            .check(count)
            .map_err(|message| ("dashboard.rows".to_owned(), message))?;
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(index, row)| row.resolve(&format!("dashboard.rows[{index}]")))
            .collect::<Result<_, _>>()?;
        Ok(Dashboard { rows })
    }
}

impl RowDocument {
    fn resolve(&self, key: &str) -> Result<Row, Invalid> {
        values::text(&format!("{key}.title"), &self.title, panel::TITLE_CHARS)?;
        DASHBOARD_PANELS
            .check(self.panels.len() as u64)
            .map_err(|message| (format!("{key}.panels"), message))?;
        let panels = self
            .panels
            .iter()
            .enumerate()
            .map(|(index, panel)| panel.resolve(&format!("{key}.panels[{index}]")))
            .collect::<Result<_, _>>()?;
        Ok(Row {
            title: self.title.clone(),
            panels,
        })
    }
}
