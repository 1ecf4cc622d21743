//! Outbound calls, heartbeats, service checks, events, renamed families.

use super::*;

#[test]
fn http_calls_count_by_status_with_literal_network_and_timeout() {
    let mut h = Harness::new();
    h.send("http kick oauth/token 401 0.2\nhttp kick oauth/token 401\nhttp kick channels network\nhttp x users/me timeout 5\n");
    let requests = "heartwire_external_http_total";
    assert_eq!(
        h.number(
            requests,
            &[
                ("service", "kick"),
                ("endpoint", "oauth/token"),
                ("status_code", "401")
            ]
        ),
        2.0
    );
    assert_eq!(
        h.number(
            requests,
            &[
                ("service", "kick"),
                ("endpoint", "channels"),
                ("status_code", "network")
            ]
        ),
        1.0
    );
    assert_eq!(
        h.number(
            requests,
            &[
                ("service", "x"),
                ("endpoint", "users/me"),
                ("status_code", "timeout")
            ]
        ),
        1.0
    );
    let duration = h.histogram(
        "heartwire_external_http_duration_seconds",
        &[("service", "kick"), ("endpoint", "oauth/token")],
    );
    assert_eq!((duration.count, duration.sum), (1.0, 0.2));
    // Only lines that carry seconds make a duration series.
    assert!(
        h.value(
            "heartwire_external_http_duration_seconds",
            &[("service", "kick"), ("endpoint", "channels")]
        )
        .is_none()
    );
}

#[test]
fn heartbeats_record_the_last_time_per_worker() {
    let mut h = Harness::new();
    h.send("hb mailer ttl=30\n");
    h.advance(10.0);
    h.send("hb mailer\nhb indexer\n");
    assert_eq!(
        h.number(
            "heartwire_worker_last_heartbeat_timestamp_seconds",
            &[("worker", "mailer")]
        ),
        T0 + 10.0
    );
    assert_eq!(
        h.number(
            "heartwire_worker_last_heartbeat_timestamp_seconds",
            &[("worker", "indexer")]
        ),
        T0 + 10.0
    );
}

#[test]
fn service_checks_keep_the_last_status_and_time() {
    let mut h = Harness::new();
    h.send("_sc|db.ping|2|m:down\n");
    h.advance(3.0);
    h.send("_sc|db.ping|0\n");
    assert_eq!(
        h.number("heartwire_service_check_status", &[("check", "db.ping")]),
        0.0
    );
    assert_eq!(
        h.number(
            "heartwire_service_check_last_timestamp_seconds",
            &[("check", "db.ping")]
        ),
        T0 + 3.0
    );
}

#[test]
fn events_are_counted_by_alert_type_with_info_by_default() {
    let mut h = Harness::new();
    h.send("_e{6,4}:deploy|done\n_e{6,4}:deploy|fail|t:error\n_e{6,4}:deploy|done|t:info\n");
    assert_eq!(
        h.number("heartwire_events_total", &[("alert_type", "info")]),
        2.0
    );
    assert_eq!(
        h.number("heartwire_events_total", &[("alert_type", "error")]),
        1.0
    );
}

#[test]
fn renamed_families_carry_their_constant_labels() {
    let mut settings = Settings::default();
    let names = &mut settings.names;
    names.rename(Family::JobRuns, "vf_worker_poll_runs_total");
    names.set_labels(Group::Jobs, vec![("service".into(), "worker".into())]);
    let mut h = Harness::with(settings);
    h.send("job.ok viewer-poll 0.3\n");
    let snapshot = h.snapshot();
    let family = snapshot.family("vf_worker_poll_runs_total").unwrap();
    assert_eq!(&*family.const_labels[0].0, "service");
    assert_eq!(&*family.const_labels[0].1, "worker");
    assert!(snapshot.family("heartwire_job_runs_total").is_none());
}
