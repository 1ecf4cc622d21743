//! The seed's alert table comes out of `heartwire rules` for the example's config: the liveness
//! threshold of every job (5× the minute poll, 2 h for hourly jobs, 30 h for daily ones), derived
//! from the schedules, and the scraper providers' two failure-ratio alerts. promtool checks the
//! file and, in unit tests of the rules, shows each alert firing past its threshold and not
//! before.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use heartwire_tests::prometheus::tool_or_skip;
use heartwire_tests::rule_file::{self, Rule};

use super::example_dir;

/// The seed's "suggested alert threshold" per job, in seconds.
const THRESHOLDS: [(&str, u64); 8] = [
    ("viewer-poll", 300),
    ("chat-export", 7200),
    ("stale-session-cleanup", 7200),
    ("kick-token-refresh", 7200),
    ("x-follower-poll", 7200),
    ("kick-subscriptions", 108_000),
    ("trust-score-refresh", 108_000),
    ("daily-maintenance", 108_000),
];

/// The seed's failing outcomes, as the rules match them.
const FAILED: &str = "vf_scraper_requests_total{outcome=~\"http_5xx|cf_block|timeout|network\"}";

/// The one `JobNoRecentSuccess` rule of `job`.
#[track_caller]
fn liveness<'a>(rules: &'a [Rule], job: &str) -> &'a Rule {
    let selector = format!("job=\"{job}\"");
    let found: Vec<&Rule> = rules
        .iter()
        .filter(|rule| rule.alert == "JobNoRecentSuccess" && rule.expr.contains(&selector))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "JobNoRecentSuccess rules of {job}: {found:?}"
    );
    found[0]
}

/// One expected alert of a promtool test: the rule's labels and the expression's.
fn alert(rule: &Rule, labels: &[(&str, &str)]) -> String {
    let mut all: BTreeMap<&str, &str> = rule
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    all.extend(labels.iter().copied());
    let pairs: Vec<String> = all.iter().map(|(k, v)| format!("{k}: '{v}'")).collect();
    format!("          - exp_labels: {{ {} }}\n", pairs.join(", "))
}

/// A test case: at `eval_time`, exactly `alerts` of `name` fire.
fn case(out: &mut String, eval_time: &str, name: &str, alerts: &[String]) {
    let _ = writeln!(
        out,
        "      - eval_time: {eval_time}\n        alertname: {name}"
    );
    if alerts.is_empty() {
        out.push_str("        exp_alerts: []\n");
    } else {
        out.push_str("        exp_alerts:\n");
        alerts.iter().for_each(|alert| out.push_str(alert));
    }
}

#[test]
fn heartwire_rules_carry_the_seeds_thresholds_and_scraper_alerts() {
    let text = rule_file::heartwire_rules(&example_dir().join("heartwire.yaml"));
    let rules = rule_file::parse(&text);
    for (job, seconds) in THRESHOLDS {
        let rule = liveness(&rules, job);
        let expr = &rule.expr;
        // The seed's query, per app rather than per job alone, over the newest success any pod
        // reported within the job's window (it outlasts the agent that reported it).
        assert!(
            expr.starts_with(
                "time() - max by(namespace, workload, service, job) (label_replace(max_over_time(vf_worker_poll_last_success_timestamp_seconds{"
            ) && expr.contains("service=\"worker\"")
                && expr.ends_with(&format!(") > {seconds}")),
            "the seed's liveness query with {job}'s threshold of {seconds} s: {expr}"
        );
    }
    let provider = rule_file::find(&rules, "ScraperProviderHighFailureRate", &[]);
    assert!(
        provider.expr.starts_with(&format!(
            "sum by(provider) (rate({FAILED}[5m])) / clamp_min("
        )) && provider.expr.ends_with(") > 0.2"),
        "per-provider failure ratio above 20 %: {}",
        provider.expr
    );
    assert_eq!(
        (
            provider.for_.as_deref(),
            provider.labels["severity"].as_str()
        ),
        (Some("10m"), "warning")
    );
    let down = rule_file::find(&rules, "ScraperAllProvidersDown", &[]);
    assert!(
        down.expr.starts_with(&format!("sum (rate({FAILED}[5m]))"))
            || down.expr.starts_with(&format!("sum(rate({FAILED}[5m]))")),
        "global failure ratio: {}",
        down.expr
    );
    assert!(
        down.expr.ends_with(") > 0.5") && !down.expr.contains("by("),
        "above 50 % over all providers: {}",
        down.expr
    );
    assert_eq!(
        (down.for_.as_deref(), down.labels["severity"].as_str()),
        (Some("5m"), "critical")
    );

    let Some(promtool) = tool_or_skip("promtool") else {
        return;
    };
    rule_file::check(&promtool, &text).unwrap();
    let mut tested: Vec<Rule> = THRESHOLDS
        .iter()
        .map(|(job, _)| liveness(&rules, job).clone())
        .collect();
    tested.extend([provider.clone(), down.clone()]);
    let tests = format!(
        "{}{}{}",
        liveness_staircase(&rules),
        one_provider_degraded(provider, down),
        both_providers_failing(provider, down)
    );
    rule_file::test(&promtool, &tested, &tests).unwrap();
}

/// Every job last succeeded at time 0: after 5 min only viewer-poll is late, after 2 h the
/// hourly jobs too, after 30 h every job.
fn liveness_staircase(rules: &[Rule]) -> String {
    let mut out = String::from("  - interval: 1m\n    input_series:\n");
    for (job, _) in THRESHOLDS {
        let _ = writeln!(
            out,
            "      - series: 'vf_worker_poll_last_success_timestamp_seconds{{service=\"worker\",job=\"{job}\"}}'\n        values: '0x1830'"
        );
    }
    out.push_str("    alert_rule_test:\n");
    let late = |limit: u64| -> Vec<String> {
        THRESHOLDS
            .iter()
            .filter(|(_, seconds)| *seconds <= limit)
            .map(|(job, _)| alert(liveness(rules, job), &[("job", job), ("service", "worker")]))
            .collect()
    };
    for (eval_time, late_after) in [
        ("5m", 0),
        ("6m", 300),
        ("2h", 300),
        ("121m", 7200),
        ("30h", 7200),
        ("1801m", 108_000),
    ] {
        case(&mut out, eval_time, "JobNoRecentSuccess", &late(late_after));
    }
    out
}

/// scraperapi fails 1 request in 4 (25 %), scrapedo none: the provider warning fires for
/// scraperapi after its 10 minutes; the global ratio (12.5 %) stays under 50 %.
fn one_provider_degraded(provider: &Rule, down: &Rule) -> String {
    let mut out = String::from("  - interval: 1m\n    input_series:\n");
    for (p, outcome, values) in [
        ("scraperapi", "success", "0+3x30"),
        ("scraperapi", "cf_block", "0+1x30"),
        ("scrapedo", "success", "0+4x30"),
    ] {
        let _ = writeln!(
            out,
            "      - series: 'vf_scraper_requests_total{{service=\"worker\",provider=\"{p}\",outcome=\"{outcome}\"}}'\n        values: '{values}'"
        );
    }
    out.push_str("    alert_rule_test:\n");
    let warning = alert(provider, &[("provider", "scraperapi")]);
    case(&mut out, "10m", &provider.alert, &[]);
    case(&mut out, "12m", &provider.alert, &[warning]);
    case(&mut out, "12m", &down.alert, &[]);
    out
}

/// scraperapi fails 2 in 3, scrapedo every request: both providers warn after 10 minutes, and
/// the global ratio (5 in 6) is critical after 5.
fn both_providers_failing(provider: &Rule, down: &Rule) -> String {
    let mut out = String::from("  - interval: 1m\n    input_series:\n");
    for (p, outcome, values) in [
        ("scraperapi", "success", "0+1x30"),
        ("scraperapi", "http_5xx", "0+2x30"),
        ("scrapedo", "timeout", "0+2x30"),
        ("scrapedo", "network", "0+1x30"),
    ] {
        let _ = writeln!(
            out,
            "      - series: 'vf_scraper_requests_total{{service=\"worker\",provider=\"{p}\",outcome=\"{outcome}\"}}'\n        values: '{values}'"
        );
    }
    out.push_str("    alert_rule_test:\n");
    case(&mut out, "5m", &down.alert, &[]);
    case(&mut out, "7m", &down.alert, &[alert(down, &[])]);
    let both = [
        alert(provider, &[("provider", "scraperapi")]),
        alert(provider, &[("provider", "scrapedo")]),
    ];
    case(&mut out, "12m", &provider.alert, &both);
    out
}
