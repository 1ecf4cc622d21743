//! The job families, fed by `job.start`, `job.ok`, `job.error`, `job.skip` and `job.progress`.
//!
//! Per job: runs by result, a duration histogram, last success and last run timestamps (never
//! moving backwards), open starts, and progress. A `job.ok`/`job.error` without seconds takes
//! its duration from the matching open `job.start`: the one with the same `id=`, or without an
//! id the job's oldest open start. Open starts are bounded per job and in total; an evicted
//! start is counted. The per-job state is where schedules and staleness will attach later.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use hashbrown::DefaultHashBuilder;
use heartwire_proto::{JobEnd, JobProgress, JobSkip, JobStart};
use indexmap::IndexMap;
use tokio::time::Instant;

use super::Tally;
use super::builtin::Meta;
use super::histogram::{Bounds, Histogram};
use super::limits::{Accounting, Slot};
use super::settings::{JobFamilies, Limits};
use super::snapshot::{Family, Kind, LabelValues, Series, Value};
use crate::clock::Now;

/// How a run ended, for the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok = 0,
    Error = 1,
    Skipped = 2,
}

#[derive(Debug)]
struct OpenStart {
    seq: u64,
    id: Option<Box<str>>,
    at: Instant,
}

#[derive(Debug)]
struct Job {
    labels: LabelValues,
    result_labels: [LabelValues; 3],
    runs: [u64; 3],
    duration: Histogram,
    last_success: Option<f64>,
    last_run: Option<f64>,
    starts: VecDeque<OpenStart>,
    ever_started: bool,
    progress: f64,
    last_progress: Option<f64>,
}

#[derive(Debug)]
struct Metas {
    runs: Meta,
    duration: Meta,
    last_success: Meta,
    last_run: Meta,
    running: Meta,
    progress: Meta,
    last_progress: Meta,
}

/// Every job's state.
#[derive(Debug)]
pub(crate) struct Jobs {
    metas: Metas,
    results: [Arc<str>; 3],
    bounds: Bounds,
    jobs: IndexMap<Arc<str>, Job, DefaultHashBuilder>,
    /// Every open start by sequence number, oldest first, for the global bound.
    open: BTreeMap<u64, usize>,
    next_seq: u64,
    max_per_job: usize,
    max_open: usize,
    slot: Slot,
}

impl Jobs {
    pub(crate) fn new(
        names: &JobFamilies,
        limits: &Limits,
        bounds: Bounds,
        accounting: &mut Accounting,
    ) -> Jobs {
        let c = &names.labels;
        Jobs {
            metas: Metas {
                runs: Meta::new(&names.runs, "Job runs by result.", &["job", "result"], c),
                duration: Meta::new(&names.duration, "Job run duration in seconds.", &["job"], c),
                last_success: Meta::new(
                    &names.last_success,
                    "Unix time of the last successful run of a job.",
                    &["job"],
                    c,
                ),
                last_run: Meta::new(
                    &names.last_run,
                    "Unix time of the last run of a job to end, any result.",
                    &["job"],
                    c,
                ),
                running: Meta::new(
                    &names.running,
                    "Runs of a job started and not yet ended.",
                    &["job"],
                    c,
                ),
                progress: Meta::new(
                    &names.progress,
                    "Progress reported by a job (pages, rows, items).",
                    &["job"],
                    c,
                ),
                last_progress: Meta::new(
                    &names.last_progress,
                    "Unix time of the last progress report of a job.",
                    &["job"],
                    c,
                ),
            },
            results: [
                Arc::from("ok"),
                Arc::from("error"),
                Arc::from(names.skipped_result.as_str()),
            ],
            bounds,
            jobs: IndexMap::default(),
            open: BTreeMap::new(),
            next_seq: 0,
            max_per_job: limits.max_open_starts_per_job,
            max_open: limits.max_open_starts,
            slot: accounting.slot(&names.runs),
        }
    }

    pub(crate) fn start(
        &mut self,
        line: &JobStart<'_>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        let Some(index) = self.job(line.job, accounting) else {
            return;
        };
        let Some((_, job)) = self.jobs.get_index_mut(index) else {
            return;
        };
        job.ever_started = true;
        if job.starts.len() >= self.max_per_job
            && let Some(evicted) = job.starts.pop_front()
        {
            self.open.remove(&evicted.seq);
            tally.starts_evicted += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        job.starts.push_back(OpenStart {
            seq,
            id: line.id.map(Box::from),
            at: now.mono,
        });
        self.open.insert(seq, index);
        while self.open.len() > self.max_open {
            let Some((seq, owner)) = self.open.pop_first() else {
                break;
            };
            if let Some((_, owner)) = self.jobs.get_index_mut(owner) {
                owner.starts.retain(|start| start.seq != seq);
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
        let Some(index) = self.job(line.job, accounting) else {
            return;
        };
        let Some((_, job)) = self.jobs.get_index_mut(index) else {
            return;
        };
        let matched = match line.id {
            Some(id) => job
                .starts
                .iter()
                .position(|start| start.id.as_deref() == Some(id)),
            None => (!job.starts.is_empty()).then_some(0),
        };
        let started = matched.and_then(|position| job.starts.remove(position));
        if let Some(start) = &started {
            self.open.remove(&start.seq);
        }
        let duration = line
            .seconds
            .or_else(|| started.map(|start| now.seconds_since(start.at)));
        if let Some(seconds) = duration {
            job.duration.observe(&self.bounds, seconds, 1.0);
        }
        job.runs[outcome as usize] += 1;
        let at = now.unix_seconds();
        job.last_run = Some(job.last_run.map_or(at, |last| last.max(at)));
        if outcome == Outcome::Ok {
            job.last_success = Some(job.last_success.map_or(at, |last| last.max(at)));
        }
    }

    /// A skipped slot: counted as a run result only. It neither ends an open start nor moves the
    /// last-run time, since no work was done.
    pub(crate) fn skip(&mut self, line: &JobSkip<'_>, accounting: &mut Accounting) {
        let Some(index) = self.job(line.job, accounting) else {
            return;
        };
        if let Some((_, job)) = self.jobs.get_index_mut(index) {
            job.runs[Outcome::Skipped as usize] += 1;
        }
    }

    pub(crate) fn progress(
        &mut self,
        line: &JobProgress<'_>,
        now: Now,
        accounting: &mut Accounting,
        tally: &mut Tally,
    ) {
        let Some(index) = self.job(line.job, accounting) else {
            return;
        };
        let Some((_, job)) = self.jobs.get_index_mut(index) else {
            return;
        };
        let total = job.progress + line.amount.unwrap_or(1.0);
        if total.is_finite() {
            job.progress = total;
        } else {
            tally.non_finite += 1;
        }
        let at = now.unix_seconds();
        job.last_progress = Some(job.last_progress.map_or(at, |last| last.max(at)));
    }

    /// The job's index, creating it if the caps allow.
    fn job(&mut self, name: &str, accounting: &mut Accounting) -> Option<usize> {
        if let Some(index) = self.jobs.get_index_of(name) {
            return Some(index);
        }
        if !accounting.admit(self.slot, self.jobs.len()) {
            accounting.dropped(self.slot);
            return None;
        }
        let name: Arc<str> = Arc::from(name);
        let labels: LabelValues = Arc::from([name.clone()]);
        let result_labels = self
            .results
            .clone()
            .map(|result| Arc::from([name.clone(), result]) as LabelValues);
        let job = Job {
            labels,
            result_labels,
            runs: [0; 3],
            duration: Histogram::new(&self.bounds),
            last_success: None,
            last_run: None,
            starts: VecDeque::new(),
            ever_started: false,
            progress: 0.0,
            last_progress: None,
        };
        Some(self.jobs.insert_full(name, job).0)
    }

    pub(crate) fn snapshot(&self, out: &mut Vec<Family>) {
        let jobs = || self.jobs.values();
        let number = |job: &Job, value: f64| Series {
            labels: job.labels.clone(),
            value: Value::Number(value),
        };
        let runs = jobs()
            .filter(|job| job.runs.iter().any(|&count| count > 0))
            .flat_map(|job| {
                let results = if job.runs[Outcome::Skipped as usize] > 0 {
                    3
                } else {
                    2
                };
                (0..results).map(|result| Series {
                    labels: job.result_labels[result].clone(),
                    value: Value::Number(job.runs[result] as f64),
                })
            })
            .collect();
        let m = &self.metas;
        out.extend(m.runs.family(Kind::Counter, runs));
        let durations = jobs()
            .filter(|job| job.duration.count() > 0.0)
            .map(|job| Series {
                labels: job.labels.clone(),
                value: Value::Histogram(job.duration.snapshot(&self.bounds)),
            })
            .collect();
        out.extend(m.duration.family(Kind::Histogram, durations));
        let gauge = |select: fn(&Job) -> Option<f64>| -> Vec<Series> {
            jobs()
                .filter_map(|job| select(job).map(|value| number(job, value)))
                .collect()
        };
        out.extend(
            m.last_success
                .family(Kind::Gauge, gauge(|job| job.last_success)),
        );
        out.extend(m.last_run.family(Kind::Gauge, gauge(|job| job.last_run)));
        out.extend(m.running.family(
            Kind::Gauge,
            gauge(|job| job.ever_started.then_some(job.starts.len() as f64)),
        ));
        out.extend(m.progress.family(
            Kind::Counter,
            gauge(|job| job.last_progress.map(|_| job.progress)),
        ));
        out.extend(
            m.last_progress
                .family(Kind::Gauge, gauge(|job| job.last_progress)),
        );
    }
}
