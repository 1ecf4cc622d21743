//! A job's recent runs: the last [`RECENT_RUNS`] that ended, crashed or were skipped, for
//! `/status` and the status page's run strip, the way a cron monitor shows its history.
//!
//! Kept for every job, configured or not, in a fixed ring: a new run pushes the oldest out.
//! Times are wall-clock Unix seconds (not monotonic instants), so that a ring saved to a file
//! means the same after a restart.
//!
//! # Memory
//!
//! A run takes 88 bytes in the ring (on 64-bit targets; a test pins it) plus, when given, one
//! allocation each for its reason and signal, tokens of at most 128 bytes
//! ([`heartwire_proto::MAX_NAME_LEN`]; a saved ring is clipped to the same bound). A job's ring is
//! therefore about 1.8 KiB, and at most 7 KiB with the longest reasons and signals: 100 jobs
//! cost about 180 KiB, and the 10 000 jobs of the default `max_series_per_family` cap about
//! 18 MiB. The ring is shared copy-on-write: publishing a snapshot bumps a reference count, and
//! only the first run to end after a publish copies its job's ring.

use std::collections::VecDeque;
use std::sync::Arc;

use heartwire_proto::{JobEnd, MAX_NAME_LEN};
use serde::{Deserialize, Serialize};

use crate::clock::Now;

/// How many runs a job keeps.
pub const RECENT_RUNS: usize = 20;

/// How a past run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// `job.ok`.
    Ok,
    /// `job.error`, unless a TERM or INT cancelled it.
    Error,
    /// `job.skip`: the slot was handled without doing work.
    Skipped,
    /// Its session closed before it ended.
    Crashed,
    /// `job.error` with `signal=TERM` or `INT` (a deploy, a ctrl-C): counted, no failure.
    Cancelled,
}

impl RunResult {
    /// What a `job.ok` (`ok`) or `job.error` ended as; `cancelled` by TERM or INT.
    pub fn of_end(ok: bool, cancelled: bool) -> RunResult {
        match (ok, cancelled) {
            (true, _) => RunResult::Ok,
            (false, true) => RunResult::Cancelled,
            (false, false) => RunResult::Error,
        }
    }

    /// The word `/status` and the page use.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Error => "error",
            RunResult::Skipped => "skipped",
            RunResult::Crashed => "crashed",
            RunResult::Cancelled => "cancelled",
        }
    }
}

/// One run that ended, crashed or was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastRun {
    /// When it started, in Unix seconds, if its `job.start` was seen.
    pub started: Option<f64>,
    /// When it ended (or crashed, or was skipped), in Unix seconds.
    pub ended: f64,
    /// How long it ran: as the app reported it, else since its start; `None` if neither.
    pub duration_seconds: Option<f64>,
    /// How it ended.
    pub result: RunResult,
    /// The `reason=` it gave.
    pub reason: Option<Box<str>>,
    /// The process exit code (`exit=`).
    pub exit_code: Option<i32>,
    /// The signal that ended the process (`signal=`), as sent (`TERM`, `SIGKILL`, `9`).
    pub signal: Option<Box<str>>,
}

impl PastRun {
    /// A run that ended with `line` at `now`: `started` at that Unix time if its start was seen.
    pub fn ended(
        line: &JobEnd<'_>,
        result: RunResult,
        started: Option<f64>,
        duration_seconds: Option<f64>,
        now: Now,
    ) -> PastRun {
        PastRun {
            started,
            ended: now.unix_seconds(),
            duration_seconds,
            result,
            reason: line.reason.map(Box::from),
            exit_code: line.exit,
            signal: line.signal.map(Box::from),
        }
    }

    /// A slot skipped at `now` (`job.skip`), for `reason`.
    pub fn skipped(reason: Option<&str>, now: Now) -> PastRun {
        PastRun {
            started: None,
            ended: now.unix_seconds(),
            duration_seconds: None,
            result: RunResult::Skipped,
            reason: reason.map(Box::from),
            exit_code: None,
            signal: None,
        }
    }

    /// A run started at `started` whose session closed at `now`.
    pub fn crashed(started: Now, now: Now) -> PastRun {
        PastRun {
            started: Some(started.unix_seconds()),
            ended: now.unix_seconds(),
            duration_seconds: Some(now.seconds_since(started.mono)),
            result: RunResult::Crashed,
            reason: None,
            exit_code: None,
            signal: None,
        }
    }

    /// The same run with its texts held to the protocol's token bound.
    fn clipped(mut self) -> PastRun {
        self.reason = self.reason.map(clip);
        self.signal = self.signal.map(clip);
        self
    }
}

/// A job's last [`RECENT_RUNS`] runs, oldest first. Cloning bumps a reference count.
///
/// Saved and loaded as a list of [`PastRun`], oldest first; loading keeps the bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<PastRun>", into = "Vec<PastRun>")]
pub struct RecentRuns {
    runs: Arc<VecDeque<PastRun>>,
}

impl RecentRuns {
    /// The ring of a saved list, oldest first: the newest [`RECENT_RUNS`] are kept, with their
    /// reasons and signals clipped to the protocol's token bound.
    pub fn from_saved(saved: Vec<PastRun>) -> RecentRuns {
        let skip = saved.len().saturating_sub(RECENT_RUNS);
        let mut runs = VecDeque::with_capacity(RECENT_RUNS);
        runs.extend(saved.into_iter().skip(skip).map(PastRun::clipped));
        RecentRuns {
            runs: Arc::new(runs),
        }
    }

    /// The runs to save, oldest first.
    pub fn to_saved(&self) -> Vec<PastRun> {
        self.runs.iter().cloned().collect()
    }

    /// Adds the newest run, pushing out the oldest beyond [`RECENT_RUNS`].
    pub fn push(&mut self, run: PastRun) {
        let runs = Arc::make_mut(&mut self.runs);
        if runs.len() >= RECENT_RUNS {
            runs.pop_front();
        }
        if runs.capacity() < RECENT_RUNS {
            // One allocation for the ring's whole life.
            runs.reserve_exact(RECENT_RUNS - runs.len());
        }
        runs.push_back(run);
    }

    /// Oldest first, as the page's strip reads left to right.
    pub fn oldest_first(&self) -> impl DoubleEndedIterator<Item = &PastRun> + ExactSizeIterator {
        self.runs.iter()
    }

    /// Newest first, as `/status` lists them.
    pub fn newest_first(&self) -> impl Iterator<Item = &PastRun> {
        self.runs.iter().rev()
    }

    /// How many runs are kept.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// No run ended yet.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

impl From<Vec<PastRun>> for RecentRuns {
    fn from(saved: Vec<PastRun>) -> RecentRuns {
        RecentRuns::from_saved(saved)
    }
}

impl From<RecentRuns> for Vec<PastRun> {
    fn from(recent: RecentRuns) -> Vec<PastRun> {
        recent.to_saved()
    }
}

/// `text` cut to at most [`MAX_NAME_LEN`] bytes, on a character boundary.
fn clip(text: Box<str>) -> Box<str> {
    if text.len() <= MAX_NAME_LEN {
        return text;
    }
    let mut end = MAX_NAME_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Box::from(&text[..end])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const T0: f64 = 1_700_000_000.0;

    fn at(seconds: f64) -> Now {
        Now::at_unix_seconds(T0).advance(Duration::from_secs_f64(seconds))
    }

    fn ok_at(seconds: f64) -> PastRun {
        let line = JobEnd {
            job: "sync",
            ..JobEnd::default()
        };
        PastRun::ended(&line, RunResult::Ok, None, Some(0.5), at(seconds))
    }

    fn ends(recent: &RecentRuns) -> Vec<f64> {
        recent.oldest_first().map(|run| run.ended - T0).collect()
    }

    #[test]
    fn the_ring_keeps_the_last_twenty_runs_oldest_first() {
        let mut recent = RecentRuns::default();
        assert!(recent.is_empty());
        for second in 0..25 {
            recent.push(ok_at(f64::from(second)));
        }
        assert_eq!(recent.len(), RECENT_RUNS);
        let expected: Vec<f64> = (5..25).map(f64::from).collect();
        assert_eq!(ends(&recent), expected);
        assert_eq!(
            recent.newest_first().next().map(|run| run.ended),
            Some(T0 + 24.0)
        );
    }

    #[test]
    fn a_published_copy_does_not_see_later_runs() {
        let mut recent = RecentRuns::default();
        recent.push(ok_at(0.0));
        let published = recent.clone();
        recent.push(ok_at(1.0));
        assert_eq!(ends(&published), [0.0]);
        assert_eq!(ends(&recent), [0.0, 1.0]);
    }

    #[test]
    fn an_end_line_gives_its_reason_exit_code_and_signal() {
        let line = JobEnd {
            job: "sync",
            reason: Some("timeout"),
            exit: Some(3),
            signal: Some("KILL"),
            ..JobEnd::default()
        };
        let run = PastRun::ended(&line, RunResult::Error, Some(T0 - 2.0), Some(2.0), at(0.0));
        assert_eq!(run.started, Some(T0 - 2.0));
        assert_eq!(run.ended, T0);
        assert_eq!(run.reason.as_deref(), Some("timeout"));
        assert_eq!(run.exit_code, Some(3));
        assert_eq!(run.signal.as_deref(), Some("KILL"));
        assert_eq!(RunResult::of_end(false, true), RunResult::Cancelled);
        assert_eq!(RunResult::of_end(false, false), RunResult::Error);
        assert_eq!(RunResult::of_end(true, true), RunResult::Ok);
    }

    #[test]
    fn a_crashed_run_lasted_from_its_start_to_the_close() {
        let run = PastRun::crashed(at(10.0), at(13.5));
        assert_eq!(run.result, RunResult::Crashed);
        assert_eq!(run.started, Some(T0 + 10.0));
        assert_eq!(run.ended, T0 + 13.5);
        let took = run.duration_seconds.unwrap_or_default();
        assert!((took - 3.5).abs() < 1e-3, "took {took} s");
        let skipped = PastRun::skipped(Some("not_leader"), at(1.0));
        assert_eq!(skipped.result, RunResult::Skipped);
        assert_eq!(skipped.started, None);
        assert_eq!(skipped.duration_seconds, None);
        assert_eq!(skipped.reason.as_deref(), Some("not_leader"));
    }

    #[test]
    fn a_saved_ring_round_trips_oldest_first_with_results_as_words() {
        let mut recent = RecentRuns::default();
        recent.push(ok_at(0.0));
        recent.push(PastRun::crashed(at(1.0), at(2.0)));
        let saved = serde_json::to_value(&recent).unwrap();
        assert_eq!(saved[0]["result"], "ok");
        assert_eq!(saved[1]["result"], "crashed");
        assert_eq!(saved[1]["started"], T0 + 1.0);
        assert!(saved[1]["reason"].is_null());
        let loaded: RecentRuns = serde_json::from_value(saved).unwrap();
        assert_eq!(loaded, recent);
    }

    #[test]
    fn loading_a_longer_list_keeps_the_newest_runs_and_clips_long_texts() {
        let mut saved: Vec<PastRun> = (0..30).map(|second| ok_at(f64::from(second))).collect();
        saved[29].reason = Some("é".repeat(100).into_boxed_str());
        let loaded = RecentRuns::from_saved(saved);
        assert_eq!(loaded.len(), RECENT_RUNS);
        assert_eq!(
            loaded.oldest_first().next().map(|run| run.ended),
            Some(T0 + 10.0)
        );
        let reason = loaded
            .newest_first()
            .next()
            .and_then(|run| run.reason.clone());
        assert_eq!(reason.as_deref().map(str::len), Some(MAX_NAME_LEN));
        let json: Vec<PastRun> = (0..25).map(|second| ok_at(f64::from(second))).collect();
        let through_serde: RecentRuns =
            serde_json::from_value(serde_json::to_value(&json).unwrap()).unwrap();
        assert_eq!(
            through_serde.len(),
            RECENT_RUNS,
            "deserializing keeps the bound"
        );
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_run_takes_the_documented_88_bytes() {
        // The module docs count memory from this size; a new field must update them.
        assert_eq!(std::mem::size_of::<PastRun>(), 88);
    }
}
