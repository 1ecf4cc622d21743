use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::config::FileMode;

#[test]
fn embedded_default_spells_out_the_defaults() {
    let document = document(DEFAULT_YAML, "<embedded default>").unwrap();
    assert_eq!(document, Document::default());
    let config = from_str(DEFAULT_YAML, "<embedded default>").unwrap();
    assert_eq!(config.fixed, Fixed::default());
    assert_eq!(config.live.defaults, Default::default());
    assert!(config.live.jobs.is_empty() && config.live.workers.is_empty());
}

#[test]
fn empty_file_is_the_default_configuration() {
    for text in ["", "# nothing\n"] {
        assert_eq!(document(text, "empty.yaml").unwrap(), Document::default());
        assert_eq!(
            from_str(text, "empty.yaml").unwrap().fixed,
            Fixed::default()
        );
    }
}

#[test]
fn omitted_keys_keep_their_defaults() {
    let config = from_str(
        "listen:\n  udp:\n    address: 127.0.0.1:0\n  unix_stream:\n    enabled: true\n    mode: \"0600\"\n",
        "partial.yaml",
    )
    .unwrap();
    assert_eq!(
        config.fixed.listen.udp.address,
        "127.0.0.1:0".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.fixed.listen.udp.batch_datagrams, 64);
    assert!(config.fixed.listen.tcp.enabled);
    assert!(config.fixed.listen.unix_stream.enabled);
    assert_eq!(config.fixed.listen.unix_stream.mode, FileMode(0o600));
    assert_eq!(config.fixed.shutdown.drain_timeout, Duration::from_secs(5));
}

#[test]
fn unknown_key_is_named_with_file_line_and_column() {
    let error = from_str("listen:\n  udp:\n    adress: 127.0.0.1:0\n", "agent.yaml").unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("agent.yaml:3:5: "), "{message}");
    assert!(message.contains("listen.udp"), "{message}");
    assert!(message.contains("unknown field `adress`"), "{message}");
    assert!(!message.contains(" at line "), "{message}");
}

#[test]
fn wrong_type_is_named_with_its_key() {
    let error = from_str("pipeline:\n  queue_batches: many\n", "agent.yaml").unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("agent.yaml:2:"), "{message}");
    assert!(message.contains("pipeline.queue_batches"), "{message}");
}

#[test]
fn modes_are_octal_whether_quoted_or_not() {
    let config = from_str(
        "listen:\n  unix_datagram:\n    mode: 0622\n  unix_stream:\n    mode: \"0600\"\n",
        "agent.yaml",
    )
    .unwrap();
    assert_eq!(config.fixed.listen.unix_datagram.mode, FileMode(0o622));
    assert_eq!(config.fixed.listen.unix_stream.mode, FileMode(0o600));
}

#[test]
fn bad_mode_is_refused_with_its_key() {
    let error = from_str(
        "listen:\n  unix_datagram:\n    mode: rw-rw----\n",
        "agent.yaml",
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("agent.yaml:3:"), "{message}");
    assert!(
        message.contains("listen.unix_datagram: `rw-rw----` is not a file mode"),
        "{message}"
    );
}

#[test]
fn out_of_range_value_names_key_and_range() {
    let error = from_str("listen:\n  udp:\n    batch_datagrams: 5000\n", "agent.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent.yaml:3:22: listen.udp.batch_datagrams: 5000 is out of range: use 1 to 1024"
    );
    let error = from_str("listen:\n  udp:\n    receive_threads: 0\n", "agent.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent.yaml:3:22: listen.udp.receive_threads: 0 is out of range: use 1 to 64"
    );
}

/// Issue 11: semantic errors are placed like syntax errors, in block and flow style alike.
#[test]
fn semantic_errors_name_file_line_and_column_in_block_and_flow_style() {
    let cases = [
        (
            "jobs:\n  report:\n    every: 1h\n    cron: \"* * * * *\"\n",
            "jobs: { report: { every: 1h, cron: \"* * * * *\" } }\n",
            ["2:3", "1:9"],
            "jobs.report: a job has `every` or `cron`, not both",
        ),
        (
            "jobs:\n  nightly:\n    cron: \"0 3 * * *\"\n    tz: Mars/Olympus\n",
            "jobs: { nightly: { cron: \"0 3 * * *\", tz: Mars/Olympus } }\n",
            ["4:9", "1:43"],
            "jobs.nightly.tz: unknown time zone \"Mars/Olympus\"",
        ),
        (
            "jobs:\n  forever:\n    every: 300000y\n",
            "jobs: { forever: { every: 300000y } }\n",
            ["3:12", "1:27"],
            "jobs.forever.every: 300000y is out of range: use 1s to 10y",
        ),
        (
            "listen:\n  udp:\n    batch_datagrams: 5000\n",
            "listen: { udp: { batch_datagrams: 5000 } }\n",
            ["3:22", "1:35"],
            "listen.udp.batch_datagrams: 5000 is out of range: use 1 to 1024",
        ),
        (
            "limits:\n  max_series: 0\n",
            "limits: { max_series: 0 }\n",
            ["2:15", "1:23"],
            "limits.max_series: 0 is out of range: use 1 to 100000000",
        ),
        (
            "families:\n  jobs:\n    runs: 9lives\n",
            "families: { jobs: { runs: 9lives } }\n",
            ["3:11", "1:27"],
            "families.jobs.runs: family name \"9lives\" is not a metric name",
        ),
        (
            "jobs:\n  \"bad name\":\n    every: 1m\n",
            "jobs: { \"bad name\": { every: 1m } }\n",
            ["2:3", "1:9"],
            "jobs.bad name: a name is 1 to 128 characters",
        ),
        (
            "workers:\n  'w x':\n    ttl: 1m\n",
            "workers: { 'w x': { ttl: 1m } }\n",
            ["2:3", "1:12"],
            "workers.w x: a name is 1 to 128 characters",
        ),
        (
            "buckets:\n  job_duration:\n    - 1\n    - 1\n",
            "buckets: { job_duration: [1, 1] }\n",
            ["2:3", "1:12"],
            "buckets.job_duration: 1 is not below 1: bounds are strictly increasing",
        ),
        (
            "buckets:\n  statsd: []\n",
            "buckets: { statsd: [] }\n",
            ["2:3", "1:12"],
            "buckets.statsd: 0 buckets: list 1 to 64 finite",
        ),
    ];
    for (block, flow, places, message) in cases {
        for (yaml, place) in [(block, places[0]), (flow, places[1])] {
            let error = from_str(yaml, "agent.yaml").unwrap_err().to_string();
            let expected = format!("agent.yaml:{place}: {message}");
            assert!(error.starts_with(&expected), "{yaml:?}\n{error}");
        }
    }
}

#[test]
fn places_skip_comments_and_blank_lines() {
    let yaml = "# heartwire\n\nlisten:   # the listeners\n  # tcp first\n  tcp:\n\n    idle_timeout: 8d # a week and a day\n";
    assert_eq!(
        from_str(yaml, "agent.yaml").unwrap_err().to_string(),
        "agent.yaml:7:19: listen.tcp.idle_timeout: 8d is out of range: use 1s to 7d"
    );
}

#[test]
fn a_key_the_file_does_not_hold_is_named_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, "statsd: { mapping_file: missing.yml }\n").unwrap();
    let error = from_file(&path).unwrap_err().to_string();
    let origin = path.display().to_string();
    assert!(
        error.starts_with(&format!("{origin}:1:25: statsd.mapping_file: cannot read ")),
        "{error}"
    );
    let error = from_str("jobs:\n  poll: { every: 1m }\n", "agent.yaml").map(drop);
    assert!(error.is_ok());
    let (key, message) = ("jobs.other.every".to_owned(), "x".to_owned());
    let error = ConfigError::Invalid {
        origin: "agent.yaml".to_owned(),
        place: Place(locate::locate("jobs: {}\n", &key)),
        key,
        message,
    };
    assert_eq!(error.to_string(), "agent.yaml: jobs.other.every: x");
}

#[test]
fn connections_idle_for_ten_minutes_are_closed_by_default() {
    let config = from_str("", "agent.yaml").unwrap();
    assert_eq!(
        config.fixed.listen.tcp.idle_timeout,
        Duration::from_secs(600)
    );
    assert_eq!(
        config.fixed.listen.unix_stream.idle_timeout,
        Duration::from_secs(600)
    );
    let config = from_str(
        "listen:\n  tcp: { idle_timeout: 7d }\n  unix_stream: { idle_timeout: 1s }\n",
        "agent.yaml",
    )
    .unwrap();
    assert_eq!(
        config.fixed.listen.tcp.idle_timeout,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(
        config.fixed.listen.unix_stream.idle_timeout,
        Duration::from_secs(1)
    );
    let error = from_str(
        "listen:\n  unix_stream: { idle_timeout: 0s }\n",
        "agent.yaml",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent.yaml:2:32: listen.unix_stream.idle_timeout: 0s is out of range: use 1s to 7d"
    );
}

#[test]
fn every_remaining_duration_has_a_range() {
    for (yaml, expected) in [
        (
            "shutdown: { drain_timeout: 11m }\n",
            "1:28: shutdown.drain_timeout: 11m is out of range: use 0s to 10m",
        ),
        (
            "limits: { set_window: 2d }\n",
            "1:23: limits.set_window: 2d is out of range: use 1s to 1d",
        ),
        (
            "statsd: { gauge_ttl: 2y }\n",
            "1:22: statsd.gauge_ttl: 2y is out of range: use 0s (never) or 1s to 1y",
        ),
        (
            "statsd: { counter_ttl: 400d }\n",
            "1:24: statsd.counter_ttl: 1y 34d 18h is out of range",
        ),
        (
            "otlp: { interval: 2d }\n",
            "1:19: otlp.interval: 2d is out of range: use 1ms to 1d",
        ),
        (
            "textfile: { interval: 500us }\n",
            "1:23: textfile.interval: 500us is out of range",
        ),
    ] {
        let error = from_str(yaml, "agent.yaml").unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("agent.yaml:{expected}")),
            "{yaml:?}: {error}"
        );
    }
}

#[test]
fn overlong_socket_path_is_refused() {
    let path = format!("/{}", "d".repeat(120));
    let yaml = format!("listen:\n  unix_stream:\n    path: {path}\n");
    let error = from_str(&yaml, "agent.yaml").unwrap_err();
    assert!(
        error.to_string().contains("listen.unix_stream.path"),
        "{error}"
    );
}

#[test]
fn limits_and_buckets_reach_the_aggregator_settings() {
    let config = from_str(
        "limits:\n  max_series: 500\n  set_window: 2m\nbuckets:\n  statsd: [0.1, 1, 10]\n",
        "agent.yaml",
    )
    .unwrap();
    let settings = config.aggregate_settings();
    assert_eq!(settings.limits.max_series, 500);
    assert_eq!(settings.limits.max_series_per_family, 10_000);
    assert_eq!(settings.limits.set_window, Duration::from_secs(120));
    assert_eq!(settings.buckets.statsd, [0.1, 1.0, 10.0]);
    assert_eq!(
        settings.buckets.job_duration,
        crate::aggregate::DEFAULT_BUCKETS
    );
}

#[test]
fn bad_buckets_and_limits_are_refused_with_their_key() {
    let error = from_str("buckets:\n  job_duration: [1, 1]\n", "agent.yaml").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("agent.yaml:2:3: buckets.job_duration: "),
        "{error}"
    );
    let many: Vec<String> = (1..=65).map(|n| n.to_string()).collect();
    let yaml = format!("buckets:\n  http_duration: [{}]\n", many.join(", "));
    let error = from_str(&yaml, "agent.yaml").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("agent.yaml:2:3: buckets.http_duration: 65 buckets: list 1 to 64"),
        "{error}"
    );
    let error = from_str("buckets:\n  statsd: [1, .inf]\n", "agent.yaml").unwrap_err();
    assert!(
        error.to_string().contains("inf is not a finite number"),
        "{error}"
    );
    let error = from_str("limits:\n  max_open_starts: 0\n", "agent.yaml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "agent.yaml:2:20: limits.max_open_starts: 0 is out of range: use 1 to 100000000"
    );
}

#[test]
fn durations_are_human_readable() {
    let config = from_str("shutdown:\n  drain_timeout: 250ms\n", "agent.yaml").unwrap();
    assert_eq!(
        config.fixed.shutdown.drain_timeout,
        Duration::from_millis(250)
    );
}

#[test]
fn missing_file_error_names_the_file() {
    let error = from_file(Path::new("/nonexistent/heartwire.yaml")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot read config file /nonexistent/heartwire.yaml: ")
    );
}
