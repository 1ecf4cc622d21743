use super::super::from_str;
use super::*;
use crate::aggregate::{Family, Setting};

#[track_caller]
fn refused(yaml: &str) -> String {
    from_str(yaml, "agent.yaml").unwrap_err().to_string()
}

#[test]
fn jobs_workers_and_families_reach_the_aggregator() {
    let config = from_str(
        "jobs:\n  viewer-poll:\n    cron: \"* * * * *\"\n    readiness: true\n  chat-export:\n    cron: \"0 * * * *\"\n    tz: Europe/Berlin\n  crawl:\n    every: 15m\n    stall_after: 15m\n    alert_after: 1h\nworkers:\n  email_queue: { ttl: 45s }\n  blockchain_sync: {}\ndefaults:\n  worker_ttl: 2m\nfamilies:\n  jobs:\n    runs: vf_worker_poll_runs_total\n    labels: { service: worker }\n  workers:\n    status: worker_status\n    label: name\n",
        "agent.yaml",
    )
    .unwrap();
    let settings = config.aggregate_settings();
    let jobs: Vec<(&str, u64)> = settings
        .jobs
        .iter()
        .map(|(n, s)| (n.as_str(), s.alert_after.as_secs()))
        .collect();
    assert_eq!(
        jobs,
        [("viewer-poll", 300), ("chat-export", 7200), ("crawl", 3600)],
        "config order, derived thresholds"
    );
    assert_eq!(settings.jobs[0].1.readiness, Readiness::Success);
    assert_eq!(
        settings.jobs[2].1.stall_after,
        Some(Duration::from_secs(900))
    );
    assert_eq!(settings.jobs[1].1.schedule.zone(), "Europe/Berlin");
    let workers: Vec<(&str, u64)> = settings
        .workers
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_secs()))
        .collect();
    assert_eq!(workers, [("email_queue", 45), ("blockchain_sync", 120)]);
    let names = &settings.names;
    assert_eq!(names.name(Family::JobRuns), "vf_worker_poll_runs_total");
    assert_eq!(
        names.labels(Group::Jobs),
        &vec![("service".to_owned(), "worker".to_owned())]
    );
    assert_eq!(
        (
            names.name(Family::WorkerStatus),
            names.setting(Setting::WorkerLabel)
        ),
        ("worker_status", "name")
    );
    names.check().unwrap();
}

#[test]
fn a_bad_schedule_names_the_file_the_place_the_key_and_the_fix() {
    for (yaml, expected) in [
        (
            "jobs:\n  nightly:\n    cron: \"0 3 * * *\"\n    tz: Mars/Olympus\n",
            "agent.yaml:4:9: jobs.nightly.tz: unknown time zone \"Mars/Olympus\": use an IANA name",
        ),
        (
            "jobs:\n  nightly:\n    cron: \"0 0 3 * * *\"\n",
            "agent.yaml:3:11: jobs.nightly.cron: cron expression \"0 0 3 * * *\" has 6 fields: write five",
        ),
        (
            "jobs:\n  poll:\n    every: 60\n",
            "agent.yaml:3:12: jobs.poll.every: invalid value: string \"60\", expected a duration",
        ),
        (
            "jobs:\n  poll:\n    every: 60s\n    alert_after: 30s\n",
            "agent.yaml:4:18: jobs.poll.alert_after: 30s is shorter than the schedule's period (1m)",
        ),
        (
            "jobs:\n  poll:\n    every: 1m\n    cron: \"* * * * *\"\n",
            "agent.yaml:2:3: jobs.poll: a job has `every` or `cron`, not both",
        ),
        (
            "jobs:\n  poll: {}\n",
            "agent.yaml:2:3: jobs.poll: a job needs a schedule",
        ),
        (
            "jobs:\n  poll:\n    every: 1m\n    tz: UTC\n",
            "agent.yaml:4:9: jobs.poll.tz: `tz` only applies to a `cron` schedule",
        ),
        (
            "jobs:\n  poll:\n    every: 1m\n    retries: 3\n",
            "agent.yaml:4:5: jobs.poll: unknown field `retries`",
        ),
    ] {
        let message = refused(yaml);
        assert!(message.starts_with(expected), "{yaml:?}: {message}");
    }
    assert!(
        refused("jobs:\n  poll:\n    every: 60s\n    alert_after: 30s\n")
            .ends_with("use at least 5m")
    );
}

#[test]
fn every_job_duration_and_count_has_a_range() {
    for (yaml, expected) in [
        (
            "jobs: { forever: { every: 300000y } }\n",
            "agent.yaml:1:27: jobs.forever.every: 300000y is out of range: use 1s to 10y",
        ),
        (
            "jobs:\n  j:\n    every: 1h\n    alert_after: 11y\n",
            "agent.yaml:4:18: jobs.j.alert_after: 11y is out of range: use 1s to 10y",
        ),
        (
            "jobs:\n  j: { every: 1h, late_after: 0s }\n",
            "agent.yaml:2:31: jobs.j.late_after: 0s is out of range: use 1s to 10y",
        ),
        (
            "jobs:\n  j: { every: 1h, max_runtime: 20y }\n",
            "agent.yaml:2:32: jobs.j.max_runtime: 20y is out of range",
        ),
        (
            "jobs:\n  j: { every: 1h, stall_after: 500ms }\n",
            "agent.yaml:2:32: jobs.j.stall_after: 500ms is out of range",
        ),
        (
            "jobs:\n  j: { every: 1h, failure_threshold: 0 }\n",
            "agent.yaml:2:38: jobs.j.failure_threshold: 0 is out of range: use 1 to 1000000",
        ),
        (
            "jobs:\n  j: { every: 1h, failure_threshold: 1000001 }\n",
            "agent.yaml:2:38: jobs.j.failure_threshold: 1000001 is out of range",
        ),
        (
            "workers:\n  w:\n    ttl: 0s\n",
            "agent.yaml:3:10: workers.w.ttl: 0s is out of range: use 1s to 1y",
        ),
        (
            "defaults:\n  worker_ttl: 2y\n",
            "agent.yaml:2:15: defaults.worker_ttl: 2y is out of range: use 1s to 1y",
        ),
    ] {
        let message = refused(yaml);
        assert!(message.starts_with(expected), "{yaml:?}: {message}");
    }
    let edge = "jobs:\n  j:\n    every: 10y\n    alert_after: 10y\n    max_runtime: 10y\n    stall_after: 10y\n    late_after: 10y\n    failure_threshold: 1000000\nworkers:\n  w: { ttl: 1y }\n";
    from_str(edge, "agent.yaml").unwrap();
}

#[test]
fn names_and_families_are_checked() {
    for (yaml, expected) in [
        (
            "jobs:\n  \"bad name\":\n    every: 1m\n",
            "agent.yaml:2:3: jobs.bad name: a name is 1 to 128 characters",
        ),
        (
            "workers: { \"w@x\": {} }\n",
            "agent.yaml:1:12: workers.w@x: a name is 1 to 128 characters",
        ),
        (
            "families:\n  jobs:\n    runz: x_total\n",
            "agent.yaml:3:11: families.jobs.runz: unknown key: use one of runs, duration",
        ),
        (
            "families:\n  jobs:\n    runs: 9lives\n",
            "agent.yaml:3:11: families.jobs.runs: family name \"9lives\" is not a metric name",
        ),
        (
            "families: { jobs: { runs: a_total }, http: { requests: a_total } }\n",
            "agent.yaml:1:27: families.jobs.runs: family name \"a_total\" is used twice",
        ),
        (
            "families:\n  http:\n    labels: { service: worker }\n",
            "agent.yaml:3:24: families.http.labels.service: label \"service\"",
        ),
        (
            "families:\n  workers:\n    label: 9name\n",
            "agent.yaml:3:12: families.workers.label: label \"9name\"",
        ),
    ] {
        let message = refused(yaml);
        assert!(message.starts_with(expected), "{yaml:?}: {message}");
    }
}

#[test]
fn readiness_takes_a_flag_or_what_counts() {
    let readiness = |value: &str| {
        let yaml = format!("jobs:\n  poll: {{ every: 1m, readiness: {value} }}\n");
        from_str(&yaml, "agent.yaml").map(|config| config.live.jobs[0].1.readiness)
    };
    assert_eq!(readiness("true").unwrap(), Readiness::Success);
    assert_eq!(readiness("success").unwrap(), Readiness::Success);
    assert_eq!(readiness("completed").unwrap(), Readiness::Completed);
    assert_eq!(readiness("false").unwrap(), Readiness::Off);
    let message = readiness("finished").unwrap_err().to_string();
    assert!(
        message.contains("jobs.poll.readiness") || message.contains("agent.yaml:2"),
        "{message}"
    );
    assert!(message.contains("`completed`"), "{message}");
}

#[test]
fn label_names_rename_any_built_in_label() {
    let config = from_str(
        "families:\n  http:\n    requests: uptime_checks_total\n    label_names: { service: websiteId, endpoint: check }\n  jobs:\n    label_names: { reason: why }\n",
        "agent.yaml",
    )
    .unwrap();
    let names = &config.fixed.families;
    assert_eq!(
        names.label_names(Family::HttpRequests),
        ["websiteId", "check", "status_code"]
    );
    assert_eq!(
        names.label_names(Family::HttpDuration),
        ["websiteId", "check"]
    );
    assert_eq!(
        names.label_names(Family::JobLastResult),
        ["job", "result", "why"]
    );
    let message = refused("families:\n  http:\n    label_names: { site: websiteId }\n");
    assert!(
        message.contains("families.http.label_names.site"),
        "{message}"
    );
    assert!(
        message.contains("rename one of service, endpoint, status_code"),
        "{message}"
    );
    let message = refused("families:\n  http:\n    label_names: { service: endpoint }\n");
    assert!(message.contains("would name two labels"), "{message}");
    assert!(
        message.contains("families.http.label_names.service"),
        "{message}"
    );
    let message = refused("families:\n  http:\n    label_names: { service: le }\n");
    assert!(message.contains("not usable"), "{message}");
    let message = refused("families:\n  jobs:\n    label: task\n    label_names: { job: work }\n");
    assert!(message.contains("already renames"), "{message}");
}
