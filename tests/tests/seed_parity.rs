//! Seed parity: for each of the five seed documents, the alerts, panels and metric families its
//! team built by hand, found in what `heartwire rules` and `heartwire dashboard` generate from
//! the seed's example config. The rules pass `promtool check rules`; every query of the rules
//! and of the dashboard parses as PromQL, and the families a seed names are among the metrics
//! those queries select. A missing promtool skips loudly, or fails under
//! `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeSet;
use std::path::PathBuf;

use heartwire_tests::generated::{
    dashboard, heartwire_output, panel_exprs, promtool_or_skip, repo, selected_names,
};
use heartwire_tests::rule_file::{self, Rule};

/// What a seed relied on, and how to find it in the generated output.
enum Need {
    /// An alert of this name whose labels include these and whose expression holds `expr`.
    Alert {
        name: &'static str,
        labels: &'static [(&'static str, &'static str)],
        expr: &'static str,
    },
    /// A dashboard panel whose query holds this text.
    Panel(&'static str),
    /// A metric family some generated rule or panel selects.
    Family(&'static str),
}

use Need::{Alert, Family, Panel};

const fn alert(name: &'static str, expr: &'static str) -> Need {
    Alert {
        name,
        labels: &[],
        expr,
    }
}

/// A seed: its example directory and what its document asks for.
struct Seed {
    name: &'static str,
    example: &'static str,
    needs: &'static [(&'static str, Need)],
}

const SEEDS: &[Seed] = &[
    Seed {
        name: "000 vf worker",
        example: "vf-worker",
        needs: &[
            (
                "liveness alert, viewer-poll 300 s",
                Alert {
                    name: "JobNoRecentSuccess",
                    labels: &[("job", "viewer-poll")],
                    expr: "> 300",
                },
            ),
            (
                "liveness alert, hourly jobs 2 h",
                Alert {
                    name: "JobNoRecentSuccess",
                    labels: &[("job", "chat-export")],
                    expr: "> 7200",
                },
            ),
            (
                "liveness alert, daily jobs 30 h",
                Alert {
                    name: "JobNoRecentSuccess",
                    labels: &[("job", "daily-maintenance")],
                    expr: "> 108000",
                },
            ),
            (
                "a job that never succeeded alerts too",
                Alert {
                    name: "JobStale",
                    labels: &[("job", "x-follower-poll")],
                    expr: "heartwire_job_stale",
                },
            ),
            (
                "ScraperProviderHighFailureRate",
                alert("ScraperProviderHighFailureRate", "by(provider)"),
            ),
            (
                "ScraperAllProvidersDown",
                alert("ScraperAllProvidersDown", "vf_scraper_requests_total"),
            ),
            (
                "error rate by job",
                Panel(r#"vf_worker_poll_runs_total{service="worker",job=~"$job",result="error"}"#),
            ),
            (
                "job duration p95",
                Panel(
                    "histogram_quantile(0.95, sum by(le, job) (rate(vf_worker_poll_duration_seconds_bucket",
                ),
            ),
            (
                "401 and 429 rate by service",
                Panel(r#"vf_external_http_total{status_code=~"401|429"}"#),
            ),
            (
                "non-2xx by service",
                Panel(r#"vf_external_http_total{status_code!~"2.."}"#),
            ),
            (
                "transport errors",
                Panel(r#"vf_external_http_total{status_code=~"network|timeout"}"#),
            ),
            (
                "per-provider request rate",
                Panel("sum by(provider, outcome) (rate(vf_scraper_requests_total"),
            ),
            (
                "vf_worker_poll_runs_total",
                Family("vf_worker_poll_runs_total"),
            ),
            (
                "vf_worker_poll_duration_seconds",
                Family("vf_worker_poll_duration_seconds_bucket"),
            ),
            (
                "vf_worker_poll_last_success_timestamp_seconds",
                Family("vf_worker_poll_last_success_timestamp_seconds"),
            ),
            ("vf_external_http_total", Family("vf_external_http_total")),
            (
                "vf_scraper_requests_total",
                Family("vf_scraper_requests_total"),
            ),
        ],
    },
    Seed {
        name: "001 background workers",
        example: "background-workers",
        needs: &[
            (
                "BackgroundWorkerDown, worker_status == 0 for 1 m",
                alert("BackgroundWorkerDown", "(worker_status == 0)"),
            ),
            (
                "Background Worker Status panel",
                Panel("max by(name, instance) (worker_status)"),
            ),
            ("worker_status{name}", Family("worker_status")),
        ],
    },
    Seed {
        name: "002 crawl campaign",
        example: "crawl-watchdog",
        needs: &[
            (
                "1) worker down while jobs pending, deploy lock",
                alert(
                    "HealthArchiveWorkerDownWhileJobsPending",
                    "healtharchive_worker_should_be_running",
                ),
            ),
            (
                "2) output dir unreadable, not errno 107",
                alert("HealthArchiveCrawlOutputDirUnreadable", "107"),
            ),
            (
                "2) annual output dir not writable",
                alert(
                    "HealthArchiveAnnualOutputDirNotWritable",
                    "healtharchive_crawl_annual_pending_job_output_dir_writable",
                ),
            ),
            (
                "2) hot path stale unrecovered",
                alert(
                    "HealthArchiveStorageHotpathStaleUnrecovered",
                    "healtharchive_storage_hotpath_auto_recover_detected_targets",
                ),
            ),
            (
                "2) hot path apply failed persistent",
                alert(
                    "HealthArchiveStorageHotpathApplyFailedPersistent",
                    "last_apply_ok",
                ),
            ),
            (
                "3) container restarts high, per-source budget",
                alert(
                    "HealthArchiveCrawlContainerRestartsHigh",
                    "healtharchive_crawl_running_job_container_restarts_done",
                ),
            ),
            (
                "4) crawl stalled",
                alert(
                    "HealthArchiveCrawlStalled",
                    "healtharchive_crawl_running_job_stalled",
                ),
            ),
            (
                "4.1) crawl rate degraded",
                alert(
                    "HealthArchiveCrawlRateDegraded",
                    "healtharchive_crawl_pages_crawled_total",
                ),
            ),
            (
                "5) infra errors high",
                alert(
                    "HealthArchiveInfraErrorsHigh",
                    "healtharchive_jobs_infra_error_recent",
                ),
            ),
            (
                "6) crawl metrics stale",
                alert(
                    "HealthArchiveCrawlMetricsStale",
                    "node_textfile_mtime_seconds",
                ),
            ),
            (
                "6) worker auto-start metrics stale",
                alert(
                    "HealthArchiveWorkerAutoStartMetricsStale",
                    "worker-auto-start",
                ),
            ),
            (
                "6) crawl auto-recover metrics stale",
                alert(
                    "HealthArchiveCrawlAutoRecoverMetricsStale",
                    "crawl-auto-recover",
                ),
            ),
            (
                "7) deploy lock persistent",
                alert("HealthArchiveDeployLockPersistent", "deploy_lock_present"),
            ),
            (
                "8) temp dirs high",
                alert(
                    "HealthArchiveCrawlTempDirsHigh",
                    "healtharchive_crawl_running_job_temp_dirs",
                ),
            ),
            (
                "indexing check",
                alert("HealthArchiveCompletedCrawlNotIndexed", "indexed_pages"),
            ),
            (
                "the agent's own death, seen through node_exporter",
                alert("HeartwireDown", "node_textfile_mtime_seconds"),
            ),
            (
                "crawl rate, raw",
                Panel(
                    "60 * sum by(task) (rate(healtharchive_crawl_pages_crawled_total[$__rate_interval]))",
                ),
            ),
            (
                "crawl rate, 30 m average",
                Panel("60 * sum by(task) (rate(healtharchive_crawl_pages_crawled_total[30m]))"),
            ),
            (
                "progress age",
                Panel("time() - max by(task) (healtharchive_crawl_last_progress_timestamp_seconds"),
            ),
            (
                "new crawl phases",
                Panel("healtharchive_crawl_running_job_new_crawl_phases"),
            ),
            (
                "resume crawls",
                Panel("healtharchive_crawl_running_job_resume_crawls"),
            ),
            (
                "container restarts",
                Panel("healtharchive_crawl_running_job_container_restarts_done"),
            ),
            (
                "watchdog freshness",
                Panel("time() - max by(task) (healtharchive_task_last_run_timestamp_seconds"),
            ),
            (
                "watchdog activity",
                Panel("increase(healtharchive_task_runs_total"),
            ),
            ("stalled", Family("healtharchive_crawl_running_job_stalled")),
            ("worker active", Family("healtharchive_worker_active")),
            (
                "jobs pending",
                Family("healtharchive_worker_should_be_running"),
            ),
        ],
    },
    Seed {
        name: "003 uptime worker",
        example: "uptime-worker",
        needs: &[
            (
                "uptime % by websiteId",
                Panel(r#"sum by(websiteId) (rate(uptime_checks_total{status_code=~"2.."}"#),
            ),
            (
                "average response time by websiteId",
                Panel("sum by(websiteId) (rate(uptime_check_duration_seconds_sum"),
            ),
            (
                "a dead or stuck worker",
                alert("BackgroundWorkerDown", "heartwire_worker_status"),
            ),
            ("checks by site and status", Family("uptime_checks_total")),
            (
                "response times",
                Family("uptime_check_duration_seconds_count"),
            ),
        ],
    },
    Seed {
        name: "004 queue broker",
        example: "queue-broker",
        needs: &[
            ("enqueued", Panel("relay_jobs_enqueued_total")),
            ("deduplicated", Panel("relay_jobs_deduplicated_total")),
            ("claimed", Panel("relay_jobs_claimed_total")),
            ("processed", Panel("relay_jobs_processed_total")),
            ("retried", Panel("relay_jobs_retried_total")),
            ("dead", Panel("relay_jobs_dead_total")),
            ("reaped", Panel("relay_jobs_reaped_total")),
            ("promoted", Panel("relay_jobs_promoted_total")),
            (
                "end-to-end latency",
                Panel(
                    "histogram_quantile(0.99, sum by(le, queue) (rate(relay_job_latency_seconds_bucket",
                ),
            ),
            (
                "depth by queue and state",
                Panel("sum by(queue, state) (relay_queue_depth)"),
            ),
            ("relay_queue_depth", Family("relay_queue_depth")),
        ],
    },
];

fn config_of(seed: &Seed) -> PathBuf {
    repo()
        .join("examples")
        .join(seed.example)
        .join("heartwire.yaml")
}

#[test]
fn every_seed_finds_its_alerts_panels_and_families_in_the_generated_output() {
    let Some(promtool) = promtool_or_skip() else {
        return;
    };
    let mut missing = Vec::new();
    for seed in SEEDS {
        let config = config_of(seed);
        let text = heartwire_output(&["rules"], Some(&config));
        rule_file::check(&promtool, &text)
            .unwrap_or_else(|error| panic!("seed {}: promtool check rules: {error}", seed.name));
        let rules: Vec<Rule> = rule_file::parse(&text);
        let panels = panel_exprs(&dashboard(Some(&config)));
        let names: BTreeSet<String> = rules
            .iter()
            .map(|rule| &rule.expr)
            .chain(panels.iter().map(|(_, expr)| expr))
            .flat_map(|expr| selected_names(expr))
            .collect();
        for (asked, need) in seed.needs {
            let found = match need {
                Alert { name, labels, expr } => rules.iter().any(|rule| {
                    rule.alert == *name
                        && rule.expr.contains(expr)
                        && labels
                            .iter()
                            .all(|(k, v)| rule.labels.get(*k).map(String::as_str) == Some(*v))
                }),
                Panel(expr) => panels.iter().any(|(_, query)| {
                    // Panels are compared as written, with Grafana's variables in place.
                    query.contains(expr) || query.contains(&expr.replace("$__rate_interval", "5m"))
                }),
                Family(name) => names.contains(*name),
            };
            if !found {
                missing.push(format!("seed {}: {asked}", seed.name));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not found in the generated rules and dashboards:\n{}",
        missing.join("\n")
    );
}
