//! Which schedule each job is held to, and what follows from it beyond the verdicts: the
//! schedule-info series, missed runs, and the jobs that have none yet.
//!
//! A job's schedule in force is its configured one, else the one its successes taught
//! ([`crate::health::learn`], unless `defaults.learn_schedules` is off): config always wins.
//! A job with either gets the same read-time verdicts ([`super::WatchedJobs`]). The schedule in
//! force is derived ([`Job::refresh_schedule`]) whenever one of its inputs changes: the config
//! (`Jobs::configure`), a learned schedule (a success), or the learning switch; whoever sets
//! `Job::learner` or `Job::spec` another way (the state file) calls it too.
//!
//! Missed runs are counted on the aggregator's one-second tick ([`Jobs::count_missed`]) from
//! the last sign of life of each job with a schedule ([`crate::health::missed`]), and exposed
//! as a stored counter, so a scrape never changes it and it only goes up.

use std::sync::Arc;

use super::{Job, Jobs};
use crate::aggregate::snapshot::{Family, LabelValues, Series, Value};
use crate::clock::Now;
use crate::health::job::JobSpec;
use crate::health::learn::ScheduleSource;

/// The schedule a job is held to.
#[derive(Debug, Clone)]
pub(super) struct Scheduled {
    /// Its spec: configured, or learned with the default thresholds.
    pub(super) spec: Arc<JobSpec>,
    /// Where it comes from.
    pub(super) source: ScheduleSource,
    /// The label values of its schedule-info series: job, source, schedule.
    info: LabelValues,
}

/// A job that reported but has no schedule: nobody configured it and its successes taught
/// none yet. `/status` lists it, and `heartwire config suggest` comments it out.
#[derive(Debug, Clone, PartialEq)]
pub struct UnscheduledJob {
    /// The job name.
    pub job: Arc<str>,
    /// Unix time of the last success, if any since the agent started.
    pub last_success: Option<f64>,
    /// Unix time a run last ended, any result.
    pub last_run: Option<f64>,
    /// Successes seen towards learning a schedule (one is learned at
    /// [`crate::health::learn::RUNS_TO_LEARN`] steady ones).
    pub successes_seen: usize,
}

impl Job {
    /// Derives the schedule in force from the configured spec and the learned one; `learn`
    /// says whether learned schedules count.
    pub(super) fn refresh_schedule(&mut self, learn: bool) {
        let (spec, source) = match (&self.spec, self.learner.spec()) {
            (Some(spec), _) => (spec.clone(), ScheduleSource::Config),
            (None, Some(spec)) if learn => (spec.clone(), ScheduleSource::Learned),
            _ => {
                self.scheduled = None;
                return;
            }
        };
        if !self
            .scheduled
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(&current.spec, &spec))
        {
            self.missed.schedule_changed();
        }
        let schedule = spec.schedule.describe();
        let info = match &self.scheduled {
            // The same series: keep its label values, so the snapshot shares them.
            Some(current) if current.source == source && *current.info[2] == *schedule => {
                current.info.clone()
            }
            _ => Arc::from([
                self.labels[0].clone(),
                Arc::from(source.as_str()),
                Arc::from(schedule),
            ]),
        };
        self.scheduled = Some(Scheduled { spec, source, info });
    }

    /// A run that took `duration` seconds (if known) succeeded at `now`: its start teaches the
    /// job's cadence, when learning is on.
    pub(super) fn learn_from_success(&mut self, duration: Option<f64>, now: Now, learn: bool) {
        if !learn {
            return;
        }
        let took = duration
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .unwrap_or(0.0);
        if self.learner.observe(now.unix_seconds() - took) {
            self.refresh_schedule(learn);
        }
    }
}

impl Jobs {
    /// Turns learned schedules on or off (`defaults.learn_schedules`).
    pub(crate) fn set_learning(&mut self, learn: bool) {
        if self.learn != learn {
            self.learn = learn;
            self.refresh_schedules();
        }
    }

    /// Derives every job's schedule in force again.
    pub(super) fn refresh_schedules(&mut self) {
        let learn = self.learn;
        for job in self.jobs.values_mut() {
            job.refresh_schedule(learn);
        }
    }

    /// Counts the slots missed by `now` by every job with a schedule; returns how many.
    pub(crate) fn count_missed(&mut self, now: Now) -> u64 {
        let now = now.unix_seconds();
        let mut counted = 0;
        for job in self.jobs.values_mut() {
            let Some(scheduled) = &job.scheduled else {
                continue;
            };
            let anchors = job.health.remember();
            let since = anchors.last_signal.unwrap_or(anchors.watched_since);
            counted += job.missed.count(&scheduled.spec, since, now);
        }
        counted
    }

    /// The schedule-info and missed-runs families. Missed runs show for every job with a
    /// schedule, and for any job that ever missed one.
    pub(super) fn schedule_families(&self, out: &mut Vec<Family>) {
        let m = &self.metas;
        let info = self
            .jobs
            .values()
            .filter_map(|job| {
                let scheduled = job.scheduled.as_ref()?;
                Some(Series {
                    labels: scheduled.info.clone(),
                    value: Value::Number(1.0),
                })
            })
            .collect();
        out.extend(m.schedule_info.family(info));
        let missed = self
            .jobs
            .values()
            .filter(|job| job.scheduled.is_some() || job.missed.total() > 0)
            .map(|job| Series {
                labels: job.labels.clone(),
                value: Value::Number(job.missed.total() as f64),
            })
            .collect();
        out.extend(m.missed_runs.family(missed));
    }

    /// The jobs that reported but have no schedule, in the order they were first seen.
    pub(super) fn unscheduled(&self) -> Vec<UnscheduledJob> {
        self.jobs
            .iter()
            .filter(|(_, job)| job.scheduled.is_none() && job.reported())
            .map(|(name, job)| UnscheduledJob {
                job: name.clone(),
                last_success: job.last_success,
                last_run: job.last_run,
                successes_seen: job.learner.successes_seen(),
            })
            .collect()
    }
}
