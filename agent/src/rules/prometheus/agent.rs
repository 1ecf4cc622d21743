//! The rules about heartwire itself: the agent not seen at all (`HeartwireDown`), input it
//! drops, loses or rejects, and a config file that is not the config running.
//!
//! How "not seen" is told depends on how Prometheus sees heartwire. Scraped directly, it is the
//! scrape's `up` (or no such target). Seen only through node_exporter's textfile collector (a VM
//! without a scrape of heartwire), there is no `up` of heartwire at all, so `absent(up{…})`
//! would fire for ever; the signal is then the age of the file heartwire writes, as
//! node_exporter reports it in `node_textfile_mtime_seconds`.

use std::time::Duration;

use super::{AlertRule, ScrapeTarget};
use crate::rules::in_words;
use crate::rules::promql::{Matcher, regex_escape, selector};
use crate::telemetry::names;

/// `… at INSTANCE` when the alert has an instance label.
const AT_INSTANCE: &str = "{{ with $labels.instance }} at {{ . }}{{ end }}";

/// How long heartwire may go unseen before `HeartwireDown` fires.
const DOWN_FOR: Duration = Duration::from_secs(60);

pub(super) fn agent_rules(target: &ScrapeTarget) -> Vec<AlertRule> {
    let mut rules = vec![down(target)];
    rules.extend(input_rules());
    rules.extend(config_rules());
    rules
}

/// `HeartwireDown`: not scraped (or no target), or its textfile not written.
fn down(target: &ScrapeTarget) -> AlertRule {
    let (up, sidecar) = match target {
        ScrapeTarget::Job(job) => (
            selector("up", &Vec::new(), &[Matcher::is("job", job)]),
            "the sidecar's logs".to_owned(),
        ),
        ScrapeTarget::Container(container) => (
            selector("up", &Vec::new(), &[Matcher::is("container", container)]),
            format!("its logs (kubectl logs -c {container})"),
        ),
        ScrapeTarget::Textfile {
            file_name,
            interval,
        } => return textfile_down(file_name, *interval),
    };
    AlertRule {
        alert: "HeartwireDown".to_owned(),
        expr: format!("{up} == 0 or absent({up})"),
        for_: Some(DOWN_FOR),
        severity: "critical".to_owned(),
        labels: Vec::new(),
        summary: format!("heartwire cannot be scraped{AT_INSTANCE}"),
        description: format!(
            "Prometheus has not scraped heartwire ({up}) for 1 minute{{{{ with $labels.pod }}}} in pod {{{{ $labels.namespace }}}}/{{{{ . }}}}{{{{ end }}}}, or finds no such target: the jobs and workers it watches are not watched."
        ),
        runbook: format!(
            "Look at the pod (kubectl describe pod) and {sidecar}: a startup error names the config key to fix. If no target exists, check that the scrape config or monitor selects the pods."
        ),
    }
}

/// How old heartwire's textfile may get: four write intervals, and never less than 2 minutes, so
/// that node_exporter's own scrape interval cannot make a healthy file look late.
fn textfile_limit(interval: Duration) -> Duration {
    let limit = interval.saturating_mul(4).max(Duration::from_secs(120));
    Duration::from_secs(limit.as_secs() + u64::from(limit.subsec_nanos() > 0))
}

/// `HeartwireDown` in a textfile-only setup: the file's age as node_exporter reports it (a full
/// path in node_exporter 1.5 and later, the base name before), or no such file.
fn textfile_down(file_name: &str, interval: Duration) -> AlertRule {
    let file = format!("(.*/)?{}", regex_escape(file_name));
    let mtime = selector(
        "node_textfile_mtime_seconds",
        &Vec::new(),
        &[Matcher::Regex("file".to_owned(), file)],
    );
    let limit = textfile_limit(interval);
    AlertRule {
        alert: "HeartwireDown".to_owned(),
        expr: format!(
            "time() - {mtime} > {} or absent({mtime})",
            limit.as_secs()
        ),
        for_: Some(DOWN_FOR),
        severity: "critical".to_owned(),
        labels: Vec::new(),
        summary: format!("heartwire's textfile{AT_INSTANCE} is not being written"),
        description: format!(
            "node_exporter reports heartwire's textfile {file_name} (written every {}) more than {} old, or no such file, for 1 minute: heartwire is down or cannot write the file, so the metrics in it are frozen and the jobs and workers it watches are not watched.",
            in_words(interval),
            in_words(limit)
        ),
        runbook: "Look at the heartwire service and its log (systemctl status heartwire; journalctl -u heartwire): a startup error names the config key to fix. Check that textfile.directory is node_exporter's --collector.textfile.directory, that heartwire can write there, and node_textfile_scrape_error.".to_owned(),
    }
}

/// The rules on heartwire's own input counters.
fn input_rules() -> Vec<AlertRule> {
    vec![
        input_rule(
            "HeartwireDroppingInput",
            names::DATAGRAMS_DROPPED,
            (Duration::from_secs(600), "warning"),
            format!("heartwire{AT_INSTANCE} drops {{{{ $labels.transport }}}} input"),
            "The agent's ingest queue is full: it drops {{ $value | humanize }} datagrams/s arriving over {{ $labels.transport }}, so job and worker metrics are incomplete.",
            "Give the sidecar more CPU or a longer queue (pipeline.queue_batches), or send fewer lines.",
        ),
        input_rule(
            "HeartwireKernelDrops",
            names::KERNEL_DROPS,
            (Duration::from_secs(600), "warning"),
            format!("The kernel drops datagrams for heartwire{AT_INSTANCE}"),
            "{{ $value | humanize }} datagrams/s overflow the receive buffer of the {{ $labels.listener }} listener before the agent reads them.",
            "Raise the listener's receive_buffer_bytes (the kernel caps it at net.core.rmem_max unless the agent has CAP_NET_ADMIN), or give the sidecar more CPU.",
        ),
        input_rule(
            "HeartwireRejectingInput",
            names::LINES_REJECTED,
            (Duration::from_secs(900), "info"),
            format!("heartwire{AT_INSTANCE} rejects lines ({{{{ $labels.reason }}}})"),
            "The app sends {{ $value | humanize }} lines/s that the agent cannot parse (reason {{ $labels.reason }}); those events are lost.",
            "Send one of the app's lines with `heartwire send`: it names what is wrong with it.",
        ),
        input_rule(
            "HeartwireSeriesDropped",
            names::SERIES_DROPPED,
            (Duration::from_secs(600), "warning"),
            format!("heartwire{AT_INSTANCE} drops new {{{{ $labels.family }}}} series"),
            "The family {{ $labels.family }} reached a series cap: new label combinations are dropped, often because a tag carries an id or a timestamp.",
            "Remove the unbounded tag in the app, or raise limits.max_series_per_family and limits.max_series (about 0.5 KiB per series).",
        ),
    ]
}

/// A rule on the rate of one of heartwire's own counters.
fn input_rule(
    alert: &str,
    counter: &str,
    (window, severity): (Duration, &str),
    summary: String,
    description: &str,
    runbook: &str,
) -> AlertRule {
    AlertRule {
        alert: alert.to_owned(),
        expr: format!("rate({counter}[5m]) > 0"),
        for_: Some(window),
        severity: severity.to_owned(),
        labels: Vec::new(),
        summary,
        description: description.to_owned(),
        runbook: runbook.to_owned(),
    }
}

/// The rules on the config in force: the file does not load (the agent runs the last good
/// config), or it changes what only a restart applies.
fn config_rules() -> Vec<AlertRule> {
    vec![
        AlertRule {
            alert: "HeartwireConfigReloadFailed".to_owned(),
            expr: format!("{} == 0", names::CONFIG_LAST_SUCCESSFUL),
            for_: Some(Duration::from_secs(300)),
            severity: "warning".to_owned(),
            labels: Vec::new(),
            summary: format!("heartwire{AT_INSTANCE} cannot load its config file"),
            description: "The last reload of the config file failed for 5 minutes: heartwire runs the last config that loaded, not the file, so a change to jobs, workers or alerts is not in force.".to_owned(),
            runbook: "Run `heartwire check --config FILE` on the file: it names the line and key at fault. The agent's log says the same at each reload.".to_owned(),
        },
        AlertRule {
            alert: "HeartwireConfigRestartRequired".to_owned(),
            expr: format!("{} == 1", names::CONFIG_RESTART_REQUIRED),
            for_: Some(Duration::from_secs(900)),
            severity: "warning".to_owned(),
            labels: Vec::new(),
            summary: format!("heartwire{AT_INSTANCE} needs a restart to run its config file"),
            description: "The config file changes a part that only a restart applies (listeners, limits, family names, the textfile) for 15 minutes: heartwire runs the rest of the file, and those parts as they were when it started.".to_owned(),
            runbook: "Restart heartwire (kubectl rollout restart of the app, or systemctl restart heartwire); the agent's log at the reload names the keys that wait for it.".to_owned(),
        },
    ]
}
