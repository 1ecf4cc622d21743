//! The memory-saving structures of the StatsD state, through [`Statsd`] itself: the behaviour
//! they must keep is in `aggregate/tests/statsd.rs` and `mapping.rs`.

use std::sync::Arc;
use std::time::Duration;

use heartwire_proto::Line;

use super::*;
use crate::aggregate::DEFAULT_BUCKETS;
use crate::aggregate::snapshot::{Family, Value};

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
        let mut parts = Vec::new();
        self.statsd.snapshot(self.now, &mut parts);
        parts.iter().flat_map(|part| part.iter().cloned()).collect()
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

/// The page text of snapshot parts.
fn text(parts: &[Arc<[Family]>]) -> String {
    let mut writer = crate::expose::text::TextWriter::default();
    let mut out = Vec::new();
    for family in parts.iter().flat_map(|part| part.iter()) {
        writer.family(family, &mut out);
    }
    String::from_utf8(out).unwrap()
}

impl Fixture {
    /// The parts the aggregator would publish now, reusing those of the last call.
    fn published(&mut self) -> Vec<Arc<[Family]>> {
        let mut parts = Vec::new();
        self.statsd.snapshot_reusing(self.now, &mut parts);
        parts
    }
}

#[test]
fn a_snapshot_shares_every_part_but_the_one_a_line_changed() {
    let mut f = Fixture::new(Duration::from_secs(60));
    let lines: String = (0..300).map(|i| format!("n{i}:1|c\n")).collect();
    f.send(&lines);
    let before = f.published();
    assert_eq!(before.len(), 300usize.div_ceil(parts::PART));
    f.send("n70:1|c\n");
    let after = f.published();
    let rebuilt: Vec<usize> = (before.iter().zip(&after))
        .enumerate()
        .filter(|(_, (one, other))| !Arc::ptr_eq(one, other))
        .map(|(index, _)| index)
        .collect();
    assert_eq!(rebuilt, [70 / parts::PART]);
    assert_eq!(text(&after), text(&f.families_as_parts()));
    assert!(text(&after).contains("\nn70_total 2\n"));
}

#[test]
fn a_series_expiring_from_a_family_that_stays_rebuilds_its_part() {
    let mut f = Fixture::new(Duration::from_secs(10));
    f.send("g:1|g|#t:a\ng:2|g|#t:b\n");
    f.published();
    f.now = f.now.advance(Duration::from_secs(6));
    f.send("g:3|g|#t:a\n");
    f.published();
    f.now = f.now.advance(Duration::from_secs(6));
    assert_eq!(f.statsd.expire(f.now.mono, &mut f.accounting), 1);
    let published = text(&f.published());
    assert!(!published.contains("t=\"b\""), "{published}");
    assert_eq!(published, text(&f.families_as_parts()));
}

impl Fixture {
    /// Every part built afresh: the oracle of [`Fixture::published`].
    fn families_as_parts(&self) -> Vec<Arc<[Family]>> {
        let mut parts = Vec::new();
        self.statsd.snapshot(self.now, &mut parts);
        parts
    }
}

/// What happens to the state between two snapshots in the property test.
#[derive(Debug, Clone)]
enum Step {
    Lines(Vec<String>),
    /// Seconds pass, then idle series expire.
    Wait(u64),
}

fn any_line() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec!["c", "g", "ms", "h", "s"]);
    let tags = prop::sample::select(vec!["", "|#t:a", "|#t:b", "|#t:b,u:c"]);
    (0..200u32, kind, 0..50u32, tags).prop_map(|(name, kind, value, tags)| {
        let value = if kind == "s" {
            format!("m{value}")
        } else {
            value.to_string()
        };
        // Counters (which never expire here) of many names, over several parts; few names
        // for the other kinds: families of several series, some of which expire.
        let name = match kind {
            "c" => name,
            "g" => name % 15,
            _ => name % 7,
        };
        format!("n{name}:{value}|{kind}{tags}\n")
    })
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec(any_line(), 1..40).prop_map(Step::Lines),
        1 => (1..20u64).prop_map(Step::Wait),
    ]
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever lines arrive and whatever expires, the published snapshot (parts reused where
    /// nothing changed) shows what one built afresh shows.
    #[test]
    fn property_a_snapshot_reusing_parts_is_a_fresh_snapshot(steps in prop::collection::vec(any_step(), 1..30)) {
        let mut f = Fixture::new(Duration::from_secs(10));
        for step in steps {
            match step {
                Step::Lines(lines) => f.send(&lines.concat()),
                Step::Wait(seconds) => {
                    f.now = f.now.advance(Duration::from_secs(seconds));
                    f.statsd.expire(f.now.mono, &mut f.accounting);
                }
            }
            let published = text(&f.published());
            prop_assert_eq!(published, text(&f.families_as_parts()));
        }
    }
}

#[test]
fn the_last_untagged_key_is_forgotten_when_its_series_expires() {
    let mut f = Fixture::new(Duration::from_secs(1));
    f.send("g:1|g\ng:2|g\n");
    f.now = f.now.advance(Duration::from_secs(1));
    assert_eq!(f.statsd.expire(f.now.mono, &mut f.accounting), 1);
    // The same name again: a new family and series, not the ones that went.
    f.send("g:5|g\n");
    let families = f.families();
    assert_eq!(families.len(), 1);
    assert!(matches!(families[0].series[0].value, Value::Number(5.0)));
}

#[test]
fn the_last_untagged_key_is_forgotten_when_the_settings_change() {
    let mut f = Fixture::new(Duration::ZERO);
    f.send("g:1|g\ng:2|g\n");
    let expiry = Expiry {
        gauges: Duration::from_secs(1),
        counters: Duration::ZERO,
    };
    f.statsd.remap(Mapping::default(), expiry);
    // Resolved again, so that the family takes the new ttl.
    f.send("g:3|g\n");
    f.now = f.now.advance(Duration::from_secs(1));
    assert_eq!(f.statsd.expire(f.now.mono, &mut f.accounting), 1);
}
