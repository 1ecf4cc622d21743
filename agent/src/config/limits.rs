//! The ranges of the `limits:` and `buckets:` sections. Both are read straight into the
//! aggregator's own [`Limits`] and [`Buckets`]: there is one type for each, and this module only
//! says which values the configuration accepts.

use super::bounds::{BUCKETS, MEMORY_CAP, SET_WINDOW};
use crate::aggregate::{Buckets, Limits};

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
