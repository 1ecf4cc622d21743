//! Issue 11: every job the config accepts runs forever. Random job specs, written as config text
//! (durations near and past their bounds included), go through the loader; each accepted one is
//! driven through a simulated year of reports and clock steps (the wall clock jumping both ways,
//! the monotonic clock advancing by milliseconds to days) and its verdicts must never panic and
//! stay consistent. Each refused one must be refused with its file, line and column.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use super::job::{JobHealth, JobSpec, JobState, Progress, Verdict};
use super::runs::{Run, Runs};
use super::schedule::Schedule;
use super::worker::{WorkerHealth, WorkerState};
use crate::clock::Now;
use crate::config;

const YEAR: Duration = Duration::from_secs(365 * 86_400);
/// Steps simulated per case at most, so that a case of millisecond steps ends too.
const MAX_STEPS: usize = 2_500;
const OPEN_RUNS: usize = 100;

/// A duration as an operator might write it: mostly ordinary, sometimes at or past a bound.
fn duration_text() -> impl Strategy<Value = String> {
    let unit = prop::sample::select(vec!["s", "m", "h", "d"]);
    prop_oneof![
        16 => (1u64..=120, unit).prop_map(|(n, unit)| format!("{n}{unit}")),
        3 => prop::sample::select(vec![
            "0s", "500ms", "1s", "1y", "10y", "3652d", "87660h", "10y 1s", "11y", "300000y",
            "584542046090y",
        ])
        .prop_map(str::to_owned),
        1 => (0u64..=u64::MAX / 1000).prop_map(|n| format!("{n}s")),
    ]
}

fn schedule_text() -> impl Strategy<Value = String> {
    let cron = prop::sample::select(vec![
        "* * * * *",
        "*/5 * * * *",
        "0 * * * *",
        "30 2 * * *",
        "0 9 * * 1-5",
        "0 0 1 * *",
        "0 0 29 2 *",
        "@weekly",
        "@yearly",
        "15 1,13 * * 0",
    ]);
    let zone = prop::sample::select(vec![
        "",
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Mars/Olympus",
        "Europe/Riga",
    ]);
    prop_oneof![
        3 => duration_text().prop_map(|every| format!("every: {every}")),
        3 => (cron, zone).prop_map(|(cron, zone)| match zone {
            "" => format!("cron: \"{cron}\""),
            zone => format!("cron: \"{cron}\", tz: {zone}"),
        }),
        1 => Just("every: 1h, cron: \"0 * * * *\"".to_owned()),
        1 => Just(String::new()),
    ]
}

fn job_yaml() -> impl Strategy<Value = String> {
    let optional = || prop::option::weighted(0.3, duration_text());
    let threshold = prop_oneof![
        4 => 1u64..=5,
        1 => prop::sample::select(vec![0, 1_000_000, 1_000_001, 1 << 32]),
    ];
    (
        schedule_text(),
        [optional(), optional(), optional(), optional()],
        prop::option::weighted(0.3, threshold),
        prop::option::weighted(0.5, duration_text()),
    )
        .prop_map(|(schedule, durations, threshold, ttl)| {
            let mut job: Vec<String> = vec![schedule]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let keys = ["alert_after", "late_after", "max_runtime", "stall_after"];
            for (key, value) in keys.iter().zip(durations) {
                if let Some(value) = value {
                    job.push(format!("{key}: {value}"));
                }
            }
            if let Some(threshold) = threshold {
                job.push(format!("failure_threshold: {threshold}"));
            }
            let job = job.join(", ");
            let ttl = ttl.map(|ttl| format!("ttl: {ttl}")).unwrap_or_default();
            format!("# generated\njobs:\n  j: {{ {job} }}\nworkers:\n  w: {{ {ttl} }}\n")
        })
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    Ok,
    Error,
    Skip,
    Progress,
    Beat,
    /// Both clocks move forward.
    Advance(Duration),
    /// The wall clock alone is stepped, by this many seconds.
    Jump(i64),
    /// The wall clock is set far off: before the epoch, near croner's last year, beyond chrono.
    Set(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let millis =
        |range: std::ops::Range<u64>| range.prop_map(|ms| Step::Advance(Duration::from_millis(ms)));
    prop_oneof![
        2 => Just(Step::Start),
        3 => Just(Step::Ok),
        2 => Just(Step::Error),
        1 => Just(Step::Skip),
        1 => Just(Step::Progress),
        1 => Just(Step::Beat),
        3 => millis(1..1_000),
        3 => millis(1_000..3_600_000),
        6 => millis(3_600_000..3 * 86_400_000),
        1 => (-5 * 31_557_600i64..5 * 31_557_600).prop_map(Step::Jump),
        1 => prop::sample::select(vec![0, 1, 157_000_000_000, 9_500_000_000_000]).prop_map(Step::Set),
    ]
}

/// The simulated job, worker and what the test knows they were told.
struct Sim {
    spec: JobSpec,
    ttl: Duration,
    since: Now,
    job: JobHealth,
    runs: Runs,
    worker: WorkerHealth,
    last_success: Option<Now>,
    last_progress: Option<Now>,
    ever_started: bool,
    last_beat: Option<Now>,
    failures: u32,
    seq: u64,
}

impl Sim {
    fn new(spec: JobSpec, ttl: Duration, now: Now) -> Sim {
        Sim {
            spec,
            ttl,
            since: now,
            job: JobHealth::new(now),
            runs: Runs::default(),
            worker: WorkerHealth::new(),
            last_success: None,
            last_progress: None,
            ever_started: false,
            last_beat: None,
            failures: 0,
            seq: 0,
        }
    }

    /// Applies a step; returns the clock after it.
    fn apply(&mut self, step: Step, now: Now) -> Now {
        match step {
            Step::Start => {
                self.job.ran(now);
                self.ever_started = true;
                self.seq += 1;
                let run = Run {
                    id: None,
                    session: None,
                    started: now,
                    seq: self.seq,
                };
                self.runs.start(run, OPEN_RUNS);
            }
            Step::Ok => {
                self.runs.end(None);
                self.job.succeeded(now);
                (self.last_success, self.failures) = (Some(now), 0);
            }
            Step::Error => {
                self.runs.end(None);
                self.job.failed(now);
                self.failures = self.failures.saturating_add(1);
            }
            Step::Skip => self.job.ran(now),
            Step::Progress => self.last_progress = Some(now),
            Step::Beat => {
                self.worker.beat(now, None);
                self.last_beat = Some(now);
            }
            Step::Advance(by) => {
                return Now {
                    wall: now.wall.checked_add(by).unwrap_or(now.wall),
                    mono: now.mono.checked_add(by).unwrap_or(now.mono),
                };
            }
            Step::Jump(seconds) => {
                let by = Duration::from_secs(seconds.unsigned_abs());
                let wall = match seconds >= 0 {
                    true => now.wall.checked_add(by),
                    false => now.wall.checked_sub(by),
                };
                return Now {
                    wall: wall.unwrap_or(now.wall),
                    ..now
                };
            }
            Step::Set(0) => {
                let wall = UNIX_EPOCH.checked_sub(Duration::from_secs(70 * 31_557_600));
                return Now {
                    wall: wall.unwrap_or(UNIX_EPOCH),
                    ..now
                };
            }
            Step::Set(seconds) => {
                let wall = UNIX_EPOCH.checked_add(Duration::from_secs(seconds));
                return Now {
                    wall: wall.unwrap_or(now.wall),
                    ..now
                };
            }
        }
        now
    }
}

/// What the previous verdict said, to check how the next one moved.
struct Seen {
    verdict: Verdict,
    now: Now,
}

fn check(sim: &Sim, step: Step, now: Now, seen: Option<&Seen>) -> Result<Verdict, TestCaseError> {
    let verdict = sim.job.verdict(&sim.spec, now);
    let now_unix = now.unix_seconds();
    prop_assert!(verdict.deadline.is_finite() && verdict.next_expected.is_finite());
    prop_assert!(verdict.seconds_since_success.is_finite() && verdict.seconds_since_success >= 0.0);
    prop_assert_eq!(verdict.stale, now_unix >= verdict.deadline);
    prop_assert_eq!(verdict.state == JobState::Stale, verdict.stale);
    prop_assert_eq!(verdict.consecutive_failures, sim.failures);
    prop_assert_eq!(verdict.ever_succeeded, sim.last_success.is_some());
    let failing = sim.failures >= sim.spec.failure_threshold.max(1);
    if !verdict.stale {
        prop_assert_eq!(verdict.state == JobState::Failing, failing);
    }
    if verdict.state == JobState::Warming {
        prop_assert!(sim.last_success.is_none());
    }
    if matches!(step, Step::Ok) {
        prop_assert!(!verdict.stale, "a success right now is fresh: {verdict:?}");
        prop_assert_eq!(verdict.state, JobState::Ok);
        prop_assert_eq!(verdict.seconds_since_success, 0.0);
    }
    let anchor = sim.last_success.unwrap_or(sim.since);
    let age = now
        .mono
        .saturating_duration_since(anchor.mono)
        .as_secs_f64();
    if matches!(sim.spec.schedule, Schedule::Every(_)) {
        // An interval job is stale exactly once `alert_after` passed without a success.
        let alert_after = sim.spec.alert_after.as_secs_f64();
        if (age - alert_after).abs() > 1e-3 {
            prop_assert_eq!(verdict.stale, age >= alert_after, "age {} s", age);
        }
    }
    if let Some(seen) = seen.filter(|_| !matches!(step, Step::Ok)) {
        // Without a success, the time left shrinks by the monotonic time passed: a wall-clock
        // step moves no deadline.
        let passed = now
            .mono
            .saturating_duration_since(seen.now.mono)
            .as_secs_f64();
        let left = verdict.deadline - now_unix;
        let left_before = seen.verdict.deadline - seen.now.unix_seconds();
        // Rounding of the unix timestamps both verdicts were computed from.
        let magnitude = verdict.deadline.abs() + now_unix.abs() + seen.verdict.deadline.abs();
        let slack = 1e-3 + 4.0 * f64::EPSILON * (magnitude + seen.now.unix_seconds().abs());
        prop_assert!(
            (left - (left_before - passed)).abs() <= slack,
            "left {left}, before {left_before}, passed {passed}"
        );
        let grown = verdict.seconds_since_success - seen.verdict.seconds_since_success;
        prop_assert!((grown - passed).abs() <= 1e-6, "{grown} vs {passed}");
    }
    check_runs_and_worker(sim, now)?;
    Ok(verdict)
}

fn check_runs_and_worker(sim: &Sim, now: Now) -> Result<(), TestCaseError> {
    let running = sim.runs.running();
    prop_assert!(running <= OPEN_RUNS);
    prop_assert!(sim.runs.overrun(sim.spec.max_runtime, now) <= running);
    if let Some(quiet) = sim.spec.stall_after {
        let open = sim.runs.latest_start();
        let progress = Progress::at(quiet, sim.ever_started, open, sim.last_progress, now);
        // Stalled only while running (a run open, or progress seen for progress-only jobs),
        // counted from the later of the run's start and its last progress.
        let running_since = match (sim.ever_started, open, sim.last_progress) {
            (true, Some(started), Some(p)) if p.mono >= started.mono => Some(p),
            (true, Some(started), _) => Some(started),
            (false, _, Some(p)) => Some(p),
            _ => None,
        };
        match running_since {
            None => prop_assert!(matches!(progress, Progress::NotStarted | Progress::Idle)),
            Some(from) => {
                let quiet_for = now.mono.saturating_duration_since(from.mono);
                prop_assert_eq!(progress == Progress::Stalled, quiet_for >= quiet);
            }
        }
    }
    let up = sim
        .last_beat
        .is_some_and(|beat| now.mono.saturating_duration_since(beat.mono) < sim.ttl);
    prop_assert_eq!(sim.worker.state(sim.ttl, now) == WorkerState::Up, up);
    Ok(())
}

/// Whether `message` begins with `prop.yaml:<line>:<column>: `.
fn is_placed(message: &str) -> bool {
    let Some(rest) = message.strip_prefix("prop.yaml:") else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let number = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    number(parts.next()) && number(parts.next()) && parts.next().is_some_and(|m| m.starts_with(' '))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn every_accepted_job_runs_a_year_without_panicking_and_stays_consistent(
        yaml in job_yaml(),
        start in 31_557_600u64..7_000_000_000,
        steps in prop::collection::vec(step(), 1..400),
    ) {
        let loaded = config::from_str(&yaml, "prop.yaml");
        let config = match loaded {
            Ok(config) => config,
            Err(error) => {
                let message = error.to_string();
                prop_assert!(is_placed(&message), "refused without a place: {message}\n{yaml}");
                return Ok(());
            }
        };
        let live = &config.live;
        let spec = live.jobs.iter().find(|(name, _)| name == "j").map(|(_, spec)| spec.clone());
        let ttl = live.workers.iter().find(|(name, _)| name == "w").map(|(_, ttl)| *ttl);
        let (Some(spec), Some(ttl)) = (spec, ttl) else {
            return Err(TestCaseError::fail("the job j or the worker w is missing"));
        };
        let mut now = Now::at_unix_seconds(start as f64);
        let began = now.mono;
        let mut sim = Sim::new(spec, ttl, now);
        let mut seen: Option<Seen> = None;
        for step in steps.iter().cycle().take(MAX_STEPS) {
            now = sim.apply(*step, now);
            let verdict = check(&sim, *step, now, seen.as_ref())?;
            seen = Some(Seen { verdict, now });
            if now.mono.saturating_duration_since(began) >= YEAR {
                break;
            }
        }
    }
}
