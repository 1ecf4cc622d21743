use super::*;
use crate::config::from_str;

const VF_WORKER: &str = include_str!("../../../../examples/vf-worker/heartwire.yaml");
const BACKGROUND_WORKERS: &str =
    include_str!("../../../../examples/background-workers/heartwire.yaml");

fn source(yaml: &str) -> Source {
    Source::from_config(&from_str(yaml, "t.yaml").unwrap())
}

fn all(yaml: &str) -> Vec<AlertRule> {
    groups(&source(yaml), &ScrapeTarget::Job("heartwire".into()))
        .into_iter()
        .flat_map(|group| group.rules)
        .collect()
}

#[track_caller]
fn find<'a>(rules: &'a [AlertRule], alert: &str, containing: &str) -> &'a AlertRule {
    rules
        .iter()
        .find(|rule| rule.alert == alert && rule.expr.contains(containing))
        .unwrap_or_else(|| panic!("no {alert} with {containing:?} in {rules:#?}"))
}

#[test]
fn seed_000_thresholds_come_out_of_its_example_config() {
    let rules = all(VF_WORKER);
    for (job, seconds) in [
        ("viewer-poll", 300),
        ("chat-export", 7200),
        ("stale-session-cleanup", 7200),
        ("kick-token-refresh", 7200),
        ("x-follower-poll", 7200),
        ("kick-subscriptions", 108_000),
        ("trust-score-refresh", 108_000),
        ("daily-maintenance", 108_000),
    ] {
        let rule = find(&rules, "JobNoRecentSuccess", &format!("\"{job}\""));
        assert_eq!(
            rule.expr,
            format!(
                "time() - max by(job) (vf_worker_poll_last_success_timestamp_seconds{{service=\"worker\",job=\"{job}\"}}) > {seconds}"
            )
        );
        let stale = find(&rules, "JobStale", &format!("\"{job}\""));
        assert_eq!(
            stale.expr,
            format!("min by(job) (heartwire_job_stale{{service=\"worker\",job=\"{job}\"}}) == 1")
        );
    }
    let daily = find(&rules, "JobNoRecentSuccess", "kick-subscriptions");
    assert_eq!(
        daily.summary,
        "Job kick-subscriptions has not succeeded for more than 30 hours"
    );
    assert!(
        daily
            .description
            .contains("runs on cron \"45 3 * * *\" (UTC)"),
        "{}",
        daily.description
    );
}

#[test]
fn seed_000_scraper_alerts_come_out_of_its_alerts_section() {
    let rules = all(VF_WORKER);
    let failures = r#"vf_scraper_requests_total{outcome=~"http_5xx|cf_block|timeout|network"}"#;
    let provider = find(&rules, "ScraperProviderHighFailureRate", "");
    assert_eq!(
        provider.expr,
        format!(
            "sum by(provider) (rate({failures}[5m])) / clamp_min(sum by(provider) (rate(vf_scraper_requests_total[5m])), 0.0001) > 0.2"
        )
    );
    assert_eq!(
        (provider.for_, provider.severity.as_str()),
        (Some(Duration::from_secs(600)), "warning")
    );
    let all_down = find(&rules, "ScraperAllProvidersDown", "");
    assert_eq!(
        all_down.expr,
        format!(
            "sum (rate({failures}[5m])) / clamp_min(sum (rate(vf_scraper_requests_total[5m])), 0.0001) > 0.5"
        )
    );
    assert_eq!(
        (all_down.for_, all_down.severity.as_str()),
        (Some(Duration::from_secs(300)), "critical")
    );
}

#[test]
fn seed_001_worker_alert_uses_its_family_and_label_names() {
    let rules = all(BACKGROUND_WORKERS);
    let down = find(&rules, "BackgroundWorkerDown", "");
    assert_eq!(
        down.expr,
        "(worker_status == 0) unless (heartwire_worker_stopped == 1)"
    );
    assert_eq!(
        (down.for_, down.severity.as_str()),
        (Some(Duration::from_secs(60)), "critical")
    );
    assert_eq!(down.summary, "Background worker {{ $labels.name }} is down");
    assert!(
        down.description
            .contains("no heartbeat within its ttl (90 seconds)"),
        "{}",
        down.description
    );
}

#[test]
fn job_thresholds_reach_the_failing_hung_and_stalled_rules() {
    let rules = all(
        "jobs:\n  crawl:\n    every: 15m\n    stall_after: 10m\n    max_runtime: 2h\n    failure_threshold: 3\n  nightly:\n    cron: \"0 3 * * *\"\nfamilies:\n  jobs:\n    label: task\n",
    );
    let failing = find(&rules, "JobFailing", "crawl");
    assert_eq!(
        failing.expr,
        r#"max by(task) (heartwire_job_state{task="crawl",state="failing"}) == 1"#
    );
    assert!(
        failing
            .description
            .starts_with("The last 3 runs of crawl failed")
    );
    let hung = find(&rules, "JobOverrun", "crawl");
    assert_eq!(
        hung.expr,
        r#"max by(task) (heartwire_job_overrun_runs{task="crawl"}) > 0"#
    );
    assert!(
        hung.description
            .contains("more than 2 hours (its max_runtime)")
    );
    let stalled = find(&rules, "JobStalled", "crawl");
    assert!(stalled.description.contains("for 10 minutes"));
    assert!(
        !rules
            .iter()
            .any(|rule| rule.alert == "JobStalled" && rule.expr.contains("nightly")),
        "only jobs with stall_after can stall"
    );
    let crashed = find(&rules, "JobCrashed", "");
    assert_eq!(
        crashed.expr,
        "sum by(task) (increase(heartwire_job_crashes_total[15m])) > 0 or sum by(task) (heartwire_job_crashes_total unless heartwire_job_crashes_total offset 15m) > 0"
    );
    assert_eq!(crashed.summary, "A run of job {{ $labels.task }} crashed");
}

#[test]
fn the_default_config_still_watches_crashes_workers_and_the_agent() {
    let groups = groups(&source(""), &ScrapeTarget::Container("heartwire".into()));
    let names: Vec<&str> = groups.iter().map(|group| group.name.as_str()).collect();
    assert_eq!(
        names,
        ["heartwire-jobs", "heartwire-workers", "heartwire-agent"]
    );
    let alerts: Vec<&str> = groups
        .iter()
        .flat_map(|group| group.rules.iter().map(|rule| rule.alert.as_str()))
        .collect();
    assert_eq!(
        alerts,
        [
            "JobCrashed",
            "BackgroundWorkerDown",
            "HeartwireDown",
            "HeartwireDroppingInput",
            "HeartwireKernelDrops",
            "HeartwireRejectingInput",
            "HeartwireSeriesDropped"
        ]
    );
    let down = &groups[2].rules[0];
    assert_eq!(
        down.expr,
        r#"up{container="heartwire"} == 0 or absent(up{container="heartwire"})"#
    );
    assert_eq!(down.for_, Some(Duration::from_secs(300)));
}

#[test]
fn the_scrape_job_is_escaped_in_the_up_rule() {
    let groups = groups(&source(""), &ScrapeTarget::Job("my \"agent\"".into()));
    let down = &groups[2].rules[0];
    assert_eq!(
        down.expr,
        r#"up{job="my \"agent\""} == 0 or absent(up{job="my \"agent\""})"#
    );
}

#[test]
fn the_operator_object_carries_the_rule_file_groups_under_spec() {
    let groups = groups(&source(VF_WORKER), &ScrapeTarget::Job("heartwire".into()));
    let file = rule_file(&groups);
    let object = prometheus_rule(&groups, "vf-worker");
    let body = file.strip_prefix(HEADER).unwrap();
    assert!(body.starts_with("groups:\n  - name: heartwire-jobs\n    rules:\n      - alert: JobStale\n        expr: 'min by(job) (heartwire_job_stale{service=\"worker\",job=\"viewer-poll\"}) == 1'\n        labels:\n          severity: critical\n          job: viewer-poll\n        annotations:\n"), "{body}");
    let indented: String = body.lines().map(|line| format!("  {line}\n")).collect();
    assert_eq!(
        object,
        format!(
            "{HEADER}apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: vf-worker\n  labels:\n    app.kubernetes.io/name: heartwire\nspec:\n{indented}"
        )
    );
}
