//! Missed runs: schedule slots that passed, `late_after` included, with no sign of the job.
//!
//! The slots are those the `late` state waits for: for a cron job the schedule's slots after the
//! job's last sign of life (a start, an end or a skip; the moment heartwire started watching if
//! none), for an interval job every period after it (`every` is completion-anchored). A slot is
//! missed once `late_after` has passed since it with no new sign: a run that starts late but
//! within `late_after` makes its slot not missed. Everything is in wall-clock Unix seconds, so
//! that the ledger means the same to the next process: [`MissedRuns::last_counted`] is the
//! latest slot counted, and no slot at or before it is counted again, whether the agent
//! restarted (the state file keeps it) or the wall clock stepped back.
//!
//! The count is driven by the aggregator's one-second tick (`Aggregator::count_missed`) and
//! stored, so the counter it feeds only goes up whoever reads it and when. A cron job's count
//! looks at most [`MAX_SLOTS_PER_COUNT`] slots per tick (a long outage is caught up over a few
//! ticks); an interval job's is arithmetic.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::job::JobSpec;
use super::schedule::Schedule;

/// Most cron slots one count steps through.
pub const MAX_SLOTS_PER_COUNT: u64 = 1024;

/// A job's missed slots: the counter, and the latest slot counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MissedRuns {
    /// Slots counted since the agent started: a counter, so it restarts at zero.
    #[serde(skip)]
    total: u64,
    /// The latest slot counted, in wall-clock Unix seconds; none counted if `None`.
    pub last_counted: Option<f64>,
    /// A cron job's next slot after a moment (both Unix seconds; infinite for none), so that
    /// the tick of a job whose slot is not due asks croner nothing.
    #[serde(skip)]
    upcoming: Option<(f64, f64)>,
}

impl MissedRuns {
    /// A ledger that continues from `last_counted` (what the state file kept), counter at zero.
    pub fn continuing(last_counted: Option<f64>) -> MissedRuns {
        MissedRuns {
            last_counted: last_counted.filter(|at| at.is_finite()),
            ..MissedRuns::default()
        }
    }

    /// The job's schedule changed: forget the next slot looked up for the old one.
    pub fn schedule_changed(&mut self) {
        self.upcoming = None;
    }

    /// Slots counted since the agent started.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Counts the slots of `spec` after `since` (the job's last sign of life) whose
    /// `late_after` ran out by `now`, both in Unix seconds, that no count saw before; returns
    /// how many.
    pub fn count(&mut self, spec: &JobSpec, since: f64, now: f64) -> u64 {
        let until = now - spec.late_after.as_secs_f64();
        if !since.is_finite() || !until.is_finite() || until <= since {
            return 0;
        }
        let newly = match &spec.schedule {
            Schedule::Every(period) => self.count_every(period.as_secs_f64(), since, until),
            Schedule::Cron(_) => self.count_slots(&spec.schedule, since, until),
        };
        self.total = self.total.saturating_add(newly);
        newly
    }

    /// Slots `since + k·period` (k ≥ 1) up to `until`.
    fn count_every(&mut self, period: f64, since: f64, until: f64) -> u64 {
        if period < 1.0 {
            return 0;
        }
        let last = ((until - since) / period).floor();
        // Slots at or before the last one counted were counted; the margin absorbs rounding
        // when the last one counted is a slot of this same series.
        let first = match self.last_counted {
            Some(counted) if counted >= since => ((counted - since) / period + 1e-3).floor() + 1.0,
            _ => 1.0,
        };
        if last < first {
            return 0;
        }
        self.last_counted = Some(since + last * period);
        // Saturating casts: a gap of any size is a finite count.
        (last - first + 1.0) as u64
    }

    /// Cron slots strictly after `since` and the last one counted, up to `until`.
    fn count_slots(&mut self, schedule: &Schedule, since: f64, until: f64) -> u64 {
        let mut from = self
            .last_counted
            .map_or(since, |counted| counted.max(since));
        let mut counted = 0;
        while counted < MAX_SLOTS_PER_COUNT {
            let slot = match self.upcoming {
                Some((after, slot)) if after == from => slot,
                _ => {
                    let next = instant(from).and_then(|t| schedule.next_slot_after(t));
                    let slot = next.map_or(f64::INFINITY, unix);
                    self.upcoming = Some((from, slot));
                    slot
                }
            };
            if slot > until {
                break;
            }
            counted += 1;
            self.last_counted = Some(slot);
            from = slot;
        }
        counted
    }
}

/// Unix seconds as a chrono instant; `None` beyond chrono's range.
fn instant(unix: f64) -> Option<DateTime<Utc>> {
    let seconds = unix.floor();
    let nanos = ((unix - seconds) * 1e9) as u32;
    DateTime::from_timestamp(seconds as i64, nanos.min(999_999_999))
}

fn unix(at: DateTime<Utc>) -> f64 {
    at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) / 1e9
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// 2026-01-01T00:00:00Z.
    const T0: f64 = 1_767_225_600.0;
    const HOUR: f64 = 3600.0;

    fn every_minute() -> JobSpec {
        // late_after: a quarter of the period, at least 10 s: 15 s.
        JobSpec::new(Schedule::every(Duration::from_secs(60)).unwrap())
    }

    fn hourly() -> JobSpec {
        // late_after: 15 min.
        JobSpec::new(Schedule::cron("0 * * * *", "UTC").unwrap())
    }

    #[test]
    fn each_interval_slot_is_counted_once_when_its_late_after_runs_out() {
        let spec = every_minute();
        let mut missed = MissedRuns::default();
        assert_eq!(
            missed.count(&spec, T0, T0 + 74.0),
            0,
            "T0+60 is late, not missed"
        );
        assert_eq!(missed.count(&spec, T0, T0 + 75.0), 1);
        assert_eq!(missed.count(&spec, T0, T0 + 75.0), 0, "counted once");
        assert_eq!(missed.count(&spec, T0, T0 + 134.0), 0);
        assert_eq!(missed.count(&spec, T0, T0 + 200.0), 2, "T0+120 and T0+180");
        assert_eq!(missed.total(), 3);
        assert_eq!(missed.last_counted, Some(T0 + 180.0));
        // A day of silence, counted in one step.
        assert_eq!(missed.count(&spec, T0, T0 + 86_400.0 + 15.0), 1440 - 3);
        assert_eq!(missed.total(), 1440);
    }

    #[test]
    fn a_late_run_within_late_after_is_not_missed() {
        let spec = every_minute();
        let mut missed = MissedRuns::default();
        // Due at T0+60; it starts at T0+70, within the 15 s tolerance.
        assert_eq!(missed.count(&spec, T0, T0 + 70.0), 0);
        let since = T0 + 70.0;
        assert_eq!(missed.count(&spec, since, T0 + 144.0), 0);
        // The next slot (T0+130) is missed at T0+145.
        assert_eq!(missed.count(&spec, since, T0 + 145.0), 1);
        assert_eq!(missed.total(), 1);
    }

    #[test]
    fn each_cron_slot_is_counted_once() {
        let spec = hourly();
        let mut missed = MissedRuns::default();
        let since = T0 + 600.0;
        assert_eq!(missed.count(&spec, since, T0 + HOUR + 899.0), 0);
        assert_eq!(missed.count(&spec, since, T0 + HOUR + 900.0), 1, "01:00");
        assert_eq!(
            missed.count(&spec, since, T0 + 2.0 * HOUR + 1200.0),
            1,
            "02:00"
        );
        assert_eq!(missed.count(&spec, since, T0 + 2.0 * HOUR + 1200.0), 0);
        assert_eq!(missed.last_counted, Some(T0 + 2.0 * HOUR));
        // A run at 02:30, then silence: 03:00 is missed, 02:00 is not counted again.
        let since = T0 + 2.5 * HOUR;
        assert_eq!(missed.count(&spec, since, T0 + 3.0 * HOUR + 900.0), 1);
        assert_eq!(missed.total(), 3);
    }

    #[test]
    fn a_restart_that_restores_the_last_slot_counted_does_not_count_it_again() {
        let spec = every_minute();
        let mut before = MissedRuns::default();
        assert_eq!(before.count(&spec, T0, T0 + 200.0), 3);
        let saved = serde_json::to_value(&before).unwrap();
        assert_eq!(saved, serde_json::json!({ "last_counted": T0 + 180.0 }));
        let mut after: MissedRuns = serde_json::from_value(saved).unwrap();
        assert_eq!(after.total(), 0, "a counter restarts at zero");
        assert_eq!(after.count(&spec, T0, T0 + 200.0), 0);
        assert_eq!(after.count(&spec, T0, T0 + 255.0), 1, "T0+240 only");
        let mut cron = MissedRuns::default();
        assert_eq!(cron.count(&hourly(), T0, T0 + 3.0 * HOUR), 2);
        let mut restored = MissedRuns::continuing(cron.last_counted);
        assert_eq!(restored.count(&hourly(), T0, T0 + 3.0 * HOUR), 0);
        // Without the state file the restarted agent watches from its own start: no slot
        // before it is counted either.
        let mut fresh = MissedRuns::default();
        let restart = T0 + 3.0 * HOUR;
        assert_eq!(fresh.count(&hourly(), restart, restart + 600.0), 0);
    }

    #[test]
    fn a_wall_clock_stepping_back_recounts_nothing() {
        let spec = every_minute();
        let mut missed = MissedRuns::default();
        assert_eq!(missed.count(&spec, T0, T0 + 600.0), 9);
        assert_eq!(missed.count(&spec, T0, T0 + 300.0), 0);
        assert_eq!(missed.count(&spec, T0, T0 + 600.0), 0);
        assert_eq!(missed.count(&spec, T0, T0 + 615.0), 1);
    }

    #[test]
    fn a_changed_cron_schedule_counts_by_its_own_slots() {
        let mut missed = MissedRuns::default();
        assert_eq!(
            missed.count(&hourly(), T0, T0 + 1800.0),
            0,
            "01:00 looked up"
        );
        let half_past = JobSpec::new(Schedule::cron("30 * * * *", "UTC").unwrap());
        missed.schedule_changed();
        assert_eq!(missed.count(&half_past, T0, T0 + 2701.0), 1, "00:30");
    }

    #[test]
    fn a_long_cron_outage_is_caught_up_over_a_few_counts() {
        let spec = JobSpec::new(Schedule::cron("* * * * *", "UTC").unwrap());
        let mut missed = MissedRuns::default();
        let now = T0 + 2.0 * 86_400.0 + 15.0;
        let mut counts = Vec::new();
        loop {
            let counted = missed.count(&spec, T0, now);
            if counted == 0 {
                break;
            }
            counts.push(counted);
        }
        assert_eq!(counts, [1024, 1024, 832]);
        assert_eq!(missed.total(), 2 * 1440);
    }
}
