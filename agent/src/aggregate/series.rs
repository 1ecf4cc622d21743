//! Generic StatsD and DogStatsD metrics: one family per sanitised name, one series per label set.
//!
//! The first sample of a raw (type, name, tags) key is resolved once: the name is sanitised, the
//! tags become sorted labels, the family is found or created, conflicts and caps are checked.
//! The outcome is cached under the raw key, so later samples cost one hash lookup and never
//! sanitise again (an untagged key with no mapping rules is found in the family table instead:
//! `direct`). It names the family and series by handles ([`FamilyKey`], [`SeriesKey`]) that
//! stay valid when other families and series expire, so expiry remaps nothing.
//!
//! Memory per series (issue 16; heap, `cargo bench -p heartwire --bench render -- nothing`):
//! a series holds its label values (shared with snapshots, equal values shared with the
//! family's previous series), a 40-byte state (value, last-sample stamp) and, if tagged, one
//! cache entry; a family holds a record, a [`FamilyMeta`] (name, help, label names) shared with
//! the snapshots, and no table of its own until its second series. About 320 bytes per tagged
//! counter in families of 100, 430 per histogram of 11 buckets, 370 per series of 100 000
//! distinct untagged names; a snapshot adds 32 bytes per counter or gauge (48 for a series
//! that is its family's only one, held inline) and 176 per histogram.
//!
//! Decisions:
//! - Counters are exposed as `<name>_total`; a name that already ends in `_total` keeps it.
//! - `ms` values are divided by 1000 into seconds; `ms`, `h` and `d` are histograms.
//! - `@rate` is a float weight: a counter adds `value / rate`, a histogram sample adds `1 / rate`
//!   to its count. Gauges and sets ignore it (a gauge is set, not summed).
//! - `|T` client timestamps are ignored: a sample counts when it arrives (a sidecar serves
//!   current state, not a back-fill).
//! - A set is a gauge of the distinct members seen in the last complete window of
//!   [`Limits::set_window`](super::Limits::set_window) (until one window has completed, the
//!   members seen so far). Members are kept as 64-bit hashes, capped per series and in total.
//! - A family's type and label names are fixed by its first series. A sample of another type or
//!   label-name set, or whose exposed names collide with another family's (`x_total`,
//!   `x_bucket`, `x_count`, `x_sum`, the built-in and self-metric families), is rejected and
//!   counted as a conflict; every other series still renders.
//! - Mapping rules ([`Mapping`]) run on a cache miss only, before the name is sanitised: a
//!   rule may rename, add labels or drop. A family takes its help, buckets and ttl from the
//!   rule that created it (after [`Statsd::remap`], help and ttl from the next rule that
//!   resolves a key into it; buckets stay until the family expires).
//! - A series records when it last got a sample; [`Statsd::expire`] (in `expiry`) removes
//!   idle ones by their family's ttl.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::{DefaultHashBuilder, Equivalent, HashMap, HashSet, HashTable};
use heartwire_proto::{Metric, MetricKind, Values};
use slotmap::SlotMap;
use tokio::time::Instant;

use super::Tally;
use super::expiry::{Expiry, Stamp, Stamps};
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::mapping::{Mapped, Mapping};
use super::set::{Set, SetLimits};
use super::settings::Limits;
use super::snapshot::{ConstLabelPairs, FamilyMeta, Kind, LabelValues};
use crate::clock::Now;

mod direct;
mod members;
mod naming;
mod parts;
mod table;

use self::members::{LabelNameLists, Members};

/// Which family type a StatsD type feeds; `ms` is apart from `h`/`d` only for its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Class {
    Counter,
    Gauge,
    Timer,
    Histogram,
    Set,
}

impl Class {
    fn of(kind: MetricKind) -> Class {
        match kind {
            MetricKind::Counter => Class::Counter,
            MetricKind::Gauge => Class::Gauge,
            MetricKind::Timer => Class::Timer,
            MetricKind::Histogram | MetricKind::Distribution => Class::Histogram,
            MetricKind::Set => Class::Set,
        }
    }

    fn family_type(self) -> FamilyType {
        match self {
            Class::Counter => FamilyType::Counter,
            Class::Gauge => FamilyType::Gauge,
            Class::Timer | Class::Histogram => FamilyType::Histogram,
            Class::Set => FamilyType::Set,
        }
    }
}

/// A set and a gauge both expose gauges, but mean different things: they do not share a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    Set,
}

impl FamilyType {
    fn kind(self) -> Kind {
        match self {
            FamilyType::Counter => Kind::Counter,
            FamilyType::Gauge | FamilyType::Set => Kind::Gauge,
            FamilyType::Histogram => Kind::Histogram,
        }
    }
}

/// A raw key as received, name and tags in one allocation; its borrowed twin [`RawKeyRef`]
/// hashes identically, so lookups never allocate.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RawKey {
    class: Class,
    /// Where the name ends and the tags begin in `text`.
    split: u32,
    text: Box<str>,
}

impl RawKey {
    fn new(class: Class, name: &str, tags: &str) -> RawKey {
        RawKey {
            class,
            split: name.len() as u32,
            text: [name, tags].concat().into_boxed_str(),
        }
    }

    fn borrowed(&self) -> RawKeyRef<'_> {
        let (name, tags) = self.text.split_at(self.split as usize);
        RawKeyRef {
            class: self.class,
            name,
            tags,
        }
    }
}

impl Hash for RawKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.borrowed().hash(state);
    }
}

#[derive(Debug, Hash, PartialEq, Eq)]
struct RawKeyRef<'a> {
    class: Class,
    name: &'a str,
    tags: &'a str,
}

impl Equivalent<RawKey> for RawKeyRef<'_> {
    fn equivalent(&self, key: &RawKey) -> bool {
        *self == key.borrowed()
    }
}

slotmap::new_key_type! {
    /// A family's handle: valid until the family expires, whatever else goes.
    pub(super) struct FamilyKey;
    /// A series' handle in its family: valid until the series expires, whatever else goes.
    pub(super) struct SeriesKey;
}

/// What a raw key resolved to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resolved {
    Series {
        family: FamilyKey,
        series: SeriesKey,
    },
    Conflict(Slot),
    Dropped(Slot),
    /// A mapping rule drops the key.
    Ignored,
}

/// A family: what its series share. Their states are in [`Statsd::states`].
#[derive(Debug)]
pub(super) struct StatsdFamily {
    /// Name, help and label names (shared with every family of the same label names, see
    /// [`LabelNameLists`]), shared with the snapshots.
    meta: Arc<FamilyMeta>,
    family_type: FamilyType,
    /// Every series' handle by its label values, in the order the series were created: the
    /// order snapshots list them in.
    pub(super) members: Members,
    /// Where snapshots list the family, in [`Statsd::places`].
    pub(super) place: u32,
    pub(super) slot: Slot,
    bounds: Bounds,
    /// Series idle this long are removed; `None`: never.
    pub(super) ttl: Option<Duration>,
    /// The rules changed since help and ttl were set: the next key resolved here sets them.
    refresh: bool,
}

/// A series' value and when it last got a sample: what its kind needs and no more (its label
/// values are its key in [`StatsdFamily::members`]).
#[derive(Debug)]
pub(super) struct SeriesState {
    pub(super) value: SeriesValue,
    pub(super) touched: Stamp,
}

#[derive(Debug)]
pub(super) enum SeriesValue {
    Number(f64),
    // One allocation of buckets, sum and count: two words inline.
    Histogram(Histogram),
    // Boxed: a set is rare and large, and every counter would otherwise pay for its size.
    Set(Box<Set>),
}

/// The generic metrics and the names every family claims.
///
/// The names a family claims (`x_total` and `x`, `x_bucket`...) are not stored: each is `x` or
/// `x` and a suffix, so a new family's claims are checked by looking up the families of the few
/// bases they could come from ([`Statsd::claim_taken`]).
#[derive(Debug)]
pub(crate) struct Statsd {
    bounds: Bounds,
    mapping: Mapping,
    expiry: Expiry,
    pub(super) families: SlotMap<FamilyKey, StatsdFamily>,
    /// Every series' state, whatever its family: one table, so that a family of one series
    /// costs no table of its own.
    pub(super) states: SlotMap<SeriesKey, SeriesState>,
    /// What the states' `touched` count from.
    pub(super) stamps: Stamps,
    /// The order snapshots list families in: a new family takes the place the latest removed
    /// one left (kept in `free`), else goes last.
    pub(super) places: Vec<Option<FamilyKey>>,
    pub(super) free: Vec<u32>,
    /// The snapshot's families as last built, by part of places.
    parts: parts::Parts,
    /// Families by base name ([`StatsdFamily::base`]), which is part of their name: the table
    /// holds handles only.
    by_base: HashTable<FamilyKey>,
    hasher: DefaultHashBuilder,
    /// The names the built-in and self-metric families claim.
    reserved: HashSet<Box<str>>,
    label_lists: LabelNameLists,
    pub(super) cache: HashMap<RawKey, Resolved>,
    /// The last untagged key resolved the direct way, and its series: a run of lines of one
    /// name (what a client sends most) skips sanitising and looking it up again. Emptied with
    /// the cache, whenever a series may have gone or its family's settings are due.
    last_direct: Option<(Class, Resolved)>,
    /// Its raw name (a buffer kept, so that remembering a name does not allocate).
    last_direct_name: String,
    max_cached: usize,
    pub(super) sets: SetLimits,
    no_const_labels: ConstLabelPairs,
}

impl Statsd {
    /// `reserved` holds every name the built-in and self-metric families claim.
    pub(crate) fn new(
        limits: &Limits,
        bounds: Bounds,
        reserved: impl IntoIterator<Item = String>,
    ) -> Statsd {
        Statsd {
            bounds,
            mapping: Mapping::default(),
            expiry: Expiry::default(),
            families: SlotMap::with_key(),
            states: SlotMap::with_key(),
            stamps: Stamps::default(),
            places: Vec::new(),
            free: Vec::new(),
            parts: parts::Parts::default(),
            by_base: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            reserved: reserved.into_iter().map(String::into_boxed_str).collect(),
            label_lists: LabelNameLists::default(),
            cache: HashMap::new(),
            last_direct: None,
            last_direct_name: String::new(),
            max_cached: limits.max_cached_keys,
            sets: SetLimits::new(limits),
            no_const_labels: Arc::from(Vec::new()),
        }
    }

    /// Swaps the mapping rules and default ttls. Existing series keep their names and values;
    /// the raw-key cache is emptied, so every key is mapped again by the new rules on its next
    /// sample.
    pub(crate) fn remap(&mut self, mapping: Mapping, expiry: Expiry) {
        self.mapping = mapping;
        self.expiry = expiry;
        self.cache.clear();
        self.last_direct = None;
        for family in self.families.values_mut() {
            family.refresh = true;
        }
    }

    /// Forgets the last key resolved the direct way: its series may be gone.
    pub(super) fn forget_last_direct(&mut self) {
        self.last_direct = None;
    }

    /// Applies every value of one metric line.
    pub(crate) fn apply(
        &mut self,
        metric: &Metric<'_>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        if metric.kind == MetricKind::Set && self.sets.sweep_due(now.mono) {
            self.sweep_sets(now.mono);
        }
        let (family, series) = match self.resolve(metric, now.mono, accounting) {
            Resolved::Series { family, series } => (family, series),
            Resolved::Conflict(slot) => return accounting.conflict(slot),
            Resolved::Dropped(slot) => return accounting.dropped(slot),
            Resolved::Ignored => {
                tally.mapping_dropped += 1;
                return;
            }
        };
        let Some(family) = self.families.get(family) else {
            return;
        };
        let Some(state) = self.states.get_mut(series) else {
            return;
        };
        self.parts.touch(family.place);
        state.touched = self.stamps.stamp(now.mono);
        match &mut state.value {
            SeriesValue::Number(number) => {
                for sample in metric.values.iter(metric.kind) {
                    let next = match metric.kind {
                        MetricKind::Gauge if sample.relative => *number + sample.number,
                        MetricKind::Gauge => sample.number,
                        _ => *number + sample.number * metric.weight(),
                    };
                    if next.is_finite() {
                        *number = next;
                    } else {
                        tally.non_finite += 1;
                    }
                }
            }
            SeriesValue::Histogram(histogram) => {
                let scale = if metric.kind == MetricKind::Timer {
                    0.001
                } else {
                    1.0
                };
                for sample in metric.values.iter(metric.kind) {
                    if !histogram.observe(&family.bounds, sample.number * scale, metric.weight()) {
                        tally.non_finite += 1;
                    }
                }
            }
            SeriesValue::Set(set) => {
                if let Values::Member(member) = metric.values {
                    let hash = self.sets.hasher.hash_one(member);
                    if !set.insert(hash, now.mono, &mut self.sets) {
                        tally.set_members_dropped += 1;
                    }
                }
            }
        }
    }

    fn resolve(
        &mut self,
        metric: &Metric<'_>,
        now: Instant,
        accounting: &mut Accounting,
    ) -> Resolved {
        let class = Class::of(metric.kind);
        let direct = self.direct(metric);
        if direct {
            if let Some((last_class, resolved)) = self.last_direct
                && last_class == class
                && self.last_direct_name == metric.name
            {
                return resolved;
            }
            if let Some(resolved) = self.resolve_direct(class, metric) {
                self.last_direct = Some((class, resolved));
                self.last_direct_name.clear();
                self.last_direct_name.push_str(metric.name);
                return resolved;
            }
        }
        let key = RawKeyRef {
            class,
            name: metric.name,
            tags: metric.tags.as_str(),
        };
        if let Some(resolved) = self.cache.get(&key) {
            return *resolved;
        }
        let resolved = self.resolve_new(class, metric, now, accounting);
        if direct && self.resolve_direct(class, metric).is_some() {
            // Found without the cache from now on.
            return resolved;
        }
        if self.cache.len() >= self.max_cached {
            // Emptying beats an LRU here: entries are cheap to rebuild and this only happens
            // under a flood of distinct keys.
            self.cache.clear();
        }
        let key = RawKey::new(class, metric.name, metric.tags.as_str());
        self.cache.insert(key, resolved);
        resolved
    }

    fn resolve_new(
        &mut self,
        class: Class,
        metric: &Metric<'_>,
        now: Instant,
        accounting: &mut Accounting,
    ) -> Resolved {
        let family_type = class.family_type();
        let Some(named) = self.name(metric, family_type) else {
            return Resolved::Ignored;
        };
        let key = match self.family_by_base(&named.base) {
            Some(key) => key,
            None => match self.new_family(&named.base, family_type, &named.labels, accounting) {
                Ok(key) => key,
                Err(resolved) => return resolved,
            },
        };
        self.settle(key, named.from_rule, metric, family_type);
        let Some(family) = self.families.get_mut(key) else {
            return Resolved::Conflict(accounting.slot(&named.base));
        };
        let labels = named.labels;
        let same_names = (family.meta.label_names)
            .iter()
            .map(|name| &**name)
            .eq(labels.iter().map(|(name, _)| name.as_str()));
        if family.family_type != family_type || !same_names {
            return Resolved::Conflict(family.slot);
        }
        let values: Vec<&str> = labels.iter().map(|(_, value)| &**value).collect();
        if let Some(series) = family.members.get(&members::Values(&values)) {
            return Resolved::Series {
                family: key,
                series,
            };
        }
        if !accounting.admit(family.slot, family.members.len()) {
            return Resolved::Dropped(family.slot);
        }
        let value = match family_type {
            FamilyType::Counter | FamilyType::Gauge => SeriesValue::Number(0.0),
            FamilyType::Histogram => SeriesValue::Histogram(Histogram::new(&family.bounds)),
            FamilyType::Set => SeriesValue::Set(Box::new(Set::new(now))),
        };
        let series = self.states.insert(SeriesState {
            value,
            touched: self.stamps.stamp(now),
        });
        let values = label_values(&values, family);
        family.members.insert(values, series);
        self.parts.touch(family.place);
        Resolved::Series {
            family: key,
            series,
        }
    }

    /// Rolls the window of every set series, giving back the members of ended windows.
    fn sweep_sets(&mut self, now: Instant) {
        for state in self.states.values_mut() {
            if let SeriesValue::Set(set) = &mut state.value {
                set.roll(now, &mut self.sets);
            }
        }
    }
}

/// A new series' label values: the family's empty list if it has no labels, else each value
/// shared with the family's latest series where equal (`env:production` on every series is
/// held once per run of equal values, not once per series).
fn label_values(values: &[&str], family: &StatsdFamily) -> LabelValues {
    if values.is_empty() {
        return family.meta.label_names.clone();
    }
    let latest = family.members.latest();
    values
        .iter()
        .enumerate()
        .map(|(index, value)| match latest.and_then(|l| l.get(index)) {
            Some(previous) if &**previous == *value => previous.clone(),
            _ => Arc::from(*value),
        })
        .collect()
}

#[cfg(test)]
mod tests;
