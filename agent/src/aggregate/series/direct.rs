//! Untagged keys found without the raw-key cache.
//!
//! With no mapping rules, an untagged key's family is its sanitised name and its series the
//! family's only one, so the family table already finds it: the name is sanitised into a
//! buffer on the stack (as many steps as hashing it for the cache) and looked up. Such a key
//! takes no cache entry, about a third of what a series of its own family would cost (100 000
//! distinct names, issue 16). A key it cannot resolve (a new one, a conflict, a family whose
//! settings are due after a reload) goes the cached way.

use heartwire_proto::Metric;

use super::members::Values;
use super::{Class, FamilyType, Resolved, Statsd};

/// The longest sanitised name resolved without the cache; longer ones are cached.
const MAX_NAME: usize = 200;

impl Statsd {
    /// Whether `metric`'s series is found without the cache once it exists.
    pub(super) fn direct(&self, metric: &Metric<'_>) -> bool {
        metric.tags.as_str().is_empty() && self.mapping.is_empty()
    }

    /// The series of an untagged key in a world without mapping rules, if it exists and its
    /// family needs nothing done; `None` sends the key the cached way.
    pub(super) fn resolve_direct(&self, class: Class, metric: &Metric<'_>) -> Option<Resolved> {
        let mut buffer = [0; MAX_NAME];
        let base = base_name(metric.name, class.family_type(), &mut buffer)?;
        let key = self.family_by_base(base)?;
        let family = self.families.get(key)?;
        if family.family_type != class.family_type()
            || !family.meta.label_names.is_empty()
            || family.refresh
        {
            return None;
        }
        let series = family.members.get(&Values(&[]))?;
        Some(Resolved::Series {
            family: key,
            series,
        })
    }
}

/// The base name [`Statsd::name`] gives `raw` when no rule maps it, written into `buffer`:
/// sanitised by [`crate::naming::metric_name_bytes`], without a counter's `_total`. `None` if it
/// does not fit.
fn base_name<'b>(raw: &str, family_type: FamilyType, buffer: &'b mut [u8]) -> Option<&'b str> {
    let mut len = 0;
    for byte in crate::naming::metric_name_bytes(raw) {
        *buffer.get_mut(len)? = byte;
        len += 1;
    }
    let name = std::str::from_utf8(buffer.get(..len)?).ok()?;
    if family_type == FamilyType::Counter
        && let Some(stem) = name.strip_suffix("_total").filter(|stem| !stem.is_empty())
    {
        return Some(stem);
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::naming::metric_name;

    /// What [`Statsd::name`] computes for an unmapped key.
    fn expected(raw: &str, family_type: FamilyType) -> String {
        let mut base = metric_name(raw);
        if family_type == FamilyType::Counter
            && let Some(stem) = base.strip_suffix("_total").filter(|stem| !stem.is_empty())
        {
            base.truncate(stem.len());
        }
        base
    }

    #[test]
    fn sanitises_and_strips_like_the_cached_way() {
        for raw in [
            "app.metric1",
            "1xx",
            "",
            "_total",
            "a_total",
            "é.x",
            "a-b_total",
        ] {
            for family_type in [FamilyType::Counter, FamilyType::Gauge] {
                let mut buffer = [0; MAX_NAME];
                assert_eq!(
                    base_name(raw, family_type, &mut buffer),
                    Some(expected(raw, family_type).as_str()),
                    "{raw:?} as {family_type:?}"
                );
            }
        }
    }

    #[test]
    fn a_name_too_long_for_the_buffer_is_left_to_the_cache() {
        let mut buffer = [0; MAX_NAME];
        assert_eq!(
            base_name(&"a".repeat(MAX_NAME + 1), FamilyType::Gauge, &mut buffer),
            None
        );
        assert!(base_name(&"a".repeat(MAX_NAME), FamilyType::Gauge, &mut buffer).is_some());
    }

    proptest! {
        #[test]
        fn the_base_name_is_the_one_the_cached_way_gives(raw in "\\PC{0,40}", counter: bool) {
            let family_type = if counter { FamilyType::Counter } else { FamilyType::Gauge };
            let mut buffer = [0; MAX_NAME];
            let expected = expected(&raw, family_type);
            prop_assert_eq!(base_name(&raw, family_type, &mut buffer), Some(expected.as_str()));
        }
    }
}
