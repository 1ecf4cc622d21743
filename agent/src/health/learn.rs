//! Schedules learned for jobs nobody configured, from the cadence of their successes.
//!
//! # The rule
//!
//! Each success is observed at the moment its run started: the matched `job.start`'s time is
//! not kept past the run, so it is the end minus the run's duration (`seconds` of the line, or
//! the time since its `job.start`), and the end itself when no duration is known. A start that
//! is earlier than the last one observed (overlapping runs ending out of order) is ignored.
//! The last [`RUNS_TO_LEARN`] starts are kept, so [`RUNS_TO_LEARN`] − 1 gaps.
//!
//! - **Too few:** fewer than [`RUNS_TO_LEARN`] successes: nothing is learned yet.
//! - **Stable:** every gap is within `max(10 % of the median, 1 s)` of the median gap (the
//!   median of an even count is the mean of the middle two). Otherwise the window is unstable
//!   and nothing changes: an odd gap (one failure, a late run) neither teaches nor unteaches.
//! - **Period:** the median rounded to whole seconds; below one second nothing is learned
//!   (sub-second schedules are out of scope, as for configured jobs).
//! - **Aligned:** a median within 10 % of an hour whose starts all fall in the same minute of
//!   the hour is learned as `M * * * *`; within 10 % of a day with the same hour and minute,
//!   as `M H * * *`. Minutes are read in UTC: heartwire has no agent-wide zone (a configured
//!   cron job's `tz` defaults to UTC too). Otherwise the job is learned as `every: <period>`.
//! - **Re-learned:** once a schedule is learned, a stable window replaces it when its period is
//!   outside the learned period's tolerance (`max(10 %, 1 s)`), or when it is an aligned cadence
//!   that reads differently (the job moved from minute 0 to minute 30). A change of cadence is
//!   therefore re-learned after [`RUNS_TO_LEARN`] − 1 gaps at the new period. An `every`
//!   candidate of the same period never replaces a learned cron (a start that slips past a
//!   minute boundary does not flap the schedule), but an aligned candidate replaces a learned
//!   `every` of the same period.
//!
//! A learned schedule gets the same defaults as a configured one ([`JobSpec::new`]:
//! `alert_after` from [`Schedule::default_alert_after`], `late_after`, `max_runtime`).
//!
//! # Memory
//!
//! [`RUNS_TO_LEARN`] start times and at most [`RUNS_TO_LEARN`] − 1 gaps per job; jobs themselves
//! are bounded by the series caps. The [`Learner`] is serialisable (the state file keeps it): it
//! is written as its recent starts and its [`Learned`] schedule, and the parsed schedule is
//! rebuilt when read back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::job::JobSpec;
use super::schedule::Schedule;

/// Successes needed before a schedule is learned (their starts give one gap fewer).
pub const RUNS_TO_LEARN: usize = 5;

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// Where a job's schedule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSource {
    /// `jobs:` in the config: it always wins.
    Config,
    /// Learned from the job's successes.
    Learned,
}

impl ScheduleSource {
    /// The `source` label value and the `/status` word.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleSource::Config => "config",
            ScheduleSource::Learned => "learned",
        }
    }
}

/// How a learned schedule is written in config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnedKind {
    /// `every: <schedule>`.
    Every,
    /// `cron: "<schedule>"`, in UTC.
    Cron,
}

/// A learned schedule, as the config would write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// `every` or `cron`.
    pub kind: LearnedKind,
    /// `1m 30s` for an interval, `0 * * * *` for a cron expression (UTC).
    pub schedule: String,
    /// The gaps between the starts it was learned from, in seconds, oldest first.
    pub gaps: Vec<f64>,
}

impl Learned {
    /// The schedule it says; `None` if the text does not parse (a hand-edited state file).
    pub fn to_schedule(&self) -> Option<Schedule> {
        match self.kind {
            LearnedKind::Every => humantime::parse_duration(&self.schedule)
                .ok()
                .and_then(|period| Schedule::every(period).ok()),
            LearnedKind::Cron => Schedule::cron(&self.schedule, "UTC").ok(),
        }
    }
}

/// What a job's successes taught so far. Serialised as [`LearnerState`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "LearnerState", into = "LearnerState")]
pub struct Learner {
    /// The starts of the last [`RUNS_TO_LEARN`] successes, in Unix seconds, oldest first.
    starts: VecDeque<f64>,
    /// The schedule learned, if any.
    learned: Option<Learned>,
    /// `learned` as a spec with the default thresholds, built once.
    spec: Option<Arc<JobSpec>>,
}

/// A [`Learner`] as the state file keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LearnerState {
    /// The starts of the last successes, in Unix seconds, oldest first.
    pub recent_starts: Vec<f64>,
    /// The schedule learned, if any.
    pub learned: Option<Learned>,
}

/// Two learners are equal when they saw the same starts and learned the same schedule (the
/// spec follows from the schedule).
impl PartialEq for Learner {
    fn eq(&self, other: &Learner) -> bool {
        self.starts == other.starts && self.learned == other.learned
    }
}

impl From<LearnerState> for Learner {
    fn from(state: LearnerState) -> Learner {
        let mut starts: VecDeque<f64> = state
            .recent_starts
            .into_iter()
            .filter(|start| start.is_finite())
            .collect();
        while starts.len() > RUNS_TO_LEARN {
            starts.pop_front();
        }
        let mut learner = Learner {
            starts,
            ..Learner::default()
        };
        if let Some(learned) = state.learned {
            learner.adopt(learned);
        }
        learner
    }
}

impl From<Learner> for LearnerState {
    fn from(learner: Learner) -> LearnerState {
        LearnerState {
            recent_starts: learner.starts.into(),
            learned: learner.learned,
        }
    }
}

impl Learner {
    /// A success whose run started at `started` (Unix seconds). True if the learned schedule
    /// changed (learned for the first time, or re-learned).
    pub fn observe(&mut self, started: f64) -> bool {
        if !started.is_finite() || self.starts.back().is_some_and(|last| started < *last) {
            return false;
        }
        if self.starts.len() == RUNS_TO_LEARN {
            self.starts.pop_front();
        }
        self.starts.push_back(started);
        let Some(candidate) = infer(self.starts.make_contiguous()) else {
            return false;
        };
        if !self.replaced_by(&candidate) {
            return false;
        }
        self.adopt(candidate.learned());
        true
    }

    /// The learned schedule, if any.
    pub fn learned(&self) -> Option<&Learned> {
        self.learned.as_ref()
    }

    /// The learned schedule as a spec with the default thresholds.
    pub fn spec(&self) -> Option<&Arc<JobSpec>> {
        self.spec.as_ref()
    }

    /// Successes observed towards the next inference (at most [`RUNS_TO_LEARN`]).
    pub fn successes_seen(&self) -> usize {
        self.starts.len()
    }

    /// Whether `candidate` should replace what is learned (see the module docs).
    fn replaced_by(&self, candidate: &Candidate) -> bool {
        let (Some(learned), Some(spec)) = (&self.learned, &self.spec) else {
            return true;
        };
        let period = spec.schedule.period().as_secs_f64();
        if (candidate.median - period).abs() > tolerance(period) {
            return true;
        }
        candidate
            .cron()
            .is_some_and(|expr| learned.kind != LearnedKind::Cron || expr != learned.schedule)
    }

    fn adopt(&mut self, learned: Learned) {
        match learned.to_schedule() {
            Some(schedule) => {
                self.spec = Some(Arc::new(JobSpec::new(schedule)));
                self.learned = Some(learned);
            }
            None => {
                self.spec = None;
                self.learned = None;
            }
        }
    }
}

/// Gaps between the starts of a full window.
type Gaps = [f64; RUNS_TO_LEARN - 1];

/// What a stable window suggests: computed for every success of a steady job, so it holds no
/// text; [`Candidate::learned`] writes it out only when it is adopted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    /// The median gap, in seconds.
    median: f64,
    /// The median rounded to whole seconds, at least 1.
    period: u64,
    /// Minute and, for a daily cadence, hour (UTC) every start fell in.
    aligned: Option<(i64, Option<i64>)>,
    gaps: Gaps,
}

impl Candidate {
    /// The cron expression of an aligned cadence.
    fn cron(&self) -> Option<String> {
        match self.aligned? {
            (minute, None) => Some(format!("{minute} * * * *")),
            (minute, Some(hour)) => Some(format!("{minute} {hour} * * *")),
        }
    }

    fn learned(&self) -> Learned {
        let (kind, schedule) = match self.cron() {
            Some(expr) => (LearnedKind::Cron, expr),
            None => {
                let period = humantime::format_duration(Duration::from_secs(self.period));
                (LearnedKind::Every, period.to_string())
            }
        };
        Learned {
            kind,
            schedule,
            gaps: self.gaps.to_vec(),
        }
    }
}

/// How far a gap may be from `median` and still be the same cadence.
fn tolerance(median: f64) -> f64 {
    (median * 0.1).max(1.0)
}

/// The schedule a full window of `starts` (oldest first) follows, if it is stable.
fn infer(starts: &[f64]) -> Option<Candidate> {
    if starts.len() != RUNS_TO_LEARN {
        return None;
    }
    let mut gaps: Gaps = [0.0; RUNS_TO_LEARN - 1];
    for (gap, pair) in gaps.iter_mut().zip(starts.windows(2)) {
        *gap = pair[1] - pair[0];
    }
    let median = median(gaps);
    if gaps
        .iter()
        .any(|gap| (gap - median).abs() > tolerance(median))
    {
        return None;
    }
    let period = median.round();
    if period < 1.0 {
        return None;
    }
    Some(Candidate {
        median,
        // A saturating cast: the gaps are finite.
        period: period as u64,
        aligned: aligned(starts, median),
        gaps,
    })
}

/// The minute (and, for a daily cadence, hour) every start falls in (UTC), when the cadence is
/// hourly or daily.
fn aligned(starts: &[f64], median: f64) -> Option<(i64, Option<i64>)> {
    let minute_of = |start: f64| {
        let minute = (start.floor() as i64).div_euclid(60);
        (minute.rem_euclid(60), minute.div_euclid(60).rem_euclid(24))
    };
    let (minute, hour) = minute_of(starts[0]);
    let same = |keep_hour: bool| {
        starts.iter().all(|start| {
            let (m, h) = minute_of(*start);
            m == minute && (!keep_hour || h == hour)
        })
    };
    if (median - HOUR).abs() <= HOUR * 0.1 && same(false) {
        Some((minute, None))
    } else if (median - DAY).abs() <= DAY * 0.1 && same(true) {
        Some((minute, Some(hour)))
    } else {
        None
    }
}

fn median(mut values: Gaps) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

#[cfg(test)]
mod tests;
