//! The failure ratio of a counter (`failure_ratio:` alerts): its expression, which the dashboard
//! draws too, and its generated annotations.

use super::custom::matchers;
use crate::config::{Alert, Compare, FailureRatio, LabelMatch, Op, Threshold};
use crate::rules::in_words;
use crate::rules::promql::{self, by, selector};

/// `sum by(…) (rate(failed[w])) / clamp_min(sum by(…) (rate(all[w])), 0.0001)`: the failure ratio
/// the alert compares with its threshold and the dashboard draws.
pub(crate) fn ratio_expr(ratio: &FailureRatio) -> String {
    let window = promql::duration(ratio.window);
    let by = by(&ratio.by);
    let counter = &ratio.counter;
    let failed = selector(counter, &Vec::new(), &matchers(&ratio.failures));
    format!(
        "sum{by} (rate({failed}[{window}])) / clamp_min(sum{by} (rate({counter}[{window}])), 0.0001)"
    )
}

/// The summary, description and runbook of a failure-ratio alert, from its ratio and threshold.
pub(super) fn annotations(alert: &Alert, ratio: &FailureRatio) -> (String, String, String) {
    let counter = &ratio.counter;
    let (op, threshold) = match &alert.compare {
        Some(Compare {
            op,
            threshold: Threshold::Value(value),
        }) => (*op, percent(*value)),
        _ => (Op::Above, String::new()),
    };
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
        .0
        .iter()
        .map(|(label, matcher)| failure_words(label, matcher))
        .collect();
    let (share, relation) = match op {
        Op::Above => ("More than", "above"),
        Op::AtLeast => ("At least", "at least"),
        Op::Below => ("Less than", "below"),
        Op::AtMost => ("At most", "at most"),
        Op::Equals => ("Exactly", "at"),
        Op::NotEquals => ("Not exactly", "not at"),
    };
    (
        format!("{share} {threshold} of {counter} fail{per}"),
        format!(
            "{{{{ $value | humanizePercentage }}}} of {counter} over {} have {}: {relation} {threshold} for {}.",
            in_words(ratio.window),
            failures.join("; "),
            in_words(alert.for_)
        ),
        format!(
            "Break {counter} down by its labels in the heartwire dashboard to see which failure dominates."
        ),
    )
}

/// `outcome http_5xx, timeout`, `status_code matching 5..`.
fn failure_words(label: &str, matcher: &LabelMatch) -> String {
    match matcher {
        LabelMatch::Is(value) => format!("{label} {value}"),
        LabelMatch::AnyOf(values) => format!("{label} {}", values.join(", ")),
        LabelMatch::Not(value) => format!("{label} other than {value}"),
        LabelMatch::NoneOf(values) => format!("{label} other than {}", values.join(", ")),
        LabelMatch::Regex(regex) => format!("{label} matching {regex}"),
        LabelMatch::NotRegex(regex) => format!("{label} not matching {regex}"),
    }
}

/// `0.2` as `20%`, without float noise.
fn percent(ratio: f64) -> String {
    format!("{}%", (ratio * 100_000.0).round() / 1000.0)
}
