//! Feeds arbitrary bytes to the datagram parser and checks the invariants the agent relies on:
//! no panic, accepted names obey their rules, values are finite, and every accepted line that
//! the encoder writes back parses again.
#![no_main]

use heartwire_proto::{Line, MetricKind, encode_line, is_name, is_statsd_name, lines, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in lines(data).flatten() {
        check(&line);
        if let Ok(bytes) = encode_line(&line) {
            assert!(parse_line(&bytes).is_ok(), "an encoded line must parse: {:?}", String::from_utf8_lossy(&bytes));
        }
    }
});

fn check(line: &Line<'_>) {
    match line {
        Line::JobStart(l) => assert!(is_name(l.job)),
        Line::JobOk(l) | Line::JobError(l) => {
            assert!(is_name(l.job));
            assert!(l.seconds.is_none_or(|s| s.is_finite() && s >= 0.0));
        }
        Line::JobSkip(l) => assert!(is_name(l.job)),
        Line::JobProgress(l) => assert!(is_name(l.job) && l.amount.is_none_or(|a| a.is_finite() && a >= 0.0)),
        Line::Heartbeat(l) => assert!(is_name(l.worker) && l.ttl.is_none_or(|t| t.is_finite() && t > 0.0)),
        Line::WorkerStop(l) => assert!(is_name(l.worker)),
        Line::Http(l) => assert!(is_name(l.service) && is_name(l.endpoint)),
        Line::Hello(l) => assert!(is_name(l.app)),
        Line::Metric(m) => {
            assert!(is_statsd_name(m.name));
            assert!(m.rate > 0.0 && m.rate <= 1.0);
            for value in m.values.iter(m.kind) {
                assert!(value.number.is_finite());
                assert!(m.kind == MetricKind::Gauge || !value.relative);
            }
            assert!(m.tags.iter().all(|t| !t.key.is_empty()));
        }
        Line::Event(e) => assert!(!e.title.is_empty()),
        Line::ServiceCheck(c) => assert!(is_statsd_name(c.name)),
    }
}
