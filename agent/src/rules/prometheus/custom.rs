//! The alerts of the config's `alerts:` section: each kind's PromQL, its comparison, its guards
//! and, where the config gives none, annotations generated from what it measures.
//!
//! A guard is joined with `on(…)` (empty by default), so that one label-less series such as a
//! deploy-lock flag silences (`unless on() (…)`) or enables (`and on() (…)`) every series of the
//! alert, whatever labels they carry.

use std::time::Duration;

use super::AlertRule;
use super::ratio::{self, ratio_expr};
use crate::config::{
    Absent, Alert, AlertGuards, AlertKind, Compare, LabelMatch, Matchers, NotUpdated, Op,
    Selection, Threshold, Updated, Windowed,
};
use crate::rules::in_words;
use crate::rules::promql::{self, Matcher, by, selector};

/// The group of an alert that names none.
pub(super) const DEFAULT_GROUP: &str = "heartwire-alerts";

/// The rule of one alert of `alerts:`.
pub(super) fn rule(name: &str, alert: &Alert, guards: &AlertGuards) -> AlertRule {
    let (summary, description, runbook) = match &alert.kind {
        AlertKind::FailureRatio(failure) => ratio::annotations(alert, failure),
        kind => (
            summary(kind, alert.compare.as_ref(), name),
            description(kind, alert),
            String::new(),
        ),
    };
    AlertRule {
        alert: name.to_owned(),
        expr: guarded(alert, guards),
        for_: Some(alert.for_).filter(|window| !window.is_zero()),
        severity: alert.severity.clone(),
        labels: alert
            .labels
            .iter()
            .map(|(label, value)| (label.clone(), value.clone()))
            .collect(),
        summary: alert.summary.clone().unwrap_or(summary),
        description: alert.description.clone().unwrap_or(description),
        runbook: alert.runbook.clone().unwrap_or(runbook),
    }
}

/// The matchers of `where:` as PromQL matchers.
pub(super) fn matchers(matchers: &Matchers) -> Vec<Matcher> {
    matchers
        .0
        .iter()
        .map(|(label, matcher)| {
            let label = label.clone();
            match matcher {
                LabelMatch::Is(value) => Matcher::Is(label, value.clone()),
                LabelMatch::Not(value) => Matcher::Not(label, value.clone()),
                LabelMatch::AnyOf(values) => Matcher::AnyOf(label, values.clone()),
                LabelMatch::NoneOf(values) => Matcher::NoneOf(label, values.clone()),
                LabelMatch::Regex(regex) => Matcher::Regex(label, regex.clone()),
                LabelMatch::NotRegex(regex) => Matcher::NotRegex(label, regex.clone()),
            }
        })
        .collect()
}

/// `family{where…, extra…}`.
fn select(selection: &Selection, extra: &[Matcher]) -> String {
    let mut all = matchers(&selection.matchers);
    all.extend_from_slice(extra);
    selector(&selection.family, &Vec::new(), &all)
}

/// `aggregate by(…) (inner)`, or `inner` without an aggregation.
fn aggregated(selection: &Selection, inner: String) -> String {
    match selection.aggregate {
        Some(aggregate) => format!("{}{} ({inner})", aggregate.promql(), by(&selection.by)),
        None => inner,
    }
}

/// What a kind with a comparison measures, with `extra` matchers on its series; the whole
/// condition for the kinds without one.
pub(super) fn measure(kind: &AlertKind, extra: &[Matcher]) -> String {
    let over = |function: &str, windowed: &Windowed| {
        let inner = format!(
            "{function}({}[{}])",
            select(&windowed.selection, extra),
            promql::duration(windowed.window)
        );
        aggregated(&windowed.selection, inner)
    };
    match kind {
        AlertKind::Threshold(selection) => aggregated(selection, select(selection, extra)),
        AlertKind::Increase(windowed) => over("increase", windowed),
        AlertKind::Delta(windowed) => over("delta", windowed),
        AlertKind::Rate(windowed, per) => match per.as_secs() {
            1 => over("rate", windowed),
            factor => format!("{factor} * {}", over("rate", windowed)),
        },
        AlertKind::NotUpdated(not_updated) => stale(not_updated),
        AlertKind::Absent(absent) => missing(absent),
        AlertKind::FailureRatio(failure) => ratio_expr(failure),
        AlertKind::Expr(expr) => expr.clone(),
    }
}

fn stale(not_updated: &NotUpdated) -> String {
    let selection = &not_updated.selection;
    let series = select(selection, &[]);
    let condition = match not_updated.of {
        Updated::Timestamp => format!(
            "time() - {} > {}",
            aggregated(selection, series.clone()),
            seconds(not_updated.after)
        ),
        Updated::Value => format!(
            "{} == 0",
            aggregated(
                selection,
                format!("changes({series}[{}])", promql::duration(not_updated.after))
            )
        ),
    };
    if not_updated.or_absent {
        format!("{condition} or absent({series})")
    } else {
        condition
    }
}

fn missing(absent: &Absent) -> String {
    let series = selector(&absent.family, &Vec::new(), &matchers(&absent.matchers));
    match absent.over {
        Some(over) => format!("absent_over_time({series}[{}])", promql::duration(over)),
        None => format!("absent({series})"),
    }
}

/// A duration as a PromQL number of seconds.
fn seconds(d: Duration) -> String {
    promql::number(d.as_secs_f64())
}

/// The alert's condition: its measure and comparison, before guards.
pub(super) fn condition(alert: &Alert) -> String {
    let kind = &alert.kind;
    match &alert.compare {
        None => measure(kind, &[]),
        Some(Compare {
            op,
            threshold: Threshold::Value(value),
        }) => match kind {
            AlertKind::Expr(expr) => format!("({expr}) {} {}", op.promql(), promql::number(*value)),
            _ => format!(
                "{} {} {}",
                measure(kind, &[]),
                op.promql(),
                promql::number(*value)
            ),
        },
        Some(Compare {
            op,
            threshold: Threshold::PerLabel { label, values },
        }) => {
            let each: Vec<String> = values
                .iter()
                .map(|(value, number)| {
                    format!(
                        "{} {} {}",
                        measure(kind, &[Matcher::is(label, value)]),
                        op.promql(),
                        promql::number(*number)
                    )
                })
                .collect();
            each.join(" or ")
        }
    }
}

/// The condition with its guards: `(condition) and on() (guard) unless on() (guard)`. A guard
/// the config does not define (refused when the config is checked) is left out.
pub(super) fn guarded(alert: &Alert, guards: &AlertGuards) -> String {
    let condition = condition(alert);
    if alert.and.is_empty() && alert.unless.is_empty() {
        return condition;
    }
    let mut expr = if matches!(alert.kind, AlertKind::Expr(_)) || condition.contains(" or ") {
        format!("({condition})")
    } else {
        condition
    };
    for (operator, names) in [("and", &alert.and), ("unless", &alert.unless)] {
        for guard in names.iter().filter_map(|name| guards.0.get(name)) {
            let on = guard.on.join(", ");
            expr = format!("{expr} {operator} on({on}) ({})", guard.expr);
        }
    }
    expr
}

/// What a kind measures, in words.
fn what(kind: &AlertKind) -> String {
    let plain = |selection: &Selection| {
        let series = select(selection, &[]);
        match selection.aggregate {
            Some(aggregate) => format!("{}{} of {series}", aggregate.promql(), by(&selection.by)),
            None => series,
        }
    };
    match kind {
        AlertKind::Threshold(selection) => plain(selection),
        AlertKind::Increase(windowed) => format!(
            "the increase of {} over {}",
            plain(&windowed.selection),
            in_words(windowed.window)
        ),
        AlertKind::Delta(windowed) => format!(
            "the change of {} over {}",
            plain(&windowed.selection),
            in_words(windowed.window)
        ),
        AlertKind::Rate(windowed, per) => format!(
            "the rate of {} per {} over {}",
            plain(&windowed.selection),
            per_unit(*per),
            in_words(windowed.window)
        ),
        AlertKind::NotUpdated(not_updated) => plain(&not_updated.selection),
        AlertKind::Absent(absent) => {
            selector(&absent.family, &Vec::new(), &matchers(&absent.matchers))
        }
        AlertKind::FailureRatio(failure) => format!("the failed share of {}", failure.counter),
        AlertKind::Expr(expr) => expr.clone(),
    }
}

/// `second`, `minute`, `hour`, else the duration in words.
fn per_unit(per: Duration) -> String {
    match per.as_secs() {
        1 => "second".to_owned(),
        60 => "minute".to_owned(),
        3600 => "hour".to_owned(),
        86_400 => "day".to_owned(),
        _ => in_words(per),
    }
}

/// The comparison in words: `is above 3`, `is at least the threshold of its source (hc 19, phac 24)`.
fn compared(op: Op, threshold: &Threshold) -> String {
    match threshold {
        Threshold::Value(value) => format!("{} {}", op.words(), promql::number(*value)),
        Threshold::PerLabel { label, values } => {
            let each: Vec<String> = values
                .iter()
                .map(|(value, number)| format!("{value} {}", promql::number(*number)))
                .collect();
            format!(
                "{} the threshold of its {label} ({})",
                op.words(),
                each.join(", ")
            )
        }
    }
}

fn summary(kind: &AlertKind, compare: Option<&Compare>, name: &str) -> String {
    let what = what(kind);
    match (kind, compare) {
        (AlertKind::NotUpdated(not_updated), _) => match not_updated.of {
            Updated::Timestamp => {
                format!("{what} is more than {} old", in_words(not_updated.after))
            }
            Updated::Value => format!("{what} has not changed for {}", in_words(not_updated.after)),
        },
        (AlertKind::Absent(absent), _) => match absent.over {
            Some(over) => format!("No series of {what} for {}", in_words(over)),
            None => format!("No series of {what}"),
        },
        (AlertKind::Expr(_), None) => format!("The condition of {name} holds"),
        (AlertKind::Expr(_), Some(compare)) => format!(
            "The expression of {name} {}",
            compared(compare.op, &compare.threshold)
        ),
        (_, Some(compare)) => format!("{what} {}", compared(compare.op, &compare.threshold)),
        (_, None) => what,
    }
}

fn description(kind: &AlertKind, alert: &Alert) -> String {
    let held = if alert.for_.is_zero() {
        String::new()
    } else {
        format!(" for {}", in_words(alert.for_))
    };
    let what = what(kind);
    match (kind, &alert.compare) {
        (AlertKind::NotUpdated(not_updated), _) => {
            let absent = if not_updated.or_absent {
                ", or there is no such series"
            } else {
                ""
            };
            match not_updated.of {
                Updated::Timestamp => format!(
                    "The time in {what} has been more than {} ({} s) old by Prometheus' clock{absent}{held}.",
                    in_words(not_updated.after),
                    seconds(not_updated.after)
                ),
                Updated::Value => format!(
                    "{what} has not changed for {}{absent}{held}.",
                    in_words(not_updated.after)
                ),
            }
        }
        (AlertKind::Absent(_), _) => format!("Prometheus has found no series of {what}{held}."),
        (AlertKind::Expr(_), None) => format!("{what} has returned series{held}."),
        (_, Some(compare)) => format!(
            "{what} {}{held}; it is {{{{ $value }}}}.",
            compared(compare.op, &compare.threshold)
        ),
        (_, None) => format!("{what}{held}."),
    }
}
