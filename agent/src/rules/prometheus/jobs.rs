//! The rules of a configured job (stale, no recent success, failing, hung, stalled) and the one
//! about crashed runs of any job. Each groups a job's series by app ([`App`]) and reads them over
//! the job's window, so that it outlasts the heartwire that reported them ([`super::lasting`]).

use std::time::Duration;

use super::AlertRule;
use super::lasting::{App, job_window, over};
use crate::aggregate::{Family, FamilyNames, Group};
use crate::health::job::JobSpec;
use crate::rules::promql::{Matcher, of_family};
use crate::rules::{in_words, schedule_in_words};

/// The series of one job, grouped by app.
struct Job<'a> {
    names: &'a FamilyNames,
    /// The job label as Prometheus stores it (`exported_job` for a scrape without honor_labels).
    label: &'a str,
    name: &'a str,
    app: App,
    window: Duration,
}

impl Job<'_> {
    fn of(&self, family: Family, extra: &[Matcher]) -> String {
        let mut matchers = vec![Matcher::is(self.label, self.name)];
        matchers.extend_from_slice(extra);
        of_family(self.names, family, &matchers)
    }

    /// The job label as an alert label, so that the rules of one alert name differ.
    fn pin(&self) -> Vec<(String, String)> {
        vec![(self.label.to_owned(), self.name.to_owned())]
    }

    /// The words for how long a vanished pod's word counts.
    fn window_words(&self) -> String {
        in_words(self.window)
    }
}

/// The rules of the configured job `name`; `label` is the job label as Prometheus stores it.
pub(super) fn job_rules(
    names: &FamilyNames,
    label: &str,
    name: &str,
    spec: &JobSpec,
) -> Vec<AlertRule> {
    let job = Job {
        names,
        label,
        name,
        app: App::new(names.labels(Group::Jobs), label),
        window: job_window(spec),
    };
    let mut rules = vec![
        stale(&job, spec),
        no_recent_success(&job, spec),
        failing(&job, spec.failure_threshold),
        overrun(&job, spec.max_runtime),
    ];
    if let Some(quiet) = spec.stall_after {
        rules.push(stalled(&job, quiet));
    }
    rules
}

fn runbook(job: &str) -> String {
    format!(
        "See the runs and errors of {job} in the heartwire dashboard or GET /status on the sidecar: did it fail, hang or not start? Then check what starts it and the app's logs."
    )
}

/// Pages: some pod's last word is stale and no pod has a success whose deadline is ahead.
fn stale(job: &Job<'_>, spec: &JobSpec) -> AlertRule {
    let window = job.window;
    let said_stale = job.app.of(
        "max",
        &over("last_over_time", &job.of(Family::JobStale, &[]), window),
    );
    let vouched = format!(
        "{} > time() and {}",
        over("last_over_time", &job.of(Family::JobDeadline, &[]), window),
        over(
            "last_over_time",
            &job.of(Family::JobLastSuccess, &[]),
            window
        )
    );
    let name = job.name;
    AlertRule {
        alert: "JobStale".to_owned(),
        expr: format!(
            "{said_stale} == 1 unless {} {}",
            job.app.on(),
            job.app.of("max", &vouched)
        ),
        for_: None,
        severity: "critical".to_owned(),
        labels: job.pin(),
        summary: format!("Job {name} is stale: no successful run in time"),
        description: format!(
            "{name} runs {} and is stale once {} (its alert_after) pass without a successful run, the deadline following its schedule. No pod of the app has seen a success in that time (or, if it never succeeded, since heartwire started watching it). A pod whose heartwire is gone counts with what it last reported, for {}.",
            schedule_in_words(&spec.schedule),
            in_words(spec.alert_after),
            job.window_words()
        ),
        runbook: runbook(name),
    }
}

/// Informational, beside JobStale: the seed's constant form, over the newest success any pod
/// reported within the window.
fn no_recent_success(job: &Job<'_>, spec: &JobSpec) -> AlertRule {
    let newest = job.app.of(
        "max",
        &over(
            "max_over_time",
            &job.of(Family::JobLastSuccess, &[]),
            job.window,
        ),
    );
    let name = job.name;
    let after = in_words(spec.alert_after);
    AlertRule {
        alert: "JobNoRecentSuccess".to_owned(),
        expr: format!("time() - {newest} > {}", spec.alert_after.as_secs()),
        for_: None,
        severity: "info".to_owned(),
        labels: job.pin(),
        summary: format!("Job {name} has not succeeded for more than {after}"),
        description: format!(
            "The newest success of {name} that a pod of the app reported in the last {} is more than {after} ({} s, its alert_after) old, by Prometheus' clock; it runs {}. Informational: JobStale pages for the same cause.",
            job.window_words(),
            spec.alert_after.as_secs(),
            schedule_in_words(&spec.schedule)
        ),
        runbook: runbook(name),
    }
}

fn failing(job: &Job<'_>, threshold: u32) -> AlertRule {
    let name = job.name;
    let state = job.of(Family::JobState, &[Matcher::is("state", "failing")]);
    let last = if threshold == 1 {
        format!("The last run of {name} failed")
    } else {
        format!("The last {threshold} runs of {name} failed")
    };
    AlertRule {
        alert: "JobFailing".to_owned(),
        expr: job.app.live_else_last("max", &state, job.window, "== 1"),
        for_: None,
        severity: "warning".to_owned(),
        labels: job.pin(),
        summary: format!("Job {name} is failing"),
        description: format!(
            "{last} (failure_threshold {threshold}); it stays failing until a run succeeds."
        ),
        runbook: format!(
            "The error lines of {name} carry a reason (job.error {name} reason=...): see its errors in the heartwire dashboard and the app's logs of the failed run."
        ),
    }
}

fn overrun(job: &Job<'_>, max_runtime: Duration) -> AlertRule {
    let name = job.name;
    let limit = in_words(max_runtime);
    let open = job.of(Family::JobOverrunRuns, &[]);
    AlertRule {
        alert: "JobOverrun".to_owned(),
        expr: job.app.live_else_last("max", &open, job.window, "> 0"),
        for_: None,
        severity: "warning".to_owned(),
        labels: job.pin(),
        summary: format!("A run of job {name} is hung"),
        description: format!(
            "{{{{ $value }}}} run(s) of {name} have been open for more than {limit} (its max_runtime) without job.ok or job.error."
        ),
        runbook: format!(
            "Find the process running {name} that started more than {limit} ago: a deadlock, a call without a timeout, or a code path that never reports the end of the run."
        ),
    }
}

fn stalled(job: &Job<'_>, quiet: Duration) -> AlertRule {
    let name = job.name;
    let quiet = in_words(quiet);
    let stalled = job.of(Family::JobStalled, &[]);
    AlertRule {
        alert: "JobStalled".to_owned(),
        expr: job.app.live_else_last("max", &stalled, job.window, "== 1"),
        for_: None,
        severity: "warning".to_owned(),
        labels: job.pin(),
        summary: format!("Job {name} makes no progress"),
        description: format!(
            "{name} is running and has reported no progress (job.progress) for {quiet}, its stall_after: a run is open (or, for a job that sends no job.start, progress was seen since heartwire started). A job that has not started is not stalled."
        ),
        runbook: format!(
            "Check whether {name} is stuck on one item or waits on a dependency; its last progress time is in the heartwire dashboard."
        ),
    }
}

/// Crashed runs of any job, configured or not, per app. A job's crash counter may first appear
/// already at 1 (jobs nobody configured export it from their first crash on), which `increase`
/// cannot see: the second half catches a series that is new within the window and above 0.
pub(super) fn crashed(names: &FamilyNames, label: &str) -> AlertRule {
    let app = App::new(names.labels(Group::Jobs), label);
    let crashes = of_family(names, Family::JobCrashes, &[]);
    let increase = app.of("sum", &format!("increase({crashes}[15m])"));
    let new = app.of("sum", &format!("{crashes} unless {crashes} offset 15m"));
    AlertRule {
        alert: "JobCrashed".to_owned(),
        expr: format!("{increase} > 0 or {new} > 0"),
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
