//! The configured jobs as published in a snapshot, and their verdicts evaluated at read time:
//! `stale`, `state`, deadline, next expected run, failures in a row, overrun and stalled runs.

use std::sync::Arc;

use super::{UnscheduledJob, VerdictMetas};
use crate::aggregate::snapshot::{Family, JobStatus, LabelValues, Series, Value};
use crate::clock::Now;
use crate::health::history::RecentRuns;
use crate::health::job::{JobHealth, JobSpec, JobState, Progress, Verdict};
use crate::health::learn::ScheduleSource;
use crate::health::runs::Runs;

/// A configured job as published: what its read-time verdict needs.
#[derive(Debug, Clone)]
pub(crate) struct WatchedJob {
    pub(super) name: Arc<str>,
    pub(super) labels: LabelValues,
    pub(super) state_labels: [LabelValues; JobState::ALL.len()],
    pub(super) spec: Arc<JobSpec>,
    pub(super) source: ScheduleSource,
    pub(super) health: JobHealth,
    pub(super) runs: Runs,
    pub(super) recent_runs: RecentRuns,
    pub(super) ever_started: bool,
    pub(super) last_progress: Option<Now>,
    pub(super) last_success: Option<f64>,
    pub(super) crashes: u64,
}

/// The configured jobs of a published state, with the families of their verdicts.
#[derive(Debug, Clone, Default)]
pub struct WatchedJobs {
    pub(super) metas: Option<Arc<VerdictMetas>>,
    pub(super) jobs: Vec<WatchedJob>,
    /// The jobs that reported but have no schedule (configured or learned).
    pub(super) unscheduled: Vec<UnscheduledJob>,
}

impl WatchedJobs {
    /// What `/status` and `/readyz` show: every configured job's verdict at `now`.
    pub(crate) fn statuses(&self, now: Now) -> Vec<JobStatus> {
        self.jobs
            .iter()
            .map(|job| {
                let spec = &job.spec;
                let verdict = job.health.verdict(spec, now);
                JobStatus {
                    job: job.name.clone(),
                    schedule: spec.schedule.describe(),
                    schedule_source: job.source,
                    zone: spec.schedule.zone().to_owned(),
                    state: verdict.state,
                    readiness: spec.readiness,
                    unready: verdict.unready,
                    last_end: verdict.last_end,
                    last_success: job.last_success,
                    seconds_since_success: verdict.seconds_since_success,
                    deadline: verdict.deadline,
                    next_expected: verdict.next_expected,
                    running: job.runs.running(),
                    overrun: job.runs.overrun(spec.max_runtime, now),
                    consecutive_failures: verdict.consecutive_failures,
                    crashes: job.crashes,
                    recent_runs: job.recent_runs.clone(),
                    progress: spec.stall_after.map(|quiet| job.progress(quiet, now)),
                }
            })
            .collect()
    }

    /// What `/status` lists besides: the jobs that reported but have no schedule.
    pub(crate) fn unscheduled(&self) -> Vec<UnscheduledJob> {
        self.unscheduled.clone()
    }

    /// The read-time families of the configured jobs at `now`.
    pub(crate) fn families(&self, now: Now, out: &mut Vec<Family>) {
        let Some(m) = self.metas.as_deref() else {
            return;
        };
        let verdicts: Vec<(&WatchedJob, Verdict)> = self
            .jobs
            .iter()
            .map(|job| (job, job.health.verdict(&job.spec, now)))
            .collect();
        let gauge = |select: &dyn Fn(&WatchedJob, &Verdict) -> Option<f64>| -> Vec<Series> {
            verdicts
                .iter()
                .filter_map(|(job, verdict)| {
                    let value = select(job, verdict)?;
                    Some(Series {
                        labels: job.labels.clone(),
                        value: Value::Number(value),
                    })
                })
                .collect()
        };
        let families = [
            (
                &m.seconds_since_success,
                gauge(&|_, v| Some(v.seconds_since_success)),
            ),
            (&m.stale, gauge(&|_, v| Some(f64::from(u8::from(v.stale))))),
            (&m.deadline, gauge(&|_, v| Some(v.deadline))),
            (&m.next_expected, gauge(&|_, v| Some(v.next_expected))),
            (
                &m.consecutive_failures,
                gauge(&|_, v| Some(f64::from(v.consecutive_failures))),
            ),
            (
                &m.overrun_runs,
                gauge(&|job, _| Some(job.runs.overrun(job.spec.max_runtime, now) as f64)),
            ),
            (
                &m.stalled,
                gauge(&|job, _| {
                    let quiet = job.spec.stall_after?;
                    Some(f64::from(u8::from(
                        job.progress(quiet, now) == Progress::Stalled,
                    )))
                }),
            ),
        ];
        for (meta, series) in families {
            out.extend(meta.family(series));
        }
        let states = verdicts
            .iter()
            .flat_map(|(job, verdict)| {
                JobState::ALL
                    .iter()
                    .zip(&job.state_labels)
                    .map(|(state, labels)| Series {
                        labels: labels.clone(),
                        value: Value::Number(f64::from(u8::from(*state == verdict.state))),
                    })
            })
            .collect();
        out.extend(m.state.family(states));
    }
}

impl WatchedJob {
    /// Where the job stands at `now` if it reports progress ([`Progress::at`]: stalled only
    /// while running and silent).
    fn progress(&self, quiet: std::time::Duration, now: Now) -> Progress {
        Progress::at(
            quiet,
            self.ever_started,
            self.runs.latest_start(),
            self.last_progress,
            now,
        )
    }
}
