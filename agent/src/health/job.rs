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
    /// Whether a stale verdict fails `/readyz`.
    pub readiness: bool,
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
            readiness: false,
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

/// What heartwire remembers of a job between events.
#[derive(Debug, Clone)]
pub struct JobHealth {
    baseline: Stamp,
    last_success: Option<Stamp>,
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
}

impl JobHealth {
    /// Starts watching a job at `now`: its first deadline counts from here.
    pub fn new(now: Now) -> JobHealth {
        JobHealth {
            baseline: Stamp::of(now),
            last_success: None,
            last_signal: None,
            consecutive_failures: 0,
        }
    }

    /// A run started, or ended without a start heartwire saw, or was skipped: the job is not late.
    pub fn ran(&mut self, now: Now) {
        self.last_signal = Some(Stamp::of(now));
    }

    /// A run succeeded at `now`. The last success never moves backwards.
    pub fn succeeded(&mut self, now: Now) {
        self.ran(now);
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
        self.ran(now);
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
        }
    }
}

/// Whether a progress job has gone `stall_after` without progress at `now`; progress never seen
/// counts from `since` (when heartwire started watching).
pub fn stalled(stall_after: Duration, last_progress: Option<Now>, since: Now, now: Now) -> bool {
    let from = last_progress.unwrap_or(since);
    now.mono.saturating_duration_since(from.mono) >= stall_after
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
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn unix(text: &str) -> f64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp() as f64
    }

    fn at(text: &str) -> Now {
        Now::at_unix_seconds(unix(text))
    }

    fn every(period: Duration) -> JobSpec {
        JobSpec::new(Schedule::every(period).unwrap())
    }

    fn cron(expr: &str, tz: &str) -> JobSpec {
        JobSpec::new(Schedule::cron(expr, tz).unwrap())
    }

    #[test]
    fn a_job_that_never_reports_goes_stale_after_its_first_deadline_and_not_before() {
        let spec = every(MINUTE);
        let t0 = at("2026-01-01T00:00:00Z");
        let job = JobHealth::new(t0);
        let just_before = job.verdict(&spec, t0.advance(Duration::from_secs(299)));
        assert!(!just_before.stale);
        assert_eq!(
            just_before.state,
            JobState::Late,
            "a run was due at T0+60 s and did not come"
        );
        assert_eq!(
            job.verdict(&spec, t0.advance(Duration::from_secs(30)))
                .state,
            JobState::Warming
        );
        let at_deadline = job.verdict(&spec, t0.advance(Duration::from_secs(300)));
        assert!(at_deadline.stale);
        assert_eq!(at_deadline.state, JobState::Stale);
        assert_eq!(at_deadline.deadline, t0.unix_seconds() + 300.0);
        assert_eq!(
            at_deadline.seconds_since_success, 300.0,
            "counted from the baseline"
        );
        assert!(!at_deadline.ever_succeeded);
    }

    #[test]
    fn a_success_moves_the_deadline_and_the_state_to_ok() {
        let spec = every(MINUTE);
        let t0 = at("2026-01-01T00:00:00Z");
        let mut job = JobHealth::new(t0);
        job.succeeded(t0.advance(Duration::from_secs(250)));
        let verdict = job.verdict(&spec, t0.advance(Duration::from_secs(260)));
        assert_eq!(verdict.state, JobState::Ok);
        assert_eq!(verdict.deadline, t0.unix_seconds() + 550.0);
        assert_eq!(verdict.next_expected, t0.unix_seconds() + 310.0);
        assert_eq!(verdict.seconds_since_success, 10.0);
        assert!(
            job.verdict(&spec, t0.advance(Duration::from_secs(550)))
                .stale
        );
    }

    #[test]
    fn a_job_that_fails_every_run_is_failing_then_stale() {
        let spec = every(MINUTE);
        let t0 = at("2026-01-01T00:00:00Z");
        let mut job = JobHealth::new(t0);
        job.succeeded(t0);
        for minute in 1..=4 {
            job.failed(t0.advance(MINUTE * minute));
        }
        let verdict = job.verdict(&spec, t0.advance(Duration::from_secs(250)));
        assert_eq!(
            (verdict.state, verdict.consecutive_failures),
            (JobState::Failing, 4)
        );
        assert_eq!(
            job.verdict(&spec, t0.advance(Duration::from_secs(300)))
                .state,
            JobState::Stale,
            "errors never refresh freshness"
        );
        job.succeeded(t0.advance(Duration::from_secs(301)));
        assert_eq!(
            job.verdict(&spec, t0.advance(Duration::from_secs(302)))
                .state,
            JobState::Ok
        );
    }

    #[test]
    fn a_weekday_job_is_not_stale_over_the_weekend() {
        // JOB-HEALTH 8.9: success Fri 09:00:20 → deadline Mon 09:00 + 6 h.
        let spec = cron("0 9 * * 1-5", "UTC");
        assert_eq!(spec.alert_after, 30 * HOUR);
        let friday = at("2026-01-02T09:00:20Z");
        let mut job = JobHealth::new(friday);
        job.succeeded(friday);
        let saturday_afternoon = at("2026-01-03T15:00:21Z");
        let saturday = job.verdict(
            &spec,
            Now {
                wall: saturday_afternoon.wall,
                mono: friday.mono
                    + Duration::from_secs_f64(
                        saturday_afternoon.unix_seconds() - friday.unix_seconds(),
                    ),
            },
        );
        assert!(!saturday.stale, "a constant 30 h rule would fire here");
        assert_eq!(saturday.deadline, unix("2026-01-05T15:00:00Z"));
        assert_eq!(saturday.next_expected, unix("2026-01-05T09:00:00Z"));
        assert_eq!(saturday.state, JobState::Ok);
        let monday = friday.advance(Duration::from_secs_f64(
            unix("2026-01-05T15:00:00Z") - friday.unix_seconds(),
        ));
        assert!(job.verdict(&spec, monday).stale);
    }

    #[test]
    fn seed_000_hourly_and_daily_jobs_use_their_slots() {
        let spec = cron("45 3 * * *", "UTC");
        let run = at("2026-03-10T03:45:10Z");
        let mut job = JobHealth::new(run);
        job.succeeded(run);
        let verdict = job.verdict(&spec, run);
        assert_eq!(
            verdict.deadline,
            unix("2026-03-11T09:45:00Z"),
            "next slot + (30 h − 24 h)"
        );
        let spec = cron("0 * * * *", "UTC");
        let verdict = job.verdict(&spec, run);
        assert_eq!(
            verdict.deadline,
            unix("2026-03-10T05:00:00Z"),
            "next slot + (2 h − 1 h)"
        );
    }

    #[test]
    fn a_job_is_late_when_its_slot_passes_without_a_run() {
        let spec = cron("0 * * * *", "UTC");
        let t0 = at("2026-03-10T10:00:05Z");
        let mut job = JobHealth::new(t0);
        job.succeeded(t0);
        let before = t0.advance(Duration::from_secs(3600 + 15 * 60 - 5));
        assert_eq!(
            job.verdict(&spec, before).state,
            JobState::Ok,
            "within the 15 min tolerance of the 11:00 slot"
        );
        let after = t0.advance(Duration::from_secs(3600 + 15 * 60));
        assert_eq!(job.verdict(&spec, after).state, JobState::Late);
        job.ran(after);
        assert_eq!(
            job.verdict(&spec, after).state,
            JobState::Ok,
            "a start clears lateness"
        );
    }

    #[test]
    fn a_wall_clock_step_moves_no_deadline() {
        let spec = every(MINUTE);
        let t0 = at("2026-01-01T00:00:00Z");
        let mut job = JobHealth::new(t0);
        job.succeeded(t0);
        let later = t0.advance(Duration::from_secs(100));
        let stepped = Now {
            wall: later.wall + HOUR,
            mono: later.mono,
        };
        let verdict = job.verdict(&spec, stepped);
        assert!(
            !verdict.stale,
            "one hour of wall clock passed, but only 100 s of real time"
        );
        assert_eq!(verdict.seconds_since_success, 100.0);
        assert_eq!(
            verdict.deadline,
            stepped.unix_seconds() + 200.0,
            "the exported deadline is 200 s ahead"
        );
    }

    #[test]
    fn the_last_success_never_moves_backwards() {
        let spec = every(MINUTE);
        let t0 = at("2026-01-01T00:00:00Z");
        let mut job = JobHealth::new(t0);
        job.succeeded(t0.advance(MINUTE * 2));
        let mut earlier = t0.advance(MINUTE);
        earlier.mono = t0.mono + MINUTE;
        job.succeeded(earlier);
        assert_eq!(
            job.verdict(&spec, t0.advance(MINUTE * 3))
                .seconds_since_success,
            60.0
        );
    }

    #[test]
    fn a_progress_job_stalls_after_its_quiet_period() {
        // Seed 002's watchdog: no progress for 15 minutes is a stall.
        let t0 = at("2026-01-01T00:00:00Z");
        let quiet = 15 * MINUTE;
        assert!(!stalled(
            quiet,
            None,
            t0,
            t0.advance(quiet - Duration::from_secs(1))
        ));
        assert!(
            stalled(quiet, None, t0, t0.advance(quiet)),
            "never any progress: counted from the baseline"
        );
        let progress = t0.advance(10 * MINUTE);
        assert!(!stalled(quiet, Some(progress), t0, t0.advance(20 * MINUTE)));
        assert!(stalled(quiet, Some(progress), t0, t0.advance(25 * MINUTE)));
    }

    /// Issue 11: `every: 300000y` panicked the aggregating task on a chrono date overflow. The
    /// loader refuses such specs now; the verdict must not panic on them anyway.
    #[test]
    fn verdicts_on_absurd_specs_and_clocks_are_finite_and_do_not_panic() {
        let absurd = JobSpec::new(Schedule::every(Duration::MAX).unwrap());
        assert_eq!(absurd.alert_after, Duration::MAX, "the default saturates");
        let mut cron = cron("0 0 29 2 *", "Pacific/Kiritimati");
        cron.alert_after = Duration::MAX;
        let far = [
            UNIX_EPOCH,
            UNIX_EPOCH - Duration::from_secs(100 * 365 * 86_400),
            UNIX_EPOCH + Duration::from_secs(4999 * 31_557_600),
            UNIX_EPOCH + Duration::from_secs(300_000 * 31_557_600),
        ];
        for spec in [&absurd, &cron, &every(MINUTE)] {
            for wall in far {
                let t0 = Now {
                    wall,
                    mono: tokio::time::Instant::now(),
                };
                let mut job = JobHealth::new(t0);
                let never = job.verdict(spec, t0.advance(HOUR));
                assert!(never.deadline.is_finite() && never.next_expected.is_finite());
                job.succeeded(t0);
                let fresh = job.verdict(spec, t0);
                assert!(!fresh.stale, "{spec:?} at {wall:?}: {fresh:?}");
                assert!(fresh.deadline.is_finite() && fresh.next_expected.is_finite());
            }
        }
    }

    #[test]
    fn a_wall_clock_beyond_chronos_range_saturates() {
        let beyond = UNIX_EPOCH + Duration::from_secs(300_000 * 31_557_600);
        assert_eq!(utc(beyond), DateTime::<Utc>::MAX_UTC);
        assert_eq!(utc(UNIX_EPOCH).timestamp(), 0);
        assert_eq!(
            utc(UNIX_EPOCH - Duration::from_millis(1500)).timestamp_millis(),
            -1500
        );
    }

    #[test]
    fn max_runtime_defaults_to_one_period_within_bounds() {
        assert_eq!(default_max_runtime(Duration::from_secs(10)), MINUTE);
        assert_eq!(default_max_runtime(HOUR), HOUR);
    }

    #[test]
    fn late_tolerance_defaults_to_a_quarter_period_within_bounds() {
        assert_eq!(default_late_after(MINUTE), Duration::from_secs(15));
        assert_eq!(
            default_late_after(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(default_late_after(24 * HOUR), 30 * MINUTE);
    }
}
