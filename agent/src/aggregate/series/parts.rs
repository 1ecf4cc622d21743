//! The StatsD families of a snapshot, built in parts of [`PART`] places and kept between
//! snapshots: a part is built again only when one of its families changed since, so that
//! publishing after a line costs the part it touched, not a copy of every series (issue 16:
//! with 110 000 series, each publish copied 5 MB while readers still held the previous copy).
//!
//! Whatever changes what a family shows marks its place: a sample applied, a series created or
//! expired, a family created or removed, its help set ([`Statsd::touch`]). A part holding a set
//! is built for every snapshot: a set's value is a count over a window of time, which moves
//! without any sample.

use std::sync::Arc;

use super::{SeriesValue, Statsd, StatsdFamily};
use crate::aggregate::snapshot::{Family, Series, SeriesList, Value};
use crate::clock::Now;

/// Places per part: small enough that a changed family costs little to copy again, large
/// enough that a snapshot of 100 000 families is a list of a few thousand parts.
pub(super) const PART: usize = 64;

/// The parts built for the last snapshot, by part index (place / [`PART`]).
#[derive(Debug, Default)]
pub(super) struct Parts {
    built: Vec<Built>,
}

#[derive(Debug, Default)]
struct Built {
    /// The part's families as last built; `None` before the first build.
    families: Option<Arc<[Family]>>,
    /// A family of the part changed since it was built.
    changed: bool,
    /// The part holds a set, whose value moves with time.
    timed: bool,
}

impl Parts {
    /// Marks the part of `place` to be built again.
    pub(super) fn touch(&mut self, place: u32) {
        if let Some(built) = self.built.get_mut(place as usize / PART) {
            built.changed = true;
        }
    }
}

impl Statsd {
    /// Marks the part of `place` to be built again for the next snapshot.
    pub(in crate::aggregate) fn touch(&mut self, place: u32) {
        self.parts.touch(place);
    }

    /// The families with series, in place order (creation order until families expire), each
    /// with its series in creation order, as parts, all built from the live state.
    pub(crate) fn snapshot(&self, now: Now, out: &mut Vec<Arc<[Family]>>) {
        for index in 0..self.places.len().div_ceil(PART) {
            out.push(self.build_part(index, now).0.into());
        }
    }

    /// [`Statsd::snapshot`], reusing the parts of the last call where nothing changed since:
    /// what the aggregator publishes.
    pub(crate) fn snapshot_reusing(&mut self, now: Now, out: &mut Vec<Arc<[Family]>>) {
        let count = self.places.len().div_ceil(PART);
        self.parts.built.resize_with(count, Built::default);
        for index in 0..count {
            let built = &self.parts.built[index];
            let fresh = match &built.families {
                Some(families) if !built.changed && !built.timed => families.clone(),
                _ => {
                    let (families, timed) = self.build_part(index, now);
                    let families: Arc<[Family]> = families.into();
                    self.parts.built[index] = Built {
                        families: Some(families.clone()),
                        changed: false,
                        timed,
                    };
                    families
                }
            };
            out.push(fresh);
        }
    }

    /// The families of part `index` with series, built from the live state, and whether any is
    /// a set.
    pub(super) fn build_part(&self, index: usize, now: Now) -> (Vec<Family>, bool) {
        let places = self.places.get(index * PART..).unwrap_or_default();
        let families = places
            .iter()
            .take(PART)
            .filter_map(|key| self.families.get((*key)?))
            .filter(|family| !family.members.is_empty());
        let mut timed = false;
        let mut built = Vec::new();
        for family in families {
            timed |= matches!(family.family_type, super::FamilyType::Set);
            built.push(self.family_snapshot(family, now));
        }
        (built, timed)
    }

    fn family_snapshot(&self, family: &StatsdFamily, now: Now) -> Family {
        // One series inline; more in one allocation of exactly their number.
        let mut series = SeriesList::with_capacity(family.members.len());
        series.extend(
            family
                .members
                .iter()
                .filter_map(|(labels, key)| Some((labels, self.states.get(key)?)))
                .map(|(labels, state)| Series {
                    labels: labels.clone(),
                    value: match &state.value {
                        SeriesValue::Number(number) => Value::Number(*number),
                        SeriesValue::Histogram(histogram) => {
                            Value::Histogram(Box::new(histogram.snapshot(&family.bounds)))
                        }
                        SeriesValue::Set(set) => {
                            Value::Number(set.distinct(now.mono, self.sets.window))
                        }
                    },
                }),
        );
        Family {
            meta: family.meta.clone(),
            series,
        }
    }
}
