//! The Progress row: how fast jobs that send `job.progress` progress, how long since they last
//! did, and, for jobs with `stall_after`, where each stands (not started, idle, progressing,
//! stalled), as seed 002's crawl panels show it.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Board, legend, of_jobs, state_timeline, target, timeseries};
use crate::aggregate::{Family, Group, Setting};
use crate::rules::Source;
use crate::rules::promql::by;

pub(super) fn progress_panels(board: &mut Board, source: &Source) {
    let names = &source.names;
    let job = names.setting(Setting::JobLabel);
    let pick = |family: Family| of_jobs(names.name(family), names.labels(Group::Jobs), job, &[]);
    let by_job = by(&[job]);
    let shown = legend(&[job]);
    let stall_after: Vec<Duration> = source
        .jobs
        .iter()
        .filter_map(|(_, spec)| spec.stall_after)
        .collect();
    let width = if stall_after.is_empty() { 12 } else { 8 };
    board.row("Progress");
    board.add(
        width,
        8,
        timeseries(
            "Progress per minute",
            "Progress reported with job.progress (pages, rows, items) per minute, by job.",
            "short",
            vec![target(
                format!(
                    "60 * sum{by_job} (rate({}[$__rate_interval]))",
                    pick(Family::JobProgress)
                ),
                &shown,
            )],
        ),
    );
    let mut age = timeseries(
        "Time since last progress",
        "Seconds since each job's last job.progress, on the replica that reported last. A job with stall_after is stalled once this passes it while a run is open (the red line).",
        "s",
        vec![target(
            format!("time() - max{by_job} ({})", pick(Family::JobLastProgress)),
            &shown,
        )],
    );
    if let Some(first) = stall_after.first()
        && stall_after.iter().all(|quiet| quiet == first)
    {
        let defaults = &mut age["fieldConfig"]["defaults"];
        defaults["thresholds"] = json!({ "mode": "absolute", "steps": [
            { "color": "green", "value": null },
            { "color": "red", "value": first.as_secs_f64() }
        ]});
        defaults["custom"]["thresholdsStyle"] = json!({ "mode": "line" });
    }
    board.add(width, 8, age);
    if !stall_after.is_empty() {
        board.add(width, 8, progress_state(source));
    }
}

/// The state of each job with `stall_after`, derived from the families the agent exposes: 3
/// stalled (the stalled flag), 2 progressing (a run open, or progress seen from a job that only
/// reports progress), 1 idle (runs ended, none open), 0 not started (nothing since the agent
/// started). The stalled family holds exactly the jobs with `stall_after`, hence the `and`.
fn progress_state(source: &Source) -> Value {
    let names = &source.names;
    let job = names.setting(Setting::JobLabel);
    let pick = |family: Family| {
        let selected = of_jobs(names.name(family), names.labels(Group::Jobs), job, &[]);
        format!("max{} ({selected})", by(&[job]))
    };
    let stalled = pick(Family::JobStalled);
    let expr = format!(
        "({stalled} == 1) * 3 or ({} > 0) * 0 + 2 or {} * 0 + 1 or {} * 0 + 2 or {stalled} * 0",
        pick(Family::JobRunning),
        pick(Family::JobLastRun),
        pick(Family::JobLastProgress),
    );
    let expr = format!("({expr}) and on({job}) {stalled}");
    let mappings = json!([{ "type": "value", "options": {
        "0": { "text": "not started", "color": "text", "index": 0 },
        "1": { "text": "idle", "color": "blue", "index": 1 },
        "2": { "text": "progressing", "color": "green", "index": 2 },
        "3": { "text": "stalled", "color": "red", "index": 3 }
    }}]);
    state_timeline(
        "Progress state",
        "Jobs with stall_after: stalled while a run is open (or, for jobs that only report progress, after progress was seen) and no progress came for stall_after; progressing while running otherwise; idle when their runs ended; not started when nothing came since the agent started.",
        "short",
        vec![target(expr, &legend(&[job]))],
        mappings,
    )
}
