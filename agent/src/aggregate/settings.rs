//! What the aggregator is configured with: bounds, histogram buckets and family names.
//!
//! [`Limits`] and [`Buckets`] are the `limits:` and `buckets:` sections of the configuration as
//! they are read, with no copy in between: the loader checks their ranges and hands them over
//! as they are. Every bound is a trade-off between what a sender may create and what the agent
//! may hold; the defaults keep a flood of distinct series under a few tens of MiB (see
//! [`Limits`]).

use std::time::Duration;

use serde::Deserialize;

use super::expiry::Expiry;
use super::families::FamilyNames;
use super::mapping::Mapping;
use crate::health::job::JobSpec;

/// Everything the aggregator needs to know, taken from a loaded configuration
/// (`Config::aggregate_settings`). [`Settings::default`] holds the documented defaults.
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
    /// Whether jobs nobody configured get a schedule learned from their successes (default
    /// true; `defaults.learn_schedules`).
    pub learn_schedules: bool,
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
            learn_schedules: true,
            mapping: Mapping::default(),
            expiry: Expiry::default(),
        }
    }
}

/// Bounds that keep memory finite whatever senders write (`limits:`). Each count is 1 to
/// 100000000.
///
/// Heap per series, measured by `benches/render.rs` with a counting allocator (a 15-byte name
/// and two tags of 35 bytes in all, lookup cache and slot handles included): about 390 bytes for
/// a counter or gauge, 490 bytes for a histogram with the default 11 buckets. The default caps
/// therefore bound series state at about 39–49 MiB (100 000 series); sets add at most about
/// 16 MiB of members ([`Limits::max_set_members_total`]).
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most series in all families together (default 100000). A sample that would create a new
    /// series beyond it is dropped and counted in `heartwire_series_dropped_total{family}`.
    pub max_series: usize,
    /// Most series in one family (default 10000), so that one runaway tag cannot take the
    /// whole global budget. For built-in families a job, a worker, a check or an outbound
    /// call's (service, endpoint, status) counts as one series.
    pub max_series_per_family: usize,
    /// Most distinct family label values in `heartwire_series`, `…_series_dropped_total` and
    /// `…_series_conflicts_total` (default 1000); the rest are summed under `family="other"`.
    pub max_family_labels: usize,
    /// Most open `job.start`s per job waiting for their end (default 100). Beyond it the job's
    /// oldest start is evicted and counted.
    pub max_open_starts_per_job: usize,
    /// Most open `job.start`s in all jobs together (default 10000); beyond it the oldest start
    /// of any job is evicted and counted.
    pub max_open_starts: usize,
    /// Most distinct members one set series counts in a window (default 10000); more members
    /// are not counted (the gauge saturates) and are counted as dropped.
    pub max_set_members: usize,
    /// Most set members held in all set series together (default 1000000, about 16 MiB).
    pub max_set_members_total: usize,
    /// How long a set counts distinct members before it starts over (default `60s`, 1s to 1d).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub set_window: Duration,
    /// Most cached raw (name, type, tags) keys (default 200000). The cache spares sanitising
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

/// Histogram bucket upper bounds, in seconds for timings (`buckets:`; `+Inf` is always added).
/// Each list is 1 to 64 finite, strictly increasing numbers; default, for all three,
/// [`DEFAULT_BUCKETS`].
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Buckets {
    /// StatsD `ms` (in seconds, after conversion), `h` and `d`.
    pub statsd: Vec<f64>,
    /// `heartwire_job_duration_seconds`.
    pub job_duration: Vec<f64>,
    /// `heartwire_external_http_duration_seconds`.
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
