//! Rules that outlast the agent: which series belong to one app wherever its pods run, and how
//! long what a vanished heartwire last reported keeps counting.
//!
//! When heartwire is killed, its pod deleted or moved, Prometheus marks its series stale at the
//! next failed scrape: an expression over the plain series returns nothing, and every alert it
//! held resolves although nothing was fixed. So the job and worker rules read each series over a
//! window (`last_over_time`, `max_over_time`), which skips staleness markers: a series that
//! vanished counts with its last sample until the window has passed it.
//!
//! **The app.** A pod that replaces another has a new `pod` and `instance`, so the rules
//! aggregate them away and group by what stays: `namespace`, `workload` (the pod's name without
//! the suffixes Kubernetes adds: `web-7d9c8b6f5-x2k4p` → `web`, `api-0` → `api`; a bare pod is its
//! own workload), the config's constant labels (`families.<group>.labels`) and the job's or
//! worker's label. prometheus-operator's monitors and Prometheus' example Kubernetes scrape
//! configs label every target with `namespace` and `pod`; outside Kubernetes both are absent, a
//! missing label groups as empty, and the rules group by job (or worker) alone, with the constant
//! labels to tell two apps apart. Two apps that report the same job name alert apart as long as
//! they differ in namespace, workload or constant labels; the replicas of one app are one group,
//! as a job that runs on any one of them is fine.
//!
//! **The window** of a job is `alert_after` plus one period, at least 10 minutes more, at most
//! 8 days: a pod that replaces a vanished one without its state (a new node's volume is empty)
//! warms up for `alert_after` before it calls the job stale, so the old pod's word must outlive
//! that and the move itself; and a job whose heartwire vanished right after a success is still
//! reported once it becomes overdue. A worker's is its longest ttl plus 10 minutes. Past the
//! window, an agent that is still gone is `HeartwireDown`'s to report. A quick restart that
//! restores the state file brings the same series back with the same values, so nothing changes.
//!
//! **The expressions** (G: the app's labels; each pod's series is read for the window W):
//! - `JobStale`: some pod's last word is stale, unless some pod has seen a success whose
//!   deadline is still ahead: `max by(G) (last_over_time(stale[W])) == 1 unless on(G)
//!   max by(G) (last_over_time(deadline[W]) > time() and last_over_time(last_success[W]))`.
//!   A warming pod (new, no success seen yet) does not say the job is fine, so a pod move keeps
//!   the alert; a success on any pod, the new one included, ends it; a pod killed after a
//!   success vouches for the job until its deadline, not longer.
//! - `JobNoRecentSuccess`: `time() - max by(G) (max_over_time(last_success[W])) > alert_after`,
//!   so the newest success seen on any pod within the window counts, the pod gone or not.
//! - `JobFailing`, `JobOverrun`, `JobStalled` are about runs, which happen in the live pods:
//!   while some pod of the app reports the job, the live pods decide; when none does (killed,
//!   gone, not yet replaced) the last word stays for the window.
//! - `BackgroundWorkerDown`: a live pod reports the worker down (not stopped), or every pod that
//!   reported it vanished, the last word being down; a live pod reporting it (up) ends the latter.
//!
//! **One incident, one page.** `JobStale` and `JobNoRecentSuccess` fire for the same cause;
//! `JobStale` pages (`critical`: it follows the schedule, and sees a job that never succeeded),
//! `JobNoRecentSuccess` informs (`info`), rather than an inhibition rule every Alertmanager would
//! have to carry.
//!
//! **Trade-offs.** `by(…)` rather than `without(instance, pod)`: a scrape that copies pod labels
//! (Prometheus' example config maps them all, `pod_template_hash` included) would split an app
//! at each rollout, and the old pods' last word would outlive the fix. The workload is read off
//! the pod name because that is the one label naming the app that every Kubernetes scrape puts on
//! the target (with `honor_labels`, the scrape's `job` gives way to heartwire's); the heuristic
//! can misread a DaemonSet or Job whose own name ends in a short suffix-like word (`agent-db`
//! reads as `agent`), which only merges it with a workload of that shorter name. Without a state
//! file a restarted agent warms up again: its stale gauge says 0, so `JobStale` rests until the
//! warm-up ends, while `JobNoRecentSuccess` goes on with the success it saw within the window.

use std::time::Duration;

use crate::aggregate::ConstLabels;
use crate::health::job::JobSpec;
use crate::rules::promql;

/// The label that names a pod's workload in the rules' results.
pub(super) const WORKLOAD: &str = "workload";

/// The characters of the random suffixes Kubernetes puts in pod names (the ReplicaSet's
/// pod-template-hash and `generateName`'s 5), from k8s.io/apimachinery/pkg/util/rand: no vowels,
/// no 0, 1 or 3, so that they spell no words.
const SUFFIX: &str = "[bcdfghjklmnpqrstvwxz2456789]";

/// How long a pod move may take, from the last scrape of the old pod to the first of the new
/// one, for the alerts to carry over.
const MOVE: Duration = Duration::from_secs(600);

/// The longest window: past a week and a day, an agent still gone is `HeartwireDown`'s alone.
const LONGEST: Duration = Duration::from_secs(8 * 86_400);

/// The labels that name an app's job or worker across its pods.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct App {
    labels: Vec<String>,
}

impl App {
    /// `namespace`, `workload`, the constant labels, then `key` (the job or worker label).
    pub(super) fn new(constant: &ConstLabels, key: &str) -> App {
        let mut labels = vec!["namespace".to_owned(), WORKLOAD.to_owned()];
        labels.extend(constant.iter().map(|(name, _)| name.clone()));
        labels.push(key.to_owned());
        labels.dedup();
        App { labels }
    }

    /// `on(namespace, workload, …)`.
    pub(super) fn on(&self) -> String {
        format!("on({})", self.labels.join(", "))
    }

    /// `op by(namespace, workload, …) (inner with its workload)`.
    pub(super) fn of(&self, op: &str, inner: &str) -> String {
        format!(
            "{op}{} ({})",
            promql::by(&self.labels),
            with_workload(inner)
        )
    }

    /// `op` of the live series' values, compared by `condition`; for an app none of whose pods
    /// reports a series now, the same of each pod's last value within `window`.
    pub(super) fn live_else_last(
        &self,
        op: &str,
        series: &str,
        window: Duration,
        condition: &str,
    ) -> String {
        let live = self.of(op, series);
        let last = self.of(op, &over("last_over_time", series, window));
        let reporting = self.of("count", series);
        format!(
            "{live} {condition} or ({last} {condition} unless {} {reporting})",
            self.on()
        )
    }
}

/// `inner` with a `workload` label derived from its `pod` label: the name without a
/// Deployment's `-<hash>-<suffix>`, a StatefulSet's `-<ordinal>` or a DaemonSet's or Job's
/// `-<suffix>`. Without a `pod` label the series is left as it is.
pub(super) fn with_workload(inner: &str) -> String {
    let regex = format!("(.+)-{SUFFIX}{{1,10}}-{SUFFIX}{{5}}|(.+)-[0-9]+|(.+)-{SUFFIX}{{5}}|(.+)");
    format!(
        "label_replace({inner}, {}, \"${{1}}${{2}}${{3}}${{4}}\", \"pod\", {})",
        promql::quote(WORKLOAD),
        promql::quote(&regex)
    )
}

/// `function(series[window])`.
pub(super) fn over(function: &str, series: &str, window: Duration) -> String {
    format!("{function}({series}[{}])", promql::duration(window))
}

/// How long a job's series count after they vanished: `alert_after` plus one period, at least
/// [`MOVE`], whole minutes, at most [`LONGEST`].
pub(super) fn job_window(spec: &JobSpec) -> Duration {
    let margin = spec.schedule.period().max(MOVE);
    minutes(spec.alert_after.saturating_add(margin))
}

/// How long a worker's series count after they vanished: its longest ttl plus [`MOVE`].
pub(super) fn worker_window(longest_ttl: Duration) -> Duration {
    minutes(longest_ttl.saturating_add(MOVE))
}

/// `d` rounded up to whole minutes, at most [`LONGEST`].
fn minutes(d: Duration) -> Duration {
    let seconds = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    Duration::from_secs(seconds.div_ceil(60).saturating_mul(60)).min(LONGEST)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::schedule::Schedule;

    fn spec(schedule: Schedule, alert_after: u64) -> JobSpec {
        let mut spec = JobSpec::new(schedule);
        spec.alert_after = Duration::from_secs(alert_after);
        spec
    }

    #[test]
    fn a_job_window_is_alert_after_and_a_period_of_at_least_ten_minutes_at_most_eight_days() {
        let every = |secs| Schedule::every(Duration::from_secs(secs)).unwrap();
        assert_eq!(job_window(&spec(every(60), 300)), Duration::from_secs(900));
        assert_eq!(
            job_window(&spec(every(3600), 7200)),
            Duration::from_secs(3 * 3600)
        );
        let daily = Schedule::cron("45 3 * * *", "UTC").unwrap();
        assert_eq!(
            job_window(&spec(daily, 108_000)),
            Duration::from_secs(54 * 3600)
        );
        let yearly = Schedule::cron("@yearly", "UTC").unwrap();
        assert_eq!(job_window(&spec(yearly, 40_000_000)), LONGEST);
        assert_eq!(job_window(&spec(every(1), 5)), Duration::from_secs(11 * 60));
    }

    #[test]
    fn a_worker_window_is_its_ttl_and_ten_minutes_in_whole_minutes() {
        assert_eq!(
            worker_window(Duration::from_secs(90)),
            Duration::from_secs(12 * 60)
        );
        assert_eq!(
            worker_window(Duration::from_millis(120_500)),
            Duration::from_secs(13 * 60)
        );
    }

    #[test]
    fn an_app_groups_by_namespace_workload_constant_labels_and_its_key() {
        let app = App::new(&vec![("service".into(), "worker".into())], "job");
        assert_eq!(app.on(), "on(namespace, workload, service, job)");
        assert_eq!(
            app.of("max", "x"),
            format!(
                "max by(namespace, workload, service, job) ({})",
                with_workload("x")
            )
        );
    }
}
