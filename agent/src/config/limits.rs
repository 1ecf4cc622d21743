//! The aggregator's part of the configuration: memory bounds and histogram buckets, mapped onto
//! [`aggregate::Settings`](crate::aggregate::Settings). Defaults come from the aggregator's own,
//! so there is one source for each number.

use std::time::Duration;

use serde::Deserialize;

use super::bounds::{BUCKETS, MEMORY_CAP, SET_WINDOW};
use crate::aggregate;

/// Bounds that keep memory finite whatever senders write. Each default is the aggregator's; see
/// [`aggregate::Limits`] for the memory each one holds. Each count is 1 to 100000000.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most series in all families together; default 100000. Beyond it new series are dropped
    /// and counted in `heartwire_series_dropped_total{family}`.
    pub max_series: usize,
    /// Most series in one family; default 10000.
    pub max_series_per_family: usize,
    /// Most distinct `family` label values in heartwire's series self-metrics; default 1000.
    pub max_family_labels: usize,
    /// Most open `job.start`s per job awaiting their end; default 100.
    pub max_open_starts_per_job: usize,
    /// Most open `job.start`s in all jobs; default 10000.
    pub max_open_starts: usize,
    /// Most distinct members one set series counts per window; default 10000.
    pub max_set_members: usize,
    /// Most set members held in all sets; default 1000000.
    pub max_set_members_total: usize,
    /// How long a set counts distinct members before it starts over; default `60s`, 1s to 1d.
    #[serde(with = "humantime_serde")]
    pub set_window: Duration,
    /// Most cached raw (name, type, tags) keys; default 200000.
    pub max_cached_keys: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        let limits = aggregate::Limits::default();
        Limits {
            max_series: limits.max_series,
            max_series_per_family: limits.max_series_per_family,
            max_family_labels: limits.max_family_labels,
            max_open_starts_per_job: limits.max_open_starts_per_job,
            max_open_starts: limits.max_open_starts,
            max_set_members: limits.max_set_members,
            max_set_members_total: limits.max_set_members_total,
            set_window: limits.set_window,
            max_cached_keys: limits.max_cached_keys,
        }
    }
}

/// Histogram bucket upper bounds, in seconds for timings (`+Inf` is always added). Each list is
/// 1 to 64 finite, strictly increasing numbers; default, for all three, the Prometheus client
/// libraries' `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Buckets {
    /// StatsD `ms` (converted to seconds), `h` and `d`.
    pub statsd: Vec<f64>,
    /// Job durations.
    pub job_duration: Vec<f64>,
    /// Outbound call durations.
    pub http_duration: Vec<f64>,
}

impl Default for Buckets {
    fn default() -> Buckets {
        let buckets = aggregate::Buckets::default();
        Buckets {
            statsd: buckets.statsd,
            job_duration: buckets.job_duration,
            http_duration: buckets.http_duration,
        }
    }
}

impl Limits {
    /// Checks every bound against its range; an error names the key.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            ("max_series", self.max_series),
            ("max_series_per_family", self.max_series_per_family),
            ("max_family_labels", self.max_family_labels),
            ("max_open_starts_per_job", self.max_open_starts_per_job),
            ("max_open_starts", self.max_open_starts),
            ("max_set_members", self.max_set_members),
            ("max_set_members_total", self.max_set_members_total),
            ("max_cached_keys", self.max_cached_keys),
        ] {
            MEMORY_CAP
                .check(value as u64)
                .map_err(|message| (format!("limits.{key}"), message))?;
        }
        SET_WINDOW
            .check(self.set_window)
            .map_err(|message| ("limits.set_window".to_owned(), message))?;
        Ok(())
    }
}

impl Buckets {
    /// Checks each list; an error names the key.
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        for (key, list) in [
            ("statsd", &self.statsd),
            ("job_duration", &self.job_duration),
            ("http_duration", &self.http_duration),
        ] {
            check_buckets(list).map_err(|message| (format!("buckets.{key}"), message))?;
        }
        Ok(())
    }
}

/// Whether `list` can be a histogram's bucket bounds: 1 to 64 finite numbers, strictly
/// increasing.
pub(crate) fn check_buckets(list: &[f64]) -> Result<(), String> {
    BUCKETS.check(list.len() as u64).map_err(|_| {
        format!(
            "{} buckets: list {BUCKETS} finite, strictly increasing upper bounds (+Inf is added)",
            list.len()
        )
    })?;
    if let Some(bad) = list.iter().find(|bound| !bound.is_finite()) {
        return Err(format!(
            "{bad} is not a finite number: +Inf is always added, list only finite bounds"
        ));
    }
    if let Some(pair) = list.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(format!(
            "{} is not below {}: bounds are strictly increasing",
            pair[0], pair[1]
        ));
    }
    Ok(())
}

/// The aggregator's settings for these limits and buckets; family names keep their defaults
/// until the configuration names them.
pub(crate) fn settings(limits: &Limits, buckets: &Buckets) -> aggregate::Settings {
    aggregate::Settings {
        limits: aggregate::Limits {
            max_series: limits.max_series,
            max_series_per_family: limits.max_series_per_family,
            max_family_labels: limits.max_family_labels,
            max_open_starts_per_job: limits.max_open_starts_per_job,
            max_open_starts: limits.max_open_starts,
            max_set_members: limits.max_set_members,
            max_set_members_total: limits.max_set_members_total,
            set_window: limits.set_window,
            max_cached_keys: limits.max_cached_keys,
        },
        buckets: aggregate::Buckets {
            statsd: buckets.statsd.clone(),
            job_duration: buckets.job_duration.clone(),
            http_duration: buckets.http_duration.clone(),
        },
        ..aggregate::Settings::default()
    }
}
