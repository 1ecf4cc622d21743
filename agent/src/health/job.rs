//! A job's freshness and state, decided at read time from what it reported and `now`.
//!
//! Freshness (JOB-HEALTH 8.4): the anchor is the last success, or the moment heartwire started
//! watching the job (its baseline) when it never succeeded. The deadline is `anchor + alert_after`
//! for interval jobs, and for cron jobs the first slot after the anchor plus the headroom
//! `alert_after − P`, so a weekday-only job is not stale on Sunday. Deadlines are held on the
//! monotonic clock: a wall-clock step moves no deadline.
//!
//! No arithmetic here can overflow or panic, whatever the spec and the clocks say: deadlines are
//! offsets from the anchor (a slot's distance plus a duration, in `f64` seconds), never a date
//! plus a duration, and a wall clock beyond what chrono can represent reads as its last instant
//! (such a moment has no cron slot, so the interval rule applies).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeDelta, Utc};

use super::schedule::Schedule;
use crate::clock::Now;

/// What a configured job promises.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// When it runs.
    pub schedule: Schedule,
    /// How long after its last success (or its first deadline) it is stale.
    pub alert_after: Duration,
    /// How late a run may start before the job is `late` (not yet stale).
    pub late_after: Duration,
    /// How many failures in a row make the job `failing`.
    pub failure_threshold: u32,
    /// How long a run may take before it counts as hung (overrun).
    pub max_runtime: Duration,
    /// For progress jobs: how long without `job.progress` before the job is stalled.
    pub stall_after: Option<Duration>,
    /// What this job's verdict does to `/readyz`.
    pub readiness: Readiness,
}

/// What a job's verdict does to `GET /readyz` (`readiness:` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readiness {
    /// Nothing (the default).
    #[default]
    Off,
    /// Not ready while the job is stale: no success in time (`readiness: success` or `true`).
    Success,
    /// Not ready while no run ended in time, whether it succeeded or failed (`readiness:
    /// completed`): seed 000's "has the poll completed in 5 minutes". The deadline is the stale
    /// one, anchored on the last `job.ok` or `job.error` instead of the last success.
    Completed,
}

impl Readiness {
    /// The word the config and `/status` use; `None` for [`Readiness::Off`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Readiness::Off => None,
            Readiness::Success => Some("success"),
            Readiness::Completed => Some("completed"),
        }
    }
}

impl JobSpec {
    /// A spec with the documented defaults for `schedule`.
    pub fn new(schedule: Schedule) -> JobSpec {
        let period = schedule.period();
        JobSpec {
            alert_after: schedule.default_alert_after(),
            late_after: default_late_after(period),
            failure_threshold: 1,
            max_runtime: default_max_runtime(period),
            stall_after: None,
            readiness: Readiness::Off,
            schedule,
        }
    }
}

/// A run may take one period (at least a minute, at most 28 days) before it counts as hung.
pub fn default_max_runtime(period: Duration) -> Duration {
    period.clamp(Duration::from_secs(60), Duration::from_secs(28 * 24 * 3600))
}

/// The late-start tolerance: a quarter of the period, between 10 s and 30 min.
pub fn default_late_after(period: Duration) -> Duration {
    (period / 4).clamp(Duration::from_secs(10), Duration::from_secs(30 * 60))
}

/// The headline state of a job; the first that applies wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// No success before the deadline.
    Stale,
    /// The last `failure_threshold` runs failed.
    Failing,
    /// A run was expected and has not started (within the tolerance), but it is not stale yet.
    Late,
    /// Never succeeded since heartwire started watching, and not stale yet.
    Warming,
    /// Fresh, and the last run did not fail.
    Ok,
}

impl JobState {
    /// Every state, in the order of the `state` label set.
    pub const ALL: [JobState; 5] = [
        JobState::Ok,
        JobState::Late,
        JobState::Stale,
        JobState::Failing,
        JobState::Warming,
    ];

    /// The `state` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Stale => "stale",
            JobState::Failing => "failing",
            JobState::Late => "late",
            JobState::Warming => "warming",
            JobState::Ok => "ok",
        }
    }
}

/// A moment on both clocks: the wall clock for slot math and exported timestamps, the monotonic
/// clock for ages and deadlines.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    wall: DateTime<Utc>,
    now: Now,
}

impl Stamp {
    fn of(now: Now) -> Stamp {
        Stamp {
            wall: utc(now.wall),
            now,
        }
    }
}

/// The wall clock as a chrono instant, saturating at chrono's range (chrono's own conversion
/// panics beyond it).
fn utc(wall: SystemTime) -> DateTime<Utc> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    match wall.duration_since(UNIX_EPOCH) {
        Ok(after) => TimeDelta::from_std(after)
            .ok()
            .and_then(|after| epoch.checked_add_signed(after))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
        Err(before) => TimeDelta::from_std(before.duration())
            .ok()
            .and_then(|before| epoch.checked_sub_signed(before))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
    }
}

/// What a job's health keeps across a restart of the agent (the state file): its anchors as
/// Unix seconds, since a monotonic instant means nothing to another process.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HealthMemory {
    /// When heartwire started watching the job: the anchor of a job that never succeeded.
    pub watched_since: f64,
    /// The last success.
    pub last_success: Option<f64>,
    /// The last run end, ok or error (`readiness: completed`).
    pub last_end: Option<f64>,
    /// The last sign of life: a start, an end or a skip (lateness).
    pub last_signal: Option<f64>,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
}

/// What heartwire remembers of a job between events.
#[derive(Debug, Clone)]
pub struct JobHealth {
    baseline: Stamp,
    last_success: Option<Stamp>,
    last_end: Option<Stamp>,
    last_signal: Option<Stamp>,
    consecutive_failures: u32,
}

/// The read-time verdict on a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The headline state.
    pub state: JobState,
    /// `now` is at or past the deadline.
    pub stale: bool,
    /// Seconds since the last success, or since the baseline if it never succeeded.
    pub seconds_since_success: f64,
    /// When the job goes (or went) stale, as a unix timestamp.
    pub deadline: f64,
    /// When the next run is expected, as a unix timestamp.
    pub next_expected: f64,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// The job has succeeded at least once since heartwire started watching.
    pub ever_succeeded: bool,
    /// Its `readiness` fails `/readyz` at `now`.
    pub unready: bool,
    /// When a run last ended (ok or error), as a unix timestamp.
    pub last_end: Option<f64>,
}

impl JobHealth {
    /// Starts watching a job at `now`: its first deadline counts from here.
    pub fn new(now: Now) -> JobHealth {
        JobHealth {
            baseline: Stamp::of(now),
            last_success: None,
            last_end: None,
            last_signal: None,
            consecutive_failures: 0,
        }
    }

    /// What to keep across a restart.
    pub fn remember(&self) -> HealthMemory {
        let unix = |stamp: Stamp| stamp.now.unix_seconds();
        HealthMemory {
            watched_since: unix(self.baseline),
            last_success: self.last_success.map(unix),
            last_end: self.last_end.map(unix),
            last_signal: self.last_signal.map(unix),
            consecutive_failures: self.consecutive_failures,
        }
    }

    /// The health a previous run of the agent remembered, placed on this process's clocks at
    /// `now`: each anchor as old as the wall clock says it is (a time ahead of `now`, after a
    /// clock step, counts as `now`). Deadlines and verdicts follow from the anchors, so a job
    /// that was stale is stale again at once.
    pub fn recall(memory: &HealthMemory, now: Now) -> JobHealth {
        let at = |unix: f64| stamp_at(unix, now);
        JobHealth {
            baseline: at(memory.watched_since),
            last_success: memory.last_success.map(at),
            last_end: memory.last_end.map(at),
            last_signal: memory.last_signal.map(at),
            consecutive_failures: memory.consecutive_failures,
        }
    }

    /// A run started, or ended without a start heartwire saw, or was skipped: the job is not late.
    pub fn ran(&mut self, now: Now) {
        self.last_signal = Some(Stamp::of(now));
    }

    /// A run ended at `now`, whatever its outcome: what `readiness: completed` waits for.
    pub fn ended(&mut self, now: Now) {
        self.ran(now);
        let stamp = Stamp::of(now);
        if self
            .last_end
            .is_none_or(|last| stamp.now.mono >= last.now.mono)
        {
            self.last_end = Some(stamp);
        }
    }

    /// A run succeeded at `now`. The last success never moves backwards.
    pub fn succeeded(&mut self, now: Now) {
        self.ended(now);
        let stamp = Stamp::of(now);
        if self
            .last_success
            .is_none_or(|last| stamp.now.mono >= last.now.mono)
        {
            self.last_success = Some(stamp);
        }
        self.consecutive_failures = 0;
    }

    /// A run failed (or crashed) at `now`.
    pub fn failed(&mut self, now: Now) {
        self.ended(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
    }

    /// The verdict at `now`.
    pub fn verdict(&self, spec: &JobSpec, now: Now) -> Verdict {
        let anchor = self.last_success.unwrap_or(self.baseline);
        let deadline = project(anchor, deadline_after(spec, anchor.wall), now);
        let signal = self.last_signal.unwrap_or(self.baseline);
        let next_expected = project(signal, next_expected_after(spec, signal.wall), now);
        let now_unix = now.unix_seconds();
        let stale = now_unix >= deadline;
        let unready = match spec.readiness {
            Readiness::Off => false,
            Readiness::Success => stale,
            Readiness::Completed => {
                let end = self.last_end.unwrap_or(self.baseline);
                now_unix >= project(end, deadline_after(spec, end.wall), now)
            }
        };
        let state = if stale {
            JobState::Stale
        } else if self.consecutive_failures >= spec.failure_threshold.max(1) {
            JobState::Failing
        } else if now_unix > next_expected + spec.late_after.as_secs_f64() {
            JobState::Late
        } else if self.last_success.is_none() {
            JobState::Warming
        } else {
            JobState::Ok
        };
        Verdict {
            state,
            stale,
            seconds_since_success: now
                .mono
                .saturating_duration_since(anchor.now.mono)
                .as_secs_f64(),
            deadline,
            next_expected,
            consecutive_failures: self.consecutive_failures,
            ever_succeeded: self.last_success.is_some(),
            unready,
            last_end: self.last_end.map(|end| project(end, 0.0, now)),
        }
    }
}

/// Where a progress job (one with `stall_after`) stands. The one rule, written in PROTOCOL.md:
/// a job is **stalled** only while it is running and silent: a run is open (for jobs that send
/// `job.start`) or, for jobs that only send `job.progress`, progress has been seen since the
/// agent started; and no progress came for `stall_after`, counted from the later of the run's
/// start and its last progress. A job that has not started is not stalled: it is
/// [`Progress::NotStarted`] (a queued crawl), and a finished one is [`Progress::Idle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No `job.start` and no `job.progress` since the agent started.
    NotStarted,
    /// Runs were seen, none is open now.
    Idle,
    /// Running, with progress (or the run's start) within `stall_after`.
    Progressing,
    /// Running, and no progress for `stall_after`.
    Stalled,
}

impl Progress {
    /// The word `/status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Progress::NotStarted => "not_started",
            Progress::Idle => "idle",
            Progress::Progressing => "progressing",
            Progress::Stalled => "stalled",
        }
    }

    /// Where a job stands at `now`: `open_run` is the start of its newest open run (`None` if
    /// none is open), `ever_started` whether it sent `job.start` since the agent started, and
    /// `last_progress` its last `job.progress`.
    pub fn at(
        stall_after: Duration,
        ever_started: bool,
        open_run: Option<Now>,
        last_progress: Option<Now>,
        now: Now,
    ) -> Progress {
        let quiet_since = if ever_started {
            let Some(started) = open_run else {
                return Progress::Idle;
            };
            last_progress
                .filter(|progress| progress.mono >= started.mono)
                .unwrap_or(started)
        } else {
            let Some(progress) = last_progress else {
                return Progress::NotStarted;
            };
            progress
        };
        if now.mono.saturating_duration_since(quiet_since.mono) >= stall_after {
            Progress::Stalled
        } else {
            Progress::Progressing
        }
    }
}

fn stamp_at(unix: f64, now: Now) -> Stamp {
    Stamp::of(now.earlier_at(unix))
}

/// How long after `anchor` (wall clock) the job goes stale, in seconds.
fn deadline_after(spec: &JobSpec, anchor: DateTime<Utc>) -> f64 {
    let headroom = spec.alert_after.saturating_sub(spec.schedule.period());
    match spec.schedule.next_slot_after(anchor) {
        Some(slot) => seconds_between(anchor, slot) + headroom.as_secs_f64(),
        None => spec.alert_after.as_secs_f64(),
    }
}

/// How long after a run signalled at `last` (wall clock) the next one is due, in seconds.
fn next_expected_after(spec: &JobSpec, last: DateTime<Utc>) -> f64 {
    match spec.schedule.next_slot_after(last) {
        Some(slot) => seconds_between(last, slot),
        None => spec.schedule.period().as_secs_f64(),
    }
}

/// Seconds from `from` to `to`; chrono's difference of two instants is always in range.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    to.signed_duration_since(from).as_seconds_f64()
}

/// Maps a moment `offset` seconds after `from` onto the monotonic clock and back to a unix
/// timestamp at `now`, so that a wall-clock step since `from` moves nothing.
fn project(from: Stamp, offset: f64, now: Now) -> f64 {
    let elapsed = now
        .mono
        .saturating_duration_since(from.now.mono)
        .as_secs_f64();
    now.unix_seconds() - elapsed + offset
}

#[cfg(test)]
mod tests;
