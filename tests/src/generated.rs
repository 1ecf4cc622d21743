//! What `heartwire rules` and `heartwire dashboard` print for a config, read back for the tests:
//! the output itself, the dashboard's queries as Grafana would send them, and promtool, which
//! judges the rules.

// Test support: a failure to set up is the calling test's failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

use crate::agent::heartwire;
use crate::peers::{REQUIRE_PEERS, peers_required};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// `promtool` from `PATH`; if missing, a loud skip, or a panic when peers are required.
pub fn promtool_or_skip() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|candidate| candidate.is_file());
    match found {
        Some(promtool) => Some(promtool),
        None if peers_required() => {
            panic!("no `promtool` on PATH; run .ci/install-peers.sh ({REQUIRE_PEERS}=1)")
        }
        None => {
            let notice = "\n********** SKIPPED: no `promtool` on PATH; run .ci/install-peers.sh **********\n\n";
            let _ = std::io::stderr().write_all(notice.as_bytes());
            None
        }
    }
}

/// Runs `heartwire ARGS [--config CONFIG]`; panics unless it succeeds; returns stdout.
#[track_caller]
pub fn heartwire_output(args: &[&str], config: Option<&Path>) -> String {
    let mut command = heartwire();
    command.args(args).env_remove("HEARTWIRE_CONFIG");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = command.output().expect("heartwire runs");
    assert!(
        output.status.success(),
        "heartwire {args:?} --config {config:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The dashboard `heartwire dashboard` prints for `config`, as JSON.
#[track_caller]
pub fn dashboard(config: Option<&Path>) -> Value {
    let text = heartwire_output(&["dashboard"], config);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("not JSON ({error}):\n{text}"))
}

/// `expr` as Grafana sends it: its interval variables replaced by a value they can take (other
/// variables, such as `$job`, only appear inside label values).
pub fn with_grafana_variables_set(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (name, value) in [
        ("__rate_interval", "5m"),
        ("__interval_ms", "60000"),
        ("__interval", "1m"),
        ("__range_ms", "86400000"),
        ("__range_s", "86400"),
        ("__range", "1d"),
    ] {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// Every query of every panel, with the panel's title; Grafana's interval variables are set.
pub fn panel_exprs(board: &Value) -> Vec<(String, String)> {
    let panels = board["panels"].as_array().expect("panels");
    panels
        .iter()
        .filter(|panel| panel["type"] != "row")
        .flat_map(|panel| {
            let title = panel["title"].as_str().expect("a title").to_owned();
            let targets = panel["targets"].as_array().expect("targets").clone();
            targets.into_iter().map(move |target| {
                let expr = target["expr"].as_str().expect("an expr");
                (title.clone(), with_grafana_variables_set(expr))
            })
        })
        .collect()
}

/// The metric names `expr` selects, by name or `__name__="…"`; panics if it is not PromQL or
/// selects nothing.
#[track_caller]
pub fn selected_names(expr: &str) -> Vec<String> {
    struct Names(Vec<String>);
    impl ExprVisitor for Names {
        type Error = ();
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
            let selector = match expr {
                Expr::VectorSelector(selector) => selector,
                Expr::MatrixSelector(matrix) => &matrix.vs,
                _ => return Ok(true),
            };
            self.0.extend(selector.name.clone());
            for matcher in &selector.matchers.matchers {
                if matcher.name == "__name__" && matches!(matcher.op, MatchOp::Equal) {
                    self.0.push(matcher.value.clone());
                }
            }
            Ok(true)
        }
    }
    let parsed = parser::parse(expr).unwrap_or_else(|error| panic!("{expr}: {error}"));
    let mut names = Names(Vec::new());
    let _ = walk_expr(&mut names, &parsed);
    assert!(!names.0.is_empty(), "{expr} selects nothing");
    names.0
}
