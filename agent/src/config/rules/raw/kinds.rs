//! The kind keys of an alert as written (`threshold:`, `rate:`, `failure_ratio:`, …) and their
//! checks: names Prometheus accepts, label matchers whose regexes compile, windows within their
//! bounds. The errors name the key under the kind (`threshold.where.errno`) and the fix.

use std::time::Duration;

use serde::Deserialize;

use super::super::values::Matchers;
use super::super::{
    Absent, Aggregate, AlertKind, FailureRatio, LabelMatch, NotUpdated, Selection, Updated,
    Windowed,
};
use super::{DEFAULT_WINDOW, label_name};
use crate::config::bounds::ALERT_WINDOW;
use crate::naming::is_metric_name;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSelection {
    pub(super) family: String,
    #[serde(default, rename = "where")]
    pub(super) matchers: Matchers,
    pub(super) aggregate: Option<Aggregate>,
    #[serde(default)]
    pub(super) by: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindowed {
    pub(super) family: String,
    #[serde(default, rename = "where")]
    pub(super) matchers: Matchers,
    pub(super) aggregate: Option<Aggregate>,
    #[serde(default)]
    pub(super) by: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) window: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRate {
    pub(super) family: String,
    #[serde(default, rename = "where")]
    pub(super) matchers: Matchers,
    pub(super) aggregate: Option<Aggregate>,
    #[serde(default)]
    pub(super) by: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(super) per: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotUpdated {
    pub(super) timestamp: Option<String>,
    pub(super) series: Option<String>,
    #[serde(default, rename = "where")]
    pub(super) matchers: Matchers,
    pub(super) aggregate: Option<Aggregate>,
    #[serde(default)]
    pub(super) by: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub(super) after: Duration,
    #[serde(default)]
    pub(super) or_absent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAbsent {
    pub(super) family: String,
    #[serde(default, rename = "where")]
    pub(super) matchers: Matchers,
    #[serde(default, with = "humantime_serde")]
    pub(super) over: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFailureRatio {
    pub(super) counter: String,
    pub(super) failures: Matchers,
    #[serde(default)]
    pub(super) by: Vec<String>,
    #[serde(default, with = "humantime_serde")]
    pub(super) window: Option<Duration>,
}

pub(super) fn selection(
    kind: &str,
    family: String,
    matchers: Matchers,
    aggregate: Option<Aggregate>,
    by: Vec<String>,
) -> Result<Selection, String> {
    metric_name(&format!("{kind}.family"), &family)?;
    check_matchers(&format!("{kind}.where"), &matchers, true)?;
    for label in &by {
        label_name(&format!("{kind}.by"), label)?;
    }
    if aggregate.is_none() && !by.is_empty() {
        return Err(format!(
            "`{kind}.by` needs `{kind}.aggregate` (sum, min, max, avg or count) to say how the series of each group combine"
        ));
    }
    Ok(Selection {
        family,
        matchers,
        aggregate,
        by,
    })
}

fn window(key: &str, value: Option<Duration>) -> Result<Duration, String> {
    ALERT_WINDOW
        .check(value.unwrap_or(DEFAULT_WINDOW))
        .map_err(|message| format!("`{key}`: {message}"))
}

pub(super) fn windowed(kind: &str, raw: RawWindowed) -> Result<Windowed, String> {
    Ok(Windowed {
        selection: selection(kind, raw.family, raw.matchers, raw.aggregate, raw.by)?,
        window: window(&format!("{kind}.window"), raw.window)?,
    })
}

pub(super) fn rate_kind(raw: RawRate) -> Result<AlertKind, String> {
    let windowed = Windowed {
        selection: selection("rate", raw.family, raw.matchers, raw.aggregate, raw.by)?,
        window: window("rate.window", raw.window)?,
    };
    let per = ALERT_WINDOW
        .check(raw.per.unwrap_or(Duration::from_secs(1)))
        .map_err(|message| format!("`rate.per`: {message}"))?;
    if per.subsec_nanos() != 0 {
        return Err("`rate.per` is whole seconds, e.g. `1m` for a rate per minute".to_owned());
    }
    Ok(AlertKind::Rate(windowed, per))
}

pub(super) fn not_updated_kind(raw: RawNotUpdated) -> Result<AlertKind, String> {
    let (family, of) = match (raw.timestamp, raw.series) {
        (Some(family), None) => (family, Updated::Timestamp),
        (None, Some(family)) => (family, Updated::Value),
        _ => {
            return Err("`not_updated` names one family: `timestamp: <gauge holding a Unix time>` (fires when it is older than `after`) or `series: <family>` (fires when its value has not changed for `after`)".to_owned());
        }
    };
    let key = match of {
        Updated::Timestamp => "not_updated.timestamp",
        Updated::Value => "not_updated.series",
    };
    metric_name(key, &family)?;
    let selection = selection("not_updated", family, raw.matchers, raw.aggregate, raw.by)?;
    let after = ALERT_WINDOW
        .check(raw.after)
        .map_err(|message| format!("`not_updated.after`: {message}"))?;
    Ok(AlertKind::NotUpdated(NotUpdated {
        selection,
        of,
        after,
        or_absent: raw.or_absent,
    }))
}

pub(super) fn absent_kind(raw: RawAbsent) -> Result<AlertKind, String> {
    metric_name("absent.family", &raw.family)?;
    check_matchers("absent.where", &raw.matchers, true)?;
    let over = raw
        .over
        .map(|over| {
            ALERT_WINDOW
                .check(over)
                .map_err(|message| format!("`absent.over`: {message}"))
        })
        .transpose()?;
    Ok(AlertKind::Absent(Absent {
        family: raw.family,
        matchers: raw.matchers,
        over,
    }))
}

pub(super) fn failure_ratio_kind(raw: RawFailureRatio) -> Result<AlertKind, String> {
    if !is_metric_name(&raw.counter) {
        return Err(format!(
            "`failure_ratio.counter` {:?} is not a metric name: write the family as /metrics shows it, e.g. `vf_scraper_requests_total`",
            raw.counter
        ));
    }
    if raw.failures.is_empty() {
        return Err("`failure_ratio.failures` names at least one label and its failure values, e.g. `{ outcome: [http_5xx, timeout] }` or `{ status_code: { regex: \"5..\" } }`".to_owned());
    }
    check_matchers("failure_ratio.failures", &raw.failures, false)?;
    for label in &raw.by {
        label_name("failure_ratio.by", label)?;
    }
    Ok(AlertKind::FailureRatio(FailureRatio {
        counter: raw.counter,
        failures: raw.failures,
        by: raw.by,
        window: window("failure_ratio.window", raw.window)?,
    }))
}

/// Label names, non-empty value lists, regexes that compile. `empty_ok`: whether `label: ""`
/// (the label is absent) may be said.
fn check_matchers(key: &str, matchers: &Matchers, empty_ok: bool) -> Result<(), String> {
    for (label, matcher) in &matchers.0 {
        label_name(key, label)?;
        let at = format!("{key}.{label}");
        match matcher {
            LabelMatch::Is(value) | LabelMatch::Not(value) if value.is_empty() && !empty_ok => {
                return Err(format!("`{at}` is a non-empty value"));
            }
            LabelMatch::Is(_) | LabelMatch::Not(_) => {}
            LabelMatch::AnyOf(values) | LabelMatch::NoneOf(values) => {
                if values.is_empty() || values.iter().any(String::is_empty) {
                    return Err(format!("`{at}` lists one or more non-empty values"));
                }
            }
            LabelMatch::Regex(regex) | LabelMatch::NotRegex(regex) => {
                if regex.is_empty() {
                    return Err(format!("`{at}` is a non-empty regex, e.g. `5..`"));
                }
                regex::Regex::new(&format!("^(?:{regex})$")).map_err(|error| {
                    // The regex crate draws the place over several lines; the last one says why.
                    let error = error.to_string();
                    let why = error.lines().last().unwrap_or_default().trim();
                    format!("`{at}`: {regex:?} is not a regex Prometheus reads (RE2): {why}")
                })?;
            }
        }
    }
    Ok(())
}

fn metric_name(key: &str, name: &str) -> Result<(), String> {
    if is_metric_name(name) {
        Ok(())
    } else {
        Err(format!(
            "`{key}` {name:?} is not a metric name: write the family as /metrics shows it, e.g. `healtharchive_worker_active`"
        ))
    }
}
