//! `heartwire rules` and `heartwire dashboard`, end to end.
//!
//! The rules of the default config and of every `examples/*/heartwire.yaml` pass `promtool check
//! rules`; the promtool unit tests in `tests/rules/` feed series to the generated rules and say
//! which alerts fire and which stay silent, the agent killed, restarted or moved to another pod
//! included (a test file's `# args:` line gives `heartwire rules` options); the dashboard is importable JSON whose queries all
//! parse (promtool) and name only families the real agent exposes once it got one line of
//! everything. A missing promtool skips loudly, or fails under `HEARTWIRE_REQUIRE_PEERS=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use heartwire_tests::agent::{Agent, all_listeners, heartwire};
use heartwire_tests::generated::{
    dashboard, heartwire_output, panel_exprs, promtool_or_skip, repo, selected_names,
};
use heartwire_tests::rule_file;
use serde_json::Value;

/// The configs whose rules and dashboards are checked: `None` is the embedded default.
fn configs() -> Vec<Option<PathBuf>> {
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/")
        .map(|entry| entry.expect("an entry").path().join("heartwire.yaml"))
        .filter(|path| path.is_file())
        .collect();
    examples.sort();
    assert!(examples.len() >= 2, "examples: {examples:?}");
    std::iter::once(None)
        .chain(examples.into_iter().map(Some))
        .collect()
}

fn label(config: &Option<PathBuf>) -> String {
    config
        .as_ref()
        .map_or("the default config".to_owned(), |p| p.display().to_string())
}

#[track_caller]
fn promtool(promtool: &Path, args: &[&Path]) -> Output {
    Command::new(promtool)
        .args(args)
        .output()
        .expect("promtool runs")
}

fn report(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hw-rules")
        .tempdir()
        .expect("a temporary directory")
}

/// The PromQL of every rule in a generated rule file. The writer puts each `expr` on one line,
/// single-quoted.
fn rule_exprs(rule_file: &str) -> Vec<String> {
    rule_file
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("expr: "))
        .map(|quoted| {
            quoted
                .strip_prefix('\'')
                .and_then(|q| q.strip_suffix('\''))
                .unwrap_or_else(|| panic!("an expr not single-quoted: {quoted}"))
                .replace("''", "'")
        })
        .collect()
}

#[test]
fn promtool_accepts_the_rules_of_the_default_config_and_of_every_example() {
    let Some(promtool_path) = promtool_or_skip() else {
        return;
    };
    let dir = scratch();
    for config in configs() {
        for target in [
            &["rules"][..],
            &["rules", "--scrape-container", "heartwire"],
            &["rules", "--honor-labels", "false"],
        ] {
            let rules = heartwire_output(target, config.as_deref());
            let alerts = rules.matches("- alert: ").count();
            assert!(alerts >= 7, "{} gave {alerts} rules", label(&config));
            let path = dir.path().join("rules.yaml");
            std::fs::write(&path, &rules).expect("the rules are written");
            let output = promtool(
                &promtool_path,
                &[Path::new("check"), Path::new("rules"), &path],
            );
            let said = report(&output);
            assert!(
                output.status.success() && said.contains(&format!("SUCCESS: {alerts} rules found")),
                "promtool check rules, {} {target:?}:\n{said}\n{rules}",
                label(&config)
            );
        }
    }
}

#[test]
fn the_prometheus_rule_object_carries_the_rule_file_groups() {
    for config in configs() {
        let file = heartwire_output(&["rules"], config.as_deref());
        let object = heartwire_output(
            &["rules", "--format", "prometheus-operator", "--name", "shop"],
            config.as_deref(),
        );
        let body = file
            .split_once("\ngroups:\n")
            .map(|(_, groups)| groups)
            .expect("a rule file has groups");
        let (head, spec) = object
            .split_once("\nspec:\n  groups:\n")
            .expect("an object has spec.groups");
        assert!(
            head.ends_with(
                "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: shop\n  labels:\n    app.kubernetes.io/name: heartwire"
            ),
            "{head}"
        );
        let dedented: String = spec
            .lines()
            .map(|line| format!("{}\n", line.strip_prefix("  ").unwrap_or(line)))
            .collect();
        assert_eq!(dedented, body, "{}", label(&config));
    }
}

/// The config a unit test file names on its `# config:` line (`default` for the embedded one).
fn config_of(test_file: &str) -> Option<PathBuf> {
    let named = test_file
        .lines()
        .find_map(|line| line.strip_prefix("# config: "))
        .expect("a `# config:` line")
        .trim();
    (named != "default").then(|| repo().join(named))
}

/// The `heartwire rules` options a unit test file names on its `# args:` line, if it has one
/// (`--honor-labels false`).
fn args_of(test_file: &str) -> Vec<&str> {
    test_file
        .lines()
        .find_map(|line| line.strip_prefix("# args: "))
        .map(|args| args.split_whitespace().collect())
        .unwrap_or_default()
}

/// Runs `promtool test rules` on `test_file` with `rules` beside it as rules.yaml.
fn unit_test(promtool_path: &Path, test_file: &Path, rules: &str) -> Output {
    let dir = scratch();
    std::fs::write(dir.path().join("rules.yaml"), rules).expect("the rules are written");
    let copy = dir.path().join(test_file.file_name().expect("a file name"));
    std::fs::copy(test_file, &copy).expect("the test file is copied");
    promtool(
        promtool_path,
        &[Path::new("test"), Path::new("rules"), &copy],
    )
}

fn unit_test_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/rules"))
        .expect("tests/rules/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn promtool_unit_tests_see_alerts_fire_and_stay_silent_as_expected() {
    let Some(promtool_path) = promtool_or_skip() else {
        return;
    };
    let files = unit_test_files();
    assert!(files.len() >= 6, "unit test files: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("the test file");
        let args: Vec<&str> = std::iter::once("rules").chain(args_of(&text)).collect();
        let rules = heartwire_output(&args, config_of(&text).as_deref());
        let output = unit_test(&promtool_path, &file, &rules);
        let said = report(&output);
        assert!(
            output.status.success() && said.contains("SUCCESS"),
            "promtool test rules {}:\n{said}",
            file.display()
        );
    }
}

#[test]
fn the_unit_tests_catch_a_threshold_that_differs_from_the_config() {
    let Some(promtool_path) = promtool_or_skip() else {
        return;
    };
    let example = std::fs::read_to_string(repo().join("examples/vf-worker/heartwire.yaml"))
        .expect("the vf-worker example");
    let original = "viewer-poll: { cron: \"* * * * *\", readiness: completed }";
    assert!(example.contains(original), "the example changed");
    let dir = scratch();
    let changed = dir.path().join("heartwire.yaml");
    std::fs::write(
        &changed,
        example.replace(
            original,
            "viewer-poll: { cron: \"* * * * *\", readiness: completed, alert_after: 6m }",
        ),
    )
    .expect("the changed config is written");
    let rules = heartwire_output(&["rules"], Some(&changed));
    let parsed = rule_file::parse(&rules);
    let late = rule_file::find(&parsed, "JobNoRecentSuccess", &[("job", "viewer-poll")]);
    assert!(late.expr.ends_with(") > 360"), "{}", late.expr);
    let output = unit_test(
        &promtool_path,
        &repo().join("tests/rules/vf-worker.test.yaml"),
        &rules,
    );
    let said = report(&output);
    assert!(
        !output.status.success(),
        "a 6m threshold passed the 5m tests:\n{said}"
    );
    assert!(
        said.contains("alertname: JobNoRecentSuccess, time: 6m"),
        "{said}"
    );
}

/// The comment lines at the top of a rule file.
fn header_of(rules: &str) -> String {
    rules
        .lines()
        .take_while(|line| line.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_rules_say_which_honor_labels_they_assume_and_check_says_the_default() {
    let config = repo().join("examples/vf-worker/heartwire.yaml");
    let honored = heartwire_output(&["rules"], Some(&config));
    let header = header_of(&honored);
    assert!(
        header.contains("honor_labels: true") && header.contains("--honor-labels false"),
        "{header}"
    );
    let plain = heartwire_output(&["rules", "--honor-labels", "false"], Some(&config));
    let header = header_of(&plain);
    assert!(header.contains("renamed `exported_job`"), "{header}");
    let rules = rule_file::parse(&plain);
    let per_job: Vec<&rule_file::Rule> = rules
        .iter()
        .filter(|rule| rule.alert.starts_with("Job") && rule.alert != "JobCrashed")
        .collect();
    assert!(per_job.len() >= 4 * 8, "{} job rules", per_job.len());
    for rule in per_job {
        assert!(
            rule.labels.contains_key("exported_job") && !rule.labels.contains_key("job"),
            "{}: {:?}",
            rule.alert,
            rule.labels
        );
        assert!(
            rule.expr.contains(",exported_job=\"") && !rule.expr.contains(",job=\""),
            "{}: {}",
            rule.alert,
            rule.expr
        );
    }
    // A job label of another name is left alone: the crawl-watchdog's `task`.
    let watchdog = repo().join("examples/crawl-watchdog/heartwire.yaml");
    let task = heartwire_output(&["rules"], Some(&watchdog));
    assert_eq!(
        heartwire_output(&["rules", "--honor-labels", "false"], Some(&watchdog)),
        task
    );
    assert!(header_of(&task).contains("labelled `task`"), "{task}");
    let check = heartwire_output(&["check"], Some(&config));
    assert!(
        check.contains("rules: `heartwire rules` assumes honor_labels: true")
            && check.contains("`--honor-labels false` reads the job label as exported_job"),
        "{check}"
    );
}

#[test]
fn a_bad_config_is_refused_with_exit_64_naming_the_file_and_the_key() {
    let dir = scratch();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "alerts:\n  TooMany:\n    failure_ratio:\n      counter: requests_total\n      failures: { outcome: [error] }\n    above: 20\n",
    )
    .expect("the config is written");
    for command in ["rules", "dashboard"] {
        let output = heartwire()
            .args([command, "--config"])
            .arg(&bad)
            .output()
            .expect("heartwire runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{command}: {stderr}");
        assert!(output.stdout.is_empty(), "{command} printed something");
        assert!(
            stderr.contains("bad.yaml")
                && stderr.contains("TooMany")
                && stderr.contains("write 0.2 for 20 %"),
            "{command}: {stderr}"
        );
    }
}

/// Every panel has a unique id, a place on the grid, the `${datasource}` variable and queries
/// with distinct refIds; tables, time series and stats are all there.
#[track_caller]
fn check_panels(panels: &[Value], at: &str) {
    let ids: BTreeSet<u64> = panels
        .iter()
        .map(|p| p["id"].as_u64().expect("an id"))
        .collect();
    assert_eq!(ids.len(), panels.len(), "{at}: panel ids repeat");
    let mut kinds = BTreeSet::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = &panel["title"];
        kinds.insert(panel["type"].as_str().expect("a type").to_owned());
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{at}: {title}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{at}: {title} gridPos");
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{at}: {title} has no query");
        let refs: BTreeSet<&str> = targets
            .iter()
            .map(|t| t["refId"].as_str().expect("refId"))
            .collect();
        assert_eq!(refs.len(), targets.len(), "{at}: {title} repeats a refId");
    }
    assert!(
        ["table", "timeseries", "stat"]
            .iter()
            .all(|kind| kinds.contains(*kind)),
        "{at}: panel types {kinds:?}"
    );
}

#[test]
fn the_dashboard_is_importable_json_with_a_prometheus_datasource_variable() {
    for config in configs() {
        let board = dashboard(config.as_deref());
        let at = label(&config);
        assert!(
            board["schemaVersion"].as_u64().expect("schemaVersion") >= 39,
            "{at}"
        );
        assert_eq!(board["id"], Value::Null, "{at}: an import gets a fresh id");
        assert!(
            board["uid"].is_string() && board["title"].is_string(),
            "{at}"
        );
        let variables = board["templating"]["list"].as_array().expect("variables");
        let datasource = variables
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{at}: no datasource variable"));
        assert_eq!(
            (&datasource["type"], &datasource["query"]),
            (&Value::from("datasource"), &Value::from("prometheus")),
            "{at}"
        );
        let panels = board["panels"].as_array().expect("panels");
        check_panels(panels, &at);
        let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
        for wanted in [
            "Jobs: state and age",
            "Runs per hour",
            "Errors and crashes per hour",
            "Run duration p95",
            "Calls by service and status",
            "Worker status",
            "Lines received per second",
            "Lines rejected per second",
            "Dropped input per second",
            "Series held",
        ] {
            assert!(
                titles.contains(&wanted),
                "{at}: no panel {wanted:?} in {titles:?}"
            );
        }
    }
}

#[test]
fn every_dashboard_query_passes_promtool() {
    let Some(promtool_path) = promtool_or_skip() else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut count = 0;
    for config in configs() {
        for (_, expr) in panel_exprs(&dashboard(config.as_deref())) {
            count += 1;
            rules.push_str(&format!(
                "      - record: heartwire_dashboard:query_{count}\n        expr: '{}'\n",
                expr.replace('\'', "''")
            ));
        }
    }
    let dir = scratch();
    let path = dir.path().join("dashboard.rules.yaml");
    std::fs::write(&path, &rules).expect("the rule file is written");
    let output = promtool(
        &promtool_path,
        &[Path::new("check"), Path::new("rules"), &path],
    );
    let said = report(&output);
    assert!(
        output.status.success() && said.contains(&format!("SUCCESS: {count} rules found")),
        "{said}\n{rules}"
    );
}

/// The StatsD gauges the alerts of the crawl-watchdog example read (seed 002), one line each.
macro_rules! crawl_alert_lines {
    () => {
        "healtharchive.worker_active:0|g\nhealtharchive.worker_should_be_running:1|g\nhealtharchive.jobs_infra_error_recent:0|g|#window:10m\nhealtharchive.crawl_running_job_output_dir_ok:1|g|#source:hc\nhealtharchive.crawl_running_job_output_dir_errno:0|g|#source:hc\nhealtharchive.crawl_running_job_temp_dirs:12|g|#source:hc\nhealtharchive.crawl_annual_pending_job_output_dir_writable:1|g|#source:cihr,job_id:103\nhealtharchive.crawl_annual_pending_job_output_dir_writable_errno:0|g|#source:cihr,job_id:103\nhealtharchive.crawl_annual_output_dir_probe_user_ok:1|g\nhealtharchive.worker_auto_start.enabled:1|g\nhealtharchive.crawl_auto_recover.enabled:1|g\nhealtharchive.storage_hotpath_auto_recover.enabled:1|g\nhealtharchive.crawl_auto_recover.deploy_lock_present:0|g\nhealtharchive.storage_hotpath_auto_recover.detected_targets:0|g\nhealtharchive.storage_hotpath_auto_recover.last_apply_ok:1|g\nhealtharchive.storage_hotpath_auto_recover.last_apply_timestamp_seconds:1|g\nhealtharchive.storage_hotpath_auto_recover.apply_attempts:1|c\nhealtharchive.job.indexed_pages:0|g|#task:crawl-hc\n"
    };
}

/// One line of everything the dashboard and the rules show: jobs (configured or not) with
/// progress, a worker that beats and one that stops, outbound calls with durations, the scraper
/// counter, the StatsD families the examples' `dashboard:` panels and `alerts:` read (seeds 002
/// and 004), a bad line.
const EVERYTHING: &str = concat!(
    "job.start nightly\njob.progress nightly 5\njob.ok nightly 0.2\njob.error nightly 0.1 reason=boom\njob.start viewer-poll\njob.ok viewer-poll 0.3\nhb email_queue\nhb newsletter_cleanup\nworker.stop newsletter_cleanup\nhttp kick channels 200 0.2\nhttp kick channels 401 0.1\nvf.scraper.requests:1|c|#provider:scraperapi,outcome:success\nvf.scraper.requests:1|c|#provider:scraperapi,outcome:timeout\nhealtharchive.crawl_running_job_container_restarts_done:2|g|#source:hc\nhealtharchive.crawl_running_job_new_crawl_phases:1|g|#source:hc\nhealtharchive.crawl_running_job_resume_crawls:0|g|#source:hc\nhealtharchive.worker_auto_start.start_attempts:1|c\nhealtharchive.worker_auto_start.start_success:1|c\nhealtharchive.worker_auto_start.start_failed:0|c\nrelay.jobs.enqueued.emails:1|c\nrelay.jobs.deduplicated.emails:1|c\nrelay.jobs.claimed.emails:1|c\nrelay.jobs.processed.emails:1|c\nrelay.jobs.retried.emails:1|c\nrelay.jobs.dead.emails:1|c\nrelay.jobs.reaped.emails:1|c\nrelay.jobs.promoted.emails:1|c\nrelay.job.latency.emails:120|ms\nrelay.queue.depth.emails.ready:3|g\n",
    crawl_alert_lines!(),
    "bogus line\n"
);

#[test]
fn every_family_the_dashboard_and_the_rules_query_is_one_the_real_agent_exposes() {
    for config in configs() {
        let text = config
            .as_ref()
            .map(|path| std::fs::read_to_string(path).expect("the config"))
            .unwrap_or_default();
        // Families of configured jobs (state, stale, deadline…) exist only for configured jobs.
        let jobs = if text.lines().any(|line| line.starts_with("jobs:")) {
            String::new()
        } else {
            "jobs:\n  nightly: { every: 1h }\n".to_owned()
        };
        // A mapping file named relative to the example's config stays found from the agent's
        // temporary directory.
        let text = match config.as_ref().and_then(|path| path.parent()) {
            Some(example) => text
                .lines()
                .map(|line| match line.split_once("mapping_file:") {
                    Some((indent, file)) if !file.trim().starts_with('/') => {
                        format!(
                            "{indent}mapping_file: {}",
                            example.join(file.trim()).display()
                        )
                    }
                    _ => line.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
            None => text,
        };
        // An example that writes a node_exporter textfile writes it into the agent's directory.
        let agent = Agent::start_config(|dir| {
            let text = text.replace(
                "/var/lib/node_exporter/textfile_collector",
                &dir.display().to_string(),
            );
            format!("{}{text}\n{jobs}", all_listeners(dir))
        });
        agent.send_udp(EVERYTHING.as_bytes());
        let scrape = agent.wait_until("every line counted", |scrape| {
            scrape.value(
                "heartwire_lines_rejected_total",
                &[("reason", "unknown_verb")],
            ) == Some(1.0)
                && scrape
                    .samples
                    .iter()
                    .any(|s| s.name == "vf_scraper_requests_total")
        });
        let exposed: BTreeSet<&str> = scrape.samples.iter().map(|s| s.name.as_str()).collect();
        let rules = heartwire_output(&["rules"], config.as_deref());
        let queries = panel_exprs(&dashboard(config.as_deref()))
            .into_iter()
            .chain(
                rule_exprs(&rules)
                    .into_iter()
                    .map(|expr| ("a rule".to_owned(), expr)),
            );
        let mut checked = 0;
        for (title, expr) in queries {
            for name in selected_names(&expr) {
                // `up` is Prometheus' own, about the scrape of heartwire; the mtime of heartwire's
                // textfile is node_exporter's own, about the file heartwire writes.
                if name == "up" || name == "node_textfile_mtime_seconds" {
                    continue;
                }
                assert!(
                    exposed.contains(name.as_str()),
                    "{}: {title} queries {name}, which the agent does not expose: {expr}\n{scrape}",
                    label(&config)
                );
                checked += 1;
            }
        }
        assert!(
            checked > 20,
            "{}: only {checked} names checked",
            label(&config)
        );
    }
}
