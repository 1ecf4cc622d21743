use super::*;
use crate::config::from_str;

fn board(yaml: &str) -> Value {
    dashboard(&Source::from_config(&from_str(yaml, "t.yaml").unwrap()))
}

fn exprs(board: &Value) -> Vec<String> {
    board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn panels_have_unique_ids_and_do_not_overlap() {
    assert_no_overlaps(&board(""));
    assert_no_overlaps(&board("jobs:\n  crawl: { every: 1d, stall_after: 1h }\n"));
}

#[track_caller]
fn assert_no_overlaps(board: &Value) {
    let panels = board["panels"].as_array().unwrap();
    let mut cells = std::collections::HashSet::new();
    for (index, panel) in panels.iter().enumerate() {
        assert_eq!(panel["id"], json!(index + 1));
        let at = &panel["gridPos"];
        let (x, y, w, h) = (
            at["x"].as_u64().unwrap(),
            at["y"].as_u64().unwrap(),
            at["w"].as_u64().unwrap(),
            at["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{panel}");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            assert!(
                cells.insert(cell),
                "panel {} overlaps at {cell:?}",
                panel["title"]
            );
        }
    }
}

#[test]
fn queries_follow_the_configured_names_and_labels() {
    let board = board(
        "families:\n  jobs:\n    runs: vf_worker_poll_runs_total\n    labels: { service: worker }\n  workers:\n    status: worker_status\n    label: name\n",
    );
    let exprs = exprs(&board);
    assert!(exprs.contains(&r#"sum by(job, result) (increase(vf_worker_poll_runs_total{service="worker",job=~"$job"}[1h]))"#.to_owned()), "{exprs:#?}");
    assert!(exprs.contains(&r#"max by(name, instance) (worker_status) + 2 * max by(name, instance) (heartwire_worker_stopped)"#.to_owned()), "{exprs:#?}");
    assert_eq!(
        board["templating"]["list"][1]["definition"],
        json!(r#"label_values(vf_worker_poll_runs_total{service="worker"}, job)"#)
    );
}

#[test]
fn failure_ratio_alerts_get_a_panel_with_their_threshold() {
    let board = board(
        "statsd:\n  mapping:\n    mappings:\n      - { match: vf.scraper.requests, name: vf_scraper_requests_total }\nalerts:\n  ScraperAllProvidersDown:\n    failure_ratio:\n      counter: vf_scraper_requests_total\n      failures: { outcome: [timeout, network] }\n    above: 0.5\n",
    );
    let panel = board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == json!("ScraperAllProvidersDown: failure ratio"))
        .expect("a ratio panel");
    assert_eq!(
        panel["targets"][0]["expr"],
        json!(
            r#"sum (rate(vf_scraper_requests_total{outcome=~"timeout|network"}[5m])) / clamp_min(sum (rate(vf_scraper_requests_total[5m])), 0.0001)"#
        )
    );
    assert_eq!(
        panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
        json!(0.5)
    );
}

/// The PromQL and legend of every query of the panel titled `title`.
#[track_caller]
fn queries_of(board: &Value, title: &str) -> Vec<(String, String)> {
    let panel = board["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == json!(title))
        .unwrap_or_else(|| panic!("no panel {title:?}"));
    panel["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["expr"].as_str().unwrap().to_owned(),
                t["legendFormat"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn progress_rows_follow_the_job_label_and_show_state_only_with_stall_after() {
    let plain = board("jobs:\n  nightly: { every: 1h }\n");
    let titles: Vec<&str> = plain["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert!(titles.contains(&"Progress per minute"), "{titles:?}");
    assert!(titles.contains(&"Time since last progress"), "{titles:?}");
    assert!(
        !titles.contains(&"Progress state"),
        "no job has stall_after"
    );
    let crawl = board(
        "jobs:\n  crawl-hc: { cron: '@yearly', stall_after: 1h }\nfamilies:\n  jobs:\n    label: task\n    progress: pages_total\n",
    );
    assert_eq!(
        queries_of(&crawl, "Progress per minute"),
        [(
            r#"60 * sum by(task) (rate(pages_total{task=~"$job"}[$__rate_interval]))"#.to_owned(),
            "{{task}}".to_owned()
        )]
    );
    let [(state, _)] = &queries_of(&crawl, "Progress state")[..] else {
        panic!("one query");
    };
    assert!(
        state.starts_with(r#"((max by(task) (heartwire_job_stalled{task=~"$job"}) == 1) * 3 or"#),
        "{state}"
    );
    assert!(
        state.ends_with(r#") and on(task) max by(task) (heartwire_job_stalled{task=~"$job"})"#),
        "{state}"
    );
    let age = crawl["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == json!("Time since last progress"))
        .unwrap();
    assert_eq!(
        age["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"],
        json!(3600.0),
        "the red line at the one stall_after"
    );
}

const RELAY: &str = "statsd:\n  mapping:\n    mappings:\n      - { match: relay.jobs.*.*, match_metric_type: counter, name: 'relay_jobs_${1}_total', labels: { queue: $2 } }\n      - { match: relay.job.latency.*, match_metric_type: observer, name: relay_job_latency_seconds }\n      - { match: relay.queue.depth.*.*, match_metric_type: gauge, name: relay_queue_depth }\n";

#[test]
fn config_panels_draw_each_kind_as_promql() {
    let board = board(&format!(
        "{RELAY}dashboard:\n  rows:\n    - title: Relay\n      panels:\n{}",
        [
            "{ title: Transitions, rate: [relay_jobs_enqueued_total, relay_jobs_dead_total], by: [queue] }",
            "{ title: Pages, rate: relay_jobs_processed_total, scale: 60, windows: [auto, 30m], by: [queue] }",
            "{ title: Hourly, increase: relay_jobs_dead_total, windows: [1h], by: [] }",
            "{ title: Depth, value: relay_queue_depth, where: { state: [ready, delayed], queue: { not: test } } }",
            "{ title: Age, value: heartwire_job_last_run_timestamp_seconds, age: true, by: [job], scale: 0.0166 }",
            "{ title: Latency, quantile: relay_job_latency_seconds, quantiles: [0.5, 0.99], by: [queue] }",
            "{ title: Dead, ratio: { numerator: { rate: relay_jobs_dead_total, where: 'queue!~\"tmp.*\"' }, denominator: { rate: relay_jobs_claimed_total } }, by: [queue], scale: 100, unit: percent }",
            "{ title: Raw, expr: 'sum(relay_queue_depth)', legend: all jobs }",
        ]
        .map(|panel| format!("        - {panel}\n"))
        .concat()
    ));
    let q = |title| queries_of(&board, title);
    let pair = |expr: &str, legend: &str| (expr.to_owned(), legend.to_owned());
    assert_eq!(
        q("Transitions"),
        [
            pair(
                "sum by(queue) (rate(relay_jobs_enqueued_total[$__rate_interval]))",
                "{{queue}} enqueued"
            ),
            pair(
                "sum by(queue) (rate(relay_jobs_dead_total[$__rate_interval]))",
                "{{queue}} dead"
            ),
        ]
    );
    assert_eq!(
        q("Pages"),
        [
            pair(
                "60 * sum by(queue) (rate(relay_jobs_processed_total[$__rate_interval]))",
                "{{queue}}"
            ),
            pair(
                "60 * sum by(queue) (rate(relay_jobs_processed_total[30m]))",
                "{{queue}} (30m)"
            ),
        ]
    );
    assert_eq!(
        q("Hourly"),
        [pair("sum (increase(relay_jobs_dead_total[1h]))", "total")]
    );
    assert_eq!(
        q("Depth"),
        [pair(
            r#"relay_queue_depth{state=~"ready|delayed",queue!="test"}"#,
            "__auto"
        )]
    );
    assert_eq!(
        q("Age"),
        [pair(
            "0.0166 * (time() - max by(job) (heartwire_job_last_run_timestamp_seconds))",
            "{{job}}"
        )]
    );
    assert_eq!(
        q("Latency"),
        [
            pair(
                "histogram_quantile(0.5, sum by(le, queue) (rate(relay_job_latency_seconds_bucket[$__rate_interval])))",
                "p50 {{queue}}"
            ),
            pair(
                "histogram_quantile(0.99, sum by(le, queue) (rate(relay_job_latency_seconds_bucket[$__rate_interval])))",
                "p99 {{queue}}"
            ),
        ]
    );
    assert_eq!(
        q("Dead"),
        [pair(
            r#"100 * ((sum by(queue) (rate(relay_jobs_dead_total{queue!~"tmp.*"}[$__rate_interval])) or 0 * sum by(queue) (rate(relay_jobs_claimed_total[$__rate_interval]))) / sum by(queue) (rate(relay_jobs_claimed_total[$__rate_interval])))"#,
            "{{queue}}"
        )]
    );
    assert_eq!(q("Raw"), [pair("sum(relay_queue_depth)", "all jobs")]);
}

#[test]
fn config_panels_are_drawn_as_their_type_with_their_thresholds_in_their_rows() {
    let board = board(&format!(
        "{RELAY}dashboard:\n  rows:\n    - title: Relay\n      panels:\n        - {{ title: Backlog, value: relay_queue_depth, type: stat, width: 24, height: 4, thresholds: [{{ value: 100, color: red }}] }}\n        - {{ title: Dead share, ratio: {{ numerator: {{ rate: relay_jobs_dead_total }}, denominator: {{ rate: relay_jobs_claimed_total }} }}, type: state-timeline }}\n        - {{ title: Depth, value: relay_queue_depth, description: Jobs waiting. }}\n"
    ));
    let panels = board["panels"].as_array().unwrap();
    let at = |title: &str| {
        panels
            .iter()
            .position(|p| p["title"] == json!(title))
            .unwrap()
    };
    let row = at("Relay");
    assert_eq!(panels[row]["type"], json!("row"));
    assert!(at("Backlog") == row + 1 && at("heartwire agent") > at("Depth"));
    let backlog = &panels[at("Backlog")];
    assert_eq!(backlog["type"], json!("stat"));
    assert_eq!(backlog["gridPos"]["w"], json!(24));
    assert_eq!(backlog["options"]["colorMode"], json!("background"));
    assert_eq!(
        backlog["fieldConfig"]["defaults"]["thresholds"]["steps"],
        json!([{ "color": "green", "value": null }, { "color": "red", "value": 100.0 }])
    );
    let share = &panels[at("Dead share")];
    assert_eq!(share["type"], json!("state-timeline"));
    assert_eq!(
        share["fieldConfig"]["defaults"]["unit"],
        json!("percentunit")
    );
    let depth = &panels[at("Depth")];
    assert_eq!(depth["description"], json!("Jobs waiting."));
    assert!(
        depth["fieldConfig"]["defaults"].get("min").is_none(),
        "a gauge may go below 0"
    );
    assert_eq!(
        panels[at("Dead share")]["description"],
        json!(
            "The rate of relay_jobs_dead_total over the rate of relay_jobs_claimed_total, in total. From `dashboard:` in heartwire's config."
        )
    );
}

#[test]
fn config_rows_keep_the_grid_free_of_overlaps() {
    let board = board(&format!(
        "{RELAY}dashboard:\n  rows:\n    - title: A\n      panels:\n{}    - title: B\n      panels:\n        - {{ title: wide, expr: up, width: 24, height: 3 }}\n",
        "        - { title: x, value: relay_queue_depth, width: 10 }\n".repeat(5)
    ));
    assert_no_overlaps(&board);
}

/// The example configs and the embedded default: what `heartwire dashboard` draws for each.
fn shipped_configs() -> Vec<(String, crate::config::Config)> {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut configs = vec![(
        "the default".to_owned(),
        from_str(crate::config::DEFAULT_YAML, "default.yaml").unwrap(),
    )];
    let mut paths: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|entry| entry.unwrap().path().join("heartwire.yaml"))
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let config = crate::config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        configs.push((path.display().to_string(), config));
    }
    assert!(configs.len() >= 4, "the default and the examples");
    configs
}

#[test]
fn every_panel_of_every_shipped_config_is_promql_over_families_the_config_knows() {
    for (name, config) in shipped_configs() {
        let source = Source::from_config(&config);
        let known = crate::rules::Known::of(&source);
        let exprs = exprs(&dashboard(&source));
        assert!(exprs.len() > 20, "{name}: {exprs:#?}");
        for expr in exprs {
            let substituted = crate::rules::promql::with_grafana_variables_set(&expr);
            assert!(!substituted.contains("$__"), "{name}: {substituted}");
            if let Err(message) = known.check(&substituted) {
                panic!("{name}: {expr}: {message}");
            }
        }
    }
}

#[test]
fn the_examples_draw_the_panels_their_seeds_describe() {
    let configs = shipped_configs();
    let board_of = |example: &str| {
        let (_, config) = configs
            .iter()
            .find(|(name, _)| name.contains(&format!("/{example}/")))
            .unwrap_or_else(|| panic!("no example {example}"));
        dashboard(&Source::from_config(config))
    };
    let crawl = exprs(&board_of("crawl-watchdog"));
    let vf = exprs(&board_of("vf-worker"));
    let relay = exprs(&board_of("queue-broker"));
    for (exprs, wanted) in [
        // Seed 002: crawl rate raw and averaged, progress age, phases and resumes, restarts,
        // watchdog freshness and activity, the stalled state.
        (
            &crawl,
            "60 * sum by(task) (rate(healtharchive_crawl_pages_crawled_total[$__rate_interval]))",
        ),
        (
            &crawl,
            "60 * sum by(task) (rate(healtharchive_crawl_pages_crawled_total[30m]))",
        ),
        (
            &crawl,
            r#"time() - max by(task) (healtharchive_crawl_last_progress_timestamp_seconds{task=~"$job"})"#,
        ),
        (
            &crawl,
            "sum by(source) (healtharchive_crawl_running_job_new_crawl_phases)",
        ),
        (
            &crawl,
            "sum by(source) (healtharchive_crawl_running_job_resume_crawls)",
        ),
        (
            &crawl,
            "max by(source) (healtharchive_crawl_running_job_container_restarts_done)",
        ),
        (
            &crawl,
            r#"time() - max by(task) (healtharchive_task_last_run_timestamp_seconds{task=~".+-auto-.+"})"#,
        ),
        (
            &crawl,
            r#"sum by(task, result) (increase(healtharchive_task_runs_total{task=~".+-auto-.+"}[1h]))"#,
        ),
        (&crawl, "healtharchive_crawl_running_job_stalled"),
        // Seed 000: the per-provider request rate, and per-service outbound calls.
        (
            &vf,
            "sum by(provider, outcome) (rate(vf_scraper_requests_total[$__rate_interval]))",
        ),
        (
            &vf,
            "sum by(service) (rate(vf_external_http_total[$__rate_interval]))",
        ),
        // Seed 004: transitions by queue, latency quantiles, depth by state.
        (
            &relay,
            "sum by(queue) (rate(relay_jobs_enqueued_total[$__rate_interval]))",
        ),
        (
            &relay,
            "sum by(queue) (rate(relay_jobs_dead_total[$__rate_interval]))",
        ),
        (
            &relay,
            "histogram_quantile(0.99, sum by(le, queue) (rate(relay_job_latency_seconds_bucket[$__rate_interval])))",
        ),
        (&relay, "sum by(queue, state) (relay_queue_depth)"),
    ] {
        assert!(
            exprs.iter().any(|expr| expr.contains(wanted)),
            "no query holds {wanted}"
        );
    }
}

#[test]
fn http_panels_use_the_label_names_the_config_gives() {
    let board = board(
        "families:\n  http:\n    requests: uptime_checks_total\n    label_names: { service: websiteId }\n",
    );
    let exprs = exprs(&board);
    let calls: Vec<&String> = exprs
        .iter()
        .filter(|e| e.contains("uptime_checks_total"))
        .collect();
    assert!(!calls.is_empty(), "{exprs:?}");
    for expr in calls {
        assert!(expr.contains("websiteId"), "{expr}");
        assert!(!expr.contains("service"), "{expr}");
    }
}
