use super::*;
use crate::config::from_str;
use crate::rules::prometheus::custom::DEFAULT_GROUP;
use crate::rules::prometheus::lasting::with_workload;

const VF_WORKER: &str = include_str!("../../../../examples/vf-worker/heartwire.yaml");
const BACKGROUND_WORKERS: &str =
    include_str!("../../../../examples/background-workers/heartwire.yaml");

fn source(yaml: &str) -> Source {
    Source::from_config(&from_str(yaml, "t.yaml").unwrap())
}

/// A scrape of heartwire by the job `heartwire`, with honor_labels.
fn scrape(target: ScrapeTarget) -> Scrape {
    Scrape {
        target,
        honor_labels: true,
    }
}

fn job_scrape() -> Scrape {
    scrape(ScrapeTarget::Job("heartwire".into()))
}

fn all(yaml: &str) -> Vec<AlertRule> {
    groups(&source(yaml), &job_scrape())
        .into_iter()
        .flat_map(|group| group.rules)
        .collect()
}

/// `op by(G) (inner)`, inner with its workload, for the vf-worker jobs' app.
fn vf_app(op: &str, inner: &str) -> String {
    format!(
        "{op} by(namespace, workload, service, job) ({})",
        with_workload(inner)
    )
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
    for (job, seconds, window) in [
        ("viewer-poll", 300, "15m"),
        ("chat-export", 7200, "3h"),
        ("stale-session-cleanup", 7200, "3h"),
        ("kick-token-refresh", 7200, "3h"),
        ("x-follower-poll", 7200, "3h"),
        ("kick-subscriptions", 108_000, "54h"),
        ("trust-score-refresh", 108_000, "54h"),
        ("daily-maintenance", 108_000, "54h"),
    ] {
        let selector = |family: &str| format!("{family}{{service=\"worker\",job=\"{job}\"}}");
        let rule = find(&rules, "JobNoRecentSuccess", &format!("\"{job}\""));
        let last_success = selector("vf_worker_poll_last_success_timestamp_seconds");
        assert_eq!(
            rule.expr,
            format!(
                "time() - {} > {seconds}",
                vf_app("max", &format!("max_over_time({last_success}[{window}])"))
            )
        );
        assert_eq!(rule.severity, "info", "JobStale pages, not this one");
        let stale = find(&rules, "JobStale", &format!("\"{job}\""));
        let vouched = format!(
            "last_over_time({}[{window}]) > time() and last_over_time({last_success}[{window}])",
            selector("heartwire_job_stale_deadline_timestamp_seconds")
        );
        assert_eq!(
            stale.expr,
            format!(
                "{} == 1 unless on(namespace, workload, service, job) {}",
                vf_app(
                    "max",
                    &format!(
                        "last_over_time({}[{window}])",
                        selector("heartwire_job_stale")
                    )
                ),
                vf_app("max", &vouched)
            )
        );
        assert_eq!(stale.severity, "critical");
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

/// The whole of one rule as written, so that a change to the shared pieces shows here too.
#[test]
fn job_stale_reads_each_pods_last_word_grouped_by_app() {
    let rules = all("jobs:\n  nightly: { every: 1h }\n");
    let workload = r#""workload", "${1}${2}${3}${4}", "pod", "(.+)-[bcdfghjklmnpqrstvwxz2456789]{1,10}-[bcdfghjklmnpqrstvwxz2456789]{5}|(.+)-[0-9]+|(.+)-[bcdfghjklmnpqrstvwxz2456789]{5}|(.+)""#;
    assert_eq!(
        find(&rules, "JobStale", "nightly").expr,
        format!(
            r#"max by(namespace, workload, job) (label_replace(last_over_time(heartwire_job_stale{{job="nightly"}}[3h]), {workload})) == 1 unless on(namespace, workload, job) max by(namespace, workload, job) (label_replace(last_over_time(heartwire_job_stale_deadline_timestamp_seconds{{job="nightly"}}[3h]) > time() and last_over_time(heartwire_job_last_success_timestamp_seconds{{job="nightly"}}[3h]), {workload}))"#
        )
    );
}

#[test]
fn without_honor_labels_the_job_label_is_read_as_exported_job() {
    let yaml = "jobs:\n  nightly: { every: 1h }\n";
    let plain = Scrape {
        honor_labels: false,
        ..job_scrape()
    };
    let rules: Vec<AlertRule> = groups(&source(yaml), &plain)
        .into_iter()
        .flat_map(|group| group.rules)
        .collect();
    for alert in ["JobStale", "JobNoRecentSuccess", "JobFailing", "JobOverrun"] {
        let rule = find(&rules, alert, r#"{exported_job="nightly""#);
        assert!(!rule.expr.contains(r#"{job="#), "{}", rule.expr);
        assert!(rule.expr.contains("by(namespace, workload, exported_job)"));
        assert_eq!(
            rule.labels,
            [("exported_job".to_owned(), "nightly".to_owned())]
        );
    }
    let crashed = find(&rules, "JobCrashed", "");
    assert!(
        crashed
            .expr
            .contains("by(namespace, workload, exported_job)")
    );
    assert_eq!(
        crashed.summary,
        "A run of job {{ $labels.exported_job }} crashed"
    );
    assert!(
        header(&source(yaml).names, &plain)
            .contains("renamed `exported_job`, which these rules read"),
        "{}",
        header(&source(yaml).names, &plain)
    );
    assert!(
        header(&source(yaml).names, &job_scrape())
            .contains("honor_labels: true (the Helm chart's monitor sets honorLabels)")
    );
    // A job label of another name is not renamed: the rules are the same either way.
    let task = "jobs:\n  nightly: { every: 1h }\nfamilies:\n  jobs:\n    label: task\n";
    let with = groups(&source(task), &job_scrape());
    assert_eq!(groups(&source(task), &plain), with);
    assert!(
        header(&source(task).names, &plain).contains("jobs are labelled `task`, which no scrape"),
        "{}",
        header(&source(task).names, &plain)
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
    let app = |op: &str, inner: &str| {
        format!(
            "{op} by(namespace, workload, name) ({})",
            with_workload(inner)
        )
    };
    assert_eq!(
        down.expr,
        format!(
            "{} or ({} unless on(namespace, workload, name) {})",
            app(
                "count",
                "(worker_status == 0) unless (heartwire_worker_stopped == 1)"
            ),
            app(
                "count",
                "(last_over_time(worker_status[12m]) == 0) unless (last_over_time(heartwire_worker_stopped[12m]) == 1)"
            ),
            app("count", "worker_status")
        )
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
    let app = |op: &str, inner: &str| {
        format!(
            "{op} by(namespace, workload, task) ({})",
            with_workload(inner)
        )
    };
    let failing = find(&rules, "JobFailing", "crawl");
    let state = r#"heartwire_job_state{task="crawl",state="failing"}"#;
    assert_eq!(
        failing.expr,
        format!(
            "{} == 1 or ({} == 1 unless on(namespace, workload, task) {})",
            app("max", state),
            app("max", &format!("last_over_time({state}[90m])")),
            app("count", state)
        )
    );
    assert!(
        failing
            .description
            .starts_with("The last 3 runs of crawl failed")
    );
    let hung = find(&rules, "JobOverrun", "crawl");
    assert!(
        hung.expr.starts_with(&format!(
            "{} > 0 or (",
            app("max", r#"heartwire_job_overrun_runs{task="crawl"}"#)
        )),
        "{}",
        hung.expr
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
        format!(
            "{} > 0 or {} > 0",
            app("sum", "increase(heartwire_job_crashes_total[15m])"),
            app(
                "sum",
                "heartwire_job_crashes_total unless heartwire_job_crashes_total offset 15m"
            )
        )
    );
    assert_eq!(crashed.summary, "A run of job {{ $labels.task }} crashed");
}

#[test]
fn the_default_config_still_watches_crashes_workers_and_the_agent() {
    let groups = groups(
        &source(""),
        &scrape(ScrapeTarget::Container("heartwire".into())),
    );
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
            "HeartwireSeriesDropped",
            "HeartwireConfigReloadFailed",
            "HeartwireConfigRestartRequired"
        ]
    );
    let down = &groups[2].rules[0];
    assert_eq!(
        down.expr,
        r#"up{container="heartwire"} == 0 or absent(up{container="heartwire"})"#
    );
    assert_eq!(
        down.for_,
        Some(Duration::from_secs(60)),
        "fast: within a minute"
    );
    let config = &groups[2].rules[5..];
    assert_eq!(
        (config[0].expr.as_str(), config[1].expr.as_str()),
        (
            "heartwire_config_last_reload_successful == 0",
            "heartwire_config_restart_required == 1"
        )
    );
}

#[test]
fn the_scrape_job_is_escaped_in_the_up_rule() {
    let groups = groups(
        &source(""),
        &scrape(ScrapeTarget::Job("my \"agent\"".into())),
    );
    let down = &groups[2].rules[0];
    assert_eq!(
        down.expr,
        r#"up{job="my \"agent\""} == 0 or absent(up{job="my \"agent\""})"#
    );
}

#[test]
fn the_operator_object_carries_the_rule_file_groups_under_spec() {
    let source = source(VF_WORKER);
    let groups = groups(&source, &job_scrape());
    let header = header(&source.names, &job_scrape());
    let file = rule_file(&header, &groups);
    let object = prometheus_rule(&header, &groups, "vf-worker");
    let body = file.strip_prefix(&header).unwrap();
    assert!(body.starts_with("groups:\n  - name: heartwire-jobs\n    rules:\n      - alert: JobStale\n        expr: 'max by(namespace, workload, service, job) (label_replace(last_over_time(heartwire_job_stale{service=\"worker\",job=\"viewer-poll\"}[15m]), "), "{body}");
    let indented: String = body.lines().map(|line| format!("  {line}\n")).collect();
    assert_eq!(
        object,
        format!(
            "{header}apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: vf-worker\n  labels:\n    app.kubernetes.io/name: heartwire\nspec:\n{indented}"
        )
    );
}

/// Declared families for the `alerts:` of the tests below.
const DECLARED: &str = "statsd:\n  mapping:\n    mappings:\n      - { match: app.restarts, name: restarts_done, match_metric_type: gauge }\n      - { match: app.lock, name: lock_present, match_metric_type: gauge }\n      - { match: app.enabled, name: auto_enabled, match_metric_type: gauge }\n      - { match: app.pages, name: pages_total, match_metric_type: counter }\n      - { match: app.last, name: last_run_timestamp_seconds, match_metric_type: gauge }\n";

/// The rules of the `alerts:` section, as `heartwire rules` writes them.
fn custom(yaml: &str) -> Vec<AlertRule> {
    groups(&source(&format!("{DECLARED}{yaml}")), &job_scrape())
        .into_iter()
        .filter(|group| !group.name.starts_with("heartwire-") || group.name == DEFAULT_GROUP)
        .flat_map(|group| group.rules)
        .collect()
}

#[test]
fn each_kind_measures_its_family_with_its_matchers_and_comparison() {
    let rules = custom(
        "alerts:\n  Level:\n    threshold:\n      family: restarts_done\n      where: { source: [hc, phac], errno: { not: 107 }, path: { regex: \"/srv/.+\" }, tmp: { not_regex: \"x|y\" } }\n      aggregate: max\n      by: [source]\n    at_least: 19\n  Grown:\n    increase: { family: pages_total, window: 12h }\n    above: 0\n  Slow:\n    rate: { family: pages_total, window: 10m, per: 1m, aggregate: sum, by: [task] }\n    below: 2\n  Moved:\n    delta: { family: restarts_done, window: 1h }\n    not_equals: 0\n  Old:\n    not_updated: { timestamp: last_run_timestamp_seconds, where: { task: w }, after: 10m, or_absent: true }\n  Flat:\n    not_updated: { series: pages_total, after: 1h, aggregate: sum, by: [task] }\n  Gone:\n    absent: { family: lock_present, over: 15m }\n  Raw:\n    expr: sum(restarts_done) by (source)\n    above: 3\n",
    );
    let expr = |alert: &str| find(&rules, alert, "").expr.clone();
    assert_eq!(
        expr("Level"),
        r#"max by(source) (restarts_done{source=~"hc|phac",errno!="107",path=~"/srv/.+",tmp!~"x|y"}) >= 19"#
    );
    assert_eq!(expr("Grown"), "increase(pages_total[12h]) > 0");
    assert_eq!(
        expr("Slow"),
        "60 * sum by(task) (rate(pages_total[10m])) < 2"
    );
    assert_eq!(expr("Moved"), "delta(restarts_done[1h]) != 0");
    assert_eq!(
        expr("Old"),
        r#"time() - last_run_timestamp_seconds{task="w"} > 600 or absent(last_run_timestamp_seconds{task="w"})"#
    );
    assert_eq!(expr("Flat"), "sum by(task) (changes(pages_total[1h])) == 0");
    assert_eq!(expr("Gone"), "absent_over_time(lock_present[15m])");
    assert_eq!(expr("Raw"), "(sum(restarts_done) by (source)) > 3");
    let level = find(&rules, "Level", "");
    assert_eq!(
        level.summary,
        r#"max by(source) of restarts_done{source=~"hc|phac",errno!="107",path=~"/srv/.+",tmp!~"x|y"} is at least 19"#
    );
    assert_eq!(level.for_, Some(Duration::from_secs(300)));
    assert_eq!(level.runbook, "", "no runbook unless the config gives one");
    assert_eq!(
        find(&rules, "Old", "").summary,
        r#"last_run_timestamp_seconds{task="w"} is more than 10 minutes old"#
    );
}

#[test]
fn thresholds_per_label_value_are_one_comparison_each() {
    let rules = custom(
        "alerts:\n  RestartsHigh:\n    threshold: { family: restarts_done }\n    at_least: { source: { hc: 19, phac: 24 } }\n",
    );
    let rule = find(&rules, "RestartsHigh", "");
    assert_eq!(
        rule.expr,
        r#"restarts_done{source="hc"} >= 19 or restarts_done{source="phac"} >= 24"#
    );
    assert_eq!(
        rule.summary,
        "restarts_done is at least the threshold of its source (hc 19, phac 24)"
    );
}

#[test]
fn guards_join_on_no_label_unless_told_and_keep_unions_whole() {
    let rules = custom(
        "alert_guards:\n  deploy_lock: lock_present == 1\n  enabled: auto_enabled == 1\n  rising:\n    expr: delta(restarts_done[12h]) > 0\n    on: [source]\nalerts:\n  Down:\n    expr: lock_present == 0 or auto_enabled == 0\n    unless: [deploy_lock]\n    and: [enabled]\n  RestartsHigh:\n    threshold: { family: restarts_done }\n    at_least: { source: { hc: 19, phac: 24 } }\n    and: [rising]\n  Plain:\n    threshold: { family: restarts_done }\n    above: 3\n    unless: [deploy_lock]\n",
    );
    assert_eq!(
        find(&rules, "Down", "").expr,
        "(lock_present == 0 or auto_enabled == 0) and on() (auto_enabled == 1) unless on() (lock_present == 1)"
    );
    assert_eq!(
        find(&rules, "RestartsHigh", "").expr,
        r#"(restarts_done{source="hc"} >= 19 or restarts_done{source="phac"} >= 24) and on(source) (delta(restarts_done[12h]) > 0)"#
    );
    assert_eq!(
        find(&rules, "Plain", "").expr,
        "restarts_done > 3 unless on() (lock_present == 1)"
    );
}

#[test]
fn alerts_keep_their_group_labels_and_template_text() {
    let groups = groups(
        &source(&format!(
            "{DECLARED}alerts:\n  A:\n    threshold: {{ family: restarts_done }}\n    above: 1\n    group: crawl\n    labels: {{ team: crawl, page: \"{{{{ $labels.source }}}}\" }}\n    summary: \"{{{{ $labels.source }}}}: {{{{ $value | humanize }}}} restarts, it's high\"\n    for: 0s\n  B:\n    threshold: {{ family: restarts_done }}\n    above: 2\n  C:\n    threshold: {{ family: restarts_done }}\n    above: 3\n    group: crawl\n"
        )),
        &job_scrape(),
    );
    let names: Vec<(&str, usize)> = groups
        .iter()
        .map(|group| (group.name.as_str(), group.rules.len()))
        .collect();
    assert_eq!(
        names,
        [
            ("heartwire-jobs", 1),
            ("heartwire-workers", 1),
            ("heartwire-agent", 7),
            ("crawl", 2),
            ("heartwire-alerts", 1)
        ]
    );
    let a = &groups[3].rules[0];
    assert_eq!(a.for_, None, "for: 0s fires at once");
    assert_eq!(
        a.labels,
        [
            ("team".to_owned(), "crawl".to_owned()),
            ("page".to_owned(), "{{ $labels.source }}".to_owned())
        ]
    );
    let file = rule_file("", &groups);
    assert!(
        file.contains("          summary: '{{ $labels.source }}: {{ $value | humanize }} restarts, it''s high'\n"),
        "{file}"
    );
    assert!(
        file.contains("          page: '{{ $labels.source }}'\n"),
        "{file}"
    );
}

#[test]
fn a_textfile_setup_watches_the_age_of_its_file_not_a_scrape() {
    let groups = groups(
        &source(""),
        &scrape(ScrapeTarget::Textfile {
            file_name: "healtharchive_heartwire.prom".into(),
            interval: Duration::from_secs(15),
        }),
    );
    let down = &groups[2].rules[0];
    assert_eq!(down.alert, "HeartwireDown");
    assert_eq!(
        down.expr,
        r#"time() - node_textfile_mtime_seconds{file=~"(.*/)?healtharchive_heartwire\\.prom"} > 120 or absent(node_textfile_mtime_seconds{file=~"(.*/)?healtharchive_heartwire\\.prom"})"#
    );
    assert!(!down.expr.contains("up"), "{}", down.expr);
    assert_eq!(down.for_, Some(Duration::from_secs(60)));
    assert!(
        down.description
            .contains("(written every 15 seconds) more than 2 minutes old"),
        "{}",
        down.description
    );
    // A slow writer gets four of its intervals.
    let slow = groups_for_interval(Duration::from_secs(300));
    assert!(slow.expr.contains(" > 1200 or "), "{}", slow.expr);
}

fn groups_for_interval(interval: Duration) -> AlertRule {
    groups(
        &source(""),
        &scrape(ScrapeTarget::Textfile {
            file_name: "heartwire.prom".into(),
            interval,
        }),
    )
    .swap_remove(2)
    .rules
    .swap_remove(0)
}

#[test]
fn the_textfile_target_comes_from_the_config() {
    let source = source(
        "textfile:\n  enabled: true\n  directory: /tmp\n  file_name: x.prom\n  interval: 1m\n",
    );
    assert_eq!(
        ScrapeTarget::textfile(&source.textfile),
        ScrapeTarget::Textfile {
            file_name: "x.prom".into(),
            interval: Duration::from_secs(60)
        }
    );
}

#[test]
fn the_config_check_refuses_unknown_guards_and_families_at_their_key() {
    let refused = |yaml: &str| {
        from_str(&format!("{DECLARED}{yaml}"), "t.yaml")
            .unwrap_err()
            .to_string()
    };
    let message = refused(
        "alerts:\n  A:\n    threshold: { family: restarts_done }\n    above: 1\n    and: [enabled]\n",
    );
    assert!(
        message
            .contains("alerts.A.and: `enabled` is no guard of `alert_guards:` (none is defined)"),
        "{message}"
    );
    let message = refused("alert_guards:\n  lock: lock_held == 1\n");
    assert!(
        message.contains("alert_guards.lock: `lock_held` is no family this config knows"),
        "{message}"
    );
    let message =
        refused("alerts:\n  A:\n    not_updated: { timestamp: last_run_seconds, after: 1h }\n");
    assert!(
        message.contains("alerts.A.not_updated.timestamp: `last_run_seconds` is no family"),
        "{message}"
    );
    let message = refused("alerts:\n  A:\n    expr: up == 1 and lock_held\n");
    assert!(
        message.contains("alerts.A.expr: `lock_held` is no family"),
        "{message}"
    );
    let message =
        refused("alerts:\n  A:\n    increase: { family: heartwire_job_stale }\n    above: 0\n");
    assert!(
        message.contains("is a gauge: `increase` reads"),
        "{message}"
    );
}
