//! What the aggregator is configured with: bounds, histogram buckets and family names.
//!
//! Every bound is a trade-off between what a sender may create and what the agent may hold; the
//! defaults keep a flood of distinct series under a few tens of MiB (see [`Limits`]).

use std::collections::HashSet;
use std::time::Duration;

use super::expiry::Expiry;
use super::mapping::Mapping;
use crate::health::job::JobSpec;
use crate::naming::{is_label_name, is_metric_name};
use crate::telemetry;

/// Everything the aggregator needs to know. [`Settings::default`] holds the documented defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bounds on series, open starts and sets.
    pub limits: Limits,
    /// Histogram bucket upper bounds.
    pub buckets: Buckets,
    /// The names of the built-in families and their constant labels.
    pub names: FamilyNames,
    /// Configured jobs: present from the first snapshot, with staleness verdicts.
    pub jobs: Vec<(String, JobSpec)>,
    /// Configured workers and their heartbeat ttl: present from the first snapshot.
    pub workers: Vec<(String, Duration)>,
    /// The ttl of a worker that is not configured and whose heartbeats carry no `ttl=`.
    pub default_worker_ttl: Duration,
    /// StatsD mapping rules (default: none, every name is used as sent).
    pub mapping: Mapping,
    /// How long idle StatsD series live when no mapping rule says (default: forever).
    pub expiry: Expiry,
}

/// Heartbeats of workers nobody configured keep them up this long (three missed 30 s beats
/// stay within a minute and a half).
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(90);

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            limits: Limits::default(),
            buckets: Buckets::default(),
            names: FamilyNames::default(),
            jobs: Vec::new(),
            workers: Vec::new(),
            default_worker_ttl: DEFAULT_WORKER_TTL,
            mapping: Mapping::default(),
            expiry: Expiry::default(),
        }
    }
}

/// Bounds that keep memory finite whatever senders write.
///
/// Heap per series, measured by `benches/render.rs` with a counting allocator (a 15-byte name
/// and two tags of 35 bytes in all, lookup cache included): about 330 bytes for a counter or
/// gauge, 430 bytes for a histogram with the default 11 buckets. The default caps therefore
/// bound series state at about 33–43 MiB (100 000 series); sets add at most about 16 MiB of
/// members ([`Limits::max_set_members_total`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Most series in all families together (default 100 000). A sample that would create a new
    /// series beyond it is dropped and counted in `heartwire_series_dropped_total{family}`.
    pub max_series: usize,
    /// Most series in one family (default 10 000), so that one runaway tag cannot take the
    /// whole global budget. For built-in families a job, a worker, a check or an outbound
    /// call's (service, endpoint, status) counts as one series.
    pub max_series_per_family: usize,
    /// Most distinct family label values in `heartwire_series`, `…_series_dropped_total` and
    /// `…_series_conflicts_total` (default 1 000); the rest are summed under `family="other"`.
    pub max_family_labels: usize,
    /// Most open `job.start`s per job waiting for their end (default 100). Beyond it the job's
    /// oldest start is evicted and counted.
    pub max_open_starts_per_job: usize,
    /// Most open `job.start`s in all jobs together (default 10 000); beyond it the oldest start
    /// of any job is evicted and counted.
    pub max_open_starts: usize,
    /// Most distinct members one set series counts in a window (default 10 000); more members
    /// are not counted (the gauge saturates) and are counted as dropped.
    pub max_set_members: usize,
    /// Most set members held in all set series together (default 1 000 000, about 16 MiB).
    pub max_set_members_total: usize,
    /// How long a set counts distinct members before it starts over (default 60 s).
    pub set_window: Duration,
    /// Most cached raw (name, type, tags) keys (default 200 000). The cache spares sanitising
    /// names and tags on every sample; when full it is emptied and refilled.
    pub max_cached_keys: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_series: 100_000,
            max_series_per_family: 10_000,
            max_family_labels: 1_000,
            max_open_starts_per_job: 100,
            max_open_starts: 10_000,
            max_set_members: 10_000,
            max_set_members_total: 1_000_000,
            set_window: Duration::from_secs(60),
            max_cached_keys: 200_000,
        }
    }
}

/// The Prometheus client libraries' default buckets, in seconds.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Histogram bucket upper bounds (`+Inf` is always added). Each list must be finite and
/// strictly increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// StatsD `ms` (in seconds, after conversion), `h` and `d` (default [`DEFAULT_BUCKETS`]).
    pub statsd: Vec<f64>,
    /// `heartwire_job_duration_seconds` (default [`DEFAULT_BUCKETS`]).
    pub job_duration: Vec<f64>,
    /// `heartwire_external_http_duration_seconds` (default [`DEFAULT_BUCKETS`]).
    pub http_duration: Vec<f64>,
}

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets {
            statsd: DEFAULT_BUCKETS.to_vec(),
            job_duration: DEFAULT_BUCKETS.to_vec(),
            http_duration: DEFAULT_BUCKETS.to_vec(),
        }
    }
}

/// Labels added to every series of a family set, e.g. `service="worker"`.
pub type ConstLabels = Vec<(String, String)>;

/// The names of the built-in families, so that a config can keep an existing dashboard working
/// (seed 000: `vf_worker_poll_runs_total` with `service="worker"`).
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyNames {
    /// The job families.
    pub jobs: JobFamilies,
    /// The outbound-call families.
    pub http: HttpFamilies,
    /// The worker families.
    pub workers: WorkerFamilies,
    /// The DogStatsD service-check families.
    pub checks: CheckFamilies,
    /// The DogStatsD event family.
    pub events: EventFamilies,
}

/// Families fed by `job.*` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFamilies {
    /// Counter `{job,result}`; default `heartwire_job_runs_total`.
    pub runs: String,
    /// Histogram `{job}`; default `heartwire_job_duration_seconds`.
    pub duration: String,
    /// Gauge `{job}`; default `heartwire_job_last_success_timestamp_seconds`.
    pub last_success: String,
    /// Gauge `{job}`; default `heartwire_job_last_run_timestamp_seconds`.
    pub last_run: String,
    /// Gauge `{job}`, open starts; default `heartwire_job_running`.
    pub running: String,
    /// Counter `{job}`; default `heartwire_job_progress_total`.
    pub progress: String,
    /// Gauge `{job}`; default `heartwire_job_last_progress_timestamp_seconds`.
    pub last_progress: String,
    /// Gauge `{job}`, computed when read; default `heartwire_job_seconds_since_success`.
    pub seconds_since_success: String,
    /// Gauge `{job}` 0/1, computed when read; default `heartwire_job_stale`.
    pub stale: String,
    /// Gauge `{job}`; default `heartwire_job_stale_deadline_timestamp_seconds`.
    pub deadline: String,
    /// Gauge `{job}`; default `heartwire_job_next_expected_timestamp_seconds`.
    pub next_expected: String,
    /// Gauge `{job,state}`, one state 1 and the others 0; default `heartwire_job_state`.
    pub state: String,
    /// Gauge `{job}`; default `heartwire_job_consecutive_failures`.
    pub consecutive_failures: String,
    /// Gauge `{job}`, open runs past `max_runtime`; default `heartwire_job_overrun_runs`.
    pub overrun_runs: String,
    /// Counter `{job}`, runs whose session closed before they ended; default
    /// `heartwire_job_crashes_total`.
    pub crashes: String,
    /// Gauge `{job}` 0/1 for jobs with `stall_after`; default `heartwire_job_stalled`.
    pub stalled: String,
    /// Gauge `{job,result,reason}`, one-hot: the last run's result and reason are 1, the other
    /// combinations seen are 0; default `heartwire_job_last_result`.
    pub last_result: String,
    /// The name of the job label (default `job`).
    pub label: String,
    /// The `result` value of `job.skip` (default `skipped`).
    pub skipped_result: String,
    /// Constant labels on every job family (default none).
    pub labels: ConstLabels,
}

/// Families fed by `http` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFamilies {
    /// Counter `{service,endpoint,status_code}`; default `heartwire_external_http_total`.
    pub requests: String,
    /// Histogram `{service,endpoint}`, only for lines that carry seconds; default
    /// `heartwire_external_http_duration_seconds`.
    pub duration: String,
    /// Constant labels (default none).
    pub labels: ConstLabels,
}

/// Families fed by `hb` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerFamilies {
    /// Gauge `{worker}`; default `heartwire_worker_last_heartbeat_timestamp_seconds`.
    pub last_heartbeat: String,
    /// Gauge `{worker}`: 1 while heartbeats arrive within the ttl, 0 once they stop, the
    /// worker's session closes or it stops; default `heartwire_worker_status`.
    pub status: String,
    /// Gauge `{worker}` 0/1: the worker said `worker.stop` (a clean stop, not an outage);
    /// default `heartwire_worker_stopped`.
    pub stopped: String,
    /// The name of the worker label (default `worker`; seed 001 uses `name`).
    pub label: String,
    /// Constant labels (default none).
    pub labels: ConstLabels,
}

/// Families fed by DogStatsD service checks.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckFamilies {
    /// Gauge `{check}`, 0 OK to 3 UNKNOWN; default `heartwire_service_check_status`.
    pub status: String,
    /// Gauge `{check}`; default `heartwire_service_check_last_timestamp_seconds`.
    pub last: String,
    /// Constant labels (default none).
    pub labels: ConstLabels,
}

/// The family fed by DogStatsD events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFamilies {
    /// Counter `{alert_type}`; default `heartwire_events_total`.
    pub total: String,
    /// Constant labels (default none).
    pub labels: ConstLabels,
}

impl Default for FamilyNames {
    fn default() -> FamilyNames {
        FamilyNames {
            jobs: JobFamilies {
                runs: "heartwire_job_runs_total".into(),
                duration: "heartwire_job_duration_seconds".into(),
                last_success: "heartwire_job_last_success_timestamp_seconds".into(),
                last_run: "heartwire_job_last_run_timestamp_seconds".into(),
                running: "heartwire_job_running".into(),
                progress: "heartwire_job_progress_total".into(),
                last_progress: "heartwire_job_last_progress_timestamp_seconds".into(),
                seconds_since_success: "heartwire_job_seconds_since_success".into(),
                stale: "heartwire_job_stale".into(),
                deadline: "heartwire_job_stale_deadline_timestamp_seconds".into(),
                next_expected: "heartwire_job_next_expected_timestamp_seconds".into(),
                state: "heartwire_job_state".into(),
                consecutive_failures: "heartwire_job_consecutive_failures".into(),
                overrun_runs: "heartwire_job_overrun_runs".into(),
                crashes: "heartwire_job_crashes_total".into(),
                stalled: "heartwire_job_stalled".into(),
                last_result: "heartwire_job_last_result".into(),
                label: "job".into(),
                skipped_result: "skipped".into(),
                labels: Vec::new(),
            },
            http: HttpFamilies {
                requests: "heartwire_external_http_total".into(),
                duration: "heartwire_external_http_duration_seconds".into(),
                labels: Vec::new(),
            },
            workers: WorkerFamilies {
                last_heartbeat: "heartwire_worker_last_heartbeat_timestamp_seconds".into(),
                status: "heartwire_worker_status".into(),
                stopped: "heartwire_worker_stopped".into(),
                label: "worker".into(),
                labels: Vec::new(),
            },
            checks: CheckFamilies {
                status: "heartwire_service_check_status".into(),
                last: "heartwire_service_check_last_timestamp_seconds".into(),
                labels: Vec::new(),
            },
            events: EventFamilies {
                total: "heartwire_events_total".into(),
                labels: Vec::new(),
            },
        }
    }
}

/// The shape of a built-in family, for the names it claims in the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Counter,
    Gauge,
    Histogram,
}

impl FamilyNames {
    /// Every built-in family: its name, shape, variable label names and constant labels.
    pub(crate) fn all(&self) -> Vec<(&str, Shape, Vec<&str>, &ConstLabels)> {
        let (j, h, w, c, e) = (
            &self.jobs,
            &self.http,
            &self.workers,
            &self.checks,
            &self.events,
        );
        let job = j.label.as_str();
        let worker = w.label.as_str();
        let mut all = vec![(
            j.runs.as_str(),
            Shape::Counter,
            vec![job, "result"],
            &j.labels,
        )];
        all.push((&j.duration, Shape::Histogram, vec![job], &j.labels));
        for (name, shape) in [
            (&j.last_success, Shape::Gauge),
            (&j.last_run, Shape::Gauge),
            (&j.running, Shape::Gauge),
            (&j.progress, Shape::Counter),
            (&j.last_progress, Shape::Gauge),
            (&j.seconds_since_success, Shape::Gauge),
            (&j.stale, Shape::Gauge),
            (&j.deadline, Shape::Gauge),
            (&j.next_expected, Shape::Gauge),
            (&j.consecutive_failures, Shape::Gauge),
            (&j.overrun_runs, Shape::Gauge),
            (&j.crashes, Shape::Counter),
            (&j.stalled, Shape::Gauge),
        ] {
            all.push((name.as_str(), shape, vec![job], &j.labels));
        }
        all.push((&j.state, Shape::Gauge, vec![job, "state"], &j.labels));
        let result = vec![job, "result", "reason"];
        all.push((&j.last_result, Shape::Gauge, result, &j.labels));
        let call = vec!["service", "endpoint", "status_code"];
        all.push((&h.requests, Shape::Counter, call, &h.labels));
        all.push((
            &h.duration,
            Shape::Histogram,
            vec!["service", "endpoint"],
            &h.labels,
        ));
        for name in [&w.last_heartbeat, &w.status, &w.stopped] {
            all.push((name.as_str(), Shape::Gauge, vec![worker], &w.labels));
        }
        all.push((&c.status, Shape::Gauge, vec!["check"], &c.labels));
        all.push((&c.last, Shape::Gauge, vec!["check"], &c.labels));
        all.push((&e.total, Shape::Counter, vec!["alert_type"], &e.labels));
        all
    }
}

/// Names a family claims in the text exposition: its own, plus the sample names a histogram
/// writes, plus a counter's stem (`x` for `x_total`, the OpenMetrics family name). Two families
/// claiming one name would write an exposition Prometheus rejects.
pub(crate) fn claimed_names(name: &str, shape: Shape) -> Vec<String> {
    let mut names = vec![name.to_owned()];
    match shape {
        Shape::Counter => {
            if let Some(stem) = name.strip_suffix("_total").filter(|stem| !stem.is_empty()) {
                names.push(stem.to_owned());
            }
        }
        Shape::Gauge => {}
        Shape::Histogram => {
            names.extend(["_bucket", "_count", "_sum"].map(|suffix| format!("{name}{suffix}")));
        }
    }
    names
}

/// Why settings cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// A family name is not a Prometheus metric name.
    #[error(
        "family name {name:?} is not a metric name: use letters, digits and '_', not starting with a digit"
    )]
    InvalidFamilyName {
        /// The name.
        name: String,
    },
    /// Two families would write the same metric name.
    #[error(
        "family name {name:?} is used twice (or collides with a '_total', '_bucket', '_count' or '_sum' name, or a heartwire self-metric): rename one"
    )]
    DuplicateFamilyName {
        /// The name.
        name: String,
    },
    /// A constant label name is invalid, reserved or also a variable label of the family.
    #[error(
        "constant label {label:?} on {family:?} is not usable: use letters, digits and '_', not 'le', 'quantile', '__*' or one of the family's own labels"
    )]
    InvalidConstLabel {
        /// The family.
        family: String,
        /// The label name.
        label: String,
    },
    /// A bucket list is empty, not finite or not strictly increasing.
    #[error("bucket list {which} must be non-empty, finite and strictly increasing")]
    InvalidBuckets {
        /// Which list.
        which: &'static str,
    },
    /// A limit is zero.
    #[error("limit {which} must be above 0")]
    ZeroLimit {
        /// Which limit.
        which: &'static str,
    },
    /// The default ttl of counters and histograms is too short to be safe.
    #[error("{0}")]
    UnsafeCounterTtl(String),
}

impl Settings {
    /// Checks names, labels, buckets and limits. The aggregator assumes valid settings: the
    /// config loader calls this and refuses a config that fails it.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.validate_names()?;
        for (which, list) in [
            ("statsd", &self.buckets.statsd),
            ("job_duration", &self.buckets.job_duration),
            ("http_duration", &self.buckets.http_duration),
        ] {
            let increasing = list.windows(2).all(|pair| pair[0] < pair[1]);
            if list.is_empty() || !increasing || list.iter().any(|b| !b.is_finite()) {
                return Err(SettingsError::InvalidBuckets { which });
            }
        }
        let l = &self.limits;
        for (which, value) in [
            ("max_series", l.max_series),
            ("max_series_per_family", l.max_series_per_family),
            ("max_open_starts_per_job", l.max_open_starts_per_job),
            ("max_open_starts", l.max_open_starts),
            ("max_set_members", l.max_set_members),
            ("max_set_members_total", l.max_set_members_total),
            ("max_cached_keys", l.max_cached_keys),
            ("set_window", l.set_window.as_nanos().min(1) as usize),
        ] {
            if value == 0 {
                return Err(SettingsError::ZeroLimit { which });
            }
        }
        self.expiry
            .validate()
            .map_err(SettingsError::UnsafeCounterTtl)
    }

    fn validate_names(&self) -> Result<(), SettingsError> {
        let mut taken: HashSet<String> = telemetry::names::ALL
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        for (name, shape, variable, constant) in self.names.all() {
            if !is_metric_name(name) {
                return Err(SettingsError::InvalidFamilyName {
                    name: name.to_owned(),
                });
            }
            for claimed in claimed_names(name, shape) {
                if !taken.insert(claimed) {
                    return Err(SettingsError::DuplicateFamilyName {
                        name: name.to_owned(),
                    });
                }
            }
            for label in &variable {
                if !is_label_name(label) {
                    return Err(SettingsError::InvalidConstLabel {
                        family: name.to_owned(),
                        label: (*label).to_owned(),
                    });
                }
            }
            for (label, _) in constant {
                if !is_label_name(label) || variable.contains(&label.as_str()) {
                    return Err(SettingsError::InvalidConstLabel {
                        family: name.to_owned(),
                        label: label.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(Settings::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_a_family_name_that_collides_with_a_histogram_sample_name() {
        let mut settings = Settings::default();
        settings.names.jobs.last_run = "heartwire_job_duration_seconds_count".into();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::DuplicateFamilyName { .. })
        ));
    }

    #[test]
    fn rejects_a_family_name_that_takes_a_self_metric_name() {
        let mut settings = Settings::default();
        settings.names.workers.last_heartbeat = "heartwire_series".into();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::DuplicateFamilyName { .. })
        ));
    }

    #[test]
    fn rejects_invalid_names_labels_buckets_and_limits() {
        let mut settings = Settings::default();
        settings.names.http.requests = "external.http".into();
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::InvalidFamilyName { .. })
        ));

        let mut settings = Settings::default();
        settings.names.jobs.labels = vec![("job".into(), "x".into())];
        assert!(matches!(
            settings.validate(),
            Err(SettingsError::InvalidConstLabel { .. })
        ));

        let mut settings = Settings::default();
        settings.buckets.job_duration = vec![1.0, 1.0];
        assert_eq!(
            settings.validate(),
            Err(SettingsError::InvalidBuckets {
                which: "job_duration"
            })
        );

        let mut settings = Settings::default();
        settings.limits.set_window = Duration::ZERO;
        assert_eq!(
            settings.validate(),
            Err(SettingsError::ZeroLimit {
                which: "set_window"
            })
        );
    }

    #[test]
    fn seed_000_names_with_a_constant_service_label_are_valid() {
        let mut settings = Settings::default();
        settings.names.jobs.runs = "vf_worker_poll_runs_total".into();
        settings.names.jobs.duration = "vf_worker_poll_duration_seconds".into();
        settings.names.jobs.last_success = "vf_worker_poll_last_success_timestamp_seconds".into();
        settings.names.jobs.labels = vec![("service".into(), "worker".into())];
        settings.names.http.requests = "vf_external_http_total".into();
        assert_eq!(settings.validate(), Ok(()));
    }
}
