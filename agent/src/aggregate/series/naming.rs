//! What a new raw key is called: mapping rules, then sanitising, then labels from tags and the
//! rule; and the help, ttl and buckets a family takes from the rule that feeds it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use heartwire_proto::{Metric, MetricKind, Tags};

use super::{FamilyKey, FamilyType, Mapped, Statsd};
use crate::aggregate::histogram::Bounds;
use crate::aggregate::set::SetLimits;
use crate::naming::{label_name, metric_name};

/// A raw key's family and labels, before the family is looked up.
#[derive(Debug)]
pub(super) struct Named<'a> {
    /// The sanitised name without a counter's `_total`: what families are found by.
    pub(super) base: String,
    /// Sorted (label name, value) pairs.
    pub(super) labels: Vec<(String, Cow<'a, str>)>,
    pub(super) from_rule: FromRule,
}

/// What a matching rule gives the family it feeds.
#[derive(Debug, Default)]
pub(super) struct FromRule {
    help: Option<Arc<str>>,
    buckets: Option<Bounds>,
    ttl: Option<Duration>,
}

impl Statsd {
    /// Maps, sanitises and labels `metric`; `None` if a rule drops it.
    pub(super) fn name<'a>(
        &self,
        metric: &Metric<'a>,
        family_type: FamilyType,
    ) -> Option<Named<'a>> {
        let (raw_name, mapped, from_rule) = match self.mapping.map(metric.kind, metric.name) {
            Mapped::Dropped => return None,
            Mapped::Unmapped => (Cow::Borrowed(metric.name), Vec::new(), FromRule::default()),
            Mapped::Named { name, labels, rule } => {
                let from_rule = FromRule {
                    help: rule.help.clone(),
                    buckets: rule.buckets.clone(),
                    ttl: rule.ttl,
                };
                (Cow::Owned(name), labels, from_rule)
            }
        };
        let mut base = metric_name(&raw_name);
        if family_type == FamilyType::Counter
            && let Some(stem) = base.strip_suffix("_total").filter(|stem| !stem.is_empty())
        {
            base.truncate(stem.len());
        }
        Some(Named {
            base,
            labels: labels(metric.tags, mapped),
            from_rule,
        })
    }

    /// Gives family `key` the settings of `from_rule` if it was just created (all of them) or
    /// the rules changed since (help and ttl: existing histograms cannot be re-bucketed).
    pub(super) fn settle(
        &mut self,
        key: FamilyKey,
        from_rule: FromRule,
        metric: &Metric<'_>,
        family_type: FamilyType,
    ) {
        let Some(family) = self.families.get(key) else {
            return;
        };
        let created = family.members.is_empty();
        if !created && !family.refresh {
            return;
        }
        let (help, ttl, bounds) =
            self.family_settings(from_rule, metric.name, metric.kind, family_type);
        if let Some(family) = self.families.get_mut(key) {
            if created {
                family.bounds = bounds;
            }
            if family.meta.help != help {
                Arc::make_mut(&mut family.meta).help = help;
                self.parts.touch(family.place);
            }
            (family.ttl, family.refresh) = (ttl, false);
        }
    }

    /// Help, ttl and buckets for a family fed by `from_rule`: the rule's, else the mapping's
    /// defaults, else heartwire's (the generated help, the type's ttl, `buckets.statsd`).
    fn family_settings(
        &self,
        from_rule: FromRule,
        raw_name: &str,
        kind: MetricKind,
        family_type: FamilyType,
    ) -> (Arc<str>, Option<Duration>, Bounds) {
        let help = from_rule
            .help
            .unwrap_or_else(|| help(raw_name, kind, family_type, &self.sets).into());
        let by_type = match family_type {
            FamilyType::Gauge | FamilyType::Set => self.expiry.gauges,
            FamilyType::Counter | FamilyType::Histogram => self.expiry.counters,
        };
        let ttl = from_rule
            .ttl
            .or(self.mapping.default_ttl())
            .or((!by_type.is_zero()).then_some(by_type));
        let bounds = from_rule
            .buckets
            .or_else(|| self.mapping.default_buckets().cloned())
            .unwrap_or_else(|| self.bounds.clone());
        (help, ttl, bounds)
    }
}

/// Tags and the mapping rule's labels as sorted `(label name, value)` pairs: tag names
/// sanitised, a bare tag is `"true"`, the last of duplicate tags wins, and a rule's label wins
/// over a tag of the same name.
fn labels<'a>(tags: Tags<'a>, mapped: Vec<(Arc<str>, String)>) -> Vec<(String, Cow<'a, str>)> {
    let mut labels: Vec<(String, Cow<'a, str>)> = Vec::new();
    for tag in tags.iter() {
        let name = label_name(tag.key);
        let value = Cow::Borrowed(tag.value.unwrap_or("true"));
        match labels.iter_mut().find(|(existing, _)| *existing == name) {
            Some(label) => label.1 = value,
            None => labels.push((name, value)),
        }
    }
    for (name, value) in mapped {
        match labels.iter_mut().find(|(existing, _)| **existing == *name) {
            Some(label) => label.1 = Cow::Owned(value),
            None => labels.push((name.to_string(), Cow::Owned(value))),
        }
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels
}

fn help(raw: &str, kind: MetricKind, family_type: FamilyType, sets: &SetLimits) -> String {
    match (kind, family_type) {
        (MetricKind::Timer, _) => {
            format!("StatsD timer {raw} (sent in milliseconds, exposed in seconds).")
        }
        (_, FamilyType::Counter) => format!("StatsD counter {raw}."),
        (_, FamilyType::Gauge) => format!("StatsD gauge {raw}."),
        (_, FamilyType::Histogram) => format!("StatsD histogram {raw}."),
        (_, FamilyType::Set) => {
            format!(
                "StatsD set {raw}: distinct members in the last complete {}s window.",
                sets.window.as_secs_f64()
            )
        }
    }
}
