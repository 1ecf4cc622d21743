//! The families a config knows, so that an alert or a panel that names any other is refused when
//! the config is checked instead of staying silent in Prometheus for ever.
//!
//! Known are: the built-in families under the names the config gives them; heartwire's own
//! metrics and the process metrics; every family a StatsD mapping rule can name (a rule with an
//! exact `match` and a `name` is how a config declares a StatsD family it alerts on, with its
//! `help`); and the few series Prometheus and node_exporter add for any target (`up`, the
//! textfile collector's `node_textfile_mtime_seconds`). Sample names count: a histogram's
//! `_bucket`, `_sum` and `_count`, a counter with or without `_total`.

use std::collections::HashMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use regex::Regex;

use super::Source;
use crate::aggregate::{Kind, TABLE, claimed_names};
use crate::telemetry::names;

/// Series any scrape or node_exporter's textfile collector adds, which rules may use too.
const SCRAPE_SERIES: &[(&str, Kind)] = &[
    ("up", Kind::Gauge),
    ("scrape_duration_seconds", Kind::Gauge),
    ("scrape_samples_scraped", Kind::Gauge),
    ("node_textfile_mtime_seconds", Kind::Gauge),
    ("node_textfile_scrape_error", Kind::Gauge),
];

/// The sample names a config's families can have.
#[derive(Debug, Clone)]
pub struct Known {
    /// Exact sample names and the type of the family they belong to.
    exact: HashMap<String, Kind>,
    /// Names StatsD mapping rules can produce.
    patterns: Vec<Regex>,
}

impl Known {
    /// Everything `source` knows.
    pub fn of(source: &Source) -> Known {
        let mut exact = HashMap::new();
        let mut add = |name: &str, kind: Kind| {
            for sample in claimed_names(name, kind) {
                exact.insert(sample, kind);
            }
        };
        for row in TABLE {
            add(source.names.name(row.family), row.kind);
        }
        for name in names::ALL {
            let kind = if name.ends_with("_total") {
                Kind::Counter
            } else if *name == names::OTLP_DURATION {
                Kind::Histogram
            } else {
                Kind::Gauge
            };
            add(name, kind);
        }
        for (name, kind) in SCRAPE_SERIES {
            add(name, *kind);
        }
        Known {
            exact,
            patterns: source.mapping.family_patterns(),
        }
    }

    /// Whether a sample name belongs to a known family.
    pub fn has(&self, name: &str) -> bool {
        self.exact.contains_key(name) || self.patterns.iter().any(|p| p.is_match(name))
    }

    /// The type of a built-in or self family with this sample name; `None` for families only a
    /// mapping rule names (their type depends on what is sent) and unknown names.
    pub fn kind(&self, name: &str) -> Option<Kind> {
        self.exact.get(name).copied()
    }

    /// Checks that `expr` is PromQL and that every metric it selects is known; the error says
    /// which name is not and how to declare it.
    pub fn check(&self, expr: &str) -> Result<(), String> {
        let parsed = parser::parse(expr).map_err(|error| format!("not PromQL: {error}"))?;
        let mut names = Names(Vec::new());
        let _ = walk_expr(&mut names, &parsed);
        for name in names.0 {
            if !self.has(&name) {
                return Err(format!(
                    "`{name}` is no family this config knows: a built-in family (under the name `families:` gives it), a heartwire self-metric, or a StatsD family a `statsd.mapping` rule names (declare one with an exact `match` and `name`, e.g. `{{ match: {}, name: {name} }}`)",
                    name.trim_end_matches("_total").replace('_', ".")
                ));
            }
        }
        Ok(())
    }
}

/// The metric names an expression selects, by name or `__name__="…"`.
struct Names(Vec<String>);

impl ExprVisitor for Names {
    type Error = ();

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
        let selector = match expr {
            Expr::VectorSelector(selector) => selector,
            Expr::MatrixSelector(matrix) => &matrix.vs,
            _ => return Ok(true),
        };
        if let Some(name) = &selector.name {
            self.0.push(name.clone());
        }
        for matcher in &selector.matchers.matchers {
            if matcher.name == "__name__" && matches!(matcher.op, MatchOp::Equal) {
                self.0.push(matcher.value.clone());
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_str;

    fn known(yaml: &str) -> Known {
        Known::of(&Source::from_config(&from_str(yaml, "agent.yaml").unwrap()))
    }

    #[test]
    fn built_in_families_are_known_under_their_configured_names() {
        let known = known("families:\n  jobs:\n    runs: vf_worker_poll_runs_total\n");
        assert!(known.has("vf_worker_poll_runs_total"));
        assert!(!known.has("heartwire_job_runs_total"));
        assert!(known.has("heartwire_job_duration_seconds_bucket"));
        assert_eq!(
            known.kind("heartwire_job_duration_seconds_bucket"),
            Some(Kind::Histogram)
        );
        assert!(known.has("heartwire_lines_rejected_total"));
        assert!(known.has("up"));
        assert!(
            known
                .check("sum by (job) (rate(vf_worker_poll_runs_total[5m])) > 0 and up")
                .is_ok()
        );
    }

    #[test]
    fn mapping_rules_declare_statsd_families() {
        let known = known(
            "statsd:\n  mapping:\n    mappings:\n      - match: relay.jobs.*.*\n        match_metric_type: counter\n        name: relay_jobs_${1}\n      - match: relay.latency\n        match_metric_type: observer\n        name: relay_latency_seconds\n      - match: app.active\n        name: app_active\n",
        );
        assert!(known.has("relay_jobs_enqueued_total"));
        assert!(known.has("relay_jobs_enqueued"));
        assert!(known.has("relay_latency_seconds_bucket"));
        assert!(!known.has("relay_latency_seconds_total"));
        assert!(known.has("app_active"));
        assert!(
            known
                .check(
                    "histogram_quantile(0.9, sum by (le) (rate(relay_latency_seconds_bucket[5m])))"
                )
                .is_ok()
        );
    }

    #[test]
    fn unknown_names_and_bad_promql_are_refused_with_the_fix() {
        let known = known("");
        let error = known.check("app_active == 0").unwrap_err();
        assert!(error.contains("`app_active` is no family"), "{error}");
        assert!(
            error.contains("match: app.active, name: app_active"),
            "{error}"
        );
        let error = known.check("{__name__=\"app_active\"}").unwrap_err();
        assert!(error.contains("app_active"), "{error}");
        let error = known.check("rate(up[5m]").unwrap_err();
        assert!(error.starts_with("not PromQL"), "{error}");
    }
}
