//! What the aggregator spends per line with and without `listen.udp.parse_on_receive`: a batch
//! of the load benchmark's traffic (64 datagrams of 39 lines, half plain StatsD counters, half
//! DogStatsD counters with three tags over 64 series) parsed and applied by the aggregator, the
//! parse alone (what a receive thread does with the option), and the apply of a parsed batch
//! (what is left on the aggregator's core).
//!
//! ```sh
//! cargo bench -p heartwire --bench ingest
//! ```

// A benchmark whose fixture cannot be built has nothing to measure: failing loudly is right.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use heartwire::aggregate::{Aggregator, Settings};
use heartwire::clock::Now;
use heartwire::ingest::batch::{Batch, Payload, Transport};
use heartwire::ingest::parsed::{ParseBudget, Parsed};

/// What one `recvmmsg` of the load benchmark hands on: 64 datagrams of 39 lines.
fn batch() -> (Vec<u8>, u64) {
    let mut data = Vec::new();
    let mut lines = 0;
    for _ in 0..64 {
        for line in 0..39 {
            if line % 2 == 0 {
                data.extend_from_slice(b"loadgen.plain:1|c\n");
            } else {
                let shard = (lines as usize) % 64;
                let tagged =
                    format!("loadgen.hits:1|c|#shard:{shard},env:bench,region:eu-west-1\n");
                data.extend_from_slice(tagged.as_bytes());
            }
            lines += 1;
        }
    }
    (data, lines)
}

fn ingest(c: &mut Criterion) {
    let (data, lines) = batch();
    let now = Now::read();
    let budget = ParseBudget::new(usize::MAX);
    let parsed = || {
        let parsed = Parsed::within(data.clone(), &budget).expect("an unbounded budget");
        Batch::of(Transport::Udp, Payload::Parsed(parsed))
    };
    let mut aggregator = Aggregator::new(Settings::default());
    // Every series exists before the timings: the steady state of the load benchmark.
    aggregator.ingest(&Batch::new(Transport::Udp, data.clone()), now);

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(lines));
    group.bench_function("parse and apply (aggregator, raw batch)", |b| {
        b.iter_batched(
            || Batch::new(Transport::Udp, data.clone()),
            |batch| aggregator.ingest(&batch, now),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("parse (receive thread, parse_on_receive)", |b| {
        b.iter_batched(
            || data.clone(),
            |data| black_box(Parsed::within(data, &budget)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("apply (aggregator, parsed batch)", |b| {
        b.iter_batched(
            parsed,
            |batch| aggregator.ingest(&batch, now),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
