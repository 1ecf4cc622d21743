//! The memory-saving structures of the StatsD state, through [`Statsd`] itself: the behaviour
//! they must keep is in `aggregate/tests/statsd.rs` and `mapping.rs`.

use std::sync::Arc;
use std::time::Duration;

use heartwire_proto::Line;

use super::*;
use crate::aggregate::DEFAULT_BUCKETS;

struct Fixture {
    statsd: Statsd,
    accounting: Accounting,
    tally: Tally,
    now: Now,
}

impl Fixture {
    fn new(gauge_ttl: Duration) -> Fixture {
        let limits = Limits::default();
        let mut statsd = Statsd::new(&limits, Arc::from(&DEFAULT_BUCKETS[..]), Vec::new());
        let expiry = Expiry {
            gauges: gauge_ttl,
            counters: Duration::ZERO,
        };
        statsd.remap(Mapping::default(), expiry);
        Fixture {
            statsd,
            accounting: Accounting::new(&limits),
            tally: Tally::default(),
            now: Now::at_unix_seconds(1_000_000.0),
        }
    }

    fn send(&mut self, lines: &str) {
        for line in heartwire_proto::lines(lines.as_bytes()) {
            let Ok(Line::Metric(metric)) = line else {
                panic!("not a metric line: {line:?}");
            };
            let (accounting, tally) = (&mut self.accounting, &mut self.tally);
            self.statsd.apply(&metric, self.now, accounting, tally);
        }
    }

    fn families(&self) -> Vec<Family> {
        let mut families = Vec::new();
        self.statsd.snapshot(self.now, &mut families);
        families
    }

    fn conflicts(&self) -> u64 {
        let accounts = self.accounting.accounts();
        accounts.iter().map(|account| account.conflicts).sum()
    }
}

#[test]
fn untagged_keys_take_no_cache_entry_and_tagged_ones_do() {
    let mut f = Fixture::new(Duration::ZERO);
    f.send("a.b:1|c\na.b:2|c\nc:1|g\nd:1|c|#env:prod\nd:1|c|#env:prod\n");
    assert_eq!(f.statsd.cache.len(), 1);
    let families = f.families();
    assert_eq!(families.len(), 3);
    assert!(matches!(families[0].series[0].value, Value::Number(3.0)));
}

#[test]
fn a_conflict_of_an_untagged_key_is_cached_and_counted_on_every_sample() {
    let mut f = Fixture::new(Duration::ZERO);
    f.send("x:1|c\nx_total:1|g\nx_total:1|g\nx:1|g\n");
    assert_eq!(f.conflicts(), 3);
    assert_eq!(f.families().len(), 1);
}

#[test]
fn the_names_of_an_expired_family_are_free_again() {
    let mut f = Fixture::new(Duration::from_secs(1));
    f.send("lat_count:1|g\n");
    f.send("lat:1|h\n");
    assert_eq!(
        f.conflicts(),
        1,
        "the histogram `lat` would write `lat_count`"
    );
    f.now = f.now.advance(Duration::from_secs(1));
    assert_eq!(f.statsd.expire(f.now.mono, &mut f.accounting), 1);
    f.send("lat:1|h\n");
    let names: Vec<String> = f.families().iter().map(|f| f.name.to_string()).collect();
    assert_eq!(names, ["lat"]);
    assert_eq!(f.conflicts(), 1);
}

#[test]
fn families_share_label_name_lists_and_series_share_equal_values() {
    let mut f = Fixture::new(Duration::from_secs(1));
    f.send("a:1|c|#env:prod,host:h1\na:1|c|#env:prod,host:h2\nb:1|g|#host:h1,env:prod\n");
    assert_eq!(f.statsd.label_lists.len(), 1);
    let families = f.families();
    assert!(Arc::ptr_eq(
        &families[0].label_names,
        &families[1].label_names
    ));
    let (first, second) = (&families[0].series[0].labels, &families[0].series[1].labels);
    assert_eq!(&*families[0].label_names[0], "env");
    assert!(Arc::ptr_eq(&first[0], &second[0]), "`prod` is held once");
    assert_eq!((&*first[1], &*second[1]), ("h1", "h2"));
    f.now = f.now.advance(Duration::from_secs(1));
    f.send("a:1|c|#env:prod,host:h1\n");
    assert_eq!(f.statsd.expire(f.now.mono, &mut f.accounting), 1);
    assert_eq!(f.statsd.label_lists.len(), 1, "`a` still uses the list");
}
