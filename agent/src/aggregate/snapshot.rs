//! The aggregation state as published to readers: owned, immutable, `Send + Sync`.
//!
//! Names and label values are `Arc<str>` shared with the live state, so building a snapshot
//! copies numbers and bumps reference counts; no string is copied. The exposition turns a
//! snapshot into Prometheus families; nothing here knows Prometheus types.
//!
//! A snapshot holds two kinds of state. Its [`Snapshot::families`] do not depend on when they
//! are read (counters, histograms, timestamps). Verdicts do (a job goes stale when its deadline
//! passes, whether or not a line arrives), so the snapshot keeps what they are computed from,
//! and [`Snapshot::health`] evaluates them at the moment of the read.

use std::sync::Arc;

use super::Tally;
pub use super::jobs::UnscheduledJob;
use super::jobs::WatchedJobs;
use super::workers::WatchedWorkers;
use crate::clock::Now;
use crate::health::history::RecentRuns;
use crate::health::job::{Progress, Readiness};
pub use crate::health::learn::ScheduleSource;

pub use super::histogram::HistogramSnapshot;
pub use crate::health::job::JobState;
pub use crate::health::worker::WorkerState;

/// Label values of one series, in the order of its family's label names.
pub type LabelValues = Arc<[Arc<str>]>;

/// Constant labels of a family: (name, value) pairs written before the variable labels.
pub type ConstLabelPairs = Arc<[(Arc<str>, Arc<str>)]>;

/// Everything `/metrics` shows from the aggregation state, as published at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counts the snapshots the aggregator published; readers of the same epoch share work.
    pub epoch: u64,
    /// The wall time the snapshot was taken, in Unix seconds.
    pub taken_at: f64,
    /// Built-in and StatsD families whose values do not depend on the time they are read at,
    /// built-ins first, each in a stable order. Families with no series are left out.
    pub families: Families,
    /// Series held, dropped at a cap and in conflict, by family label (bounded; `other` last).
    pub accounts: Vec<FamilyAccount>,
    /// Lines read and rejected, and samples set aside, up to this snapshot.
    pub lines: Tally,
    /// What the verdicts of configured jobs are computed from.
    pub(crate) jobs: WatchedJobs,
    /// What the states of workers are computed from.
    pub(crate) workers: WatchedWorkers,
}

/// The verdicts of a snapshot evaluated at one moment: `/status`, `/readyz` and the families
/// that depend on the time.
#[derive(Debug, Clone)]
pub struct Health {
    /// The wall time of the evaluation, in Unix seconds.
    pub taken_at: f64,
    /// The verdict of every job with a schedule: configured ones in config order, then those
    /// with a learned schedule.
    pub jobs: Vec<JobStatus>,
    /// The jobs that reported but have no schedule yet (none configured, none learned).
    pub unscheduled: Vec<UnscheduledJob>,
    /// Every known worker's state.
    pub workers: Vec<WorkerStatus>,
    /// The verdict families (stale, state, deadline, worker status, ...).
    pub families: Vec<Family>,
}

/// A job with a schedule (configured or learned) as `/status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    /// The job name.
    pub job: Arc<str>,
    /// Its schedule as configured (`every 1m`, `0 * * * *`).
    pub schedule: String,
    /// Where the schedule comes from: the config, or learned from the job's successes.
    pub schedule_source: ScheduleSource,
    /// The time zone of a cron schedule (`UTC` for intervals).
    pub zone: String,
    /// The headline state.
    pub state: JobState,
    /// What the verdict does to `/readyz`.
    pub readiness: Readiness,
    /// The job fails `/readyz` now (its `readiness` is not met).
    pub unready: bool,
    /// Unix time a run last ended (ok or error), if any since the agent started.
    pub last_end: Option<f64>,
    /// Unix time of the last success, if any.
    pub last_success: Option<f64>,
    /// Seconds since the last success (since heartwire started watching, if none).
    pub seconds_since_success: f64,
    /// Unix time the job goes (or went) stale.
    pub deadline: f64,
    /// Unix time the next run is due.
    pub next_expected: f64,
    /// Open runs.
    pub running: usize,
    /// Open runs past `max_runtime`.
    pub overrun: usize,
    /// Failed runs in a row.
    pub consecutive_failures: u32,
    /// Runs that crashed (their session closed before they ended), since the agent started.
    pub crashes: u64,
    /// The last runs that ended, crashed or were skipped (a shared copy).
    pub recent_runs: RecentRuns,
    /// For progress jobs (those with `stall_after`): not started, idle, progressing or stalled.
    pub progress: Option<Progress>,
}

/// A worker as `/status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    /// The worker name.
    pub worker: Arc<str>,
    /// Up, or why not.
    pub state: WorkerState,
    /// Unix time of the last heartbeat, if any.
    pub last_heartbeat: Option<f64>,
    /// The ttl in force.
    pub ttl_seconds: f64,
}

/// What a family is apart from its series: name, help, type and label names. Made once per
/// family of the live state and shared by every snapshot, so that a snapshot costs a pointer
/// per family, not five.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMeta {
    /// The metric name as exposed (`page_views_total`, `heartwire_job_runs_total`).
    pub name: Arc<str>,
    /// The HELP text.
    pub help: Arc<str>,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Constant labels, written first on every series.
    pub const_labels: ConstLabelPairs,
    /// Variable label names, sorted for StatsD families, fixed for built-ins.
    pub label_names: LabelValues,
}

/// The families of a snapshot, in parts that the snapshots of the aggregator share while none
/// of their families changes: publishing the state after a line costs the part of the family
/// it changed, not a copy of every series (at 110 000 series, 5 MB each time, with the previous
/// snapshot still held by its readers). Read them through [`Families::iter`].
#[derive(Debug, Clone, Default)]
pub struct Families {
    parts: Vec<Arc<[Family]>>,
}

impl Families {
    /// Families in parts, each part in order; empty parts are left out.
    pub fn new(parts: impl IntoIterator<Item = Arc<[Family]>>) -> Families {
        Families {
            parts: parts.into_iter().filter(|part| !part.is_empty()).collect(),
        }
    }

    /// Every family, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Family> + Clone {
        self.parts.iter().flat_map(|part| part.iter())
    }

    /// The parts, in order: each a run of families, none empty.
    pub fn parts(&self) -> &[Arc<[Family]>] {
        &self.parts
    }

    /// The number of families.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|part| part.len()).sum()
    }

    /// Whether there is no family.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl From<Vec<Family>> for Families {
    fn from(families: Vec<Family>) -> Families {
        Families::new([Arc::from(families)])
    }
}

impl FromIterator<Family> for Families {
    fn from_iter<I: IntoIterator<Item = Family>>(families: I) -> Families {
        Families::from(families.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Families {
    type Item = &'a Family;
    type IntoIter = std::iter::FlatMap<
        std::slice::Iter<'a, Arc<[Family]>>,
        &'a [Family],
        fn(&'a Arc<[Family]>) -> &'a [Family],
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.parts.iter().flat_map(|part| &part[..])
    }
}

/// The series of a snapshot family: one is held inline (most StatsD families of distinct names
/// have one), more in an allocation.
pub type SeriesList = smallvec::SmallVec<[Series; 1]>;

/// One metric family: its shared [`FamilyMeta`] (read through it: `family.name`) and its
/// series.
#[derive(Debug, Clone)]
pub struct Family {
    /// Name, help, type and label names.
    pub meta: Arc<FamilyMeta>,
    /// The series.
    pub series: SeriesList,
}

impl Family {
    /// The labels of `series` (one of this family's), as the page writes them: the constant
    /// ones first, then the variable ones in the family's order.
    pub fn labels<'f>(
        &'f self,
        series: &'f Series,
    ) -> impl Iterator<Item = (&'f str, &'f str)> + Clone {
        let constant = self
            .const_labels
            .iter()
            .map(|(name, value)| (&**name, &**value));
        let variable = self
            .label_names
            .iter()
            .zip(series.labels.iter())
            .map(|(name, value)| (&**name, &**value));
        constant.chain(variable)
    }
}

#[cfg(test)]
impl Family {
    /// A family of strings, for the property tests: constant labels `c_0`, `c_1`... with the
    /// `constant` values, and each series' label values cut to as many as `label_names`.
    pub(crate) fn of_strings(
        name: &str,
        help: &str,
        kind: Kind,
        constant: &[String],
        label_names: &[String],
        series: Vec<(Vec<String>, Value)>,
    ) -> Family {
        let strings = |values: &[String]| values.iter().map(|v| Arc::from(v.as_str())).collect();
        Family {
            meta: Arc::new(FamilyMeta {
                name: name.into(),
                help: help.into(),
                kind,
                const_labels: constant
                    .iter()
                    .enumerate()
                    .map(|(i, value)| (Arc::from(format!("c_{i}")), Arc::from(value.as_str())))
                    .collect(),
                label_names: strings(label_names),
            }),
            series: series
                .into_iter()
                .map(|(labels, value)| Series {
                    labels: strings(&labels[..label_names.len()]),
                    value,
                })
                .collect(),
        }
    }
}

impl std::ops::Deref for Family {
    type Target = FamilyMeta;

    fn deref(&self) -> &FamilyMeta {
        &self.meta
    }
}

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Explicit buckets, sum and count.
    Histogram,
}

/// One series of a family.
#[derive(Debug, Clone)]
pub struct Series {
    /// Label values, in the family's label-name order.
    pub labels: LabelValues,
    /// The value.
    pub value: Value,
}

/// The value of a series.
#[derive(Debug, Clone)]
pub enum Value {
    /// A counter or gauge.
    Number(f64),
    /// A histogram (boxed: a series of a number is then two words, not eight).
    Histogram(Box<HistogramSnapshot>),
}

/// Bookkeeping for one family label of the self-metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyAccount {
    /// The family name, or `other` for families past the label budget.
    pub family: Arc<str>,
    /// Series held now.
    pub series: u64,
    /// Samples that would have created a series past a cap.
    pub dropped: u64,
    /// Samples rejected because their series conflicts with a family.
    pub conflicts: u64,
    /// Series removed after their ttl without samples.
    pub expired: u64,
}

impl Snapshot {
    /// The verdicts at `now`: evaluated at read time, so that a deadline that passes without
    /// any line arriving is seen at once.
    pub fn health(&self, now: Now) -> Health {
        let mut families = Vec::new();
        self.jobs.families(now, &mut families);
        self.workers.families(now, &mut families);
        Health {
            taken_at: now.unix_seconds(),
            jobs: self.jobs.statuses(now),
            unscheduled: self.jobs.unscheduled(),
            workers: self.workers.statuses(now),
            families,
        }
    }

    /// Every family at `now`: the stored ones, then the verdicts. Copies the series list (not
    /// its strings): for the push outputs and tests, not for every scrape.
    pub fn families_at(&self, now: Now) -> Vec<Family> {
        let mut families: Vec<Family> = self.families.iter().cloned().collect();
        self.jobs.families(now, &mut families);
        self.workers.families(now, &mut families);
        families
    }

    /// A snapshot of nothing, published before the aggregator applied anything.
    pub fn empty() -> Snapshot {
        Snapshot {
            epoch: 0,
            taken_at: 0.0,
            families: Families::default(),
            accounts: Vec::new(),
            lines: Tally::default(),
            jobs: WatchedJobs::default(),
            workers: WatchedWorkers::default(),
        }
    }

    /// The family named `name`, if it has series.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| &*family.name == name)
    }

    /// The number of series in the stored families.
    pub fn series_count(&self) -> usize {
        self.families.iter().map(|family| family.series.len()).sum()
    }
}

impl Health {
    /// The verdict family named `name`, if it has series.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| &*family.name == name)
    }
}
