//! `/metrics` for 10 000 series: snapshot, render, and both; plus ingest into known series.
//!
//! Before the timings it prints the heap held per series, measured with a counting allocator,
//! for counters, gauges and histograms: the figure the series caps' memory bound rests on.

// A benchmark whose fixture cannot be built has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heartwire::aggregate::{Aggregator, Settings};
use heartwire::clock::Now;
use heartwire::expose::Exposition;
use heartwire::ingest::batch::{Batch, Transport};

/// Counts live heap bytes, to measure what the aggregation state holds.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
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
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SERIES: usize = 10_000;

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

fn report_bytes_per_series() {
    let now = Now::read();
    for kind in ["c", "g", "h"] {
        let sample = lines(kind, SERIES, 0);
        let before = LIVE.load(Ordering::Relaxed);
        let mut aggregator = Aggregator::new(Settings::default());
        ingest(&mut aggregator, &sample, now);
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "heap held by {SERIES} '{kind}' series: {held} bytes, {} bytes per series",
            held / SERIES as isize
        );
        drop(black_box(aggregator));
    }
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

criterion_group! {
    name = render;
    config = Criterion::default().sample_size(30);
    targets = benches
}
criterion_main!(render);
