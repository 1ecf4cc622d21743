//! The `jobs:`, `workers:`, `defaults:` and `families:` sections: what heartwire watches and
//! what the families it exports are called.
//!
//! A job is read as written and resolved afterwards into its health spec ([`Job::spec`]), so
//! that an error names the key at fault (`jobs.nightly.tz`) and the loader can place it at its
//! line and column. `families:` is resolved over the catalogue of [`crate::aggregate::families`]:
//! its keys and their defaults are the catalogue's.

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use super::bounds::{FAILURES, SCHEDULE};
use crate::aggregate;
use crate::aggregate::families::{self, FamilyNames, Group};
use crate::health::job::{JobSpec, Readiness, default_late_after, default_max_runtime};
use crate::health::schedule::{Schedule, ScheduleError};

/// A watched job: its schedule and thresholds. Exactly one of `every` and `cron`.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// `every: 60s`: a run is due one period after the previous one; 1s to 10y.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub every: Option<Duration>,
    /// `cron: "22 4 * * *"`: five fields or a macro such as `@hourly`.
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default `UTC`); only with `cron`.
    #[serde(default)]
    pub tz: Option<String>,
    /// How long without a success before the job is stale; at least the period, at most 10y.
    /// Default: the period plus `min(4 × period, max(1 h, period / 4))` (60 s → 5 min,
    /// 1 h → 2 h, 24 h → 30 h).
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub alert_after: Option<Duration>,
    /// How late a run may start before the job is `late` (default: a quarter of the period,
    /// 10 s to 30 min); 1s to 10y.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub late_after: Option<Duration>,
    /// How long a run may take before it counts as hung (default: one period, 1 min to 28 d);
    /// 1s to 10y.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub max_runtime: Option<Duration>,
    /// For progress jobs: how long without `job.progress` before the job is stalled (default:
    /// never; 1s to 10y). For a job that sends `job.start`, only while a run is open, counted
    /// from the later of its start and the last progress.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub stall_after: Option<Duration>,
    /// Failed runs in a row that make the job `failing` (default 1; 1 to 1000000).
    #[serde(default = "one")]
    pub failure_threshold: u32,
    /// What the job does to `/readyz`: `success` (or `true`) answers 503 while the job is
    /// stale (no success in time), `completed` while no run ended in time, ok or error; default
    /// `false`, nothing.
    #[serde(default)]
    pub readiness: ReadinessSetting,
}

/// `readiness:` as written: `true`/`false`, `success` or `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ReadinessSetting(pub Readiness);

impl<'de> Deserialize<'de> for ReadinessSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = ReadinessSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("`success` (not ready while stale), `completed` (not ready while no run ended in time), `true` (success) or `false`")
            }
            fn visit_bool<E: serde::de::Error>(self, on: bool) -> Result<ReadinessSetting, E> {
                Ok(ReadinessSetting(if on {
                    Readiness::Success
                } else {
                    Readiness::Off
                }))
            }
            fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<ReadinessSetting, E> {
                match word {
                    "success" => Ok(ReadinessSetting(Readiness::Success)),
                    "completed" => Ok(ReadinessSetting(Readiness::Completed)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(word), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

fn one() -> u32 {
    1
}

/// What is wrong with a job: the key at fault (`None`: the job as a whole) and the message.
pub type JobProblem = (Option<&'static str>, String);

impl Job {
    /// The health spec, with every default filled in, once what the types cannot say is
    /// checked: one schedule, a known zone, every duration and count in range, `alert_after` no
    /// shorter than the period.
    pub fn spec(&self) -> Result<JobSpec, JobProblem> {
        if self.tz.is_some() && self.cron.is_none() {
            return Err((
                Some("tz"),
                "`tz` only applies to a `cron` schedule: remove it, or give the job a cron expression".to_owned(),
            ));
        }
        if let Some(every) = self.every {
            SCHEDULE
                .check(every)
                .map_err(|message| (Some("every"), message))?;
        }
        let schedule = self.schedule()?;
        let period = schedule.period();
        SCHEDULE
            .check(period)
            .map_err(|message| (Some("cron"), format!("the schedule's period: {message}")))?;
        for (key, value) in [
            ("alert_after", self.alert_after),
            ("late_after", self.late_after),
            ("max_runtime", self.max_runtime),
            ("stall_after", self.stall_after),
        ] {
            if let Some(value) = value {
                SCHEDULE
                    .check(value)
                    .map_err(|message| (Some(key), message))?;
            }
        }
        if let Some(alert_after) = self.alert_after
            && alert_after < period
        {
            return Err((
                Some("alert_after"),
                format!(
                    "{} is shorter than the schedule's period ({}): the job would be stale between any two runs; use at least {}",
                    humantime::format_duration(alert_after),
                    humantime::format_duration(period),
                    humantime::format_duration(schedule.default_alert_after()),
                ),
            ));
        }
        FAILURES
            .check(u64::from(self.failure_threshold))
            .map_err(|message| (Some("failure_threshold"), message))?;
        let mut spec = JobSpec::new(schedule);
        spec.alert_after = self.alert_after.unwrap_or(spec.alert_after);
        spec.late_after = self
            .late_after
            .unwrap_or_else(|| default_late_after(period));
        spec.max_runtime = self
            .max_runtime
            .unwrap_or_else(|| default_max_runtime(period));
        spec.stall_after = self.stall_after;
        spec.failure_threshold = self.failure_threshold;
        spec.readiness = self.readiness.0;
        Ok(spec)
    }

    fn schedule(&self) -> Result<Schedule, JobProblem> {
        let refused = |error: ScheduleError| {
            let key = match error {
                ScheduleError::UnknownZone(_) => "tz",
                ScheduleError::TooShort(_) => "every",
                _ => "cron",
            };
            (Some(key), error.to_string())
        };
        match (self.every, &self.cron) {
            (Some(period), None) => Schedule::every(period).map_err(refused),
            (None, Some(expr)) => {
                Schedule::cron(expr, self.tz.as_deref().unwrap_or("UTC")).map_err(refused)
            }
            (Some(_), Some(_)) => Err((None, "a job has `every` or `cron`, not both".to_owned())),
            (None, None) => Err((
                None,
                "a job needs a schedule: `every: 60s` or `cron: \"0 * * * *\"`".to_owned(),
            )),
        }
    }
}

/// The `jobs:` map, in config order. Its own reader puts the job's name in front of an error
/// raised while the job is read, so that the message names `jobs.<name>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Jobs(pub IndexMap<String, Job>);

impl<'de> Deserialize<'de> for Jobs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Jobs, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Jobs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of job names to their schedules")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Jobs, M::Error> {
                let mut jobs = IndexMap::new();
                while let Some(name) = map.next_key::<String>()? {
                    let job = map.next_value::<Job>().map_err(|error| {
                        // Errors inside the job already carry `jobs.<name>.<key>` and their place.
                        if error.to_string().contains(&format!("jobs.{name}")) {
                            error
                        } else {
                            serde::de::Error::custom(format_args!("{name}: {error}"))
                        }
                    })?;
                    jobs.insert(name, job);
                }
                Ok(Jobs(jobs))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// A watched worker.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// How long one heartbeat keeps the worker up (default `defaults.worker_ttl`; 1s to 1y). A
    /// heartbeat's own `ttl=` overrides it.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<crate::config::schema::HumanDuration>")]
    pub ttl: Option<Duration>,
}

/// Defaults for what is not configured one by one.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// The ttl of workers without their own (default 90s: three missed 30 s heartbeats; 1s to
    /// 1y).
    #[serde(with = "humantime_serde")]
    #[schemars(with = "crate::config::schema::HumanDuration")]
    pub worker_ttl: Duration,
    /// Whether a job nobody configured that succeeds at a steady cadence gets a learned
    /// schedule, and with it staleness, state and missed runs (default true).
    pub learn_schedules: bool,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            worker_ttl: aggregate::DEFAULT_WORKER_TTL,
            learn_schedules: true,
        }
    }
}

/// The names of the built-in families, group by group; every key is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Families {
    /// Job families (`runs`, `duration`, `last_success`, …, `label`, `labels`).
    pub jobs: BTreeMap<String, NameOrLabels>,
    /// Outbound-call families (`requests`, `duration`, `labels`).
    pub http: BTreeMap<String, NameOrLabels>,
    /// Worker families (`last_heartbeat`, `status`, `stopped`, `label`, `labels`).
    pub workers: BTreeMap<String, NameOrLabels>,
    /// Service-check families (`status`, `last`, `labels`).
    pub checks: BTreeMap<String, NameOrLabels>,
    /// The event family (`total`, `labels`).
    pub events: BTreeMap<String, NameOrLabels>,
}

/// A family name, or (under `labels`) the constant labels of the group.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum NameOrLabels {
    /// A name, e.g. `runs: vf_worker_poll_runs_total`.
    Name(String),
    /// `labels: { service: worker }`.
    Labels(IndexMap<String, String>),
}

impl Families {
    /// What the config gives for `group`.
    fn given(&self, group: Group) -> &BTreeMap<String, NameOrLabels> {
        match group {
            Group::Jobs => &self.jobs,
            Group::Http => &self.http,
            Group::Workers => &self.workers,
            Group::Checks => &self.checks,
            Group::Events => &self.events,
        }
    }

    fn groups(&self) -> impl Iterator<Item = (&'static str, &BTreeMap<String, NameOrLabels>)> {
        Group::ALL
            .into_iter()
            .map(|group| (group.key(), self.given(group)))
    }

    /// The key that gives the family name `name` (`families.jobs.runs`), if one does.
    pub fn key_naming(&self, name: &str) -> Option<String> {
        self.groups().find_map(|(group, given)| {
            given.iter().find_map(|(key, value)| match value {
                NameOrLabels::Name(given) if given == name => {
                    Some(format!("families.{group}.{key}"))
                }
                _ => None,
            })
        })
    }

    /// The key that gives the label name `label`: a constant label
    /// (`families.jobs.labels.service`) or a group's `label`.
    pub fn key_of_label(&self, label: &str) -> Option<String> {
        self.groups().find_map(|(group, given)| {
            given.iter().find_map(|(key, value)| match value {
                NameOrLabels::Labels(labels) if key == "labels" && labels.contains_key(label) => {
                    Some(format!("families.{group}.labels.{label}"))
                }
                NameOrLabels::Name(name) if key == "label" && name == label => {
                    Some(format!("families.{group}.label"))
                }
                NameOrLabels::Labels(renamed) if key == "label_names" => renamed
                    .iter()
                    .find(|(_, to)| *to == label)
                    .map(|(from, _)| format!("families.{group}.label_names.{from}")),
                _ => None,
            })
        })
    }

    /// The family names these settings give, over the defaults; the loader checks them
    /// ([`FamilyNames::check`]) once the other sections are read. Errors name the key.
    pub fn names(&self) -> Result<FamilyNames, (String, String)> {
        let mut names = FamilyNames::default();
        for group in Group::ALL {
            for (key, value) in self.given(group) {
                let at = format!("families.{}.{key}", group.key());
                match (key.as_str(), value) {
                    ("labels", NameOrLabels::Labels(map)) => {
                        let labels = map.iter().map(|(k, v)| (k.clone(), v.clone()));
                        names.set_labels(group, labels.collect());
                    }
                    ("label_names", NameOrLabels::Labels(map)) => {
                        for (from, to) in map {
                            let given = self.given(group);
                            if given.contains_key("label") && names.label(group, from) != from {
                                return Err((
                                    format!("{at}.{from}"),
                                    format!(
                                        "renames the label `families.{}.label` already renames: keep one",
                                        group.key()
                                    ),
                                ));
                            }
                            if !names.rename_label(group, from, to) {
                                let known: Vec<&str> = families::group_labels(group).collect();
                                return Err((
                                    format!("{at}.{from}"),
                                    format!(
                                        "no {} family has a label {from:?}: rename one of {}",
                                        group.key(),
                                        known.join(", ")
                                    ),
                                ));
                            }
                        }
                    }
                    ("label_names", NameOrLabels::Name(_)) => {
                        return Err((
                            at,
                            "is a map of default label names to new ones, e.g. `label_names: { service: websiteId }`"
                                .to_owned(),
                        ));
                    }
                    ("labels", NameOrLabels::Name(_)) => {
                        return Err((
                            at,
                            "is a map of label names to values, e.g. `labels: { service: worker }`"
                                .to_owned(),
                        ));
                    }
                    (_, NameOrLabels::Name(name)) => {
                        if !names.set(group, key, name) {
                            let known: Vec<&str> = families::keys(group).collect();
                            return Err((
                                at,
                                format!("unknown key: use one of {}, labels", known.join(", ")),
                            ));
                        }
                    }
                    (_, NameOrLabels::Labels(_)) => {
                        return Err((at, "is a family name, e.g. `my_job_runs_total`".to_owned()));
                    }
                }
            }
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests;
