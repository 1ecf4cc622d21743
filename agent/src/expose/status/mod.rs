//! What `/readyz`, `/status` and the status page `/` say about every configured job and worker.
//!
//! All three read one [`Health`], the verdicts of the published state evaluated at
//! [`Health::taken_at`], and ages are counted from that moment, so the three never disagree.
//!
//! # `GET /status`
//!
//! `application/json`, one object. The field names are stable; fields may be added. Times are
//! Unix seconds (millisecond precision) with an RFC 3339 UTC twin under the same name plus
//! `_rfc3339`; both are `null` when unknown.
//!
//! | field | meaning |
//! |---|---|
//! | `generated_at`, `generated_at_rfc3339` | when the verdicts were computed |
//! | `ready` | what `/readyz` answers: false while a job marked `readiness` fails it |
//! | `jobs` | every job with a schedule: configured ones in config order, then learned ones (below) |
//! | `unscheduled_jobs` | jobs that reported but have no schedule: none configured, none learned yet (below) |
//! | `workers` | every known worker, configured ones first (below) |
//!
//! A job:
//!
//! | field | meaning |
//! |---|---|
//! | `job` | the name |
//! | `state` | `ok`, `late`, `stale`, `failing` or `warming` (never succeeded, not stale yet) |
//! | `stale` | no success before the deadline (`state` is then `stale`) |
//! | `readiness` | whether the job can fail `/readyz` |
//! | `readiness_on` | `success` (fails `/readyz` while stale), `completed` (while no run ended in time, ok or error) or `null` |
//! | `schedule`, `zone` | `every 1m` or a cron expression, and its time zone (`UTC` for intervals) |
//! | `schedule_source` | `config`, or `learned` from the job's steady successes (`defaults.learn_schedules`) |
//! | `last_success`, `last_success_rfc3339` | the last success; `null` if none since the agent started |
//! | `seconds_since_success` | since the last success, or since the agent started watching |
//! | `deadline`, `deadline_rfc3339` | when the job goes (or went) stale |
//! | `next_expected`, `next_expected_rfc3339` | when the next run is due |
//! | `running` | runs started and not yet ended |
//! | `overrun` | of those, runs past `max_runtime` |
//! | `consecutive_failures` | failed runs in a row |
//! | `crashes` | runs whose session closed before they ended, since the agent started |
//! | `stalled` | progress jobs: running and no `job.progress` for `stall_after`; `null` for other jobs |
//! | `progress` | progress jobs: `not_started` (no `job.start` or `job.progress` since the agent started), `idle` (no run open), `progressing` or `stalled`; `null` for other jobs |
//! | `recent_runs` | its last 20 runs that ended, crashed or were skipped, newest first (below); `[]` before the first |
//!
//! A recent run ([`crate::health::history`]):
//!
//! | field | meaning |
//! |---|---|
//! | `started`, `started_rfc3339` | when it started; `null` unless its `job.start` was seen (never for `skipped`) |
//! | `ended`, `ended_rfc3339` | when it ended, crashed (its session closed) or was skipped |
//! | `duration_seconds` | as the app reported it, else since its start; `null` if neither |
//! | `result` | `ok`, `error`, `skipped`, `crashed` (its session closed before it ended) or `cancelled` (`job.error` with `signal=TERM` or `INT`: no failure) |
//! | `reason` | the `reason=` it gave, or `null` |
//! | `exit_code` | the process exit code (`exit=`), or `null` |
//! | `signal` | the signal that ended the process (`signal=`) as sent, e.g. `TERM` or `9`, or `null` |
//!
//! A job without a schedule: `job`; `schedule_source` and `schedule`, both `null`;
//! `last_success` and `last_run` (the last run to end, any result) with their `_rfc3339` twins;
//! `successes_seen`, the successes counted towards learning its schedule (it is learned at 5
//! steady ones).
//!
//! A worker:
//!
//! | field | meaning |
//! |---|---|
//! | `worker` | the name |
//! | `state` | `up`, `never_seen`, `ttl_expired`, `disconnected` (a crash) or `stopped` (clean) |
//! | `up` | `state` is `up`: the `status` gauge as a boolean |
//! | `last_heartbeat`, `last_heartbeat_rfc3339` | the last `hb`; `null` if none |
//! | `seconds_since_heartbeat` | since the last `hb`; `null` if none |
//! | `ttl_seconds` | how long a heartbeat keeps the worker up |
//!
//! # `GET /readyz`
//!
//! `200 ok` unless a job marked `readiness` fails it: `readiness: success` (or `true`) while the
//! job is stale, `readiness: completed` while no run ended (ok or error) within the same
//! deadline, anchored on the last end instead of the last success. Then `503` with one line per
//! such job: its name, how long since its last success (or run end) and its deadline. Jobs without `readiness`
//! never fail it.

pub mod page;
pub mod words;

use std::fmt::Write as _;

use serde::Serialize;

use self::words::{relative, rfc3339, span};
use crate::aggregate::snapshot::{
    Health, JobState, JobStatus, UnscheduledJob, WorkerState, WorkerStatus,
};
use crate::health::history::PastRun;
use crate::health::job::{Progress, Readiness};

/// The `/status` document.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// When the verdicts were computed, in Unix seconds.
    pub generated_at: f64,
    /// The same, as RFC 3339.
    pub generated_at_rfc3339: Option<String>,
    /// False while a job marked `readiness` fails it.
    pub ready: bool,
    /// Every job with a schedule.
    pub jobs: Vec<JobReport<'a>>,
    /// Every job that reported without a schedule.
    pub unscheduled_jobs: Vec<UnscheduledReport<'a>>,
    /// Every known worker.
    pub workers: Vec<WorkerReport<'a>>,
}

/// One job in `/status`; the fields are documented in the module docs.
#[derive(Debug, Serialize)]
pub struct JobReport<'a> {
    pub job: &'a str,
    pub state: &'static str,
    pub stale: bool,
    pub readiness: bool,
    pub readiness_on: Option<&'static str>,
    pub schedule: &'a str,
    pub schedule_source: &'static str,
    pub zone: &'a str,
    pub last_success: Option<f64>,
    pub last_success_rfc3339: Option<String>,
    pub seconds_since_success: f64,
    pub deadline: f64,
    pub deadline_rfc3339: Option<String>,
    pub next_expected: f64,
    pub next_expected_rfc3339: Option<String>,
    pub running: usize,
    pub overrun: usize,
    pub consecutive_failures: u32,
    pub crashes: u64,
    pub stalled: Option<bool>,
    pub progress: Option<&'static str>,
    pub recent_runs: Vec<RunReport<'a>>,
}

/// One of a job's recent runs in `/status`; the fields are documented in the module docs.
#[derive(Debug, Serialize)]
pub struct RunReport<'a> {
    pub started: Option<f64>,
    pub started_rfc3339: Option<String>,
    pub ended: f64,
    pub ended_rfc3339: Option<String>,
    pub duration_seconds: Option<f64>,
    pub result: &'static str,
    pub reason: Option<&'a str>,
    pub exit_code: Option<i32>,
    pub signal: Option<&'a str>,
}

/// One job without a schedule in `/status`; the fields are documented in the module docs.
#[derive(Debug, Serialize)]
pub struct UnscheduledReport<'a> {
    pub job: &'a str,
    pub schedule_source: Option<&'static str>,
    pub schedule: Option<&'a str>,
    pub last_success: Option<f64>,
    pub last_success_rfc3339: Option<String>,
    pub last_run: Option<f64>,
    pub last_run_rfc3339: Option<String>,
    pub successes_seen: usize,
}

impl<'a> UnscheduledReport<'a> {
    fn of(job: &'a UnscheduledJob) -> UnscheduledReport<'a> {
        UnscheduledReport {
            job: &job.job,
            schedule_source: None,
            schedule: None,
            last_success: job.last_success.map(millis),
            last_success_rfc3339: job.last_success.and_then(rfc3339),
            last_run: job.last_run.map(millis),
            last_run_rfc3339: job.last_run.and_then(rfc3339),
            successes_seen: job.successes_seen,
        }
    }
}

/// One worker in `/status`; the fields are documented in the module docs.
#[derive(Debug, Serialize)]
pub struct WorkerReport<'a> {
    pub worker: &'a str,
    pub state: &'static str,
    pub up: bool,
    pub last_heartbeat: Option<f64>,
    pub last_heartbeat_rfc3339: Option<String>,
    pub seconds_since_heartbeat: Option<f64>,
    pub ttl_seconds: f64,
}

impl<'a> Report<'a> {
    /// The report on `health`.
    pub fn of(health: &'a Health) -> Report<'a> {
        let now = health.taken_at;
        Report {
            generated_at: millis(now),
            generated_at_rfc3339: rfc3339(now),
            ready: unready_jobs(health).next().is_none(),
            jobs: health.jobs.iter().map(JobReport::of).collect(),
            unscheduled_jobs: health
                .unscheduled
                .iter()
                .map(UnscheduledReport::of)
                .collect(),
            workers: health
                .workers
                .iter()
                .map(|worker| WorkerReport::of(worker, now))
                .collect(),
        }
    }
}

impl<'a> JobReport<'a> {
    fn of(job: &'a JobStatus) -> JobReport<'a> {
        JobReport {
            job: &job.job,
            state: job.state.as_str(),
            stale: job.state == JobState::Stale,
            readiness: job.readiness != Readiness::Off,
            readiness_on: job.readiness.as_str(),
            schedule: &job.schedule,
            schedule_source: job.schedule_source.as_str(),
            zone: &job.zone,
            last_success: job.last_success.map(millis),
            last_success_rfc3339: job.last_success.and_then(rfc3339),
            seconds_since_success: millis(job.seconds_since_success),
            deadline: millis(job.deadline),
            deadline_rfc3339: rfc3339(job.deadline),
            next_expected: millis(job.next_expected),
            next_expected_rfc3339: rfc3339(job.next_expected),
            running: job.running,
            overrun: job.overrun,
            consecutive_failures: job.consecutive_failures,
            crashes: job.crashes,
            stalled: job.progress.map(|progress| progress == Progress::Stalled),
            progress: job.progress.map(Progress::as_str),
            recent_runs: job.recent_runs.newest_first().map(RunReport::of).collect(),
        }
    }
}

impl<'a> RunReport<'a> {
    /// The report on `run`.
    pub fn of(run: &'a PastRun) -> RunReport<'a> {
        RunReport {
            started: run.started.map(millis),
            started_rfc3339: run.started.and_then(rfc3339),
            ended: millis(run.ended),
            ended_rfc3339: rfc3339(run.ended),
            duration_seconds: run.duration_seconds.map(millis),
            result: run.result.as_str(),
            reason: run.reason.as_deref(),
            exit_code: run.exit_code,
            signal: run.signal.as_deref(),
        }
    }
}

impl<'a> WorkerReport<'a> {
    fn of(worker: &'a WorkerStatus, now: f64) -> WorkerReport<'a> {
        WorkerReport {
            worker: &worker.worker,
            state: worker.state.as_str(),
            up: worker.state == WorkerState::Up,
            last_heartbeat: worker.last_heartbeat.map(millis),
            last_heartbeat_rfc3339: worker.last_heartbeat.and_then(rfc3339),
            seconds_since_heartbeat: worker
                .last_heartbeat
                .map(|beat| millis((now - beat).max(0.0))),
            ttl_seconds: worker.ttl_seconds,
        }
    }
}

/// `/status` as JSON.
pub fn json(health: &Health) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = serde_json::to_vec(&Report::of(health))?;
    body.push(b'\n');
    Ok(body)
}

/// The jobs that fail `/readyz` now.
pub fn unready_jobs(health: &Health) -> impl Iterator<Item = &JobStatus> {
    health.jobs.iter().filter(|job| job.unready)
}

/// `None` when ready; otherwise the `/readyz` body: one line per job whose readiness fails.
pub fn unready(health: &Health) -> Option<String> {
    let now = health.taken_at;
    let mut body = String::new();
    for job in unready_jobs(health) {
        // Writing to a String cannot fail.
        let _ = match job.readiness {
            Readiness::Completed => {
                let since = match job.last_end {
                    Some(end) => format!("for {}", span((now - end).max(0.0))),
                    None => "since heartwire started".to_owned(),
                };
                writeln!(body, "{}: no run ended (ok or error) {since}", job.job)
            }
            _ => {
                let since = match job.last_success {
                    Some(_) => "",
                    None => " (none since heartwire started)",
                };
                writeln!(
                    body,
                    "{}: stale, no success for {}{since}, deadline {} ({})",
                    job.job,
                    span(job.seconds_since_success),
                    relative(job.deadline, now),
                    rfc3339(job.deadline).as_deref().unwrap_or("unknown"),
                )
            }
        };
    }
    (!body.is_empty()).then(|| format!("not ready: jobs marked readiness\n{body}"))
}

/// Rounds Unix seconds to the millisecond, as the RFC 3339 twins are written.
fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests;
