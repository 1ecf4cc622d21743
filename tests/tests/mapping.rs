//! StatsD mapping rules and series expiry, against the real agent: a statsd_exporter mapping
//! file loaded unchanged turns seed 004's broker lines into the seed's families; gauges expire
//! on the agent's own timer; a reload applies new rules to new samples only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::path::Path;

use heartwire_tests::agent::{Agent, all_listeners};

/// Seed 004's broker families, in statsd_exporter's mapping format as a team migrating from it
/// would already have it.
const BROKER_MAPPING: &str = r#"defaults:
  observer_type: histogram
  match_type: glob
  ttl: 0
mappings:
  # Per-transition counters: relay.jobs.<transition>.<queue>
  - match: 'relay\.jobs\.(enqueued|deduplicated|claimed|processed|retried|dead|reaped|promoted)\.([a-z0-9_-]+)'
    match_type: regex
    match_metric_type: counter
    name: "relay_jobs_${1}_total"
    labels:
      queue: "$2"
  # End-to-end latency, sent in milliseconds: relay.job.latency.<queue>
  - match: "relay.job.latency.*"
    match_metric_type: observer
    name: "relay_job_latency_seconds"
    help: "Time from job creation to ack, by queue."
    histogram_options:
      buckets: [0.01, 0.1, 0.5, 1, 5, 30]
    labels:
      queue: "$1"
  # Queue depth by state: relay.queue.depth.<queue>.<state>
  - match: "relay.queue.depth.*.*"
    match_metric_type: gauge
    name: "relay_queue_depth"
    help: "Jobs in each state, by queue."
    labels:
      queue: "$1"
      state: "$2"
    TTL_LINE
  - match: "relay.debug.*"
    action: drop
    name: "dropped"
"#;

/// An agent with the broker mapping in `mapping.yml` beside its config; `ttl` is the depth
/// rule's ttl line (or a comment).
fn broker_agent(ttl: &str) -> Agent {
    Agent::start_config(|dir: &Path| {
        let mapping = BROKER_MAPPING.replace("TTL_LINE", ttl);
        std::fs::write(dir.join("mapping.yml"), mapping).unwrap();
        format!(
            "{}statsd:\n  mapping_file: mapping.yml\n",
            all_listeners(dir)
        )
    })
}

const BROKER_LINES: &str = "relay.jobs.enqueued.emails:1|c
relay.jobs.enqueued.emails:1|c
relay.jobs.enqueued.emails:1|c
relay.jobs.deduplicated.emails:1|c
relay.jobs.claimed.emails:2|c
relay.jobs.processed.emails:1|c
relay.jobs.retried.emails:1|c
relay.jobs.dead.emails:1|c
relay.jobs.reaped.emails:1|c
relay.jobs.promoted.emails:1|c
relay.job.latency.emails:250|ms
relay.job.latency.emails:1200|ms
relay.queue.depth.emails.ready:12|g
relay.queue.depth.emails.processing:2|g
relay.queue.depth.emails.delayed:5|g
relay.queue.depth.emails.dead:1|g
relay.debug.loop:1|c
relay.other:1|c
";

#[test]
fn seed_004_broker_lines_map_to_the_seed_families_through_an_exporter_mapping_file() {
    let agent = broker_agent("# no ttl");
    agent.send_udp(BROKER_LINES.as_bytes());
    let emails = [("queue", "emails")];
    let scrape = agent.wait_for_all(&[
        ("relay_jobs_enqueued_total", &emails, 3.0),
        ("relay_jobs_deduplicated_total", &emails, 1.0),
        ("relay_jobs_claimed_total", &emails, 2.0),
        ("relay_jobs_processed_total", &emails, 1.0),
        ("relay_jobs_retried_total", &emails, 1.0),
        ("relay_jobs_dead_total", &emails, 1.0),
        ("relay_jobs_reaped_total", &emails, 1.0),
        ("relay_jobs_promoted_total", &emails, 1.0),
        ("relay_job_latency_seconds_count", &emails, 2.0),
        (
            "relay_queue_depth",
            &[("queue", "emails"), ("state", "ready")],
            12.0,
        ),
        (
            "relay_queue_depth",
            &[("queue", "emails"), ("state", "processing")],
            2.0,
        ),
        (
            "relay_queue_depth",
            &[("queue", "emails"), ("state", "delayed")],
            5.0,
        ),
        (
            "relay_queue_depth",
            &[("queue", "emails"), ("state", "dead")],
            1.0,
        ),
        ("relay_other_total", &[], 1.0),
        ("heartwire_lines_dropped_by_mapping_total", &[], 1.0),
    ]);
    // The rule's buckets, in seconds: 0.25 s and 1.2 s.
    for (le, count) in [
        ("0.1", 0.0),
        ("0.5", 1.0),
        ("1", 1.0),
        ("5", 2.0),
        ("+Inf", 2.0),
    ] {
        assert_eq!(
            scrape.value(
                "relay_job_latency_seconds_bucket",
                &[("queue", "emails"), ("le", le)]
            ),
            Some(count),
            "le={le}"
        );
    }
    let sum = scrape
        .value("relay_job_latency_seconds_sum", &emails)
        .unwrap();
    assert!((sum - 1.45).abs() < 1e-9, "{sum}");
    for line in [
        "# HELP relay_job_latency_seconds Time from job creation to ack, by queue.",
        "# TYPE relay_job_latency_seconds histogram",
        "# TYPE relay_jobs_enqueued_total counter",
        "# HELP relay_queue_depth Jobs in each state, by queue.",
        "# TYPE relay_queue_depth gauge",
    ] {
        assert!(
            scrape.text.contains(line),
            "{line} missing:\n{}",
            scrape.text
        );
    }
    assert!(!scrape.text.contains("debug"), "{}", scrape.text);
}

#[test]
fn idle_gauges_expire_on_the_agents_timer_while_counters_stay() {
    let agent = broker_agent("ttl: 1s");
    agent.send_udp(BROKER_LINES.as_bytes());
    agent.wait_for(
        "relay_queue_depth",
        &[("queue", "emails"), ("state", "ready")],
        12.0,
    );
    let scrape = agent.wait_until("the depth gauges expired", |scrape| {
        scrape.value(
            "heartwire_series_expired_total",
            &[("family", "relay_queue_depth")],
        ) == Some(4.0)
    });
    assert!(
        !scrape.text.contains("relay_queue_depth{"),
        "{}",
        scrape.text
    );
    assert_eq!(
        scrape.value("relay_jobs_enqueued_total", &[("queue", "emails")]),
        Some(3.0)
    );
    // A gauge that comes back is simply set again.
    agent.send_udp(b"relay.queue.depth.emails.ready:7|g\n");
    agent.wait_for(
        "relay_queue_depth",
        &[("queue", "emails"), ("state", "ready")],
        7.0,
    );
}

#[test]
fn a_reload_maps_new_samples_with_new_rules_and_keeps_existing_series() {
    let rules = |name: &str| {
        format!(
            "statsd:\n  mapping:\n    mappings:\n      - match: shop.orders.*\n        name: {name}\n        labels: {{ region: $1 }}\n"
        )
    };
    let agent = Agent::start_config(|dir| format!("{}{}", all_listeners(dir), rules("orders")));
    agent.send_udp(b"shop.orders.eu:2|c\n");
    agent.wait_for("orders_total", &[("region", "eu")], 2.0);

    let config = agent.dir().join("agent.yaml");
    let base = all_listeners(agent.dir());
    std::fs::write(&config, format!("{base}{}", rules("shop_orders"))).unwrap();
    let reload_url = agent.ingest_url().replace("/ingest", "/-/reload");
    let response = agent.http().post(&reload_url).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);

    agent.send_udp(b"shop.orders.eu:5|c\n");
    agent.wait_for_all(&[
        ("shop_orders_total", &[("region", "eu")], 5.0),
        ("orders_total", &[("region", "eu")], 2.0),
    ]);
}

#[test]
fn an_unsupported_key_in_the_mapping_file_stops_the_agent_naming_the_file_and_rule() {
    let failure = Agent::try_start(|dir: &Path| {
        std::fs::write(
            dir.join("mapping.yml"),
            "mappings:\n  - match: a.*\n    name: a\n    observer_type: summary\n",
        )
        .unwrap();
        format!(
            "{}statsd:\n  mapping_file: mapping.yml\n",
            all_listeners(dir)
        )
    })
    .expect_err("the agent refuses the config");
    assert_eq!(failure.status.and_then(|s| s.code()), Some(64));
    assert!(
        failure.log.contains("mapping.yml")
            && failure
                .log
                .contains("rule [0] (match `a.*`): `observer_type: summary` is not supported"),
        "{}",
        failure.log
    );
}

#[test]
fn a_change_of_the_mapping_file_alone_is_reloaded_by_the_watcher() {
    let rules = |name: &str| format!("mappings:\n  - match: shop.orders.*\n    name: {name}\n");
    let agent = Agent::start_config(|dir: &Path| {
        std::fs::write(dir.join("mapping.yml"), rules("orders")).unwrap();
        format!(
            "{}statsd:\n  mapping_file: mapping.yml\n",
            all_listeners(dir)
        )
    });
    agent.send_udp(b"shop.orders.eu:1|c\n");
    agent.wait_for("orders_total", &[], 1.0);

    // Written aside and renamed over the old file, as editors and ConfigMap updates do.
    let staged = agent.dir().join("mapping.yml.new");
    std::fs::write(&staged, rules("shop_orders")).unwrap();
    std::fs::rename(&staged, agent.dir().join("mapping.yml")).unwrap();
    agent.wait_until("the new rules in force", |scrape| {
        // Each poll sends one more sample; once the reload is in force it lands in the new family.
        agent.send_udp(b"shop.orders.eu:1|c\n");
        scrape.value("shop_orders_total", &[]).is_some()
    });
    assert!(agent.scrape().value("orders_total", &[]).unwrap() >= 1.0);
}
