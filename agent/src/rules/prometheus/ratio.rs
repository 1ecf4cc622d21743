//! The alerts of the config's `alerts:` section: the failure ratio of a counter.

use super::AlertRule;
use crate::config::Alert;
use crate::rules::in_words;
use crate::rules::promql::{self, Matcher, by, selector};

/// `sum by(…) (rate(failed[w])) / clamp_min(sum by(…) (rate(all[w])), 0.0001)`: the failure ratio
/// the alert compares with its threshold and the dashboard draws.
pub(crate) fn ratio_expr(alert: &Alert) -> String {
    let ratio = &alert.failure_ratio;
    let window = promql::duration(ratio.window);
    let failed: Vec<Matcher> = ratio
        .failures
        .iter()
        .map(|(label, values)| Matcher::AnyOf(label.clone(), values.clone()))
        .collect();
    let by = by(&ratio.by);
    let counter = &ratio.counter;
    let failed = selector(counter, &Vec::new(), &failed);
    format!(
        "sum{by} (rate({failed}[{window}])) / clamp_min(sum{by} (rate({counter}[{window}])), 0.0001)"
    )
}

pub(super) fn failure_ratio(name: &str, alert: &Alert) -> AlertRule {
    let ratio = &alert.failure_ratio;
    let counter = &ratio.counter;
    let threshold = percent(alert.above);
    let per: Vec<String> = ratio
        .by
        .iter()
        .map(|label| format!("{label} {{{{ $labels.{label} }}}}"))
        .collect();
    let per = if per.is_empty() {
        String::new()
    } else {
        format!(" ({})", per.join(", "))
    };
    let failures: Vec<String> = ratio
        .failures
        .iter()
        .map(|(label, values)| format!("{label} {}", values.join(", ")))
        .collect();
    AlertRule {
        alert: name.to_owned(),
        expr: format!("{} > {}", ratio_expr(alert), promql::number(alert.above)),
        for_: Some(alert.for_).filter(|window| !window.is_zero()),
        severity: alert.severity.clone(),
        labels: Vec::new(),
        summary: alert.summary.clone().unwrap_or_else(|| {
            format!("More than {threshold} of {counter} fail{per}")
        }),
        description: alert.description.clone().unwrap_or_else(|| {
            format!(
                "{{{{ $value | humanizePercentage }}}} of {counter} over {} have {}: above {threshold} for {}.",
                in_words(ratio.window),
                failures.join("; "),
                in_words(alert.for_)
            )
        }),
        runbook: alert.runbook.clone().unwrap_or_else(|| {
            format!("Break {counter} down by its labels in the heartwire dashboard to see which failure dominates.")
        }),
    }
}

/// `0.2` as `20%`, without float noise.
fn percent(ratio: f64) -> String {
    format!("{}%", (ratio * 100_000.0).round() / 1000.0)
}
