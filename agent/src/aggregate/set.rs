//! StatsD sets: the distinct members of a series in tumbling windows.
//!
//! The exposed value is the number of distinct members in the last complete window (until one
//! window has completed, the members seen so far), so the gauge does not fall to zero at each
//! window start. Members are held as 64-bit hashes, capped per series and over all sets, so a
//! flood of members cannot grow memory.

use std::time::Duration;

use hashbrown::{DefaultHashBuilder, HashSet};
use tokio::time::Instant;

use super::settings::Limits;

/// Bounds and shared state of all set series.
#[derive(Debug)]
pub(crate) struct SetLimits {
    pub(crate) window: Duration,
    per_series: usize,
    total: usize,
    held: usize,
    last_sweep: Option<Instant>,
    pub(crate) hasher: DefaultHashBuilder,
}

impl SetLimits {
    pub(crate) fn new(limits: &Limits) -> SetLimits {
        SetLimits {
            window: limits.set_window,
            per_series: limits.max_set_members,
            total: limits.max_set_members_total,
            held: 0,
            last_sweep: None,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// Whether every set should roll its window now: the total budget is spent (members of sets
    /// that stopped receiving would otherwise hold it forever) and no sweep ran this window, so
    /// a sustained flood costs one pass over the sets per window, not one per sample.
    pub(crate) fn sweep_due(&mut self, now: Instant) -> bool {
        let due = self.held >= self.total
            && self
                .last_sweep
                .is_none_or(|last| now.saturating_duration_since(last) >= self.window);
        if due {
            self.last_sweep = Some(now);
        }
        due
    }
}

/// Distinct members of one set series in tumbling windows.
#[derive(Debug)]
pub(crate) struct Set {
    window_start: Instant,
    members: HashSet<u64>,
    previous: Option<usize>,
}

impl Set {
    pub(crate) fn new(now: Instant) -> Set {
        Set {
            window_start: now,
            members: HashSet::new(),
            previous: None,
        }
    }

    /// Counts a member; false if it was new but the series or all sets are full.
    pub(crate) fn insert(&mut self, hash: u64, now: Instant, limits: &mut SetLimits) -> bool {
        self.roll(now, limits);
        if self.members.contains(&hash) {
            return true;
        }
        if self.members.len() >= limits.per_series || limits.held >= limits.total {
            return false;
        }
        self.members.insert(hash);
        limits.held += 1;
        true
    }

    /// Gives the members held back to the total budget, for a series that goes.
    pub(crate) fn release(&mut self, limits: &mut SetLimits) {
        limits.held = limits.held.saturating_sub(self.members.len());
        self.members = HashSet::new();
    }

    pub(crate) fn roll(&mut self, now: Instant, limits: &mut SetLimits) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed < limits.window {
            return;
        }
        let windows = elapsed.as_nanos() / limits.window.as_nanos().max(1);
        self.previous = Some(if windows == 1 { self.members.len() } else { 0 });
        limits.held = limits.held.saturating_sub(self.members.len());
        // A fresh set rather than `clear`, so that a burst's capacity is given back.
        self.members = HashSet::new();
        let into_window =
            Duration::from_nanos((elapsed.as_nanos() % limits.window.as_nanos().max(1)) as u64);
        self.window_start = now - into_window;
    }

    pub(crate) fn distinct(&self, now: Instant, window: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.window_start);
        let count = if elapsed < window {
            self.previous.unwrap_or(self.members.len())
        } else if elapsed < window * 2 {
            self.members.len()
        } else {
            0
        };
        count as f64
    }
}
