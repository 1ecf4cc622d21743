//! Generic StatsD and DogStatsD metrics: one family per sanitised name, one series per label set.
//!
//! The first sample of a raw (type, name, tags) key is resolved once: the name is sanitised, the
//! tags become sorted labels, the family is found or created, conflicts and caps are checked.
//! The outcome is cached under the raw key, so later samples cost one hash lookup and never
//! sanitise again. It names the family and series by handles ([`FamilyKey`], [`SeriesKey`])
//! that stay valid when other families and series expire, so expiry remaps nothing.
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

use std::borrow::Cow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Duration;

use hashbrown::{DefaultHashBuilder, Equivalent, HashMap, HashSet};
use heartwire_proto::{Metric, MetricKind, Values};
use indexmap::IndexMap;
use slotmap::SlotMap;
use tokio::time::Instant;

use super::Tally;
use super::expiry::Expiry;
use super::families::claimed_names;
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::mapping::{Mapped, Mapping};
use super::set::{Set, SetLimits};
use super::settings::Limits;
use super::snapshot::{ConstLabelPairs, Family, Kind, LabelValues, Series, Value};
use crate::clock::Now;

mod naming;

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

/// A raw key as received; its borrowed twin [`RawKeyRef`] hashes identically, so lookups
/// never allocate.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct RawKey {
    class: Class,
    name: Box<str>,
    tags: Box<str>,
}

#[derive(Debug, Hash)]
struct RawKeyRef<'a> {
    class: Class,
    name: &'a str,
    tags: &'a str,
}

impl Equivalent<RawKey> for RawKeyRef<'_> {
    fn equivalent(&self, key: &RawKey) -> bool {
        self.class == key.class && self.name == &*key.name && self.tags == &*key.tags
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

#[derive(Debug)]
pub(super) struct StatsdFamily {
    name: Arc<str>,
    help: Arc<str>,
    family_type: FamilyType,
    label_names: LabelValues,
    /// Every series' handle by its label values, in the order the series were created: the
    /// order snapshots list them in.
    pub(super) series: IndexMap<LabelValues, SeriesKey, DefaultHashBuilder>,
    pub(super) states: SlotMap<SeriesKey, SeriesState>,
    /// Where snapshots list the family, in [`Statsd::places`].
    pub(super) place: u32,
    pub(super) slot: Slot,
    bounds: Bounds,
    /// Series idle this long are removed; `None`: never.
    pub(super) ttl: Option<Duration>,
    /// The rules changed since help and ttl were set: the next key resolved here sets them.
    refresh: bool,
}

/// A series' value and when it last got a sample.
#[derive(Debug)]
pub(super) struct SeriesState {
    pub(super) value: SeriesValue,
    pub(super) touched: Instant,
}

#[derive(Debug)]
pub(super) enum SeriesValue {
    Number(f64),
    Histogram(Histogram),
    // Boxed: a set is rare and large, and every counter would otherwise pay for its size.
    Set(Box<Set>),
}

/// The generic metrics and the names every family claims.
#[derive(Debug)]
pub(crate) struct Statsd {
    bounds: Bounds,
    mapping: Mapping,
    expiry: Expiry,
    pub(super) families: SlotMap<FamilyKey, StatsdFamily>,
    /// The order snapshots list families in: a new family takes the place the latest removed
    /// one left (kept in `free`), else goes last.
    pub(super) places: Vec<Option<FamilyKey>>,
    pub(super) free: Vec<u32>,
    pub(super) by_base: HashMap<Box<str>, FamilyKey>,
    pub(super) claimed: HashSet<Box<str>>,
    pub(super) cache: HashMap<RawKey, Resolved>,
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
            places: Vec::new(),
            free: Vec::new(),
            by_base: HashMap::new(),
            claimed: reserved.into_iter().map(String::into_boxed_str).collect(),
            cache: HashMap::new(),
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
        for family in self.families.values_mut() {
            family.refresh = true;
        }
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
        let Some(family) = self.families.get_mut(family) else {
            return;
        };
        let Some(state) = family.states.get_mut(series) else {
            return;
        };
        state.touched = now.mono;
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
        let key = RawKeyRef {
            class,
            name: metric.name,
            tags: metric.tags.as_str(),
        };
        if let Some(resolved) = self.cache.get(&key) {
            return *resolved;
        }
        let resolved = self.resolve_new(class, metric, now, accounting);
        if self.cache.len() >= self.max_cached {
            // Emptying beats an LRU here: entries are cheap to rebuild and this only happens
            // under a flood of distinct keys.
            self.cache.clear();
        }
        let key = RawKey {
            class,
            name: metric.name.into(),
            tags: metric.tags.as_str().into(),
        };
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
        let key = match self.by_base.get(named.base.as_str()) {
            Some(&key) => key,
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
        let same_names = family
            .label_names
            .iter()
            .map(|name| &**name)
            .eq(labels.iter().map(|(name, _)| name.as_str()));
        if family.family_type != family_type || !same_names {
            return Resolved::Conflict(family.slot);
        }
        let values: LabelValues = labels
            .iter()
            .map(|(_, value)| Arc::from(&**value))
            .collect();
        if let Some(&series) = family.series.get(&values) {
            return Resolved::Series {
                family: key,
                series,
            };
        }
        if !accounting.admit(family.slot, family.series.len()) {
            return Resolved::Dropped(family.slot);
        }
        let value = match family_type {
            FamilyType::Counter | FamilyType::Gauge => SeriesValue::Number(0.0),
            FamilyType::Histogram => SeriesValue::Histogram(Histogram::new(&family.bounds)),
            FamilyType::Set => SeriesValue::Set(Box::new(Set::new(now))),
        };
        let state = SeriesState {
            value,
            touched: now,
        };
        let series = family.states.insert(state);
        family.series.insert(values, series);
        Resolved::Series {
            family: key,
            series,
        }
    }

    /// Creates a family, unless one of its names is taken; the first series is admitted by the
    /// caller like any other, who also gives the family its help, buckets and ttl.
    fn new_family(
        &mut self,
        base: &str,
        family_type: FamilyType,
        labels: &[(String, Cow<'_, str>)],
        accounting: &mut Accounting,
    ) -> Result<FamilyKey, Resolved> {
        let name = match family_type {
            FamilyType::Counter => format!("{base}_total"),
            _ => base.to_owned(),
        };
        let slot = accounting.slot(&name);
        let claims = claimed_names(&name, family_type.kind());
        if claims
            .iter()
            .any(|claim| self.claimed.contains(claim.as_str()))
        {
            return Err(Resolved::Conflict(slot));
        }
        // A family is only created with its first series, so that a flood of new names at the
        // cap cannot grow the family list.
        if !accounting.has_room(0) {
            return Err(Resolved::Dropped(slot));
        }
        self.claimed
            .extend(claims.into_iter().map(String::into_boxed_str));
        let place = self.free.pop().unwrap_or(self.places.len() as u32);
        let family = StatsdFamily {
            name: name.into(),
            help: Arc::from(""),
            family_type,
            label_names: labels
                .iter()
                .map(|(name, _)| Arc::from(name.as_str()))
                .collect(),
            series: IndexMap::default(),
            states: SlotMap::with_key(),
            place,
            slot,
            bounds: self.bounds.clone(),
            ttl: None,
            refresh: false,
        };
        let key = self.families.insert(family);
        match self.places.get_mut(place as usize) {
            Some(free) => *free = Some(key),
            None => self.places.push(Some(key)),
        }
        self.by_base.insert(base.into(), key);
        Ok(key)
    }

    /// Rolls the window of every set series, giving back the members of ended windows.
    fn sweep_sets(&mut self, now: Instant) {
        let sets = self
            .families
            .values_mut()
            .filter(|f| f.family_type == FamilyType::Set);
        for state in sets.flat_map(|family| family.states.values_mut()) {
            if let SeriesValue::Set(set) = &mut state.value {
                set.roll(now, &mut self.sets);
            }
        }
    }

    /// The families with series, in place order (creation order until families expire), each
    /// with its series in creation order.
    pub(crate) fn snapshot(&self, now: Now, out: &mut Vec<Family>) {
        for family in self
            .places
            .iter()
            .filter_map(|key| self.families.get((*key)?))
            .filter(|family| !family.series.is_empty())
        {
            let series = family
                .series
                .iter()
                .filter_map(|(labels, key)| Some((labels, family.states.get(*key)?)))
                .map(|(labels, state)| Series {
                    labels: labels.clone(),
                    value: match &state.value {
                        SeriesValue::Number(number) => Value::Number(*number),
                        SeriesValue::Histogram(histogram) => {
                            Value::Histogram(histogram.snapshot(&family.bounds))
                        }
                        SeriesValue::Set(set) => {
                            Value::Number(set.distinct(now.mono, self.sets.window))
                        }
                    },
                })
                .collect();
            out.push(Family {
                name: family.name.clone(),
                help: family.help.clone(),
                kind: family.family_type.kind(),
                const_labels: self.no_const_labels.clone(),
                label_names: family.label_names.clone(),
                series,
            });
        }
    }
}

/// The key a family is found under and the names it claims, to give back when it goes.
pub(super) fn claims_of(family: &StatsdFamily) -> (String, Vec<String>) {
    let kind = family.family_type.kind();
    let base = match family.family_type {
        FamilyType::Counter => family.name.strip_suffix("_total").unwrap_or(&family.name),
        _ => &family.name,
    };
    (base.to_owned(), claimed_names(&family.name, kind))
}
