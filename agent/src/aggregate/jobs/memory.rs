//! What a job keeps across a restart of the agent: its health anchors (so its deadline and
//! verdict survive), the timestamps it exports, its last result, its progress time, its open
//! runs, its recent runs, its learned schedule and the last slot counted as missed. Counters (runs, durations, crashes, progress) restart at zero, as Prometheus expects of
//! a restarted target.
//!
//! Open runs come back open, without their session: the agent cannot know whether the process
//! that started them is gone (a restart of the agent closes every session from its side, while
//! the app may live on), so they are neither dropped nor called crashed. A later `job.ok` with
//! their `id=` still ends them; one that never ends is hung after `max_runtime`, as before.

use std::collections::BTreeMap;

use heartwire_proto::JobStart;
use serde::{Deserialize, Serialize};

use super::{Jobs, Outcome};
use crate::aggregate::Tally;
use crate::aggregate::limits::Accounting;
use crate::clock::Now;
use crate::health::history::{PastRun, RecentRuns};
use crate::health::job::{HealthMemory, JobHealth};
use crate::health::learn::Learner;
use crate::health::missed::MissedRuns;

/// One job as the state file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMemory {
    /// The anchors of its verdict.
    pub health: HealthMemory,
    /// The last run's result label (`ok`, `error` or the skipped result) and reason.
    pub last_result: Option<(String, String)>,
    /// `last_progress_timestamp_seconds`.
    pub last_progress: Option<f64>,
    /// Whether it ever sent `job.start` (its stall rule depends on it).
    pub ever_started: bool,
    /// Runs still open: when each started, and its `id=`.
    pub open_runs: Vec<OpenRun>,
    /// Its last runs, oldest first (at most [`crate::health::history::RECENT_RUNS`]).
    #[serde(default)]
    pub recent_runs: Vec<PastRun>,
    /// What its successes taught of its cadence: a learned schedule survives a restart.
    #[serde(default)]
    pub learner: Learner,
    /// The latest schedule slot counted as missed, so that no slot is counted twice.
    #[serde(default)]
    pub missed_through: Option<f64>,
}

/// A run open when the state was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenRun {
    /// When it started, in Unix seconds.
    pub started: f64,
    /// Its `id=`, if it had one.
    pub id: Option<String>,
}

impl Jobs {
    /// What to keep of every job that reported or is configured, by name.
    pub(crate) fn remember(&self) -> BTreeMap<String, JobMemory> {
        self.jobs
            .iter()
            .filter(|(_, job)| job.spec.is_some() || job.reported())
            .map(|(name, job)| {
                let last_result = job.last_result.map(|index| {
                    let labels = &job.results_seen[index];
                    (labels[1].to_string(), labels[2].to_string())
                });
                let open_runs = job
                    .runs
                    .open()
                    .map(|run| OpenRun {
                        started: run.started.unix_seconds(),
                        id: run.id.as_deref().map(str::to_owned),
                    })
                    .collect();
                let memory = JobMemory {
                    health: job.health.remember(),
                    last_result,
                    last_progress: job.last_progress.map(|at| at.unix_seconds()),
                    ever_started: job.ever_started,
                    open_runs,
                    recent_runs: job.recent_runs.to_saved(),
                    learner: job.learner.clone(),
                    missed_through: job.missed.last_counted,
                };
                (name.to_string(), memory)
            })
            .collect()
    }

    /// Takes back what a previous run of the agent remembered, at `now`. Jobs it no longer
    /// configures come back as jobs nobody configured (within the series caps), so their
    /// timestamps are exported again.
    pub(crate) fn recall(
        &mut self,
        memories: &BTreeMap<String, JobMemory>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        for (name, memory) in memories {
            for run in &memory.open_runs {
                let start = JobStart {
                    job: name,
                    id: run.id.as_deref(),
                    unknown_fields: 0,
                };
                self.start(&start, None, now.earlier_at(run.started), accounting, tally);
            }
            let Some(key) = self.job(name, now, accounting) else {
                continue;
            };
            let results = self.results.clone();
            let Some(job) = self.jobs.get_mut(key) else {
                continue;
            };
            job.health = JobHealth::recall(&memory.health, now);
            // The exported timestamps are the health's anchors: the last success, and the last
            // run end (ok, error or crash), as `finish` sets both.
            job.last_success = memory.health.last_success;
            job.last_run = memory.health.last_end;
            job.ever_started = memory.ever_started;
            job.last_progress = memory.last_progress.map(|unix| now.earlier_at(unix));
            job.recent_runs = RecentRuns::from_saved(memory.recent_runs.clone());
            job.learner = memory.learner.clone();
            job.missed = MissedRuns::continuing(memory.missed_through);
            if let Some((result, reason)) = &memory.last_result
                && let Some(outcome) = [Outcome::Ok, Outcome::Error, Outcome::Skipped]
                    .into_iter()
                    .find(|outcome| *results[*outcome as usize] == **result)
            {
                job.record_result(outcome, Some(reason), &results);
            }
        }
        // A learned schedule is in force again, as before the restart.
        self.refresh_schedules();
    }
}
