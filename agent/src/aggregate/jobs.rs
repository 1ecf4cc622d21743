//! The job families, fed by `job.start`, `job.ok`, `job.error`, `job.skip` and `job.progress`,
//! and for configured jobs the health verdicts computed when read.
//!
//! Per job: runs by result, a duration histogram, last success and last run timestamps (never
//! moving backwards), open runs, and progress. A `job.ok`/`job.error` without seconds takes its
//! duration from the matching open run ([`crate::health::runs`]: by `id=`, else the latest run
//! started without one). Open runs are bounded per job and in total; an evicted run is counted.
//! Every run that ends, crashes or is skipped joins the job's recent runs
//! ([`crate::health::history`]).
//!
//! A configured job ([`JobSpec`]) is present from the first snapshot: its runs count from 0, and
//! staleness, state, deadline and next expected run come from [`JobHealth`] at read time. A run
//! open on a session that closes has crashed: it ends as an error at once.
//! A job nobody configured that succeeds steadily gets a learned schedule and the same verdicts,
//! and every job with a schedule counts its missed slots ([`scheduled`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use heartwire_proto::{JobEnd, JobProgress, JobSkip, JobStart};

use super::Tally;
use super::families::{self, FamilyNames, Setting};
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::registry::Registry;
use super::settings::Limits;
use super::snapshot::{Family, LabelValues, Series, Value};
use crate::clock::Now;
use crate::health::history::{PastRun, RecentRuns, RunResult};
use crate::health::job::{JobHealth, JobSpec, JobState};
use crate::health::learn::Learner;
use crate::health::missed::MissedRuns;
use crate::health::runs::{Run, Runs, SessionId, Started};

mod memory;
mod metas;
mod scheduled;
mod watched;

pub use self::memory::{JobMemory, OpenRun};
use self::metas::{Metas, VerdictMetas};
pub use self::scheduled::UnscheduledJob;
use self::watched::WatchedJob;
pub use self::watched::WatchedJobs;

/// Most (result, reason) combinations a job's last-result family lists: reasons come from
/// senders, so they are bounded; later ones are counted as reason `other`.
const MAX_RESULTS_PER_JOB: usize = 16;

/// How a run ended, for the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok = 0,
    Error = 1,
    Skipped = 2,
}

#[derive(Debug)]
struct Job {
    labels: LabelValues,
    result_labels: [LabelValues; 3],
    state_labels: [LabelValues; JobState::ALL.len()],
    runs_total: [u64; 3],
    /// Every (result, reason) a run of this job ended with, as label values; bounded by
    /// [`MAX_RESULTS_PER_JOB`], past which reasons fold into `other`.
    results_seen: Vec<LabelValues>,
    /// Which of `results_seen` the last run ended with.
    last_result: Option<usize>,
    crashes: u64,
    duration: Histogram,
    last_success: Option<f64>,
    last_run: Option<f64>,
    runs: Runs,
    /// The last runs that ended, crashed or were skipped, for `/status` and the page.
    recent_runs: RecentRuns,
    ever_started: bool,
    progress: f64,
    last_progress: Option<Now>,
    health: JobHealth,
    spec: Option<Arc<JobSpec>>,
    /// What its successes taught of its cadence (kept across restarts by the state file).
    learner: Learner,
    /// Its missed slots: the counter and the latest slot counted (kept across restarts).
    missed: MissedRuns,
    /// The schedule in force: `spec`, else the learned one ([`Job::refresh_schedule`]).
    scheduled: Option<scheduled::Scheduled>,
}

slotmap::new_key_type! {
    /// A job's handle: valid for as long as the job is kept, whatever else goes.
    struct JobKey;
}

/// Every job's state.
#[derive(Debug)]
pub(crate) struct Jobs {
    metas: Metas,
    results: [Arc<str>; 3],
    bounds: Bounds,
    jobs: Registry<JobKey, Job>,
    /// Every open run by sequence number, oldest first, with its job, for the bound across jobs.
    open: BTreeMap<u64, JobKey>,
    next_seq: u64,
    max_per_job: usize,
    max_open: usize,
    slot: Slot,
    /// Whether jobs nobody configured get learned schedules (`defaults.learn_schedules`).
    learn: bool,
}

impl Jobs {
    pub(crate) fn new(
        names: &FamilyNames,
        limits: &Limits,
        bounds: Bounds,
        accounting: &mut Accounting,
    ) -> Jobs {
        Jobs {
            metas: Metas::new(names),
            results: [
                Arc::from("ok"),
                Arc::from("error"),
                Arc::from(names.setting(Setting::SkippedResult)),
            ],
            bounds,
            jobs: Registry::new(),
            open: BTreeMap::new(),
            next_seq: 0,
            max_per_job: limits.max_open_starts_per_job,
            max_open: limits.max_open_starts,
            slot: accounting.slot(names.name(families::Family::JobRuns)),
            learn: true,
        }
    }

    /// Replaces the configured jobs: kept jobs keep their state under the new spec, new ones
    /// are watched from `now`, and dropped ones lose their verdicts (and vanish if they never
    /// reported anything).
    pub(crate) fn reconfigure(
        &mut self,
        jobs: &[(String, JobSpec)],
        now: Now,
        accounting: &mut Accounting,
    ) {
        for job in self.jobs.values_mut() {
            job.spec = None;
        }
        self.configure(jobs, now, accounting);
        // A silent job never started, so it has no open run; the other jobs keep their handles,
        // so the open runs of any job still end where they belong.
        let removed = self.jobs.retain(|job| job.spec.is_some() || job.reported());
        accounting.released(self.slot, removed);
    }

    /// Watches the configured jobs from `now` on: they are present from the first snapshot.
    pub(crate) fn configure(
        &mut self,
        jobs: &[(String, JobSpec)],
        now: Now,
        accounting: &mut Accounting,
    ) {
        for (name, spec) in jobs {
            if let Some(key) = self.job(name, now, accounting)
                && let Some(job) = self.jobs.get_mut(key)
            {
                job.spec = Some(Arc::new(spec.clone()));
            }
        }
        self.refresh_schedules();
    }

    pub(crate) fn start(
        &mut self,
        line: &JobStart<'_>,
        session: Option<SessionId>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        let Some(key) = self.job(line.job, now, accounting) else {
            return;
        };
        let seq = self.next_seq;
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        job.ever_started = true;
        job.health.ran(now);
        let run = Run {
            id: line.id.map(Box::from),
            session,
            started: now,
            seq,
        };
        match job.runs.start(run, self.max_per_job) {
            Started::Duplicate => return,
            Started::Opened => {}
            Started::Evicted(evicted) => {
                self.open.remove(&evicted);
                tally.starts_evicted += 1;
            }
        }
        self.next_seq += 1;
        self.open.insert(seq, key);
        while self.open.len() > self.max_open {
            let Some((seq, owner)) = self.open.pop_first() else {
                break;
            };
            if let Some(owner) = self.jobs.get_mut(owner) {
                owner.runs.evict(seq);
            }
            tally.starts_evicted += 1;
        }
    }

    pub(crate) fn end(
        &mut self,
        line: &JobEnd<'_>,
        outcome: Outcome,
        now: Now,
        accounting: &mut Accounting,
    ) {
        let Some(key) = self.job(line.job, now, accounting) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let (started, _ambiguous) = job.runs.end(line.id);
        if let Some(run) = &started {
            self.open.remove(&run.seq);
        }
        let started_at = started.as_ref().map(|run| run.started.unix_seconds());
        let duration = line
            .seconds
            .or_else(|| started.map(|run| now.seconds_since(run.started.mono)));
        // A run cancelled by TERM or INT (a deploy, a ctrl-C) is counted, but is no failure.
        let cancelled = matches!(
            line.signal,
            Some("TERM" | "SIGTERM" | "INT" | "SIGINT" | "15" | "2")
        );
        let reason = line.reason.or(line.signal);
        let ended = Ended {
            outcome,
            reason,
            cancelled,
        };
        job.finish(ended, duration, &self.bounds, &self.results, now);
        if outcome == Outcome::Ok {
            job.learn_from_success(duration, now, self.learn);
        }
        let result = RunResult::of_end(outcome == Outcome::Ok, cancelled);
        let past = PastRun::ended(line, result, started_at, duration, now);
        job.recent_runs.push(past);
    }

    /// A skipped slot: counted as a run result and as a sign of life for lateness. It neither
    /// ends an open run nor moves the last-run time, since no work was done.
    pub(crate) fn skip(&mut self, line: &JobSkip<'_>, now: Now, accounting: &mut Accounting) {
        let Some(key) = self.job(line.job, now, accounting) else {
            return;
        };
        if let Some(job) = self.jobs.get_mut(key) {
            job.runs_total[Outcome::Skipped as usize] += 1;
            job.record_result(Outcome::Skipped, line.reason, &self.results);
            job.health.ran(now);
            job.recent_runs.push(PastRun::skipped(line.reason, now));
        }
    }

    pub(crate) fn progress(
        &mut self,
        line: &JobProgress<'_>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        let Some(key) = self.job(line.job, now, accounting) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(key) else {
            return;
        };
        let total = job.progress + line.amount.unwrap_or(1.0);
        if total.is_finite() {
            job.progress = total;
        } else {
            tally.non_finite += 1;
        }
        if job.last_progress.is_none_or(|last| now.mono >= last.mono) {
            job.last_progress = Some(now);
        }
    }

    /// The session `session` closed: every run still open on it crashed.
    pub(crate) fn session_closed(&mut self, session: SessionId, now: Now) {
        for job in self.jobs.values_mut() {
            for run in job.runs.crash_session(session) {
                self.open.remove(&run.seq);
                job.crashes += 1;
                let age = now.seconds_since(run.started.mono);
                let ended = Ended {
                    outcome: Outcome::Error,
                    reason: Some("crashed"),
                    cancelled: false,
                };
                job.finish(ended, Some(age), &self.bounds, &self.results, now);
                job.recent_runs.push(PastRun::crashed(run.started, now));
            }
        }
    }

    /// The job's handle, creating the job if the caps allow.
    fn job(&mut self, name: &str, now: Now, accounting: &mut Accounting) -> Option<JobKey> {
        if let Some(key) = self.jobs.find(name) {
            return Some(key);
        }
        if !accounting.admit(self.slot, self.jobs.len()) {
            accounting.dropped(self.slot);
            return None;
        }
        let name: Arc<str> = Arc::from(name);
        let with = |value: &str| Arc::from([name.clone(), Arc::from(value)]) as LabelValues;
        let job = Job {
            labels: Arc::from([name.clone()]),
            result_labels: self
                .results
                .clone()
                .map(|result| Arc::from([name.clone(), result]) as LabelValues),
            state_labels: JobState::ALL.map(|state| with(state.as_str())),
            runs_total: [0; 3],
            results_seen: Vec::new(),
            last_result: None,
            crashes: 0,
            duration: Histogram::new(&self.bounds),
            last_success: None,
            last_run: None,
            runs: Runs::default(),
            recent_runs: RecentRuns::default(),
            ever_started: false,
            progress: 0.0,
            last_progress: None,
            health: JobHealth::new(now),
            spec: None,
            learner: Learner::default(),
            missed: MissedRuns::default(),
            scheduled: None,
        };
        Some(self.jobs.insert(name, job))
    }

    /// What the read-time verdicts of the configured jobs need, copied for a published state.
    pub(crate) fn watched(&self) -> WatchedJobs {
        let jobs = self
            .jobs
            .iter()
            .filter_map(|(name, job)| {
                Some(WatchedJob {
                    name: name.clone(),
                    labels: job.labels.clone(),
                    state_labels: job.state_labels.clone(),
                    spec: job.scheduled.as_ref()?.spec.clone(),
                    source: job.scheduled.as_ref()?.source,
                    health: job.health.clone(),
                    runs: job.runs.clone(),
                    recent_runs: job.recent_runs.clone(),
                    ever_started: job.ever_started,
                    last_progress: job.last_progress,
                    last_success: job.last_success,
                    crashes: job.crashes,
                })
            })
            .collect();
        WatchedJobs {
            metas: Some(self.metas.verdicts.clone()),
            unscheduled: self.unscheduled(),
            jobs,
        }
    }

    /// The families that do not depend on the time they are read at.
    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let m = &self.metas;
        let jobs = || self.jobs.values();
        let runs = jobs()
            .filter(|job| job.spec.is_some() || job.runs_total.iter().any(|&count| count > 0))
            .flat_map(|job| {
                let results = if job.runs_total[Outcome::Skipped as usize] > 0 {
                    3
                } else {
                    2
                };
                (0..results).map(|result| Series {
                    labels: job.result_labels[result].clone(),
                    value: Value::Number(job.runs_total[result] as f64),
                })
            })
            .collect();
        out.extend(m.runs.family(runs));
        let durations = jobs()
            .filter(|job| job.duration.count() > 0.0)
            .map(|job| Series {
                labels: job.labels.clone(),
                value: Value::Histogram(Box::new(job.duration.snapshot(&self.bounds))),
            })
            .collect();
        out.extend(m.duration.family(durations));
        let gauge = |select: &dyn Fn(&Job) -> Option<f64>| -> Vec<Series> {
            jobs()
                .filter_map(|job| {
                    select(job).map(|value| Series {
                        labels: job.labels.clone(),
                        value: Value::Number(value),
                    })
                })
                .collect()
        };
        out.extend(m.last_success.family(gauge(&|job| job.last_success)));
        out.extend(m.last_run.family(gauge(&|job| job.last_run)));
        let running = |job: &Job| {
            (job.ever_started || job.spec.is_some()).then_some(job.runs.running() as f64)
        };
        out.extend(m.running.family(gauge(&running)));
        let progressed = |job: &Job| job.last_progress.map(|_| job.progress);
        out.extend(m.progress.family(gauge(&progressed)));
        // Crashes show for configured jobs, and for any job that ever crashed.
        let crashes =
            |job: &Job| (job.spec.is_some() || job.crashes > 0).then_some(job.crashes as f64);
        out.extend(m.crashes.family(gauge(&crashes)));
        let last_progress = |job: &Job| job.last_progress.map(|at| at.unix_seconds());
        out.extend(m.last_progress.family(gauge(&last_progress)));
        let results = jobs()
            .flat_map(|job| {
                job.results_seen
                    .iter()
                    .enumerate()
                    .map(|(index, labels)| Series {
                        labels: labels.clone(),
                        value: Value::Number(f64::from(u8::from(job.last_result == Some(index)))),
                    })
            })
            .collect();
        out.extend(m.last_result.family(results));
        self.schedule_families(out);
    }
}

/// How a run ended: its result, the reason it gave, and whether a TERM/INT cancelled it.
#[derive(Debug, Clone, Copy)]
struct Ended<'a> {
    outcome: Outcome,
    reason: Option<&'a str>,
    cancelled: bool,
}

impl Job {
    /// Makes (result, reason) the job's last result, remembering the combination.
    fn record_result(&mut self, outcome: Outcome, reason: Option<&str>, results: &[Arc<str>; 3]) {
        let result = &results[outcome as usize];
        let mut reason = reason.unwrap_or("none");
        let find = |seen: &[LabelValues], reason: &str| {
            seen.iter()
                .position(|labels| labels[1] == *result && &*labels[2] == reason)
        };
        if find(&self.results_seen, reason).is_none()
            && self.results_seen.len() >= MAX_RESULTS_PER_JOB
        {
            reason = "other";
        }
        let index = match find(&self.results_seen, reason) {
            Some(index) => index,
            None => {
                let labels: LabelValues =
                    Arc::from([self.labels[0].clone(), result.clone(), Arc::from(reason)]);
                self.results_seen.push(labels);
                self.results_seen.len() - 1
            }
        };
        self.last_result = Some(index);
    }

    /// Whether the job ever sent anything heartwire keeps a counter or timestamp of.
    fn reported(&self) -> bool {
        self.ever_started
            || self.runs_total.iter().any(|&count| count > 0)
            || self.last_progress.is_some()
            || self.last_run.is_some()
    }

    /// A run ended (or crashed) at `now`.
    fn finish(
        &mut self,
        ended: Ended<'_>,
        duration: Option<f64>,
        bounds: &Bounds,
        results: &[Arc<str>; 3],
        now: Now,
    ) {
        let Ended {
            outcome,
            reason,
            cancelled,
        } = ended;
        self.record_result(outcome, reason, results);
        if let Some(seconds) = duration {
            self.duration.observe(bounds, seconds, 1.0);
        }
        self.runs_total[outcome as usize] += 1;
        let at = now.unix_seconds();
        self.last_run = Some(self.last_run.map_or(at, |last| last.max(at)));
        match outcome {
            Outcome::Ok => {
                self.last_success = Some(self.last_success.map_or(at, |last| last.max(at)));
                self.health.succeeded(now);
            }
            Outcome::Error if cancelled => self.health.ended(now),
            Outcome::Error => self.health.failed(now),
            Outcome::Skipped => self.health.ran(now),
        }
    }
}
