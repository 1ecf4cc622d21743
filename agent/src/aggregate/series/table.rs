//! The family table: finding a family by its base name, the names families claim, creating
//! and removing families.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::super::families::claimed_names;
use super::super::limits::Accounting;
use super::super::snapshot::FamilyMeta;
use super::members::Members;
use super::{FamilyKey, FamilyType, Resolved, Statsd, StatsdFamily};

impl Statsd {
    /// The family whose base name is `base`.
    pub(super) fn family_by_base(&self, base: &str) -> Option<FamilyKey> {
        let hash = self.hasher.hash_one(base);
        let families = &self.families;
        self.by_base
            .find(hash, |key| {
                families
                    .get(*key)
                    .is_some_and(|family| family.base() == base)
            })
            .copied()
    }

    /// Whether a StatsD family, a built-in or a self-metric claims `claim` already.
    pub(super) fn claim_taken(&self, claim: &str) -> bool {
        if self.reserved.contains(claim) {
            return true;
        }
        // Every name a family claims is its base, or its base and one of these suffixes.
        let bases = ["_total", "_bucket", "_count", "_sum"]
            .iter()
            .filter_map(|suffix| claim.strip_suffix(suffix));
        std::iter::once(claim)
            .chain(bases)
            .filter_map(|base| self.families.get(self.family_by_base(base)?))
            .any(|family| {
                claimed_names(&family.meta.name, family.family_type.kind())
                    .iter()
                    .any(|name| name == claim)
            })
    }

    /// Creates a family, unless one of its names is taken; the first series is admitted by the
    /// caller like any other, who also gives the family its help, buckets and ttl.
    pub(super) fn new_family(
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
        if claims.iter().any(|claim| self.claim_taken(claim)) {
            return Err(Resolved::Conflict(slot));
        }
        // A family is only created with its first series, so that a flood of new names at the
        // cap cannot grow the family list.
        if !accounting.has_room(0) {
            return Err(Resolved::Dropped(slot));
        }
        let place = self.free.pop().unwrap_or(self.places.len() as u32);
        let label_names = self.label_lists.take(
            &labels
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>(),
        );
        let family = StatsdFamily {
            // The help is the rule's or generated: the caller sets it with the first series.
            meta: Arc::new(FamilyMeta {
                name: name.into(),
                help: Arc::from(""),
                kind: family_type.kind(),
                const_labels: self.no_const_labels.clone(),
                label_names,
            }),
            family_type,
            members: Members::Empty,
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
        self.touch(place);
        let families = &self.families;
        let hasher = &self.hasher;
        self.by_base
            .insert_unique(self.hasher.hash_one(base), key, |key| {
                families
                    .get(*key)
                    .map_or(0, |family| hasher.hash_one(family.base()))
            });
        Ok(key)
    }

    /// Removes an empty family, freeing its place, its base name and its label names.
    pub(in crate::aggregate) fn remove_family(&mut self, key: FamilyKey) {
        let Some(family) = self.families.get(key) else {
            return;
        };
        let hash = self.hasher.hash_one(family.base());
        if let Ok(entry) = self.by_base.find_entry(hash, |held| *held == key) {
            entry.remove();
        }
        let Some(family) = self.families.remove(key) else {
            return;
        };
        self.label_lists.give_back(&family.meta.label_names);
        if let Some(place) = self.places.get_mut(family.place as usize) {
            *place = None;
        }
        self.touch(family.place);
        self.free.push(family.place);
    }
}

impl StatsdFamily {
    /// The name the family is found by: its name without a counter's `_total`.
    pub(super) fn base(&self) -> &str {
        match self.family_type {
            FamilyType::Counter => (self.meta.name)
                .strip_suffix("_total")
                .unwrap_or(&self.meta.name),
            _ => &self.meta.name,
        }
    }
}
