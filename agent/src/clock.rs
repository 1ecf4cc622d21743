//! The one place that reads the time.
//!
//! Everything else takes a [`Now`] as a parameter, so that state logic is a pure function of its
//! inputs and tests drive time explicitly instead of sleeping.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One reading of both clocks: the wall clock for timestamps that leave the agent, the monotonic
/// clock for durations (a wall-clock step must not turn a run's duration negative).
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// The wall clock, for `*_timestamp_seconds` families.
    pub wall: SystemTime,
    /// The monotonic clock, for durations and windows. Tokio's, so that `tokio::time::pause`
    /// controls it in tests of the runtime.
    pub mono: tokio::time::Instant,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Now {
        Now {
            wall: SystemTime::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    /// A reading at a given wall time, for tests and replays: the monotonic part is the current
    /// monotonic time, so only differences between readings made with [`Now::advance`] matter.
    pub fn at_unix_seconds(seconds: f64) -> Now {
        let wall = UNIX_EPOCH + Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default();
        Now {
            wall,
            mono: tokio::time::Instant::now(),
        }
    }

    /// The same reading moved forward by `by` on both clocks.
    pub fn advance(self, by: Duration) -> Now {
        Now {
            wall: self.wall + by,
            mono: self.mono + by,
        }
    }

    /// The moment `unix` (Unix seconds) on both clocks of this reading: as far back on the
    /// monotonic clock as the wall clock says it is. A moment ahead of this reading (after a
    /// clock step) is this reading. How a time kept by another process (the state file) comes
    /// back on this one's clocks.
    pub fn earlier_at(self, unix: f64) -> Now {
        let age =
            Duration::try_from_secs_f64((self.unix_seconds() - unix).max(0.0)).unwrap_or_default();
        Now {
            wall: self.wall.checked_sub(age).unwrap_or(UNIX_EPOCH),
            mono: self.mono.checked_sub(age).unwrap_or(self.mono),
        }
    }

    /// Seconds since the Unix epoch, as Prometheus timestamps are written; 0 for a wall clock set
    /// before 1970.
    pub fn unix_seconds(&self) -> f64 {
        self.wall
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_secs_f64())
            .unwrap_or(0.0)
    }

    /// Seconds elapsed on the monotonic clock since `earlier`; 0 if `earlier` is later.
    pub fn seconds_since(&self, earlier: tokio::time::Instant) -> f64 {
        self.mono.saturating_duration_since(earlier).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_reads_back_the_wall_time_it_was_built_from() {
        let now = Now::at_unix_seconds(1_700_000_000.25);
        assert_eq!(now.unix_seconds(), 1_700_000_000.25);
    }

    #[test]
    fn earlier_at_goes_back_on_both_clocks_and_never_ahead() {
        let now = Now::at_unix_seconds(1_700_000_000.0);
        let then = now.earlier_at(1_699_999_990.5);
        assert_eq!(then.unix_seconds(), 1_699_999_990.5);
        assert_eq!(now.seconds_since(then.mono), 9.5);
        let ahead = now.earlier_at(1_700_000_100.0);
        assert_eq!(ahead.unix_seconds(), now.unix_seconds());
        assert_eq!(ahead.mono, now.mono);
    }

    #[test]
    fn advance_moves_both_clocks_by_the_same_amount() {
        let start = Now::at_unix_seconds(100.0);
        let later = start.advance(Duration::from_millis(2500));
        assert_eq!(later.unix_seconds(), 102.5);
        assert_eq!(later.seconds_since(start.mono), 2.5);
        assert_eq!(start.seconds_since(later.mono), 0.0);
    }

    #[test]
    fn a_wall_clock_before_the_epoch_reads_as_zero() {
        let now = Now {
            wall: UNIX_EPOCH - Duration::from_secs(5),
            mono: tokio::time::Instant::now(),
        };
        assert_eq!(now.unix_seconds(), 0.0);
    }
}
