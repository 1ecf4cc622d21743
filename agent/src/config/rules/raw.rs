//! An alert as written, and its checks: one kind, a comparison where the kind needs one, names
//! that Prometheus accepts, regexes that compile, numbers that are finite, durations within
//! their bounds. Each error names the key and the fix; the caller adds the alert's name.

use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::values::Threshold;
use super::{Alert, AlertKind, Compare, Op, Windowed};
use crate::config::bounds::ALERT_FOR;
use crate::naming::is_label_name;

mod kinds;

use kinds::{
    RawAbsent, RawFailureRatio, RawNotUpdated, RawRate, RawSelection, RawWindowed, absent_kind,
    failure_ratio_kind, not_updated_kind, rate_kind, selection, windowed,
};

/// The rate window, `for:` and the other windows when the config gives none.
const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// The rule groups heartwire writes itself: a group of `alerts:` may not take their names.
const OWN_GROUPS: [&str; 3] = ["heartwire-jobs", "heartwire-workers", "heartwire-agent"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    threshold: Option<RawSelection>,
    increase: Option<RawWindowed>,
    rate: Option<RawRate>,
    delta: Option<RawWindowed>,
    not_updated: Option<RawNotUpdated>,
    absent: Option<RawAbsent>,
    failure_ratio: Option<RawFailureRatio>,
    expr: Option<String>,
    above: Option<Threshold>,
    below: Option<Threshold>,
    at_least: Option<Threshold>,
    at_most: Option<Threshold>,
    equals: Option<Threshold>,
    not_equals: Option<Threshold>,
    #[serde(default)]
    unless: Vec<String>,
    #[serde(default, rename = "and")]
    and_: Vec<String>,
    #[serde(default, rename = "for", with = "humantime_serde")]
    for_: Option<Duration>,
    severity: Option<String>,
    group: Option<String>,
    #[serde(default)]
    labels: IndexMap<String, String>,
    summary: Option<String>,
    description: Option<String>,
    runbook: Option<String>,
}

const KINDS: &str =
    "`threshold`, `increase`, `rate`, `delta`, `not_updated`, `absent`, `failure_ratio` or `expr`";

impl TryFrom<RawAlert> for Alert {
    type Error = String;

    fn try_from(raw: RawAlert) -> Result<Alert, String> {
        let compare = comparison(&raw)?;
        let kind = kind(
            raw.threshold,
            raw.increase,
            raw.rate,
            raw.delta,
            raw.not_updated,
            raw.absent,
            raw.failure_ratio,
            raw.expr,
        )?;
        check_compare(&kind, compare.as_ref())?;
        let for_ = ALERT_FOR
            .check(raw.for_.unwrap_or(DEFAULT_WINDOW))
            .map_err(|message| format!("`for`: {message}"))?;
        let severity = raw.severity.unwrap_or_else(|| "warning".to_owned());
        if severity.trim().is_empty() {
            return Err("`severity` is a word such as `warning` or `critical`".to_owned());
        }
        if let Some(group) = &raw.group {
            check_group(group)?;
        }
        for label in raw.labels.keys() {
            label_name("labels", label)?;
            if ["severity", "alertname"].contains(&label.as_str()) {
                return Err(format!(
                    "`labels.{label}`: heartwire sets this label; use the alert's `severity` key or its name"
                ));
            }
        }
        for (key, names) in [("unless", &raw.unless), ("and", &raw.and_)] {
            if names.iter().any(|name| name.trim().is_empty()) {
                return Err(format!(
                    "`{key}` lists names of `alert_guards:`, e.g. `{key}: [deploy_lock]`"
                ));
            }
        }
        Ok(Alert {
            kind,
            compare,
            unless: raw.unless,
            and: raw.and_,
            for_,
            severity,
            group: raw.group,
            labels: raw.labels,
            summary: raw.summary,
            description: raw.description,
            runbook: raw.runbook,
        })
    }
}

/// The one comparison key given, if any.
fn comparison(raw: &RawAlert) -> Result<Option<Compare>, String> {
    let given = [
        &raw.above,
        &raw.below,
        &raw.at_least,
        &raw.at_most,
        &raw.equals,
        &raw.not_equals,
    ];
    let mut found: Option<Compare> = None;
    for (op, threshold) in Op::ALL.into_iter().zip(given) {
        let Some(threshold) = threshold else {
            continue;
        };
        if let Some(first) = &found {
            return Err(format!(
                "`{}` and `{}` are two comparisons: an alert has one (write two alerts for two limits)",
                first.op.key(),
                op.key()
            ));
        }
        check_threshold(op, threshold)?;
        found = Some(Compare {
            op,
            threshold: threshold.clone(),
        });
    }
    Ok(found)
}

fn check_threshold(op: Op, threshold: &Threshold) -> Result<(), String> {
    let key = op.key();
    let finite = |value: f64, at: &str| {
        if value.is_finite() {
            Ok(())
        } else {
            Err(format!("`{at}` ({value}) is not a finite number"))
        }
    };
    match threshold {
        Threshold::Value(value) => finite(*value, key),
        Threshold::PerLabel { label, values } => {
            label_name(key, label)?;
            if values.is_empty() {
                return Err(format!(
                    "`{key}.{label}` lists one or more values with their thresholds, e.g. `{{ hc: 19 }}`"
                ));
            }
            for (value, number) in values {
                finite(*number, &format!("{key}.{label}.{value}"))?;
            }
            Ok(())
        }
    }
}

/// The one kind given, checked.
#[allow(clippy::too_many_arguments)] // one argument per kind key, consumed once
fn kind(
    threshold: Option<RawSelection>,
    increase: Option<RawWindowed>,
    rate: Option<RawRate>,
    delta: Option<RawWindowed>,
    not_updated: Option<RawNotUpdated>,
    absent: Option<RawAbsent>,
    failure_ratio: Option<RawFailureRatio>,
    expr: Option<String>,
) -> Result<AlertKind, String> {
    let given: Vec<&str> = [
        ("threshold", threshold.is_some()),
        ("increase", increase.is_some()),
        ("rate", rate.is_some()),
        ("delta", delta.is_some()),
        ("not_updated", not_updated.is_some()),
        ("absent", absent.is_some()),
        ("failure_ratio", failure_ratio.is_some()),
        ("expr", expr.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, some)| some.then_some(key))
    .collect();
    if given.len() > 1 {
        return Err(format!(
            "`{}` are {} kinds: an alert has one kind; write one alert per kind",
            given.join("`, `"),
            given.len()
        ));
    }
    if let Some(raw) = threshold {
        return selection("threshold", raw.family, raw.matchers, raw.aggregate, raw.by)
            .map(AlertKind::Threshold);
    }
    if let Some(raw) = increase {
        return windowed("increase", raw).map(AlertKind::Increase);
    }
    if let Some(raw) = rate {
        return rate_kind(raw);
    }
    if let Some(raw) = delta {
        return windowed("delta", raw).map(AlertKind::Delta);
    }
    if let Some(raw) = not_updated {
        return not_updated_kind(raw);
    }
    if let Some(raw) = absent {
        return absent_kind(raw);
    }
    if let Some(raw) = failure_ratio {
        return failure_ratio_kind(raw);
    }
    match expr {
        Some(raw) if raw.trim().is_empty() => {
            Err("`expr` is a PromQL expression, e.g. `up == 0`".to_owned())
        }
        Some(raw) => Ok(AlertKind::Expr(raw)),
        None => Err(format!("says what it measures with one of {KINDS}")),
    }
}

/// Whether the kind and the comparison go together.
fn check_compare(kind: &AlertKind, compare: Option<&Compare>) -> Result<(), String> {
    let key = kind.key();
    match (kind, compare) {
        (AlertKind::NotUpdated(_) | AlertKind::Absent(_), Some(compare)) => Err(format!(
            "`{key}` carries its own condition: drop `{}`{}",
            compare.op.key(),
            if key == "not_updated" {
                " (the age is `not_updated.after`)"
            } else {
                ""
            }
        )),
        (AlertKind::NotUpdated(_) | AlertKind::Absent(_) | AlertKind::Expr(_), None) => Ok(()),
        (_, None) => Err(format!(
            "`{key}` needs a comparison: `above`, `below`, `at_least`, `at_most`, `equals` or `not_equals`, e.g. `above: 3`"
        )),
        (AlertKind::Expr(_), Some(compare)) => match compare.threshold {
            Threshold::Value(_) => Ok(()),
            Threshold::PerLabel { .. } => Err(format!(
                "`{}`: a threshold per label value needs a family (`threshold`, `increase`, `rate` or `delta`); with `expr`, write the comparison into the expression",
                compare.op.key()
            )),
        },
        (AlertKind::FailureRatio(_), Some(compare)) => match compare.threshold {
            Threshold::Value(value) if (0.0..1.0).contains(&value) => Ok(()),
            Threshold::Value(value) => Err(format!(
                "`{}` ({value}) is a ratio from 0 up to (not including) 1: write 0.2 for 20 %",
                compare.op.key()
            )),
            Threshold::PerLabel { .. } => Err(format!(
                "`{}`: a failure ratio compares with one number from 0 up to 1, e.g. `above: 0.2`",
                compare.op.key()
            )),
        },
        (
            AlertKind::Threshold(selection)
            | AlertKind::Increase(Windowed { selection, .. })
            | AlertKind::Rate(Windowed { selection, .. }, _)
            | AlertKind::Delta(Windowed { selection, .. }),
            Some(compare),
        ) => match &compare.threshold {
            Threshold::PerLabel { label, .. }
                if selection.aggregate.is_some() && !selection.by.contains(label) =>
            {
                Err(format!(
                    "`{}.{label}`: thresholds per {label} need the aggregation to keep it: add `{label}` to `{key}.by`",
                    compare.op.key()
                ))
            }
            _ => Ok(()),
        },
    }
}

fn check_group(group: &str) -> Result<(), String> {
    if group.trim().is_empty() || group.chars().any(char::is_control) {
        return Err("`group` names a rule group, e.g. `crawl-alerts`".to_owned());
    }
    if OWN_GROUPS.contains(&group) {
        return Err(format!(
            "`group`: {group} is one of heartwire's own rule groups; name another, e.g. `{}-custom`",
            group.trim_start_matches("heartwire-")
        ));
    }
    Ok(())
}

pub(super) fn label_name(key: &str, label: &str) -> Result<(), String> {
    if is_label_name(label) {
        Ok(())
    } else {
        Err(format!(
            "`{key}`: {label:?} is not a label name (letters, digits and '_', not starting with a digit or '__')"
        ))
    }
}
