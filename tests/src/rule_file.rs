//! The alert rules `heartwire rules` prints, read back as data, and promtool as their judge:
//! `promtool check rules` for validity, `promtool test rules` for when each alert fires.
//!
//! The reader knows only the shape `heartwire rules` writes (block YAML, one scalar a line), so
//! the tests need no YAML library.

// Test support: a failure to set up is the calling test's failure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::agent::heartwire;

/// One alerting rule of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The name of its group.
    pub group: String,
    /// The alert's name.
    pub alert: String,
    /// Its PromQL expression.
    pub expr: String,
    /// Its `for:`, as written (`1m`), if any.
    pub for_: Option<String>,
    /// Its labels (`severity`, …).
    pub labels: BTreeMap<String, String>,
}

/// Runs `heartwire rules --config CONFIG` and returns what it printed; panics unless it exits 0.
#[track_caller]
pub fn heartwire_rules(config: &Path) -> String {
    let output = heartwire()
        .args(["rules", "--config"])
        .arg(config)
        .output()
        .expect("heartwire runs");
    assert!(
        output.status.success(),
        "heartwire rules --config {} failed ({}): {}",
        config.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the rules are UTF-8")
}

/// The alerting rules of a rule file (or a PrometheusRule's `spec`), in file order.
pub fn parse(text: &str) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    let mut group = String::new();
    // The indentation of the `labels:` or `annotations:` key whose entries follow, and whether
    // they are kept.
    let mut nested: Option<(usize, bool)> = None;
    for line in text.lines() {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        let entry = content.strip_prefix("- ").unwrap_or(content);
        let Some((key, value)) = entry.split_once(':') else {
            continue;
        };
        let value = scalar(value.trim());
        if let Some((depth, keep)) = nested {
            if indent > depth && !content.starts_with("- ") {
                if keep && let Some(rule) = rules.last_mut() {
                    rule.labels.insert(key.to_owned(), value);
                }
                continue;
            }
            nested = None;
        }
        match key {
            "name" if content.starts_with("- ") => group = value,
            "alert" => rules.push(Rule {
                group: group.clone(),
                alert: value,
                expr: String::new(),
                for_: None,
                labels: BTreeMap::new(),
            }),
            "expr" => rules.last_mut().expect("expr after alert").expr = value,
            "for" => rules.last_mut().expect("for after alert").for_ = Some(value),
            "labels" => nested = Some((indent, true)),
            "annotations" => nested = Some((indent, false)),
            _ => {}
        }
    }
    rules
}

/// A YAML scalar as the rule writer writes it: plain, 'single-quoted' or "double-quoted".
fn scalar(text: &str) -> String {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        return out;
    }
    text.to_owned()
}

/// The one rule named `alert` whose labels include `labels`; panics with the rule names if
/// there is not exactly one.
#[track_caller]
pub fn find<'a>(rules: &'a [Rule], alert: &str, labels: &[(&str, &str)]) -> &'a Rule {
    let found: Vec<&Rule> = rules
        .iter()
        .filter(|rule| rule.alert == alert)
        .filter(|rule| {
            labels
                .iter()
                .all(|(k, v)| rule.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!(
            "{} rules named {alert} with labels {labels:?}; the rules: {:?}",
            found.len(),
            rules.iter().map(|r| &r.alert).collect::<Vec<_>>()
        ),
    }
}

/// `promtool check rules` on `text`: `Ok` if it passes, else what promtool said.
pub fn check(promtool: &Path, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, text).expect("the rules are written");
    run(Command::new(promtool).args(["check", "rules"]).arg(&file))
}

/// `promtool test rules` with the test cases `tests` (the YAML of a test file's `tests:` list)
/// against `rules`, written bare: alert, expr, for and labels, without the annotations, which
/// promtool would otherwise compare word for word.
pub fn test(promtool: &Path, rules: &[Rule], tests: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("rules.yaml"), bare(rules)).expect("the rules are written");
    let file = dir.path().join("test.yaml");
    let header = "rule_files: [rules.yaml]\nevaluation_interval: 1m\ntests:\n";
    std::fs::write(&file, format!("{header}{tests}")).expect("the test is written");
    run(Command::new(promtool)
        .args(["test", "rules"])
        .arg(&file)
        .current_dir(dir.path()))
}

fn bare(rules: &[Rule]) -> String {
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let mut out = String::from("groups:\n");
    let mut groups: Vec<&str> = rules.iter().map(|rule| rule.group.as_str()).collect();
    groups.dedup();
    for group in groups {
        let _ = writeln!(out, "  - name: {}\n    rules:", quote(group));
        for rule in rules.iter().filter(|rule| rule.group == group) {
            let _ = writeln!(
                out,
                "      - alert: {}\n        expr: {}",
                quote(&rule.alert),
                quote(&rule.expr)
            );
            if let Some(window) = &rule.for_ {
                let _ = writeln!(out, "        for: {window}");
            }
            out.push_str("        labels:\n");
            for (key, value) in &rule.labels {
                let _ = writeln!(out, "          {key}: {}", quote(value));
            }
        }
    }
    out
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|error| format!("promtool did not run: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# generated\ngroups:\n  - name: heartwire-jobs\n    rules:\n      - alert: JobNoRecentSuccess\n        expr: 'time() - max by(job) (x{job=\"a''b\"}) > 300'\n        labels:\n          severity: warning\n          job: a\n        annotations:\n          summary: 'Job a: late'\n      - alert: Down\n        expr: \"up == 0\"\n        for: 1m\n        labels:\n          severity: critical\n  - name: other\n    rules:\n      - alert: Plain\n        expr: up\n";

    #[test]
    fn reads_rules_with_their_labels_but_not_their_annotations() {
        let rules = parse(FILE);
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].group, "heartwire-jobs");
        assert_eq!(rules[0].expr, "time() - max by(job) (x{job=\"a'b\"}) > 300");
        assert_eq!(rules[0].for_, None);
        assert_eq!(
            rules[0].labels,
            BTreeMap::from([
                ("severity".to_owned(), "warning".to_owned()),
                ("job".to_owned(), "a".to_owned())
            ])
        );
        assert_eq!(
            (rules[1].expr.as_str(), rules[1].for_.as_deref()),
            ("up == 0", Some("1m"))
        );
        assert_eq!(
            (rules[2].group.as_str(), rules[2].expr.as_str()),
            ("other", "up")
        );
        assert_eq!(
            find(&rules, "JobNoRecentSuccess", &[("job", "a")]).alert,
            "JobNoRecentSuccess"
        );
    }

    #[test]
    fn writes_bare_rules_that_read_back_the_same() {
        let rules = parse(FILE);
        assert_eq!(parse(&bare(&rules)), rules);
    }
}
