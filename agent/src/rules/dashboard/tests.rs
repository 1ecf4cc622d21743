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
    let board = board("");
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
