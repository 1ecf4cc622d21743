//! `listen.udp.parse_on_receive`: batches parsed on a receive thread give the aggregator the
//! same state and the same counts as the raw batches it parses itself.

use super::*;
use crate::ingest::batch::Payload;
use crate::ingest::parsed::Parsed;

/// Lines of every kind, order-sensitive ones (a gauge set then moved, a run started then ended)
/// and every way of being rejected, over several batches.
const BATCHES: &[&str] = &[
    "job.start nightly id=1\nqueue.depth:10|g\nqueue.depth:+5|g\nhits:1|c|@0.5\n",
    "bogus line\nhits:-1|c\nx:NaN|c\nhits:1|c|@2\nhits:1|c|x:new\n\n\njob.ok nightly 1.5 id=1\n",
    "db.query:250|ms|#env:prod\nusers:alice|s\nusers:bob|s\nusers:alice|s\nqueue.depth:-20|g\n",
    "hb poller ttl=30\n_sc|db.up|2|m:down\n_e{5,4}:title|text|#a:b\nhttp api /users 200 0.05\n",
    "job.error nightly 3 reason=oom\nhello app\nhits\njob.ok other 1 exit=x\njob.progress nightly 5\n\u{00e9}:1|c\n",
];

fn raw(lines: &[u8]) -> Batch {
    Batch::new(Transport::Udp, lines.to_vec())
}

fn parsed(lines: &[u8]) -> Batch {
    Batch::of(
        Transport::Udp,
        Payload::Parsed(Parsed::unbounded(lines.to_vec())),
    )
}

/// Two empty harnesses on one clock (`Now` holds a monotonic instant, which the snapshots show).
fn twins() -> (Harness, Harness) {
    let now = Now::at_unix_seconds(T0);
    let harness = || Harness {
        aggregator: Aggregator::starting_at(Settings::default(), now),
        now,
    };
    (harness(), harness())
}

/// What two harnesses that were sent the same lines must agree on.
#[track_caller]
fn assert_same(with: &Harness, without: &Harness) {
    let (with, without) = (with.snapshot(), without.snapshot());
    assert_eq!(with.lines, without.lines);
    assert_eq!(
        format!("{:?}", with.families),
        format!("{:?}", without.families)
    );
    assert_eq!(with.accounts, without.accounts);
    assert_eq!(format!("{:?}", with.jobs), format!("{:?}", without.jobs));
    assert_eq!(
        format!("{:?}", with.workers),
        format!("{:?}", without.workers)
    );
}

#[test]
fn parsed_batches_give_the_same_tally_and_snapshot_as_raw_ones() {
    let (mut with, mut without) = twins();
    for lines in BATCHES {
        with.aggregator.ingest(&parsed(lines.as_bytes()), with.now);
        without
            .aggregator
            .ingest(&raw(lines.as_bytes()), without.now);
        with.advance(1.0);
        without.advance(1.0);
        assert_same(&with, &without);
    }
    // Not a vacuous comparison: every kind of count moved.
    let lines = with.snapshot().lines;
    let rejected = |kind: ErrorKind| lines.rejected[kind.index()];
    assert_eq!(lines.received[Transport::Udp.index()], 25);
    assert_eq!(rejected(ErrorKind::UnknownVerb), 1);
    assert_eq!(rejected(ErrorKind::NegativeCounter), 1);
    assert_eq!(rejected(ErrorKind::InvalidValue), 1);
    assert_eq!(rejected(ErrorKind::InvalidField), 1);
    assert_eq!(rejected(ErrorKind::Malformed), 2);
    assert_eq!(lines.rejected.iter().sum::<u64>(), 6);
    assert_eq!(lines.rates_clamped, 1);
    assert_eq!(lines.unknown_fields, 1);
    assert_eq!(with.number("queue_depth", &[]), -5.0);
    assert_eq!(with.number("hits_total", &[]), 2.0 + 1.0 + 1.0);
}

#[test]
fn cut_and_overlong_lines_count_as_too_long_in_a_parsed_batch() {
    let long = format!(
        "{}:1|c\nshort:1|c\n",
        "x".repeat(heartwire_proto::MAX_LINE_LEN)
    );
    let (mut with, mut without) = twins();
    let (mut one, mut other) = (parsed(long.as_bytes()), raw(long.as_bytes()));
    one.cut = 2;
    other.cut = 2;
    with.aggregator.ingest(&one, with.now);
    without.aggregator.ingest(&other, without.now);
    assert_same(&with, &without);
    assert_eq!(
        with.telemetry("heartwire_lines_rejected_total", Some("too_long")),
        3.0
    );
    assert_eq!(
        with.telemetry("heartwire_lines_received_total", Some("udp")),
        4.0
    );
    assert_eq!(with.number("short_total", &[]), 1.0);
}
