//! What the example's scripted campaign (`crawl_watchdog.py replay`) leaves in the agent, as
//! expectations on a scrape of `/metrics`, of the textfile or of node_exporter.

use heartwire_tests::agent::Scrape;
use heartwire_tests::expect::{Expect, absent, exact, near, series_count, within};

/// The one-hot last result of `watchdog`: `hot` is 1, every other known outcome 0.
pub fn one_hot(family: &str, outcomes: &[(&str, &str)], hot: (&str, &str)) -> Vec<Expect> {
    let mut expects = vec![series_count(family, outcomes.len())];
    for &(result, reason) in outcomes {
        let value = f64::from(u8::from((result, reason) == hot));
        expects.push(exact(
            family,
            &[("result", result), ("reason", reason)],
            value,
        ));
    }
    expects
}

pub const WORKER_AUTO_START: [(&str, &str); 7] = [
    ("ok", "started"),
    ("ok", "already_running"),
    ("ok", "no_pending_jobs"),
    ("ok", "deploy_lock"),
    ("error", "start_failed"),
    ("error", "storage_unreadable"),
    ("error", "exception"),
];
pub const CRAWL_AUTO_RECOVER: [(&str, &str); 5] = [
    ("ok", "healthy"),
    ("ok", "recovered"),
    ("ok", "deploy_lock"),
    ("error", "recover_failed"),
    ("error", "exception"),
];

pub fn task(name: &str) -> [(&str, &str); 1] {
    [("task", name)]
}

/// The timestamps the agent takes as it applies the replay's lines: between `from` and `by`.
pub fn replay_stamps(from: f64, by: f64) -> Vec<Expect> {
    let last_run = "healtharchive_task_last_run_timestamp_seconds";
    vec![
        within(last_run, &task("worker-auto-start"), from, by),
        within(last_run, &task("crawl-auto-recover"), from, by),
        within(
            "healtharchive_crawl_last_progress_timestamp_seconds",
            &task("crawl-hc"),
            from,
            by,
        ),
    ]
}

/// What the replay leaves, sent from `sent_from` (Unix seconds) on. Whether crawl-hc is
/// stalled depends on when it is read, so that is left to the caller.
pub fn replayed(sent_from: f64) -> Vec<Expect> {
    let runs = "healtharchive_task_runs_total";
    let last_run = "healtharchive_task_last_run_timestamp_seconds";
    let mut expects = replay_stamps(sent_from, f64::MAX);
    expects.extend([
        exact(
            "healtharchive_crawl_pages_crawled_total",
            &task("crawl-hc"),
            250.0,
        ),
        exact(
            "healtharchive_crawl_pages_crawled_total",
            &task("crawl-phac"),
            40.0,
        ),
        absent(
            "healtharchive_crawl_pages_crawled_total",
            &task("crawl-cihr"),
        ),
        exact("healtharchive_task_running", &task("crawl-hc"), 1.0),
        exact("healtharchive_task_running", &task("crawl-phac"), 0.0),
        exact(runs, &[("task", "crawl-phac"), ("result", "error")], 1.0),
        exact(
            runs,
            &[("task", "worker-auto-start"), ("result", "ok")],
            2.0,
        ),
        exact(
            runs,
            &[("task", "worker-auto-start"), ("result", "error")],
            1.0,
        ),
        exact(
            runs,
            &[("task", "crawl-auto-recover"), ("result", "ok")],
            2.0,
        ),
        exact(
            runs,
            &[("task", "crawl-auto-recover"), ("result", "error")],
            0.0,
        ),
        exact(
            runs,
            &[("task", "storage-hotpath-auto-recover"), ("result", "ok")],
            0.0,
        ),
        // Freshness: the seed's last_run_timestamp, taken by the agent as the lines arrive.
        absent(last_run, &task("storage-hotpath-auto-recover")),
        exact(
            "healtharchive_task_consecutive_failures",
            &task("worker-auto-start"),
            1.0,
        ),
        // One failure is below the watchdogs' failure_threshold of 3.
        exact(
            "healtharchive_task_state",
            &[("task", "worker-auto-start"), ("state", "failing")],
            0.0,
        ),
        exact(
            "healtharchive_task_duration_seconds_count",
            &task("worker-auto-start"),
            3.0,
        ),
        near(
            "healtharchive_task_duration_seconds_sum",
            &task("worker-auto-start"),
            3.8,
        ),
        exact(
            "healtharchive_worker_auto_start_start_attempts_total",
            &[],
            2.0,
        ),
        exact(
            "healtharchive_worker_auto_start_start_success_total",
            &[],
            1.0,
        ),
        exact(
            "healtharchive_worker_auto_start_start_failed_total",
            &[],
            1.0,
        ),
        exact("healtharchive_jobs_pending_crawl", &[], 2.0),
        exact("healtharchive_worker_should_be_running", &[], 1.0),
        exact("healtharchive_worker_active", &[], 0.0),
        exact(
            "healtharchive_crawl_running_job_container_restarts_done",
            &[("source", "phac")],
            30.0,
        ),
        // The crawl-metrics probe run: its findings, under the seed's names (mapping.yml).
        exact(runs, &[("task", "crawl-metrics"), ("result", "ok")], 1.0),
        exact(
            "healtharchive_crawl_running_job_output_dir_ok",
            &[("source", "hc")],
            1.0,
        ),
        exact(
            "healtharchive_crawl_running_job_temp_dirs",
            &[("source", "hc")],
            12.0,
        ),
        exact(
            "healtharchive_jobs_infra_error_recent",
            &[("window", "10m")],
            0.0,
        ),
        exact(
            "healtharchive_crawl_annual_pending_job_output_dir_writable",
            &[
                ("source", "cihr"),
                ("job_id", "103"),
                ("status", "queued"),
                ("year", "2026"),
            ],
            1.0,
        ),
        exact("healtharchive_worker_auto_start_enabled", &[], 1.0),
        exact("healtharchive_crawl_auto_recover_enabled", &[], 1.0),
        exact(
            "healtharchive_storage_hotpath_auto_recover_enabled",
            &[],
            1.0,
        ),
        exact(
            "healtharchive_crawl_auto_recover_deploy_lock_present",
            &[],
            0.0,
        ),
    ]);
    expects.extend(one_hot(
        "healtharchive_worker_auto_start_last_result",
        &WORKER_AUTO_START,
        ("error", "start_failed"),
    ));
    expects.extend(one_hot(
        "healtharchive_crawl_auto_recover_last_result",
        &CRAWL_AUTO_RECOVER,
        ("ok", "recovered"),
    ));
    expects
}

/// The crawls flagged stalled while running. The generated HealthArchiveCrawlStalled reads the
/// flag alone (`stalled == 1`), which holds only while the flag is 1 for running crawls only.
pub fn stalled_running(scrape: &Scrape) -> Vec<String> {
    let mut tasks: Vec<String> = scrape
        .samples
        .iter()
        .filter(|s| s.name == "healtharchive_crawl_running_job_stalled" && s.value == 1.0)
        .filter_map(|s| s.labels.iter().find(|(k, _)| k == "task"))
        .map(|(_, task)| task.clone())
        .filter(|t| scrape.value("healtharchive_task_running", &task(t)) > Some(0.0))
        .collect();
    tasks.sort();
    tasks
}
