//! StatsD lines through the raw-key resolution with 20 glob mapping rules: on cache hits (the
//! steady state), and on cache misses, where every line is mapped, sanitised and labelled again
//! (the cache holds one key, so each line evicts the previous one). The same misses without
//! rules give the baseline the rules add to. Then the cost of one expiry tick.

// A benchmark whose fixture cannot be built has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heartwire::aggregate::mapping::{DefaultsSpec, Mapping, RuleSpec};
use heartwire::aggregate::{Aggregator, Expiry, Settings};
use heartwire::clock::Now;
use heartwire::ingest::batch::{Batch, Transport};

const RULES: usize = 20;
const LINES: usize = 1000;
/// Distinct (rule, endpoint, code) combinations among the lines: lcm(20, 50, 3).
const DISTINCT: usize = 300;

/// Twenty rules of the shape real mapping files have: a service prefix, captured components.
fn rules() -> Vec<RuleSpec> {
    (0..RULES)
        .map(|i| RuleSpec {
            pattern: format!("svc{i}.http.*.*.requests"),
            name: format!("svc{i}_http_requests_total"),
            labels: vec![
                ("endpoint".to_owned(), "$1".to_owned()),
                ("code".to_owned(), "$2".to_owned()),
            ],
            ..RuleSpec::default()
        })
        .collect()
}

/// Lines spread over every rule (the later rules are tried after all earlier ones) and 50
/// endpoints, as 1400-byte datagrams.
fn datagrams() -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    let mut data = Vec::with_capacity(1400);
    for i in 0..LINES {
        let line = format!(
            "svc{}.http.endpoint{}.{}.requests:1|c|#env:production\n",
            i % RULES,
            i % 50,
            200 + i % 3
        );
        if data.len() + line.len() > 1400 {
            datagrams.push(std::mem::take(&mut data));
        }
        data.extend_from_slice(line.as_bytes());
    }
    datagrams.push(data);
    datagrams
}

fn aggregator(mapping: Mapping, cached_keys: usize) -> Aggregator {
    let mut settings = Settings {
        mapping,
        ..Settings::default()
    };
    settings.limits.max_cached_keys = cached_keys;
    Aggregator::new(settings)
}

fn ingest(aggregator: &mut Aggregator, datagrams: &[Vec<u8>], now: Now) {
    for data in datagrams {
        aggregator.ingest(&Batch::new(Transport::Udp, data.clone()), now);
    }
}

fn benches(c: &mut Criterion) {
    let now = Now::read();
    let mapping = Mapping::compile(&DefaultsSpec::default(), &rules()).expect("rules");
    let datagrams = datagrams();
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(LINES as u64));
    for (name, mapping, cached_keys) in [
        ("hits_20_globs", mapping.clone(), 200_000),
        ("misses_20_globs", mapping, 1),
        ("misses_no_rules", Mapping::default(), 1),
    ] {
        let mut aggregator = aggregator(mapping, cached_keys);
        // Every series exists before timing: only the resolution is measured.
        ingest(&mut aggregator, &datagrams, now);
        let series = aggregator.snapshot(now).series_count();
        assert_eq!(series, DISTINCT, "{name}: one series per distinct line");
        group.bench_function(name, |b| {
            b.iter(|| ingest(black_box(&mut aggregator), &datagrams, now))
        });
    }
    group.finish();
    expiry(c, now);
}

/// One expiry tick over 100 000 gauges with a ttl, none of them idle: the cost every tick pays.
fn expiry(c: &mut Criterion, now: Now) {
    let mut settings = Settings {
        expiry: Expiry {
            gauges: Duration::from_secs(3600),
            counters: Duration::ZERO,
        },
        ..Settings::default()
    };
    settings.limits.max_series = 100_000;
    settings.limits.max_series_per_family = 100_000;
    let mut aggregator = Aggregator::new(settings);
    let lines: Vec<String> = (0..100_000)
        .map(|i| format!("depth.q{}:{i}|g|#shard:{i}", i % 10))
        .collect();
    for chunk in lines.chunks(40) {
        let data = chunk.join("\n").into_bytes();
        aggregator.ingest(&Batch::new(Transport::Udp, data), now);
    }
    assert_eq!(aggregator.snapshot(now).series_count(), 100_000);
    c.bench_function("expiry_tick_100k_series_none_idle", |b| {
        b.iter(|| assert_eq!(black_box(&mut aggregator).expire(now), 0))
    });
}

criterion_group!(mapping, benches);
criterion_main!(mapping);
