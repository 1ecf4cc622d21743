//! Named entries with handles that stay valid for their whole life: jobs and workers.
//!
//! An entry's handle is a generational [`slotmap`] key. Removing an entry moves no other, so
//! whatever holds handles (the index of open runs) needs no remapping pass, and a removed
//! entry's handle finds nothing rather than the next entry put in its slot. Snapshots list the
//! entries in the order they were added, as before handles existed: removals keep the order of
//! the rest, and new entries go last.

use std::sync::Arc;

use hashbrown::DefaultHashBuilder;
use indexmap::IndexMap;
use slotmap::{Key, SlotMap};

/// Entries found by name or by handle, listed in the order they were added.
#[derive(Debug)]
pub(crate) struct Registry<K: Key, T> {
    entries: SlotMap<K, T>,
    /// Every entry's name and handle, in the order the entries were added.
    names: IndexMap<Arc<str>, K, DefaultHashBuilder>,
}

impl<K: Key, T> Registry<K, T> {
    pub(crate) fn new() -> Registry<K, T> {
        Registry {
            entries: SlotMap::with_key(),
            names: IndexMap::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The handle of the entry named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<K> {
        self.names.get(name).copied()
    }

    /// Adds `entry` under `name`, last in order; an entry already named so is replaced in place
    /// and keeps its handle.
    pub(crate) fn insert(&mut self, name: Arc<str>, entry: T) -> K {
        if let Some(&key) = self.names.get(&name)
            && let Some(existing) = self.entries.get_mut(key)
        {
            *existing = entry;
            return key;
        }
        let key = self.entries.insert(entry);
        self.names.insert(name, key);
        key
    }

    pub(crate) fn get_mut(&mut self, key: K) -> Option<&mut T> {
        self.entries.get_mut(key)
    }

    /// Every entry with its name, in the order they were added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &T)> {
        self.names
            .iter()
            .filter_map(|(name, &key)| Some((name, self.entries.get(key)?)))
    }

    /// Every entry, in the order they were added.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, entry)| entry)
    }

    /// Every entry, in no particular order: for changes that do not depend on one another.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.entries.values_mut()
    }

    /// Removes the entries `keep` refuses; the others keep their handles and their order.
    /// Returns how many went.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) -> usize {
        let before = self.entries.len();
        let entries = &mut self.entries;
        self.names.retain(|_, &mut key| {
            let kept = entries.get(key).is_some_and(&mut keep);
            if !kept {
                entries.remove(key);
            }
            kept
        });
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    slotmap::new_key_type! {
        struct TestKey;
    }

    fn registry(names: &[&str]) -> (Registry<TestKey, u32>, Vec<TestKey>) {
        let mut registry = Registry::new();
        let keys = (0..)
            .zip(names)
            .map(|(value, name)| registry.insert(Arc::from(*name), value))
            .collect();
        (registry, keys)
    }

    fn names(registry: &Registry<TestKey, u32>) -> Vec<&str> {
        registry.iter().map(|(name, _)| &**name).collect()
    }

    #[test]
    fn handles_of_the_entries_kept_stay_valid_after_a_removal() {
        let (mut registry, keys) = registry(&["a", "b", "c", "d"]);
        assert_eq!(registry.retain(|value| value % 2 == 1), 2);
        assert_eq!(registry.get_mut(keys[1]).copied(), Some(1));
        assert_eq!(registry.get_mut(keys[3]).copied(), Some(3));
        assert_eq!(registry.find("d"), Some(keys[3]));
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn a_removed_entry_s_handle_finds_nothing_even_once_its_slot_is_reused() {
        let (mut registry, keys) = registry(&["a", "b"]);
        registry.retain(|value| *value != 0);
        let reused = registry.insert(Arc::from("c"), 2);
        assert_eq!(registry.get_mut(keys[0]), None);
        assert_eq!(registry.find("a"), None);
        assert_eq!(registry.get_mut(reused).copied(), Some(2));
    }

    #[test]
    fn entries_are_listed_in_the_order_they_were_added_across_removals() {
        let (mut registry, _) = registry(&["a", "b", "c", "d"]);
        registry.retain(|value| *value != 1);
        registry.insert(Arc::from("e"), 4);
        assert_eq!(names(&registry), ["a", "c", "d", "e"]);
    }

    #[test]
    fn adding_a_name_again_replaces_its_entry_in_place() {
        let (mut registry, keys) = registry(&["a", "b"]);
        assert_eq!(registry.insert(Arc::from("a"), 7), keys[0]);
        assert_eq!(names(&registry), ["a", "b"]);
        assert_eq!(registry.values().copied().collect::<Vec<_>>(), [7, 1]);
    }
}
