//! The alert rules a config implies, as a Prometheus rule file or a PrometheusRule object.
//!
//! Per configured job: stale on its schedule (the page: no pod of the app has seen it succeed in
//! time), the seed-compatible constant form `time() - last success > alert_after` (informational,
//! so that one incident pages once), failing, hung runs and stalled progress. For every job:
//! crashed runs. For every worker: down for a minute. These group a job's or worker's series by
//! app, not by pod, and read them over a window, so that they neither resolve when the heartwire
//! that reported them is killed nor double when its pod moves (`prometheus/lasting.rs` says how
//! and why). For the agent itself: not seen at all for a minute (not scraped, `up`/`absent`, or
//! its textfile not written), the one failure a sidecar cannot report; dropped, lost and
//! rejected input, series dropped at a cap, and a config file that is not the one running (it
//! does not load, or it needs a restart). Then the `alerts:` of the config, in their groups, with
//! their guards.
//!
//! The rules read the job label as the scrape stores it ([`Scrape::honor_labels`]): with
//! `honor_labels: true` (the Helm chart's monitor) heartwire's `job` label stays `job`; without
//! it Prometheus renames it `exported_job`, the scrape's own `job` taking its place.

use std::time::Duration;

use super::Source;
use super::promql;
use super::yaml::{self, Node};
use crate::aggregate::{FamilyNames, Setting};
use crate::config::Textfile;

/// How Prometheus sees heartwire, for the rule that fires when it does not (`HeartwireDown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrapeTarget {
    /// `up{job="NAME"}`: the scrape job's name (a plain Prometheus scrape config).
    Job(String),
    /// `up{container="NAME"}`: the sidecar's container name, which prometheus-operator puts on
    /// every pod target whatever the monitor is called.
    Container(String),
    /// Not scraped: read through node_exporter's textfile collector, as the file heartwire
    /// writes every `interval` (`node_textfile_mtime_seconds{file=~"(.*/)?NAME"}`).
    Textfile {
        /// `textfile.file_name`.
        file_name: String,
        /// `textfile.interval`.
        interval: Duration,
    },
}

impl ScrapeTarget {
    /// The textfile target of a config's `textfile:` section.
    pub fn textfile(textfile: &Textfile) -> ScrapeTarget {
        ScrapeTarget::Textfile {
            file_name: textfile.file_name.as_str().to_owned(),
            interval: textfile.interval,
        }
    }
}

/// One alerting rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRule {
    /// The alert's name.
    pub alert: String,
    /// The PromQL expression; every series it returns is an alert.
    pub expr: String,
    /// How long the expression must hold before the alert fires.
    pub for_: Option<Duration>,
    /// The `severity` label: `critical`, `warning` or `info` for the built-in rules.
    pub severity: String,
    /// Further labels: a per-job rule names its job, so that rules of one alert name differ.
    pub labels: Vec<(String, String)>,
    /// One line: what is wrong.
    pub summary: String,
    /// What it means, with the threshold in words.
    pub description: String,
    /// What to look at first; none when empty.
    pub runbook: String,
}

/// A named group of rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    /// The group's name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<AlertRule>,
}

/// How Prometheus scrapes heartwire: what the rules must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scrape {
    /// How `HeartwireDown` finds heartwire.
    pub target: ScrapeTarget,
    /// `honor_labels: true` keeps the labels heartwire exports (the Helm chart's monitor sets
    /// `honorLabels`); `false` renames those the target has too: `job` becomes `exported_job`.
    pub honor_labels: bool,
}

impl Scrape {
    /// The job label of the job families as Prometheus stores it: `exported_job` when the
    /// config keeps the name `job` and the scrape does not honor labels.
    pub fn job_label<'a>(&self, names: &'a FamilyNames) -> &'a str {
        match names.setting(Setting::JobLabel) {
            "job" if !self.honor_labels => "exported_job",
            label => label,
        }
    }
}

/// Every rule the config implies, in groups (empty groups left out).
pub fn groups(source: &Source, scrape: &Scrape) -> Vec<RuleGroup> {
    let label = scrape.job_label(&source.names);
    let mut jobs: Vec<AlertRule> = source
        .jobs
        .iter()
        .flat_map(|(name, spec)| jobs::job_rules(&source.names, label, name, spec))
        .collect();
    jobs.push(jobs::crashed(&source.names, label));
    let mut groups: Vec<RuleGroup> = [
        ("heartwire-jobs", jobs),
        ("heartwire-workers", vec![workers::worker_down(source)]),
        ("heartwire-agent", agent::agent_rules(&scrape.target)),
    ]
    .into_iter()
    .map(|(name, rules)| RuleGroup {
        name: name.to_owned(),
        rules,
    })
    .collect();
    // The config's alerts, each in its group, the groups in the order they first appear.
    for (name, alert) in &source.alerts.0 {
        let group = alert.group.as_deref().unwrap_or(DEFAULT_GROUP);
        let rule = custom::rule(name, alert, &source.guards);
        match groups.iter_mut().find(|existing| existing.name == group) {
            Some(existing) => existing.rules.push(rule),
            None => groups.push(RuleGroup {
                name: group.to_owned(),
                rules: vec![rule],
            }),
        }
    }
    groups.retain(|group| !group.rules.is_empty());
    groups
}

/// The comment at the top of both outputs: what they are, and the honor_labels they assume.
pub fn header(names: &FamilyNames, scrape: &Scrape) -> String {
    let label = names.setting(Setting::JobLabel);
    let mode = if label != "job" {
        format!(
            "# For a scrape with honor_labels true or false: jobs are labelled `{label}`, which no scrape\n# renames.\n"
        )
    } else if scrape.honor_labels {
        "# For a scrape with honor_labels: true (the Helm chart's monitor sets honorLabels), which keeps\n# heartwire's `job` label; without it, generate them with `--honor-labels false`.\n".to_owned()
    } else {
        "# For a scrape without honor_labels (`--honor-labels false`): heartwire's `job` label arrives\n# renamed `exported_job`, which these rules read.\n".to_owned()
    };
    format!(
        "# Alert rules derived from heartwire's config by `heartwire rules`: regenerate them when the\n# config changes rather than editing them here.\n{mode}"
    )
}

/// One line for `heartwire check`: which honor_labels `heartwire rules` assumes by default.
pub fn honor_labels_line(names: &FamilyNames) -> String {
    match names.setting(Setting::JobLabel) {
        "job" => "rules: `heartwire rules` assumes honor_labels: true (the Helm chart's monitor); `--honor-labels false` reads the job label as exported_job".to_owned(),
        label => format!(
            "rules: `heartwire rules` assumes honor_labels: true; jobs are labelled `{label}`, which no scrape renames, so the rules hold either way"
        ),
    }
}

/// A Prometheus rule file (`rule_files:`; `promtool check rules` reads it) under `header`.
pub fn rule_file(header: &str, groups: &[RuleGroup]) -> String {
    format!(
        "{header}{}",
        yaml::to_string(&Node::map([("groups", groups_node(groups))]))
    )
}

/// A prometheus-operator `PrometheusRule` object named `name`, with the same groups.
pub fn prometheus_rule(header: &str, groups: &[RuleGroup], name: &str) -> String {
    let object = Node::map([
        ("apiVersion", Node::text("monitoring.coreos.com/v1")),
        ("kind", Node::text("PrometheusRule")),
        (
            "metadata",
            Node::map([
                ("name", Node::text(name)),
                (
                    "labels",
                    Node::map([("app.kubernetes.io/name", Node::text("heartwire"))]),
                ),
            ]),
        ),
        ("spec", Node::map([("groups", groups_node(groups))])),
    ]);
    format!("{header}{}", yaml::to_string(&object))
}

fn groups_node(groups: &[RuleGroup]) -> Node {
    Node::List(
        groups
            .iter()
            .map(|group| {
                Node::map([
                    ("name", Node::text(&group.name)),
                    (
                        "rules",
                        Node::List(group.rules.iter().map(rule_node).collect()),
                    ),
                ])
            })
            .collect(),
    )
}

fn rule_node(rule: &AlertRule) -> Node {
    let mut entries = vec![
        ("alert", Node::text(&rule.alert)),
        ("expr", Node::text(&rule.expr)),
    ];
    if let Some(window) = rule.for_ {
        entries.push(("for", Node::text(promql::duration(window))));
    }
    let labels = std::iter::once(("severity".to_owned(), Node::text(&rule.severity))).chain(
        rule.labels
            .iter()
            .map(|(name, value)| (name.clone(), Node::text(value))),
    );
    entries.push(("labels", Node::map(labels)));
    let mut annotations = vec![
        ("summary", Node::text(&rule.summary)),
        ("description", Node::text(&rule.description)),
    ];
    if !rule.runbook.is_empty() {
        annotations.push(("runbook", Node::text(&rule.runbook)));
    }
    entries.push(("annotations", Node::map(annotations)));
    Node::map(entries)
}

mod agent;
mod check;
mod custom;
mod jobs;
mod lasting;
mod ratio;
mod workers;

pub(crate) use check::check;
use custom::DEFAULT_GROUP;
pub(crate) use ratio::ratio_expr;
#[cfg(test)]
mod tests;
