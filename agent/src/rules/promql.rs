//! PromQL text: selectors with escaped label values, regex alternatives, durations.

use std::fmt::Write as _;
use std::time::Duration;

use crate::aggregate::{ConstLabels, Family, FamilyNames};

/// A label matcher: `name="value"` or `name=~"regex"`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Matcher {
    /// Equality.
    Is(String, String),
    /// Inequality.
    Not(String, String),
    /// Any of these values.
    AnyOf(String, Vec<String>),
    /// None of these values.
    NoneOf(String, Vec<String>),
    /// Regex matching, with the regex given as is (e.g. a Grafana variable).
    Regex(String, String),
    /// Negative regex matching, with the regex given as is.
    NotRegex(String, String),
}

impl Matcher {
    /// `name="value"`.
    pub(crate) fn is(name: &str, value: &str) -> Matcher {
        Matcher::Is(name.to_owned(), value.to_owned())
    }
}

/// A selector of a built-in family under the name and constant labels the config gives it.
pub(crate) fn of_family(names: &FamilyNames, family: Family, matchers: &[Matcher]) -> String {
    selector(
        names.name(family),
        names.labels(family.row().group),
        matchers,
    )
}

/// `family{constant labels…, matchers…}`, or the bare family name when there is no matcher.
pub(crate) fn selector(family: &str, constant: &ConstLabels, matchers: &[Matcher]) -> String {
    let mut all: Vec<String> = constant
        .iter()
        .map(|(name, value)| format!("{name}={}", quote(value)))
        .collect();
    for matcher in matchers {
        all.push(match matcher {
            Matcher::Is(name, value) => format!("{name}={}", quote(value)),
            Matcher::AnyOf(name, values) if values.len() == 1 => {
                format!("{name}={}", quote(&values[0]))
            }
            Matcher::AnyOf(name, values) => format!("{name}=~{}", quote(&alternatives(values))),
            Matcher::Not(name, value) => format!("{name}!={}", quote(value)),
            Matcher::NoneOf(name, values) if values.len() == 1 => {
                format!("{name}!={}", quote(&values[0]))
            }
            Matcher::NoneOf(name, values) => format!("{name}!~{}", quote(&alternatives(values))),
            Matcher::Regex(name, regex) => format!("{name}=~{}", quote(regex)),
            Matcher::NotRegex(name, regex) => format!("{name}!~{}", quote(regex)),
        });
    }
    if all.is_empty() {
        family.to_owned()
    } else {
        format!("{family}{{{}}}", all.join(","))
    }
}

/// `a|b|c` with each value escaped: a regex that matches exactly these values.
fn alternatives(values: &[String]) -> String {
    let escaped: Vec<String> = values.iter().map(|v| regex_escape(v)).collect();
    escaped.join("|")
}

/// `by(a, b) ` for an aggregation, or nothing for none.
pub(crate) fn by(labels: &[impl AsRef<str>]) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = labels.iter().map(AsRef::as_ref).collect();
        format!(" by({})", names.join(", "))
    }
}

/// A PromQL double-quoted string literal.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as an RE2 regex that matches only itself.
pub(crate) fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A duration as Prometheus writes it: `90s`, `5m`, `2h`, `1500ms`.
pub(crate) fn duration(d: Duration) -> String {
    let millis = d.as_millis();
    match millis {
        m if m.is_multiple_of(3_600_000) && m > 0 => format!("{}h", m / 3_600_000),
        m if m.is_multiple_of(60_000) && m > 0 => format!("{}m", m / 60_000),
        m if m.is_multiple_of(1000) => format!("{}s", m / 1000),
        m => format!("{m}ms"),
    }
}

/// A number as PromQL reads it, without a needless fraction (`300`, `0.2`).
pub(crate) fn number(value: f64) -> String {
    format!("{value}")
}

/// Grafana's built-in interval variables and a value each of them can take, longest name first
/// (so that `$__interval_ms` is not read as `$__interval` followed by `_ms`).
const GRAFANA_VARIABLES: [(&str, &str); 6] = [
    ("__rate_interval", "5m"),
    ("__interval_ms", "60000"),
    ("__interval", "1m"),
    ("__range_ms", "86400000"),
    ("__range_s", "86400"),
    ("__range", "1d"),
];

/// `expr` as Grafana sends it to Prometheus: its interval variables (`$__rate_interval`,
/// `${__range}`…) replaced by a value they can take, so that a PromQL parser reads it. Other
/// variables (`$job`) stay: the dashboard uses them inside label values only.
pub(crate) fn with_grafana_variables_set(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (name, value) in GRAFANA_VARIABLES {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_put_constant_labels_first_and_escape_values() {
        let constant = vec![("service".to_owned(), "worker".to_owned())];
        assert_eq!(
            selector("up", &Vec::new(), &[Matcher::is("job", "a\"b\\c")]),
            r#"up{job="a\"b\\c"}"#
        );
        assert_eq!(
            selector("x_total", &constant, &[Matcher::is("job", "viewer-poll")]),
            r#"x_total{service="worker",job="viewer-poll"}"#
        );
        assert_eq!(selector("x_total", &Vec::new(), &[]), "x_total");
    }

    #[test]
    fn alternatives_become_an_escaped_regex_and_a_single_value_an_equality() {
        let values = vec!["http_5xx".to_owned(), "a.b|c".to_owned()];
        assert_eq!(
            selector(
                "r_total",
                &Vec::new(),
                &[Matcher::AnyOf("outcome".into(), values)]
            ),
            r#"r_total{outcome=~"http_5xx|a\\.b\\|c"}"#
        );
        assert_eq!(
            selector(
                "r_total",
                &Vec::new(),
                &[Matcher::AnyOf("outcome".into(), vec!["timeout".into()])]
            ),
            r#"r_total{outcome="timeout"}"#
        );
    }

    #[test]
    fn durations_take_the_largest_exact_unit() {
        for (d, text) in [
            (Duration::from_secs(60), "1m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(108_000), "30h"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(duration(d), text);
        }
        assert_eq!(number(300.0), "300");
        assert_eq!(number(0.2), "0.2");
        assert_eq!(by(&["provider"]), " by(provider)");
        assert_eq!(by(&[] as &[&str]), "");
    }

    #[test]
    fn grafana_interval_variables_take_a_value_and_others_stay() {
        assert_eq!(
            with_grafana_variables_set(
                r#"rate(x{job=~"$job"}[$__rate_interval]) + increase(x[${__range}]) / $__interval_ms"#
            ),
            r#"rate(x{job=~"$job"}[5m]) + increase(x[1d]) / 60000"#
        );
    }
}
