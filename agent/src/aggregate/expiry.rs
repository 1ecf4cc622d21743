//! Series expiry: which StatsD series may go, when, and how the state stays consistent.
//!
//! A series whose ttl has passed since its last sample is removed on the aggregating task's next
//! tick ([`TICK`]), never on scrape: an agent nobody scrapes stays bounded too. Its family goes
//! with its last series, so a stream of short-lived names cannot grow the family list. A tick
//! looks at every series of the families that have a ttl: about 0.3 ms for 100 000 series
//! (`benches/mapping.rs`), so once a second costs nothing measurable.
//!
//! Safe semantics, by type:
//! - Gauges and sets may expire after any ttl: a gauge that comes back is simply set again.
//! - Counters and histograms expire only after an explicit ttl of at least [`MIN_COUNTER_TTL`].
//!   One that comes back restarts from zero: Prometheus sees a new series (or a reset), and
//!   `rate()`/`increase()` cannot count the increment that recreated it. With a short ttl a
//!   sparse counter would be recreated on nearly every increment and read as flat; a long ttl
//!   limits that to senders that really stopped.
//!
//! Families and series are held by handles that stay valid when others go (`slotmap` keys), so
//! nothing is remapped: the raw-key cache only forgets the entries of the series that went (a
//! stale handle would find nothing, but would hold its entry), and its "dropped at a cap" and
//! "conflict" verdicts, since room and families changed.

use std::time::Duration;

use tokio::time::Instant;

use super::limits::Accounting;
use super::series::{FamilyKey, Resolved, SeriesValue, Statsd};

/// How often the aggregating task expires series.
pub const TICK: Duration = Duration::from_secs(1);

/// The shortest ttl a counter or histogram may have (1 h).
pub const MIN_COUNTER_TTL: Duration = Duration::from_secs(3600);

/// Default ttls by type, for series no mapping rule gives one. Zero means never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry {
    /// Gauges and sets idle this long are removed (default 0: never).
    pub gauges: Duration,
    /// Counters and histograms idle this long are removed (default 0: never); otherwise at least
    /// [`MIN_COUNTER_TTL`].
    pub counters: Duration,
}

impl Expiry {
    /// Refuses a counter ttl that is set but shorter than [`MIN_COUNTER_TTL`].
    pub fn validate(&self) -> Result<(), String> {
        check_counter_ttl(self.counters, "counters and histograms")
    }
}

/// Whether `ttl` may apply to counters and histograms; the error says why not and what to do.
/// `what` names what the ttl would expire, e.g. "counters and histograms".
pub(crate) fn check_counter_ttl(ttl: Duration, what: &str) -> Result<(), String> {
    if ttl.is_zero() || ttl >= MIN_COUNTER_TTL {
        return Ok(());
    }
    Err(format!(
        "a ttl of {} would expire {what}: one that comes back restarts from 0, and rate() and \
         increase() cannot count the increment that recreated it, so a sparse counter would read \
         as flat. Counters and histograms expire only after 1h or more: raise the ttl to at \
         least 1h, or limit it to gauges (`match_metric_type: gauge` on a mapping rule, or \
         `statsd.gauge_ttl`)",
        humantime::format_duration(ttl)
    ))
}

/// When a series last got a sample, in nanoseconds since [`Stamps`]' origin: 8 bytes on every
/// series where an `Instant` takes 16.
pub(crate) type Stamp = u64;

/// Turns instants into [`Stamp`]s, counted from the first instant it is given.
#[derive(Debug, Default)]
pub(crate) struct Stamps {
    origin: Option<Instant>,
    /// The last instant turned into a stamp, and its stamp: every line of a batch is applied
    /// at the same instant, so the subtraction is done once a batch, not once a line.
    last: Option<(Instant, Stamp)>,
}

impl Stamps {
    /// `now` as a stamp; an instant before the origin is the origin.
    pub(crate) fn stamp(&mut self, now: Instant) -> Stamp {
        if let Some((last, stamp)) = self.last
            && last == now
        {
            return stamp;
        }
        let origin = *self.origin.get_or_insert(now);
        let stamp =
            u64::try_from(now.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX);
        self.last = Some((now, stamp));
        stamp
    }

    /// How long before `now` `stamp` was (zero if after).
    pub(crate) fn since(&self, stamp: Stamp, now: Instant) -> Duration {
        let Some(origin) = self.origin else {
            return Duration::ZERO;
        };
        now.saturating_duration_since(origin)
            .saturating_sub(Duration::from_nanos(stamp))
    }
}

impl Statsd {
    /// Removes every series idle for its family's ttl at `now`, and families left empty.
    /// Returns the number of series removed.
    pub(crate) fn expire(&mut self, now: Instant, accounting: &mut Accounting) -> u64 {
        let mut removed = 0;
        // In place order, so that the places freed are taken again in the same order as ever.
        for place in 0..self.places.len() {
            let Some(Some(key)) = self.places.get(place).copied() else {
                continue;
            };
            removed += self.expire_family(key, now, accounting);
        }
        if removed > 0 {
            self.forget_last_direct();
            let (families, states) = (&self.families, &self.states);
            self.cache.retain(|_, resolved| match resolved {
                Resolved::Series { family, series } => {
                    families.contains_key(*family) && states.contains_key(*series)
                }
                Resolved::Conflict(_) | Resolved::Dropped(_) => false,
                Resolved::Ignored => true,
            });
        }
        removed
    }

    /// Expires one family's idle series, and the family if none is left; returns how many went.
    fn expire_family(&mut self, key: FamilyKey, now: Instant, accounting: &mut Accounting) -> u64 {
        let Some(family) = self.families.get_mut(key) else {
            return 0;
        };
        let Some(ttl) = family.ttl else {
            return 0;
        };
        let stamps = &self.stamps;
        let idle = |touched: Stamp| stamps.since(touched, now) >= ttl;
        let states = &mut self.states;
        let any_idle = family
            .members
            .iter()
            .any(|(_, series)| states.get(series).is_some_and(|state| idle(state.touched)));
        if !any_idle {
            return 0;
        }
        let before = family.members.len();
        let sets = &mut self.sets;
        family.members.retain(|series| {
            let Some(state) = states.get_mut(series) else {
                return false;
            };
            if !idle(state.touched) {
                return true;
            }
            if let SeriesValue::Set(set) = &mut state.value {
                set.release(sets);
            }
            states.remove(series);
            false
        });
        let gone = before - family.members.len();
        accounting.expired(family.slot, gone);
        let (place, empty) = (family.place, family.members.is_empty());
        self.touch(place);
        if empty {
            self.remove_family(key);
        }
        gone as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_measure_idle_time_from_the_first_instant() {
        let origin = Instant::now();
        let mut stamps = Stamps::default();
        assert_eq!(stamps.since(0, origin), Duration::ZERO);
        assert_eq!(stamps.stamp(origin), 0);
        let later = origin + Duration::from_millis(1500);
        let touched = stamps.stamp(later);
        assert_eq!(touched, 1_500_000_000);
        // The same instant again (the next line of a batch), then another one.
        assert_eq!(stamps.stamp(later), touched);
        assert_eq!(stamps.stamp(origin + Duration::from_secs(3)), 3_000_000_000);
        assert_eq!(stamps.stamp(later), touched);
        assert_eq!(
            stamps.since(touched, later + Duration::from_secs(2)),
            Duration::from_secs(2)
        );
        assert_eq!(stamps.since(touched, origin), Duration::ZERO);
    }

    #[test]
    fn an_instant_before_the_origin_is_the_origin() {
        let origin = Instant::now() + Duration::from_secs(10);
        let mut stamps = Stamps::default();
        stamps.stamp(origin);
        assert_eq!(stamps.stamp(origin - Duration::from_secs(5)), 0);
    }
}
