//! Parsing throughput on realistic datagrams.
//!
//! Run with `cargo bench -p heartwire-proto --bench parse`. Throughput is reported in elements
//! (lines) per second; the targets are 5 M native lines/s and 2 M tagged DogStatsD
//! lines/s on one core.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark with bad input should stop at once

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heartwire_proto::{Line, lines};

/// Fills a datagram of at most 1400 bytes (a safe UDP payload) with lines from `make`.
fn datagram(make: impl Fn(usize) -> String) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(1400);
    let mut count = 0;
    loop {
        let line = make(count);
        if out.len() + line.len() + 1 > 1400 {
            return (out, count as u64);
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        count += 1;
    }
}

fn native(i: usize) -> String {
    match i % 6 {
        0 => format!("job.ok viewer-poll {}.{}", i % 7, i % 10),
        1 => format!("job.start chat-export id=run-{i}"),
        2 => format!("job.error kick-token-refresh 0.{i} reason=http_5xx"),
        3 => "hb mailer ttl=30".to_string(),
        4 => format!("http kick channels {} 0.{}", [200, 401, 429][i % 3], i % 10),
        _ => format!("job.progress crawl {}", i * 3),
    }
}

fn plain_statsd(i: usize) -> String {
    match i % 4 {
        0 => format!("api.requests:{}|c", i % 5 + 1),
        1 => format!("api.latency:{}.{}|ms", i % 300, i % 10),
        2 => format!("queue.depth:{}|g", i * 7),
        _ => format!("api.bytes:{}|h|@0.5", i * 11),
    }
}

fn dogstatsd_5_tags(i: usize) -> String {
    format!(
        "relay.jobs.processed:{}|c|#queue:emails,state:done,env:prod,region:eu-west-1,shard:{}",
        i % 3 + 1,
        i % 16
    )
}

fn mixed(i: usize) -> String {
    match i % 3 {
        0 => native(i),
        1 => plain_statsd(i),
        _ => dogstatsd_5_tags(i),
    }
}

/// Parses every line and touches what the agent reads, so nothing is optimised away.
fn consume(datagram: &[u8]) -> usize {
    let mut n = 0;
    for line in lines(datagram) {
        match line {
            Ok(Line::Metric(metric)) => {
                n += metric.tags.iter().count();
                n += metric.values.iter(metric.kind).count();
            }
            Ok(other) => n += usize::from(other.has_unknown_fields()) + 1,
            Err(error) => n += error.kind().index(),
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    type Maker = fn(usize) -> String;
    let cases: [(&str, Maker); 4] = [
        ("native", native),
        ("statsd_plain", plain_statsd),
        ("dogstatsd_5_tags", dogstatsd_5_tags),
        ("mixed", mixed),
    ];
    let mut group = c.benchmark_group("parse_1400_byte_datagram");
    for (name, make) in cases {
        let (bytes, count) = datagram(make);
        assert!(
            lines(&bytes).all(|l| l.is_ok()),
            "{name}: every benchmark line is valid"
        );
        group.throughput(Throughput::Elements(count));
        group.bench_function(format!("{name}/{count}_lines"), |b| {
            b.iter(|| consume(black_box(&bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
