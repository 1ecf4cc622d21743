//! `/metrics` for 10 000 series: snapshot, render, and both; plus ingest into known series, and
//! the OTLP request of the same pages.
//!
//! Before the timings it prints the heap held per series, measured with a counting allocator,
//! by the aggregator and by one snapshot: counters, gauges and histograms in families of 100,
//! 100 000 distinct names, and counters beside tagged timers. The figures the series caps'
//! memory bound rests on; `cargo bench -p heartwire --bench render -- nothing` prints them only.

// A benchmark whose fixture cannot be built has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heartwire::aggregate::{Aggregator, Limits, Settings};
use heartwire::clock::Now;
use heartwire::export::convert::{self, RequestBuilder, Starts};
use heartwire::expose::Exposition;
use heartwire::expose::page::Deflated;
use heartwire::ingest::batch::{Batch, Transport};
use prometheus::{Encoder, TextEncoder};

/// Counts live heap bytes, to measure what the aggregation state holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Counts allocations (and reallocations), to compare what two ways of building the same thing
/// ask of the allocator: a figure the load on the machine does not blur.
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SERIES: usize = 10_000;

/// The distinct-name case: one family per series.
const DISTINCT: usize = 100_000;

/// `count` lines of one type, spread over families of 100 series with two tags each.
fn lines(kind: &str, count: usize, offset: usize) -> Vec<String> {
    (offset..offset + count)
        .map(|i| {
            format!(
                "app.{kind}.metric{}:{}|{kind}|#env:production,instance:i-{i:06}",
                i / 100,
                i % 97 + 1
            )
        })
        .collect()
}

/// Ingests lines as 1400-byte datagrams, as clients send them.
fn ingest(aggregator: &mut Aggregator, lines: &[String], now: Now) {
    let mut data = Vec::with_capacity(1400);
    for line in lines {
        if data.len() + line.len() + 1 > 1400 {
            aggregator.ingest(&Batch::new(Transport::Udp, std::mem::take(&mut data)), now);
        }
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
    }
    aggregator.ingest(&Batch::new(Transport::Udp, data), now);
}

/// 10 000 series: 6 000 counters, 3 000 gauges, 1 000 histograms.
fn ten_thousand() -> Vec<String> {
    let mut all = lines("c", SERIES * 6 / 10, 0);
    all.extend(lines("g", SERIES * 3 / 10, 0));
    all.extend(lines("h", SERIES / 10, 0));
    all
}

/// Heap held per series, by the aggregator and by one snapshot of it, for each case of the
/// memory budget (issue 16): one type in families of 100, 100 000 distinct untagged names (one
/// family each), 100 000 tagged series of one family, and 5 000 counters beside 5 000 tagged
/// timers.
fn report_bytes_per_series() {
    for kind in ["c", "g", "h"] {
        report(
            &format!("'{kind}' in families of 100"),
            &lines(kind, SERIES, 0),
        );
    }
    let distinct: Vec<String> = (0..DISTINCT)
        .map(|i| match i % 2 {
            0 => format!("app.metric{i}:1|c"),
            _ => format!("app.metric{i}:{}|g", i % 97),
        })
        .collect();
    report("distinct names (counters and gauges)", &distinct);
    let one_family: Vec<String> = (0..DISTINCT)
        .map(|i| format!("loadgen.series:1|g|#id:{i}"))
        .collect();
    report("one tagged gauge family", &one_family);
    // As the load benchmark's page: 5 000 counters and 5 000 timers, two tags each.
    let mixed: Vec<String> = (0..SERIES / 2)
        .flat_map(|i| {
            [
                format!("app.requests:1|c|#env:production,instance:i-{i:06}"),
                format!(
                    "app.latency:{}|ms|#env:production,instance:i-{i:06}",
                    i % 900 + 1
                ),
            ]
        })
        .collect();
    report("counters + tagged timers", &mixed);
}

/// Prints the heap the aggregator holds for the series `sample` creates, and one snapshot's.
fn report(case: &str, sample: &[String]) {
    let now = Now::read();
    let limits = Limits {
        max_series: 2 * DISTINCT,
        max_series_per_family: 2 * DISTINCT,
        max_cached_keys: 4 * DISTINCT,
        ..Limits::default()
    };
    let settings = Settings {
        limits,
        ..Settings::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let mut aggregator = Aggregator::new(settings);
    let empty = LIVE.load(Ordering::Relaxed) - before;
    ingest(&mut aggregator, sample, now);
    let held = LIVE.load(Ordering::Relaxed) - before - empty;
    let before_snapshot = LIVE.load(Ordering::Relaxed);
    let snapshot = aggregator.snapshot(now);
    let in_snapshot = LIVE.load(Ordering::Relaxed) - before_snapshot;
    let series = snapshot.series_count() as isize;
    assert!(series > 0, "{case}: no series");
    println!(
        "{series} series, {case}: aggregator {} bytes/series ({held} bytes, {empty} when empty), \
         snapshot {} bytes/series",
        held / series,
        in_snapshot / series,
    );
    drop(black_box(snapshot));
    drop(black_box(aggregator));
}

fn benches(c: &mut Criterion) {
    report_bytes_per_series();
    let now = Now::read();
    let (exposition, _telemetry) = Exposition::new().expect("registry");
    let mut aggregator = Aggregator::new(Settings::default());
    let all = ten_thousand();
    ingest(&mut aggregator, &all, now);
    let snapshot = Arc::new(aggregator.snapshot(now));
    assert_eq!(snapshot.series_count(), SERIES);
    let mut out = Vec::with_capacity(4 << 20);
    exposition.render(&snapshot, now, &mut out).expect("render");
    println!("/metrics for {SERIES} series: {} bytes", out.len());

    c.bench_function("snapshot_10k_series", |b| {
        b.iter(|| black_box(aggregator.snapshot(now)))
    });
    c.bench_function("render_10k_series", |b| {
        b.iter(|| {
            out.clear();
            exposition.render(&snapshot, now, &mut out).expect("render");
            black_box(out.len())
        })
    });
    c.bench_function("snapshot_and_render_10k_series", |b| {
        b.iter(|| {
            out.clear();
            exposition
                .render(&aggregator.snapshot(now), now, &mut out)
                .expect("render");
            black_box(out.len())
        })
    });

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(all.len() as u64));
    group.bench_function("10k_lines_into_known_series", |b| {
        b.iter(|| ingest(&mut aggregator, &all, now))
    });
    group.finish();
}

/// The page of issue 16's figures: `n / 2` tagged counters and `n / 2` tagged timers (histograms
/// of the default 11 buckets), the same lines as the load benchmark's page.
fn tagged_mix(n: usize) -> Vec<String> {
    (0..n / 2)
        .flat_map(|id| {
            [
                format!("bench.requests:1|c|#id:{id},env:bench"),
                format!("bench.latency:{}|ms|#id:{id},env:bench", 1 + id % 900),
            ]
        })
        .collect()
}

/// `n` series of distinct names, one family each: half counters, half gauges.
fn distinct_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|id| match id % 2 {
            0 => format!("bench.distinct{id}:1|c"),
            _ => format!("bench.distinct{id}:{}|g", id % 97),
        })
        .collect()
}

/// The allocations of one call of `build` once warm (its start times carried from a first call),
/// the result's own included.
fn allocations<T>(build: &mut impl FnMut() -> T) -> usize {
    drop(build());
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let built = build();
    let counted = ALLOCATIONS.load(Ordering::Relaxed) - before;
    drop(built);
    counted
}

/// Rendering the stored part of `/metrics` (what a gzip scrape of an unchanged snapshot reuses) and
/// compressing it, and building the OTLP request of the same page, for the mixes the issue's
/// figures are for.
fn pages(c: &mut Criterion) {
    let now = Now::read();
    let (exposition, _telemetry) = Exposition::new().expect("registry");
    let settings = || Settings {
        limits: Limits {
            max_series: 4 * DISTINCT,
            max_series_per_family: 4 * DISTINCT,
            max_cached_keys: 4 * DISTINCT,
            ..Limits::default()
        },
        ..Settings::default()
    };
    let mut group = c.benchmark_group("page");
    group.sample_size(10);
    for (case, lines) in [
        ("tagged_mix_10k", tagged_mix(10_000)),
        ("tagged_mix_100k", tagged_mix(100_000)),
        ("distinct_names_100k", distinct_names(100_000)),
    ] {
        let mut aggregator = Aggregator::new(settings());
        ingest(&mut aggregator, &lines, now);
        let snapshot = aggregator.snapshot(now);
        assert_eq!(snapshot.series_count(), lines.len(), "{case}");
        let mut out = Vec::with_capacity(16 << 20);
        exposition.render(&snapshot, now, &mut out).expect("render");
        println!("/metrics of {case}: {:.1} MB", out.len() as f64 / 1e6);
        group.bench_function(format!("render_{case}"), |b| {
            b.iter(|| {
                out.clear();
                exposition.render(&snapshot, now, &mut out).expect("render");
                black_box(out.len())
            })
        });
        // What a scrape cost before the page was written straight from the snapshot: the
        // families built as `prometheus` structs and encoded by its `TextEncoder`.
        group.bench_function(format!("encoder_{case}"), |b| {
            b.iter(|| {
                out.clear();
                TextEncoder::new()
                    .encode(&exposition.families(&snapshot, now), &mut out)
                    .expect("encode");
                black_box(out.len())
            })
        });
        // The OTLP request of the same page: converted straight from the snapshot, and as it
        // was before, through the families as `prometheus` structs. Start times carried from
        // one export to the next, as the exporter does.
        let mut starts = Starts::new(0);
        let mut straight = || {
            let parts = exposition.parts(&snapshot, now);
            black_box(convert::request(&parts, &[], &mut starts, 1))
        };
        let mut old_starts = Starts::new(0);
        let mut via_prometheus = || {
            let mut builder = RequestBuilder::new(&mut old_starts, 1);
            for family in &exposition.families(&snapshot, now) {
                builder.prometheus(family);
            }
            black_box(builder.finish(&[]))
        };
        println!(
            "OTLP request of {case}: {} allocations straight from the snapshot, {} through \
             `prometheus` structs",
            allocations(&mut straight),
            allocations(&mut via_prometheus),
        );
        group.bench_function(format!("otlp_{case}"), |b| b.iter(&mut straight));
        group.bench_function(format!("otlp_via_prometheus_{case}"), |b| {
            b.iter(&mut via_prometheus)
        });
        group.bench_function(format!("snapshot_{case}"), |b| {
            b.iter(|| black_box(aggregator.snapshot(now)))
        });
        group.bench_function(format!("gzip_{case}"), |b| {
            b.iter(|| black_box(Deflated::new(&out).expect("deflate")))
        });
    }
    group.finish();
}

/// The load benchmark's traffic, applied in-process: 1400-byte datagrams, half plain StatsD
/// counter lines, half DogStatsD lines with three tags over 64 series. What one line costs the
/// aggregator (parse and apply) at the top rates.
fn ingest_mix(c: &mut Criterion) {
    let now = Now::read();
    let lines: Vec<String> = (0..42 * 1000)
        .map(|i| match i % 2 {
            0 => "loadgen.plain:1|c".to_owned(),
            _ => format!(
                "loadgen.hits:1|c|#shard:{},env:bench,region:eu-west-1",
                i / 2 % 64
            ),
        })
        .collect();
    let mut aggregator = Aggregator::new(Settings::default());
    ingest(&mut aggregator, &lines, now);
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("mixed_statsd_dogstatsd_lines", |b| {
        b.iter(|| ingest(&mut aggregator, &lines, now))
    });
    group.finish();
}

criterion_group! {
    name = render;
    config = Criterion::default().sample_size(30);
    targets = benches, pages, ingest_mix
}
criterion_main!(render);
