//! The dashboard's rows: jobs, outbound HTTP, workers, failure ratios and the agent itself.

use serde_json::{Value, json};

use super::{Board, legend, of_jobs, table_target, target, timeseries, with_ref_ids};
use crate::aggregate::{Family, Group, Setting};
use crate::config::FailureRatio;
use crate::rules::Source;
use crate::rules::prometheus::ratio_expr;
use crate::rules::promql::{self, Matcher, by, of_family, selector};
use crate::telemetry::names;

pub(super) fn job_panels(board: &mut Board, source: &Source) {
    let names = &source.names;
    let job = names.setting(Setting::JobLabel);
    let pick =
        |family: &str, extra: &[Matcher]| of_jobs(family, names.labels(Group::Jobs), job, extra);
    let by_job = by(&[job]);
    let hourly = |selector: String| format!("sum{by_job} (increase({selector}[1h]))");
    let named = |what: &str| format!("{} {what}", legend(&[job]));
    let errors = [Matcher::is("result", "error")];
    let duration = pick(&format!("{}_bucket", names.name(Family::JobDuration)), &[]);
    let panels = [
        (
            "Runs per hour",
            "Runs in the last hour, by job and result.",
            "short",
            vec![target(
                format!(
                    "sum{} (increase({}[1h]))",
                    by(&[job, "result"]),
                    pick(names.name(Family::JobRuns), &[])
                ),
                &legend(&[job, "result"]),
            )],
        ),
        (
            "Errors and crashes per hour",
            "Failed runs (job.error, and crashed runs) and crashed runs alone in the last hour.",
            "short",
            vec![
                target(
                    hourly(pick(names.name(Family::JobRuns), &errors)),
                    &named("errors"),
                ),
                target(
                    hourly(pick(names.name(Family::JobCrashes), &[])),
                    &named("crashes"),
                ),
            ],
        ),
        (
            "Run duration p95",
            "95th percentile of run durations over 10 minutes.",
            "s",
            vec![target(
                format!(
                    "histogram_quantile(0.95, sum{} (rate({duration}[10m])))",
                    by(&["le", job])
                ),
                &legend(&[job]),
            )],
        ),
        (
            "Open and hung runs",
            "Runs started and not ended yet, and those open longer than their max_runtime.",
            "short",
            vec![
                target(
                    format!(
                        "sum{by_job} ({})",
                        pick(names.name(Family::JobRunning), &[])
                    ),
                    &named("open"),
                ),
                target(
                    format!(
                        "sum{by_job} ({})",
                        pick(names.name(Family::JobOverrunRuns), &[])
                    ),
                    &named("hung"),
                ),
            ],
        ),
    ];
    board.row("Jobs");
    board.add(24, 9, job_table(source));
    for (title, description, unit, targets) in panels {
        board.add(12, 8, timeseries(title, description, unit, targets));
    }
}

/// One row per configured job and state: the state, the age of its newest success on any
/// replica, when it goes stale, failures in a row and open runs.
fn job_table(source: &Source) -> Value {
    let names = &source.names;
    let job = names.setting(Setting::JobLabel);
    let pick = |family: Family| of_jobs(names.name(family), names.labels(Group::Jobs), job, &[]);
    let by_job = by(&[job]);
    let columns = [
        ("Value #B", "Since last success", "s"),
        ("Value #C", "Stale at", "dateTimeFromNow"),
        ("Value #D", "Failures in a row", "short"),
        ("Value #E", "Open runs", "short"),
    ];
    let overrides: Vec<Value> = columns
        .iter()
        .map(|(field, name, unit)| {
            json!({
                "matcher": { "id": "byName", "options": field },
                "properties": [
                    { "id": "displayName", "value": name },
                    { "id": "unit", "value": unit }
                ]
            })
        })
        .chain([json!({
            "matcher": { "id": "byName", "options": "state" },
            "properties": [
                { "id": "custom.cellOptions", "value": { "type": "color-background" } },
                { "id": "mappings", "value": [{ "type": "value", "options": {
                    "ok": { "color": "green", "index": 0 },
                    "warming": { "color": "blue", "index": 1 },
                    "late": { "color": "yellow", "index": 2 },
                    "failing": { "color": "orange", "index": 3 },
                    "stale": { "color": "red", "index": 4 }
                }}]}
            ]
        })])
        .collect();
    json!({
        "type": "table",
        "title": "Jobs: state and age",
        "description": "Configured jobs. Since last success and Stale at take the best replica: a job that runs on any one pod is fresh.",
        "targets": with_ref_ids(vec![
            table_target(format!("max{} ({}) == 1", by(&[job, "state"]), pick(Family::JobState))),
            table_target(format!("min{by_job} ({})", pick(Family::JobSecondsSinceSuccess))),
            table_target(format!("max{by_job} ({}) * 1000", pick(Family::JobDeadline))),
            table_target(format!("max{by_job} ({})", pick(Family::JobConsecutiveFailures))),
            table_target(format!("sum{by_job} ({})", pick(Family::JobRunning))),
        ]),
        "transformations": [
            { "id": "merge", "options": {} },
            { "id": "organize", "options": {
                "excludeByName": { "Time": true, "Value #A": true },
                "indexByName": { job: 0, "state": 1 },
                "renameByName": { job: "Job", "state": "state" }
            }}
        ],
        "fieldConfig": { "defaults": { "custom": { "align": "auto" } }, "overrides": overrides },
        "options": { "showHeader": true, "sortBy": [{ "displayName": "Job", "desc": false }] }
    })
}

pub(super) fn http_panels(board: &mut Board, source: &Source) {
    let names = &source.names;
    let calls = |extra: &[Matcher]| of_family(names, Family::HttpRequests, extra);
    // The labels under the names the config gives them (seed 003 calls the service `websiteId`).
    let (service, endpoint, status) = (
        names.label(Group::Http, "service"),
        names.label(Group::Http, "endpoint"),
        names.label(Group::Http, "status_code"),
    );
    board.row("External HTTP");
    board.add(
        8,
        8,
        timeseries(
            "Calls by service and status",
            "Outbound calls per second; status_code is the HTTP status, or network/timeout when no response came.",
            "reqps",
            vec![target(
                format!("sum{} (rate({}[5m]))", by(&[service, status]), calls(&[])),
                &legend(&[service, status]),
            )],
        ),
    );
    let failed = [Matcher::NotRegex(status.into(), "2..".into())];
    board.add(
        8,
        8,
        timeseries(
            "Non-2xx calls by endpoint",
            "Outbound calls per second that did not get a 2xx answer: 401 means auth trouble, 429 rate limits.",
            "reqps",
            vec![target(
                format!(
                    "sum{} (rate({}[5m]))",
                    by(&[service, endpoint, status]),
                    calls(&failed)
                ),
                &legend(&[service, endpoint, status]),
            )],
        ),
    );
    let duration = selector(
        &format!("{}_bucket", names.name(Family::HttpDuration)),
        names.labels(Group::Http),
        &[],
    );
    board.add(
        8,
        8,
        timeseries(
            "Call duration p95",
            "95th percentile of outbound call durations over 5 minutes (calls reported with seconds).",
            "s",
            vec![target(
                format!(
                    "histogram_quantile(0.95, sum{} (rate({duration}[5m])))",
                    by(&["le", service, endpoint])
                ),
                &legend(&[service, endpoint]),
            )],
        ),
    );
}

pub(super) fn worker_panels(board: &mut Board, source: &Source) {
    let names = &source.names;
    let worker = names.setting(Setting::WorkerLabel);
    let per = by(&[worker, "instance"]);
    let status = of_family(names, Family::WorkerStatus, &[]);
    let stopped = of_family(names, Family::WorkerStopped, &[]);
    let beat = of_family(names, Family::WorkerLastHeartbeat, &[]);
    let shown = format!("{} ({{{{instance}}}})", legend(&[worker]));
    board.row("Workers");
    board.add(
        12,
        8,
        worker_status(
            format!("max{per} ({status}) + 2 * max{per} ({stopped})"),
            &shown,
        ),
    );
    board.add(
        12,
        8,
        timeseries(
            "Seconds since last heartbeat",
            "Age of each worker's newest heartbeat; the worker is down once it passes the ttl.",
            "s",
            vec![target(format!("time() - max{per} ({beat})"), &shown)],
        ),
    );
}

/// Seed 001's panel: one tile per worker, green RUNNING (1), red DOWN (0), grey STOPPED (2, a
/// clean `worker.stop`).
fn worker_status(expr: String, shown: &str) -> Value {
    json!({
        "type": "stat",
        "title": "Worker status",
        "description": "RUNNING while heartbeats arrive within the ttl; DOWN when they stop or the worker's session closes; STOPPED after a clean worker.stop.",
        "targets": with_ref_ids(vec![target(expr, shown)]),
        "fieldConfig": {
            "defaults": {
                "mappings": [{ "type": "value", "options": {
                    "0": { "text": "DOWN", "color": "red", "index": 0 },
                    "1": { "text": "RUNNING", "color": "green", "index": 1 },
                    "2": { "text": "STOPPED", "color": "text", "index": 2 }
                }}],
                "thresholds": { "mode": "absolute", "steps": [
                    { "color": "red", "value": null },
                    { "color": "green", "value": 1 },
                    { "color": "text", "value": 2 }
                ]},
                "color": { "mode": "thresholds" }
            },
            "overrides": []
        },
        "options": {
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "value_and_name",
            "reduceOptions": { "calcs": ["lastNotNull"], "fields": "", "values": false }
        }
    })
}

pub(super) fn ratio_panels(board: &mut Board, source: &Source) {
    let ratios: Vec<_> = source.alerts.failure_ratios().collect();
    if ratios.is_empty() {
        return;
    }
    board.row("Failure ratios");
    for (name, ratio, above) in ratios {
        board.add(12, 8, ratio_panel(name, ratio, above));
    }
}

fn ratio_panel(name: &str, ratio: &FailureRatio, above: f64) -> Value {
    let window = promql::duration(ratio.window);
    let counter = &ratio.counter;
    let labels: Vec<&str> = ratio.by.iter().map(String::as_str).collect();
    let shown = if labels.is_empty() {
        "all".to_owned()
    } else {
        legend(&labels)
    };
    let mut panel = timeseries(
        &format!("{name}: failure ratio"),
        &format!(
            "The share of {counter} that failed over {window}; the alert fires above the red line."
        ),
        "percentunit",
        vec![target(ratio_expr(ratio), &shown)],
    );
    panel["fieldConfig"]["defaults"]["max"] = json!(1);
    panel["fieldConfig"]["defaults"]["thresholds"] = json!({ "mode": "absolute", "steps": [
        { "color": "green", "value": null },
        { "color": "red", "value": above }
    ]});
    panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] = json!({ "mode": "line" });
    panel
}

pub(super) fn agent_panels(board: &mut Board) {
    board.row("heartwire agent");
    let rate = |family: &str, label: &str| format!("sum{} (rate({family}[5m]))", by(&[label]));
    let panels = [
        (
            "Lines received per second",
            "Lines read, by transport.",
            vec![target(
                rate(names::LINES_RECEIVED, "transport"),
                "{{transport}}",
            )],
        ),
        (
            "Lines rejected per second",
            "Lines the parser refused, by reason: `heartwire send` with one of them names the problem.",
            vec![target(rate(names::LINES_REJECTED, "reason"), "{{reason}}")],
        ),
        (
            "Dropped input per second",
            "Datagrams dropped because the ingest queue was full, and datagrams the kernel dropped before the agent read them.",
            vec![
                target(
                    rate(names::DATAGRAMS_DROPPED, "transport"),
                    "queue full ({{transport}})",
                ),
                target(
                    rate(names::KERNEL_DROPS, "listener"),
                    "kernel ({{listener}})",
                ),
            ],
        ),
    ];
    for (title, description, targets) in panels {
        board.add(8, 8, timeseries(title, description, "short", targets));
    }
    board.add(
        12,
        8,
        timeseries(
            "Series held",
            "Series the agent holds, for the 20 largest families.",
            "short",
            vec![target(
                format!("topk(20, sum by(family) ({}))", names::SERIES),
                "{{family}}",
            )],
        ),
    );
    board.add(
        12,
        8,
        timeseries(
            "Series dropped at a cap per second",
            "New series refused because a family or the agent reached its series cap.",
            "short",
            vec![target(rate(names::SERIES_DROPPED, "family"), "{{family}}")],
        ),
    );
}
