//! Series caps and the bounded bookkeeping behind `heartwire_series{family}`,
//! `heartwire_series_dropped_total{family}`, `heartwire_series_conflicts_total{family}` and
//! `heartwire_series_expired_total{family}`.
//!
//! Family names come from senders, so the `family` label of these self-metrics is itself
//! capped: the first [`Limits::max_family_labels`] families get their own value, the rest are
//! summed under `family="other"`.

use std::sync::Arc;

use hashbrown::HashMap;

use super::settings::Limits;
use super::snapshot::FamilyAccount;

/// Where a family's bookkeeping goes: its own label value, or `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(Option<u32>);

#[derive(Debug, Default, Clone)]
struct Counts {
    series: u64,
    dropped: u64,
    conflicts: u64,
    expired: u64,
}

/// The series caps and their counters.
#[derive(Debug)]
pub(crate) struct Accounting {
    max_series: usize,
    max_per_family: usize,
    max_labels: usize,
    total_series: usize,
    slots: HashMap<Arc<str>, u32>,
    labels: Vec<(Arc<str>, Counts)>,
    other: Counts,
}

impl Accounting {
    pub(crate) fn new(limits: &Limits) -> Accounting {
        Accounting {
            max_series: limits.max_series,
            max_per_family: limits.max_series_per_family,
            max_labels: limits.max_family_labels,
            total_series: 0,
            slots: HashMap::new(),
            labels: Vec::new(),
            other: Counts::default(),
        }
    }

    /// The slot for `family`, giving it its own label while the budget lasts.
    pub(crate) fn slot(&mut self, family: &str) -> Slot {
        if let Some(&index) = self.slots.get(family) {
            return Slot(Some(index));
        }
        if self.labels.len() >= self.max_labels {
            return Slot(None);
        }
        let index = self.labels.len() as u32;
        let name: Arc<str> = Arc::from(family);
        self.slots.insert(name.clone(), index);
        self.labels.push((name, Counts::default()));
        Slot(Some(index))
    }

    /// Admits a new series in a family that holds `family_series` already: true, and counted,
    /// if both caps allow it. On false the caller counts the sample with [`Accounting::dropped`].
    pub(crate) fn admit(&mut self, slot: Slot, family_series: usize) -> bool {
        if !self.has_room(family_series) {
            return false;
        }
        self.counts(slot).series += 1;
        self.total_series += 1;
        true
    }

    /// Whether both caps leave room for one more series in a family holding `family_series`.
    pub(crate) fn has_room(&self, family_series: usize) -> bool {
        family_series < self.max_per_family && self.total_series < self.max_series
    }

    /// A sample was dropped because its series could not be created (counted again on every
    /// sample, so the counter measures lost data, not distinct series).
    pub(crate) fn dropped(&mut self, slot: Slot) {
        self.counts(slot).dropped += 1;
    }

    /// A sample was rejected because its series conflicts with a family.
    pub(crate) fn conflict(&mut self, slot: Slot) {
        self.counts(slot).conflicts += 1;
    }

    /// `count` series of a family expired: they are counted, and no longer held.
    pub(crate) fn expired(&mut self, slot: Slot, count: usize) {
        let counts = self.counts(slot);
        counts.series = counts.series.saturating_sub(count as u64);
        counts.expired += count as u64;
        self.total_series = self.total_series.saturating_sub(count);
    }

    /// `count` series of a family are no longer held because the config no longer names them
    /// (a job or worker removed by a reload): their budget is given back.
    pub(crate) fn released(&mut self, slot: Slot, count: usize) {
        let counts = self.counts(slot);
        counts.series = counts.series.saturating_sub(count as u64);
        self.total_series = self.total_series.saturating_sub(count);
    }

    /// Series held in all families.
    #[cfg(test)]
    pub(crate) fn total_series(&self) -> usize {
        self.total_series
    }

    /// The bookkeeping for the snapshot; `other` only once something went there.
    pub(crate) fn accounts(&self) -> Vec<FamilyAccount> {
        let mut accounts: Vec<FamilyAccount> = self
            .labels
            .iter()
            .map(|(family, counts)| FamilyAccount {
                family: family.clone(),
                series: counts.series,
                dropped: counts.dropped,
                conflicts: counts.conflicts,
                expired: counts.expired,
            })
            .collect();
        let other = &self.other;
        if other.series + other.dropped + other.conflicts + other.expired > 0 {
            accounts.push(FamilyAccount {
                family: Arc::from("other"),
                series: other.series,
                dropped: other.dropped,
                conflicts: other.conflicts,
                expired: other.expired,
            });
        }
        accounts
    }

    fn counts(&mut self, slot: Slot) -> &mut Counts {
        match slot.0.and_then(|index| self.labels.get_mut(index as usize)) {
            Some((_, counts)) => counts,
            None => &mut self.other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_series: usize, per_family: usize, labels: usize) -> Limits {
        Limits {
            max_series,
            max_series_per_family: per_family,
            max_family_labels: labels,
            ..Limits::default()
        }
    }

    #[test]
    fn admits_up_to_the_family_cap_then_counts_drops() {
        let mut accounting = Accounting::new(&limits(10, 2, 10));
        let slot = accounting.slot("a");
        assert!(accounting.admit(slot, 0));
        assert!(accounting.admit(slot, 1));
        assert!(!accounting.admit(slot, 2));
        accounting.dropped(slot);
        assert_eq!(
            accounting.accounts(),
            vec![FamilyAccount {
                family: "a".into(),
                series: 2,
                dropped: 1,
                conflicts: 0,
                expired: 0
            }]
        );
    }

    #[test]
    fn the_global_cap_applies_across_families() {
        let mut accounting = Accounting::new(&limits(2, 10, 10));
        let (a, b) = (accounting.slot("a"), accounting.slot("b"));
        assert!(accounting.admit(a, 0));
        assert!(accounting.admit(b, 0));
        assert!(!accounting.admit(b, 1));
        assert_eq!(accounting.total_series(), 2);
    }

    #[test]
    fn families_past_the_label_budget_are_summed_under_other() {
        let mut accounting = Accounting::new(&limits(100, 100, 1));
        let a = accounting.slot("a");
        let b = accounting.slot("b");
        let c = accounting.slot("c");
        assert!(accounting.admit(a, 0));
        assert!(accounting.admit(b, 0));
        assert!(accounting.admit(c, 0));
        accounting.conflict(c);
        let accounts = accounting.accounts();
        assert_eq!(accounts.len(), 2);
        assert_eq!(
            accounts[1],
            FamilyAccount {
                family: "other".into(),
                series: 2,
                dropped: 0,
                conflicts: 1,
                expired: 0
            }
        );
    }
}
