//! `BackgroundWorkerDown`: a worker down in a live pod, or the last word of the pods that
//! reported it and vanished ([`super::lasting`]).

use std::time::Duration;

use super::AlertRule;
use super::lasting::{App, over, worker_window};
use crate::aggregate::{Family, Group, Setting};
use crate::rules::promql::of_family;
use crate::rules::{Source, in_words};

/// Down for a minute, stopped workers left out. Each pod's worker is its own: one pod with the
/// worker down alerts although other pods have it up; a pod that vanished with the worker down
/// keeps alerting for the window unless a live pod of the app reports the worker again.
pub(super) fn worker_down(source: &Source) -> AlertRule {
    let names = &source.names;
    let label = names.setting(Setting::WorkerLabel);
    let app = App::new(names.labels(Group::Workers), label);
    let status = of_family(names, Family::WorkerStatus, &[]);
    let stopped = of_family(names, Family::WorkerStopped, &[]);
    let mut ttls: Vec<Duration> = source.workers.iter().map(|(_, ttl)| *ttl).collect();
    ttls.push(source.default_worker_ttl);
    ttls.sort();
    ttls.dedup();
    let window = worker_window(ttls.last().copied().unwrap_or(source.default_worker_ttl));
    let ttl = match ttls.as_slice() {
        [one] => in_words(*one),
        _ => format!("default {}", in_words(source.default_worker_ttl)),
    };
    let live = app.of("count", &format!("({status} == 0) unless ({stopped} == 1)"));
    let last = app.of(
        "count",
        &format!(
            "({} == 0) unless ({} == 1)",
            over("last_over_time", &status, window),
            over("last_over_time", &stopped, window)
        ),
    );
    let reporting = app.of("count", &status);
    AlertRule {
        alert: "BackgroundWorkerDown".to_owned(),
        expr: format!("{live} or ({last} unless {} {reporting})", app.on()),
        for_: Some(Duration::from_secs(60)),
        severity: "critical".to_owned(),
        labels: Vec::new(),
        summary: format!("Background worker {{{{ $labels.{label} }}}} is down"),
        description: format!(
            "{{{{ $labels.{label} }}}} has been down for 1 minute{{{{ with $labels.workload }}}} in {{{{ $value }}}} pod(s) of {{{{ with $labels.namespace }}}}{{{{ . }}}}/{{{{ end }}}}{{{{ $labels.workload }}}}{{{{ end }}}}: no heartbeat within its ttl ({ttl}), or the session it heartbeats on closed. A pod whose heartwire is gone counts with what it last reported, for {}. A worker that said worker.stop does not alert.",
            in_words(window)
        ),
        runbook: "Look at the process hosting the worker: its logs for a panic or an error in the worker's loop, and whether the loop is stuck (the heartbeat comes from inside it).".to_owned(),
    }
}
