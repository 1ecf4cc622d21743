//! The alert rules a config implies, as a Prometheus rule file or a PrometheusRule object.
//!
//! Per configured job: stale on its schedule (`min by(job)` of the stale gauge, so the job is
//! stale only when no replica has seen it succeed in time), the seed-compatible constant form
//! `time() - max by(job) (last success) > alert_after`, failing, hung runs and stalled progress.
//! For every job: crashed runs. For every worker: down for a minute. For the agent itself:
//! dropped, lost and rejected input, series dropped at a cap, and the agent not seen at all (not
//! scraped, `up`/`absent`, or its textfile not written), the one failure a sidecar cannot
//! report. Then the `alerts:` of the config, in their groups, with their guards.

use std::time::Duration;

use super::promql::{self, Matcher, by, of_family};
use super::yaml::{self, Node};
use super::{Source, in_words, schedule_in_words};
use crate::aggregate::{Family, FamilyNames, Setting};
use crate::config::Textfile;
use crate::health::job::JobSpec;

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

/// Every rule the config implies, in groups (empty groups left out).
pub fn groups(source: &Source, target: &ScrapeTarget) -> Vec<RuleGroup> {
    let mut jobs: Vec<AlertRule> = source
        .jobs
        .iter()
        .flat_map(|(name, spec)| job_rules(&source.names, name, spec))
        .collect();
    jobs.push(crashed(&source.names));
    let mut groups: Vec<RuleGroup> = [
        ("heartwire-jobs", jobs),
        ("heartwire-workers", vec![worker_down(source)]),
        ("heartwire-agent", agent::agent_rules(target)),
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

/// The comment at the top of both outputs.
const HEADER: &str = "# Alert rules derived from heartwire's config by `heartwire rules`: regenerate them when the\n# config changes rather than editing them here.\n";

/// A Prometheus rule file (`rule_files:`; `promtool check rules` reads it).
pub fn rule_file(groups: &[RuleGroup]) -> String {
    format!(
        "{HEADER}{}",
        yaml::to_string(&Node::map([("groups", groups_node(groups))]))
    )
}

/// A prometheus-operator `PrometheusRule` object named `name`, with the same groups.
pub fn prometheus_rule(groups: &[RuleGroup], name: &str) -> String {
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
    format!("{HEADER}{}", yaml::to_string(&object))
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

/// A selector of one job's series in a job family.
struct JobSelector<'a> {
    names: &'a FamilyNames,
    job: &'a str,
}

impl JobSelector<'_> {
    fn label(&self) -> &str {
        self.names.setting(Setting::JobLabel)
    }

    fn of(&self, family: Family, extra: &[Matcher]) -> String {
        let mut matchers = vec![Matcher::is(self.label(), self.job)];
        matchers.extend_from_slice(extra);
        of_family(self.names, family, &matchers)
    }

    fn by(&self) -> String {
        by(&[self.label()])
    }

    /// The job label as an alert label.
    fn pin(&self) -> Vec<(String, String)> {
        vec![(self.label().to_owned(), self.job.to_owned())]
    }
}

fn job_rules(names: &FamilyNames, job: &str, spec: &JobSpec) -> Vec<AlertRule> {
    let pick = JobSelector { names, job };
    let schedule = schedule_in_words(&spec.schedule);
    let after = in_words(spec.alert_after);
    let runbook = format!(
        "See the runs and errors of {job} in the heartwire dashboard or GET /status on the sidecar: did it fail, hang or not start? Then check what starts it and the app's logs."
    );
    let mut rules = vec![
        AlertRule {
            alert: "JobStale".to_owned(),
            expr: format!("min{} ({}) == 1", pick.by(), pick.of(Family::JobStale, &[])),
            for_: None,
            severity: "critical".to_owned(),
            labels: pick.pin(),
            summary: format!("Job {job} is stale: no successful run in time"),
            description: format!(
                "{job} runs {schedule} and is stale once {after} (its alert_after) pass without a successful run, the deadline following its schedule. No replica has seen a success in that time (or, if it never succeeded, since heartwire started watching it)."
            ),
            runbook: runbook.clone(),
        },
        AlertRule {
            alert: "JobNoRecentSuccess".to_owned(),
            expr: format!(
                "time() - max{} ({}) > {}",
                pick.by(),
                pick.of(Family::JobLastSuccess, &[]),
                spec.alert_after.as_secs()
            ),
            for_: None,
            severity: "warning".to_owned(),
            labels: pick.pin(),
            summary: format!("Job {job} has not succeeded for more than {after}"),
            description: format!(
                "The newest success of {job} on any replica is more than {after} ({} s, its alert_after) old, by Prometheus' clock; it runs {schedule}.",
                spec.alert_after.as_secs()
            ),
            runbook,
        },
        failing(&pick, spec.failure_threshold),
        overrun(&pick, spec.max_runtime),
    ];
    if let Some(quiet) = spec.stall_after {
        rules.push(stalled(&pick, quiet));
    }
    rules
}

fn failing(pick: &JobSelector<'_>, threshold: u32) -> AlertRule {
    let job = pick.job;
    let failing = Matcher::is("state", "failing");
    let last = if threshold == 1 {
        format!("The last run of {job} failed")
    } else {
        format!("The last {threshold} runs of {job} failed")
    };
    AlertRule {
        alert: "JobFailing".to_owned(),
        expr: format!(
            "max{} ({}) == 1",
            pick.by(),
            pick.of(Family::JobState, &[failing])
        ),
        for_: None,
        severity: "warning".to_owned(),
        labels: pick.pin(),
        summary: format!("Job {job} is failing"),
        description: format!(
            "{last} (failure_threshold {threshold}); it stays failing until a run succeeds."
        ),
        runbook: format!(
            "The error lines of {job} carry a reason (job.error {job} reason=...): see its errors in the heartwire dashboard and the app's logs of the failed run."
        ),
    }
}

fn overrun(pick: &JobSelector<'_>, max_runtime: Duration) -> AlertRule {
    let job = pick.job;
    let limit = in_words(max_runtime);
    AlertRule {
        alert: "JobOverrun".to_owned(),
        expr: format!(
            "max{} ({}) > 0",
            pick.by(),
            pick.of(Family::JobOverrunRuns, &[])
        ),
        for_: None,
        severity: "warning".to_owned(),
        labels: pick.pin(),
        summary: format!("A run of job {job} is hung"),
        description: format!(
            "{{{{ $value }}}} run(s) of {job} have been open for more than {limit} (its max_runtime) without job.ok or job.error."
        ),
        runbook: format!(
            "Find the process running {job} that started more than {limit} ago: a deadlock, a call without a timeout, or a code path that never reports the end of the run."
        ),
    }
}

fn stalled(pick: &JobSelector<'_>, quiet: Duration) -> AlertRule {
    let job = pick.job;
    let quiet = in_words(quiet);
    AlertRule {
        alert: "JobStalled".to_owned(),
        expr: format!(
            "max{} ({}) == 1",
            pick.by(),
            pick.of(Family::JobStalled, &[])
        ),
        for_: None,
        severity: "warning".to_owned(),
        labels: pick.pin(),
        summary: format!("Job {job} makes no progress"),
        description: format!(
            "{job} is running and has reported no progress (job.progress) for {quiet}, its stall_after: a run is open (or, for a job that sends no job.start, progress was seen since heartwire started). A job that has not started is not stalled."
        ),
        runbook: format!(
            "Check whether {job} is stuck on one item or waits on a dependency; its last progress time is in the heartwire dashboard."
        ),
    }
}

/// Crashed runs of any job, configured or not. A job's crash counter may first appear already
/// at 1 (jobs nobody configured export it from their first crash on), which `increase` cannot
/// see: the second half catches a series that is new within the window and above 0.
fn crashed(names: &FamilyNames) -> AlertRule {
    let label = names.setting(Setting::JobLabel);
    let crashes = of_family(names, Family::JobCrashes, &[]);
    let by = by(&[label]);
    AlertRule {
        alert: "JobCrashed".to_owned(),
        expr: format!(
            "sum{by} (increase({crashes}[15m])) > 0 or sum{by} ({crashes} unless {crashes} offset 15m) > 0"
        ),
        for_: None,
        severity: "warning".to_owned(),
        labels: Vec::new(),
        summary: format!("A run of job {{{{ $labels.{label} }}}} crashed"),
        description: format!(
            "A run of {{{{ $labels.{label} }}}} ended without job.ok or job.error in the last 15 minutes: the process running it exited (killed, out of memory) while its session to heartwire was open."
        ),
        runbook: "Look for OOMKilled, an eviction or a signal: kubectl describe pod, kubectl get events, and the app's logs before the restart (kubectl logs --previous).".to_owned(),
    }
}

fn worker_down(source: &Source) -> AlertRule {
    let names = &source.names;
    let label = names.setting(Setting::WorkerLabel);
    let status = of_family(names, Family::WorkerStatus, &[]);
    let stopped = of_family(names, Family::WorkerStopped, &[]);
    let mut ttls: Vec<Duration> = source.workers.iter().map(|(_, ttl)| *ttl).collect();
    ttls.push(source.default_worker_ttl);
    ttls.sort();
    ttls.dedup();
    let ttl = match ttls.as_slice() {
        [one] => in_words(*one),
        _ => format!("default {}", in_words(source.default_worker_ttl)),
    };
    AlertRule {
        alert: "BackgroundWorkerDown".to_owned(),
        expr: format!("({status} == 0) unless ({stopped} == 1)"),
        for_: Some(Duration::from_secs(60)),
        severity: "critical".to_owned(),
        labels: Vec::new(),
        summary: format!("Background worker {{{{ $labels.{label} }}}} is down"),
        description: format!(
            "{{{{ $labels.{label} }}}} has been down for 1 minute{{{{ with $labels.pod }}}} in pod {{{{ . }}}}{{{{ end }}}}: no heartbeat within its ttl ({ttl}), or the session it heartbeats on closed. A worker that said worker.stop does not alert."
        ),
        runbook: "Look at the process hosting the worker: its logs for a panic or an error in the worker's loop, and whether the loop is stuck (the heartbeat comes from inside it).".to_owned(),
    }
}

mod agent;
mod check;
mod custom;
mod ratio;

pub(crate) use check::check;
use custom::DEFAULT_GROUP;
pub(crate) use ratio::ratio_expr;
#[cfg(test)]
mod tests;
