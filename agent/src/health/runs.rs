//! A job's open runs: started, not yet ended.
//!
//! `job.start` opens a run; `job.ok`/`job.error` closes the run with the same `id=`, or without
//! an id the latest run started without one (last in, first out: Sentry's pairing, which keeps
//! a hung run visible when later runs overlap it, JOB-HEALTH 8.9 "Overlap"). A run started on a
//! Unix stream session that closes before the run ends has crashed. Open runs are bounded per
//! job; the oldest is evicted (and reported) when a new one would exceed the bound.

use std::collections::VecDeque;
use std::time::Duration;

use crate::clock::Now;

/// Identifies a Unix stream connection that began with `hello`.
pub type SessionId = u64;

/// One open run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The `id=` it was started with.
    pub id: Option<Box<str>>,
    /// The session it was started on, if any.
    pub session: Option<SessionId>,
    /// When it started.
    pub started: Now,
    /// A number unique among all runs, oldest lowest, for a bound across jobs.
    pub seq: u64,
}

impl Run {
    /// How long it has been running at `now`.
    pub fn age(&self, now: Now) -> Duration {
        now.mono.saturating_duration_since(self.started.mono)
    }
}

/// What happened to a `job.start`.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    /// The run is open.
    Opened,
    /// A run with this id is already open: the start was ignored.
    Duplicate,
    /// The run is open and the oldest run (numbered so) was evicted to stay within the bound.
    Evicted(u64),
}

/// The runs of one job.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    /// Oldest first.
    open: VecDeque<Run>,
}

impl Runs {
    /// Opens a run. At most `bound` runs stay open.
    pub fn start(&mut self, run: Run, bound: usize) -> Started {
        if run.id.is_some() && self.open.iter().any(|open| open.id == run.id) {
            return Started::Duplicate;
        }
        let evicted = if self.open.len() >= bound.max(1) {
            self.open.pop_front().map(|oldest| oldest.seq)
        } else {
            None
        };
        self.open.push_back(run);
        match evicted {
            Some(seq) => Started::Evicted(seq),
            None => Started::Opened,
        }
    }

    /// Drops the run numbered `seq`, if open (evicted by a bound across jobs).
    pub fn evict(&mut self, seq: u64) -> bool {
        let before = self.open.len();
        self.open.retain(|run| run.seq != seq);
        self.open.len() < before
    }

    /// Closes the run `id`, or without an id the latest run opened without one. Returns the run
    /// and whether the pairing was ambiguous (several id-less runs were open).
    pub fn end(&mut self, id: Option<&str>) -> (Option<Run>, bool) {
        let position = match id {
            Some(id) => self
                .open
                .iter()
                .position(|run| run.id.as_deref() == Some(id)),
            None => self.open.iter().rposition(|run| run.id.is_none()),
        };
        let ambiguous = id.is_none() && self.open.iter().filter(|run| run.id.is_none()).count() > 1;
        (position.and_then(|at| self.open.remove(at)), ambiguous)
    }

    /// Removes and returns the runs bound to `session`: they crashed when it closed.
    pub fn crash_session(&mut self, session: SessionId) -> Vec<Run> {
        let (crashed, kept): (Vec<Run>, Vec<Run>) = self
            .open
            .drain(..)
            .partition(|run| run.session == Some(session));
        self.open = kept.into();
        crashed
    }

    /// The open runs, oldest first.
    pub fn open(&self) -> impl Iterator<Item = &Run> {
        self.open.iter()
    }

    /// How many runs are open.
    pub fn running(&self) -> usize {
        self.open.len()
    }

    /// How many open runs have run longer than `max_runtime` at `now`: hung.
    pub fn overrun(&self, max_runtime: Duration, now: Now) -> usize {
        self.open
            .iter()
            .filter(|run| run.age(now) >= max_runtime)
            .count()
    }

    /// When the newest open run started.
    pub fn latest_start(&self) -> Option<Now> {
        self.open
            .iter()
            .map(|run| run.started)
            .max_by_key(|started| started.mono)
    }

    /// When the oldest open run started, as a unix timestamp.
    pub fn oldest_start(&self) -> Option<f64> {
        self.open.front().map(|run| run.started.unix_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: usize = 64;

    fn t0() -> Now {
        Now::at_unix_seconds(1_700_000_000.0)
    }

    fn run(id: Option<&str>, session: Option<SessionId>, started: Now) -> Run {
        let seq = started.unix_seconds() as u64;
        Run {
            id: id.map(Box::from),
            session,
            started,
            seq,
        }
    }

    #[test]
    fn an_id_closes_its_own_run_whatever_the_order() {
        let mut runs = Runs::default();
        runs.start(run(Some("a"), None, t0()), BOUND);
        runs.start(
            run(Some("b"), None, t0().advance(Duration::from_secs(5))),
            BOUND,
        );
        let (run, ambiguous) = runs.end(Some("a"));
        assert_eq!(run.unwrap().started.unix_seconds(), 1_700_000_000.0);
        assert!(!ambiguous);
        assert_eq!(runs.running(), 1);
        assert_eq!(
            runs.end(Some("zzz")).0.map(|r| r.id),
            None,
            "an unknown id closes nothing"
        );
    }

    #[test]
    fn overlapping_runs_without_ids_pair_last_in_first_out_and_the_hung_one_stays_visible() {
        // JOB-HEALTH 8.9 "Overlap": start A, start B, ok → B closed, A overruns.
        let mut runs = Runs::default();
        runs.start(run(None, None, t0()), BOUND);
        runs.start(
            run(None, None, t0().advance(Duration::from_secs(10))),
            BOUND,
        );
        let (closed, ambiguous) = runs.end(None);
        assert_eq!(closed.unwrap().started.unix_seconds(), 1_700_000_010.0);
        assert!(ambiguous, "two id-less runs were open");
        let later = t0().advance(Duration::from_secs(3600));
        assert_eq!(runs.overrun(Duration::from_secs(1800), later), 1);
        assert_eq!(runs.oldest_start(), Some(1_700_000_000.0));
    }

    #[test]
    fn a_duplicate_start_is_ignored() {
        let mut runs = Runs::default();
        assert_eq!(
            runs.start(run(Some("x"), None, t0()), BOUND),
            Started::Opened
        );
        assert_eq!(
            runs.start(run(Some("x"), None, t0()), BOUND),
            Started::Duplicate
        );
        assert_eq!(runs.running(), 1);
    }

    #[test]
    fn open_runs_are_bounded_and_the_oldest_is_evicted() {
        let mut runs = Runs::default();
        for i in 0..3 {
            runs.start(run(None, None, t0().advance(Duration::from_secs(i))), 2);
        }
        assert_eq!(runs.running(), 2);
        assert_eq!(runs.oldest_start(), Some(1_700_000_001.0));
    }

    #[test]
    fn closing_a_session_crashes_exactly_its_runs() {
        let mut runs = Runs::default();
        runs.start(run(Some("1"), Some(7), t0()), BOUND);
        runs.start(run(Some("2"), Some(8), t0()), BOUND);
        runs.start(run(None, None, t0()), BOUND);
        let crashed = runs.crash_session(7);
        assert_eq!(crashed.len(), 1);
        assert_eq!(crashed[0].id.as_deref(), Some("1"));
        assert_eq!(runs.running(), 2);
        assert!(
            runs.crash_session(7).is_empty(),
            "a session crashes its runs once"
        );
    }
}
