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
//! Removing a series shifts the positions of the series after it, which the raw-key cache holds:
//! the cache entries of every family that lost series are remapped in one pass, and cached
//! "dropped at a cap" and "conflict" verdicts are forgotten, since room and families changed.

use std::time::Duration;

use hashbrown::HashMap;
use tokio::time::Instant;

use super::limits::Accounting;
use super::series::{Resolved, SeriesValue, Statsd, claims_of};

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

/// A family's series positions before and after an expiry: `GONE` for removed series.
const GONE: u32 = u32::MAX;

impl Statsd {
    /// Removes every series idle for its family's ttl at `now`, and families left empty.
    /// Returns the number of series removed.
    pub(crate) fn expire(&mut self, now: Instant, accounting: &mut Accounting) -> u64 {
        let mut moved: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut removed = 0;
        for index in 0..self.families.len() {
            let Some(positions) = self.expire_family(index, now, accounting) else {
                continue;
            };
            removed += positions.iter().filter(|p| **p == GONE).count() as u64;
            moved.insert(index as u32, positions);
        }
        if !moved.is_empty() {
            self.cache.retain(|_, resolved| match resolved {
                Resolved::Series { family, series } => match moved.get(family) {
                    None => true,
                    Some(positions) => match positions.get(*series as usize) {
                        Some(&position) if position != GONE => {
                            *series = position;
                            true
                        }
                        _ => false,
                    },
                },
                Resolved::Conflict(_) | Resolved::Dropped(_) => false,
                Resolved::Ignored => true,
            });
        }
        removed
    }

    /// Expires one family's idle series; `None` if none were idle, else the old-to-new positions.
    fn expire_family(
        &mut self,
        index: usize,
        now: Instant,
        accounting: &mut Accounting,
    ) -> Option<Vec<u32>> {
        let family = self.families.get_mut(index)?.as_mut()?;
        let ttl = family.ttl?;
        let idle = |touched: Instant| now.saturating_duration_since(touched) >= ttl;
        if !family.series.values().any(|series| idle(series.touched)) {
            return None;
        }
        let mut positions = Vec::with_capacity(family.series.len());
        let mut kept = 0;
        let sets = &mut self.sets;
        family.series.retain(|_, series| {
            if idle(series.touched) {
                if let SeriesValue::Set(set) = &mut series.value {
                    set.release(sets);
                }
                positions.push(GONE);
                false
            } else {
                positions.push(kept);
                kept += 1;
                true
            }
        });
        let gone = positions.iter().filter(|p| **p == GONE).count();
        accounting.expired(family.slot, gone);
        if family.series.is_empty() {
            self.remove_family(index);
        }
        Some(positions)
    }

    /// Frees an empty family's slot and the names it claimed.
    fn remove_family(&mut self, index: usize) {
        let Some(family) = self.families.get_mut(index).and_then(Option::take) else {
            return;
        };
        let (base, claims) = claims_of(&family);
        self.by_base.remove(base.as_str());
        for claim in claims {
            self.claimed.remove(claim.as_str());
        }
        self.free.push(index as u32);
    }
}
