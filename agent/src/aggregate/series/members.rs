//! A family's series by label values, in creation order; and the label-name lists families
//! share.
//!
//! Most StatsD names are sent untagged, so most families hold one series: [`Members`] keeps
//! that one inline, and builds an index only for a family's second series. Label-name lists
//! repeat across families (`env`, `host`...): [`LabelNameLists`] keeps one copy of each.

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};
use indexmap::{Equivalent, IndexMap};

use super::SeriesKey;
use crate::aggregate::snapshot::LabelValues;

/// Borrowed label values, hashed like the [`LabelValues`] they are compared with, so that a
/// lookup allocates nothing.
#[derive(Debug)]
pub(super) struct Values<'a>(pub(super) &'a [&'a str]);

impl Hash for Values<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `[Arc<str>]` hashes as its length, then each `str`: so does `[&str]`.
        self.0.hash(state);
    }
}

impl Equivalent<LabelValues> for Values<'_> {
    fn equivalent(&self, key: &LabelValues) -> bool {
        self.matches(key)
    }
}

impl Values<'_> {
    fn matches(&self, key: &[Arc<str>]) -> bool {
        self.0.len() == key.len() && self.0.iter().zip(key).all(|(a, b)| *a == &**b)
    }
}

/// A family's series handles by label values, in the order the series were created: the order
/// snapshots list them in.
#[derive(Debug, Default)]
pub(in crate::aggregate) enum Members {
    #[default]
    Empty,
    One(LabelValues, SeriesKey),
    // Boxed: a family of one series would otherwise pay for the index's size.
    Many(Box<IndexMap<LabelValues, SeriesKey, DefaultHashBuilder>>),
}

impl Members {
    pub(in crate::aggregate) fn len(&self) -> usize {
        match self {
            Members::Empty => 0,
            Members::One(..) => 1,
            Members::Many(index) => index.len(),
        }
    }

    pub(in crate::aggregate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The series with these label values.
    pub(super) fn get(&self, values: &Values<'_>) -> Option<SeriesKey> {
        match self {
            Members::Empty => None,
            Members::One(labels, key) => values.matches(labels).then_some(*key),
            Members::Many(index) => index.get(values).copied(),
        }
    }

    /// The label values of the latest series, for a new series to share its equal values.
    pub(super) fn latest(&self) -> Option<&LabelValues> {
        match self {
            Members::Empty => None,
            Members::One(labels, _) => Some(labels),
            Members::Many(index) => index.last().map(|(labels, _)| labels),
        }
    }

    /// Adds a series whose label values no series has.
    pub(super) fn insert(&mut self, labels: LabelValues, key: SeriesKey) {
        match std::mem::take(self) {
            Members::Empty => *self = Members::One(labels, key),
            Members::One(first, first_key) => {
                let mut index =
                    IndexMap::with_capacity_and_hasher(2, DefaultHashBuilder::default());
                index.insert(first, first_key);
                index.insert(labels, key);
                *self = Members::Many(Box::new(index));
            }
            Members::Many(mut index) => {
                index.insert(labels, key);
                *self = Members::Many(index);
            }
        }
    }

    /// Every series, in creation order.
    pub(in crate::aggregate) fn iter(&self) -> impl Iterator<Item = (&LabelValues, SeriesKey)> {
        let (one, many) = match self {
            Members::Empty => (None, None),
            Members::One(labels, key) => (Some((labels, *key)), None),
            Members::Many(index) => (None, Some(index.iter().map(|(l, k)| (l, *k)))),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }

    /// Keeps the series `keep` says to keep, in order; an index left with one series or none
    /// gives its memory back.
    pub(in crate::aggregate) fn retain(&mut self, mut keep: impl FnMut(SeriesKey) -> bool) {
        match std::mem::take(self) {
            Members::Empty => {}
            Members::One(labels, key) => {
                if keep(key) {
                    *self = Members::One(labels, key);
                }
            }
            Members::Many(mut index) => {
                index.retain(|_, key| keep(*key));
                *self = match index.len() {
                    0 => Members::Empty,
                    1 => match index.pop() {
                        Some((labels, key)) => Members::One(labels, key),
                        None => Members::Empty,
                    },
                    _ => {
                        if index.capacity() > 2 * index.len() {
                            index.shrink_to_fit();
                        }
                        Members::Many(index)
                    }
                };
            }
        }
    }
}

/// One shared copy of each label-name list in use, counted by the families that use it.
#[derive(Debug, Default)]
pub(super) struct LabelNameLists {
    lists: HashTable<(LabelValues, usize)>,
    hasher: DefaultHashBuilder,
}

impl LabelNameLists {
    /// The shared list of `names`, for one more family.
    pub(super) fn take(&mut self, names: &[&str]) -> LabelValues {
        let values = Values(names);
        let hash = self.hasher.hash_one(&values);
        let hasher = &self.hasher;
        let entry = self.lists.entry(
            hash,
            |(list, _)| values.matches(list),
            |(list, _)| hasher.hash_one(list),
        );
        let (list, families) = entry
            .or_insert_with(|| (names.iter().map(|name| Arc::from(*name)).collect(), 0))
            .into_mut();
        *families += 1;
        list.clone()
    }

    /// A family that used `list` is gone; the list goes with its last family.
    pub(super) fn give_back(&mut self, list: &LabelValues) {
        let hash = self.hasher.hash_one(list);
        if let Ok(mut entry) = self.lists.find_entry(hash, |(held, _)| held == list) {
            let families = &mut entry.get_mut().1;
            *families = families.saturating_sub(1);
            if *families == 0 {
                entry.remove();
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lists.len()
    }
}

#[cfg(test)]
mod tests {
    use slotmap::SlotMap;

    use super::*;

    fn labels(values: &[&str]) -> LabelValues {
        values.iter().map(|value| Arc::from(*value)).collect()
    }

    fn keys(n: usize) -> Vec<SeriesKey> {
        let mut map: SlotMap<SeriesKey, ()> = SlotMap::with_key();
        (0..n).map(|_| map.insert(())).collect()
    }

    #[test]
    fn finds_series_by_borrowed_values_from_one_to_many() {
        let keys = keys(3);
        let mut members = Members::default();
        assert!(members.is_empty());
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            members.insert(labels(&[name, "x"]), keys[i]);
            assert_eq!(members.len(), i + 1);
        }
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            assert_eq!(members.get(&Values(&[name, "x"])), Some(keys[i]));
        }
        assert_eq!(members.get(&Values(&["a"])), None);
        assert_eq!(members.get(&Values(&["a", "y"])), None);
        assert_eq!(members.latest(), Some(&labels(&["c", "x"])));
    }

    #[test]
    fn keeps_creation_order_through_removals_and_shrinks_back_to_one() {
        let keys = keys(3);
        let mut members = Members::default();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            members.insert(labels(&[name]), keys[i]);
        }
        members.retain(|key| key != keys[1]);
        let order: Vec<SeriesKey> = members.iter().map(|(_, key)| key).collect();
        assert_eq!(order, vec![keys[0], keys[2]]);
        members.retain(|key| key != keys[0]);
        assert!(matches!(members, Members::One(_, key) if key == keys[2]));
        assert_eq!(members.get(&Values(&["c"])), Some(keys[2]));
        members.retain(|_| false);
        assert!(matches!(members, Members::Empty));
        assert_eq!(members.iter().count(), 0);
    }

    #[test]
    fn a_family_without_labels_finds_its_one_series() {
        let keys = keys(1);
        let mut members = Members::default();
        members.insert(labels(&[]), keys[0]);
        assert_eq!(members.get(&Values(&[])), Some(keys[0]));
        assert_eq!(members.iter().count(), 1);
    }

    #[test]
    fn label_name_lists_are_shared_until_their_last_family_goes() {
        let mut lists = LabelNameLists::default();
        let a = lists.take(&["env", "host"]);
        let b = lists.take(&["env", "host"]);
        let other = lists.take(&["env"]);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*other[0], "env");
        assert_eq!(lists.len(), 2);
        lists.give_back(&a);
        assert_eq!(lists.len(), 2);
        lists.give_back(&b);
        assert_eq!(lists.len(), 1);
        let again = lists.take(&["env", "host"]);
        assert_eq!(again.len(), 2);
    }
}
