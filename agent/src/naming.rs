//! Prometheus names from what senders wrote: pure functions, called once per new series.
//!
//! A metric name is `[a-zA-Z_][a-zA-Z0-9_]*` here (Prometheus also allows `:`, which it keeps
//! for recording rules, so heartwire never emits one); a label name is `[a-zA-Z_][a-zA-Z0-9_]*`
//! and must not start with `__`. Label values are never rewritten: the text encoder escapes them.

/// The metric name for a StatsD name: every character outside `[a-zA-Z0-9_]` becomes `_`
/// (`page.views` → `page_views`, `api-latency` → `api_latency`), and a leading digit gets a
/// `_` prefix (`5xx.count` → `_5xx_count`).
pub fn metric_name(raw: &str) -> String {
    metric_name_bytes(raw).map(char::from).collect()
}

/// The bytes of [`metric_name`]`(raw)`, one at a time: for callers that sanitise into a buffer
/// of their own without allocating.
pub fn metric_name_bytes(raw: &str) -> impl Iterator<Item = u8> + '_ {
    let digit_first = raw.starts_with(|c: char| c.is_ascii_digit());
    let sanitised = raw.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c as u8
        } else {
            b'_'
        }
    });
    let empty = raw.is_empty().then_some(b'_');
    digit_first
        .then_some(b'_')
        .into_iter()
        .chain(sanitised)
        .chain(empty)
}

/// The label name for a DogStatsD tag key. Sanitised like [`metric_name`]; then the names
/// Prometheus gives a meaning to are renamed with an `exported_` prefix, as Prometheus itself
/// does for clashing target labels: `le` and `quantile` (bucket and quantile labels) and any
/// name starting with `__` (reserved for Prometheus internals).
pub fn label_name(raw: &str) -> String {
    let name = metric_name(raw);
    if name == "le" || name == "quantile" || name.starts_with("__") {
        format!("exported_{name}")
    } else {
        name
    }
}

/// Whether `name` is a valid metric name as heartwire emits them (no `:`).
pub fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `name` is a valid label name that carries no reserved meaning.
pub fn is_label_name(name: &str) -> bool {
    is_metric_name(name) && !name.starts_with("__") && name != "le" && name != "quantile"
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dots_dashes_and_other_characters_become_underscores() {
        assert_eq!(metric_name("page.views"), "page_views");
        assert_eq!(metric_name("api-latency.p99"), "api_latency_p99");
        assert_eq!(metric_name("a/b\"c\\d"), "a_b_c_d");
        assert_eq!(metric_name("café"), "caf_");
    }

    #[test]
    fn a_leading_digit_gets_an_underscore_prefix() {
        assert_eq!(metric_name("5xx.count"), "_5xx_count");
        assert_eq!(label_name("1st"), "_1st");
    }

    #[test]
    fn reserved_label_names_get_an_exported_prefix() {
        assert_eq!(label_name("le"), "exported_le");
        assert_eq!(label_name("quantile"), "exported_quantile");
        assert_eq!(label_name("__name__"), "exported___name__");
        assert_eq!(label_name("--x"), "exported___x");
        assert_eq!(label_name("env"), "env");
        assert_eq!(label_name("l.e"), "l_e");
    }

    #[test]
    fn validity_checks_follow_the_prometheus_grammar() {
        assert!(is_metric_name("heartwire_job_runs_total"));
        assert!(!is_metric_name(""));
        assert!(!is_metric_name("9lives"));
        assert!(!is_metric_name("a.b"));
        assert!(!is_label_name("le"));
        assert!(!is_label_name("__x"));
        assert!(is_label_name("_x"));
    }

    proptest! {
        #[test]
        fn property_any_input_yields_a_valid_metric_name(raw in any::<String>()) {
            prop_assert!(is_metric_name(&metric_name(&raw)));
        }

        #[test]
        fn property_any_input_yields_a_valid_unreserved_label_name(raw in any::<String>()) {
            prop_assert!(is_label_name(&label_name(&raw)));
        }

        #[test]
        fn property_valid_names_are_kept_as_they_are(raw in "[a-zA-Z_][a-zA-Z0-9_]{0,40}") {
            prop_assert_eq!(metric_name(&raw), raw);
        }
    }
}
