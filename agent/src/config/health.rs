//! The `jobs:`, `workers:`, `defaults:` and `families:` sections: what heartwire watches and
//! what the families it exports are called.
//!
//! A job is checked while it is read, so that a bad schedule is reported with the line and
//! column of the job (serde_yaml places errors raised during deserialisation).

use std::collections::BTreeMap;
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::aggregate::{self, FamilyNames};
use crate::health::job::{JobSpec, default_late_after, default_max_runtime};
use crate::health::schedule::Schedule;

/// A watched job: its schedule and thresholds. Exactly one of `every` and `cron`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawJob")]
pub struct Job {
    /// `every: 60s`: a run is due one period after the previous one.
    pub every: Option<Duration>,
    /// `cron: "22 4 * * *"`: five fields or a macro such as `@hourly`.
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in (default `UTC`).
    pub tz: String,
    /// How long without a success before the job is stale. Default: the period plus
    /// `min(4 × period, max(1 h, period / 4))` (60 s → 5 min, 1 h → 2 h, 24 h → 30 h).
    pub alert_after: Option<Duration>,
    /// How late a run may start before the job is `late` (default: a quarter of the period,
    /// 10 s to 30 min).
    pub late_after: Option<Duration>,
    /// How long a run may take before it counts as hung (default: one period, 1 min to 28 d).
    pub max_runtime: Option<Duration>,
    /// For progress jobs: how long without `job.progress` before the job is stalled (default:
    /// never). For a job that sends `job.start`, only while a run is open, counted from the
    /// later of its start and the last progress.
    pub stall_after: Option<Duration>,
    /// Failed runs in a row that make the job `failing` (default 1).
    pub failure_threshold: u32,
    /// Whether `/readyz` answers 503 while this job is stale (default false).
    pub readiness: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(default, with = "humantime_serde")]
    every: Option<Duration>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default, with = "humantime_serde")]
    alert_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    late_after: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_runtime: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    stall_after: Option<Duration>,
    #[serde(default)]
    failure_threshold: Option<u32>,
    #[serde(default)]
    readiness: bool,
}

impl TryFrom<RawJob> for Job {
    type Error = String;

    fn try_from(raw: RawJob) -> Result<Job, String> {
        let job = Job {
            every: raw.every,
            cron: raw.cron,
            tz: raw.tz.clone().unwrap_or_else(|| "UTC".to_owned()),
            alert_after: raw.alert_after,
            late_after: raw.late_after,
            max_runtime: raw.max_runtime,
            stall_after: raw.stall_after,
            failure_threshold: raw.failure_threshold.unwrap_or(1),
            readiness: raw.readiness,
        };
        if raw.tz.is_some() && job.cron.is_none() {
            return Err("`tz` only applies to a `cron` schedule: remove it, or give the job a cron expression".to_owned());
        }
        if job.failure_threshold == 0 {
            return Err("`failure_threshold` is 1 or more".to_owned());
        }
        let schedule = job.schedule()?;
        let period = schedule.period();
        if let Some(alert_after) = job.alert_after
            && alert_after < period
        {
            return Err(format!(
                "`alert_after` ({}) is shorter than the schedule's period ({}): the job would be stale between any two runs; use at least {}",
                humantime::format_duration(alert_after),
                humantime::format_duration(period),
                humantime::format_duration(schedule.default_alert_after()),
            ));
        }
        for (key, value) in [
            ("max_runtime", job.max_runtime),
            ("stall_after", job.stall_after),
            ("late_after", job.late_after),
        ] {
            if value == Some(Duration::ZERO) {
                return Err(format!("`{key}` must be longer than 0s"));
            }
        }
        Ok(job)
    }
}

impl Job {
    fn schedule(&self) -> Result<Schedule, String> {
        match (self.every, &self.cron) {
            (Some(period), None) => Schedule::every(period).map_err(|e| e.to_string()),
            (None, Some(expr)) => Schedule::cron(expr, &self.tz).map_err(|e| e.to_string()),
            (Some(_), Some(_)) => Err("a job has `every` or `cron`, not both".to_owned()),
            (None, None) => {
                Err("a job needs a schedule: `every: 60s` or `cron: \"0 * * * *\"`".to_owned())
            }
        }
    }

    /// The health spec, with every default filled in.
    pub fn spec(&self) -> Result<JobSpec, String> {
        let mut spec = JobSpec::new(self.schedule()?);
        let period = spec.schedule.period();
        spec.alert_after = self.alert_after.unwrap_or(spec.alert_after);
        spec.late_after = self
            .late_after
            .unwrap_or_else(|| default_late_after(period));
        spec.max_runtime = self
            .max_runtime
            .unwrap_or_else(|| default_max_runtime(period));
        spec.stall_after = self.stall_after;
        spec.failure_threshold = self.failure_threshold;
        spec.readiness = self.readiness;
        Ok(spec)
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
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// How long one heartbeat keeps the worker up (default `defaults.worker_ttl`). A heartbeat's
    /// own `ttl=` overrides it.
    #[serde(default, with = "humantime_serde")]
    pub ttl: Option<Duration>,
}

/// Defaults for what is not configured one by one.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    /// The ttl of workers without their own (default 90s: three missed 30 s heartbeats).
    #[serde(with = "humantime_serde")]
    pub worker_ttl: Duration,
}

impl Default for Defaults {
    fn default() -> Defaults {
        Defaults {
            worker_ttl: aggregate::DEFAULT_WORKER_TTL,
        }
    }
}

/// The names of the built-in families, group by group; every key is optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
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

/// One group of `families:`: its key, what the config gives, the name slots and the labels.
type Group<'a> = (
    &'a str,
    &'a BTreeMap<String, NameOrLabels>,
    Vec<(&'static str, &'a mut String)>,
    &'a mut aggregate::ConstLabels,
);

/// A family name, or (under `labels`) the constant labels of the group.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NameOrLabels {
    /// A name, e.g. `runs: vf_worker_poll_runs_total`.
    Name(String),
    /// `labels: { service: worker }`.
    Labels(IndexMap<String, String>),
}

impl Families {
    /// The family names these settings give, over the defaults. Errors name the key.
    pub fn names(&self) -> Result<FamilyNames, (String, String)> {
        let mut names = FamilyNames::default();
        let n = &mut names;
        let groups: [Group<'_>; 5] = [
            (
                "jobs",
                &self.jobs,
                vec![
                    ("runs", &mut n.jobs.runs),
                    ("duration", &mut n.jobs.duration),
                    ("last_success", &mut n.jobs.last_success),
                    ("last_run", &mut n.jobs.last_run),
                    ("running", &mut n.jobs.running),
                    ("progress", &mut n.jobs.progress),
                    ("last_progress", &mut n.jobs.last_progress),
                    ("seconds_since_success", &mut n.jobs.seconds_since_success),
                    ("stale", &mut n.jobs.stale),
                    ("deadline", &mut n.jobs.deadline),
                    ("next_expected", &mut n.jobs.next_expected),
                    ("state", &mut n.jobs.state),
                    ("consecutive_failures", &mut n.jobs.consecutive_failures),
                    ("overrun_runs", &mut n.jobs.overrun_runs),
                    ("crashes", &mut n.jobs.crashes),
                    ("stalled", &mut n.jobs.stalled),
                    ("last_result", &mut n.jobs.last_result),
                    ("label", &mut n.jobs.label),
                    ("skipped_result", &mut n.jobs.skipped_result),
                ],
                &mut n.jobs.labels,
            ),
            (
                "http",
                &self.http,
                vec![
                    ("requests", &mut n.http.requests),
                    ("duration", &mut n.http.duration),
                ],
                &mut n.http.labels,
            ),
            (
                "workers",
                &self.workers,
                vec![
                    ("last_heartbeat", &mut n.workers.last_heartbeat),
                    ("status", &mut n.workers.status),
                    ("stopped", &mut n.workers.stopped),
                    ("label", &mut n.workers.label),
                ],
                &mut n.workers.labels,
            ),
            (
                "checks",
                &self.checks,
                vec![
                    ("status", &mut n.checks.status),
                    ("last", &mut n.checks.last),
                ],
                &mut n.checks.labels,
            ),
            (
                "events",
                &self.events,
                vec![("total", &mut n.events.total)],
                &mut n.events.labels,
            ),
        ];
        for (group, given, mut slots, labels) in groups {
            for (key, value) in given {
                let at = format!("families.{group}.{key}");
                match (key.as_str(), value) {
                    ("labels", NameOrLabels::Labels(map)) => {
                        *labels = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    }
                    ("labels", NameOrLabels::Name(_)) => {
                        return Err((
                            at,
                            "is a map of label names to values, e.g. `labels: { service: worker }`"
                                .to_owned(),
                        ));
                    }
                    (_, NameOrLabels::Name(name)) => {
                        match slots.iter_mut().find(|(slot, _)| *slot == key) {
                            Some((_, slot)) => **slot = name.clone(),
                            None => {
                                let known: Vec<&str> =
                                    slots.iter().map(|(slot, _)| *slot).collect();
                                return Err((
                                    at,
                                    format!("unknown key: use one of {}, labels", known.join(", ")),
                                ));
                            }
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
mod tests {
    use super::super::from_str;
    use super::*;

    #[track_caller]
    fn refused(yaml: &str) -> String {
        from_str(yaml, "agent.yaml").unwrap_err().to_string()
    }

    #[test]
    fn jobs_workers_and_families_reach_the_aggregator() {
        let config = from_str(
            "jobs:\n  viewer-poll:\n    cron: \"* * * * *\"\n    readiness: true\n  chat-export:\n    cron: \"0 * * * *\"\n    tz: Europe/Berlin\n  crawl:\n    every: 15m\n    stall_after: 15m\n    alert_after: 1h\nworkers:\n  email_queue: { ttl: 45s }\n  blockchain_sync: {}\ndefaults:\n  worker_ttl: 2m\nfamilies:\n  jobs:\n    runs: vf_worker_poll_runs_total\n    labels: { service: worker }\n  workers:\n    status: worker_status\n    label: name\n",
            "agent.yaml",
        )
        .unwrap();
        let settings = config.aggregate_settings();
        let jobs: Vec<(&str, u64)> = settings
            .jobs
            .iter()
            .map(|(n, s)| (n.as_str(), s.alert_after.as_secs()))
            .collect();
        assert_eq!(
            jobs,
            [("viewer-poll", 300), ("chat-export", 7200), ("crawl", 3600)],
            "config order, derived thresholds"
        );
        assert!(settings.jobs[0].1.readiness);
        assert_eq!(
            settings.jobs[2].1.stall_after,
            Some(Duration::from_secs(900))
        );
        assert_eq!(settings.jobs[1].1.schedule.zone(), "Europe/Berlin");
        let workers: Vec<(&str, u64)> = settings
            .workers
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_secs()))
            .collect();
        assert_eq!(workers, [("email_queue", 45), ("blockchain_sync", 120)]);
        assert_eq!(settings.names.jobs.runs, "vf_worker_poll_runs_total");
        assert_eq!(
            settings.names.jobs.labels,
            vec![("service".to_owned(), "worker".to_owned())]
        );
        assert_eq!(
            (
                settings.names.workers.status.as_str(),
                settings.names.workers.label.as_str()
            ),
            ("worker_status", "name")
        );
        settings.validate().unwrap();
    }

    #[test]
    fn a_bad_schedule_names_the_file_the_place_the_job_and_the_fix() {
        let message = refused("jobs:\n  nightly:\n    cron: \"0 3 * * *\"\n    tz: Mars/Olympus\n");
        assert!(
            message.starts_with("agent.yaml:2:3: jobs: nightly: unknown time zone \"Mars/Olympus\": use an IANA name"),
            "{message}"
        );
        let message = refused("jobs:\n  nightly:\n    cron: \"0 0 3 * * *\"\n");
        assert!(
            message.contains(
                "jobs: nightly: cron expression \"0 0 3 * * *\" has 6 fields: write five"
            ),
            "{message}"
        );
        let message = refused("jobs:\n  poll:\n    every: 60\n");
        assert!(
            message.starts_with("agent.yaml:3:12: jobs.poll.every: invalid value: string \"60\", expected a duration"),
            "a duration without a unit: {message}"
        );
        let message = refused("jobs:\n  poll:\n    every: 60s\n    alert_after: 30s\n");
        assert!(
            message.contains("`alert_after` (30s) is shorter than the schedule's period (1m)"),
            "{message}"
        );
        assert!(message.contains("use at least 5m"), "{message}");
        let message = refused("jobs:\n  poll:\n    every: 1m\n    cron: \"* * * * *\"\n");
        assert!(
            message.contains("a job has `every` or `cron`, not both"),
            "{message}"
        );
        let message = refused("jobs:\n  poll: {}\n");
        assert!(message.contains("a job needs a schedule"), "{message}");
        let message = refused("jobs:\n  poll:\n    every: 1m\n    tz: UTC\n");
        assert!(
            message.contains("`tz` only applies to a `cron` schedule"),
            "{message}"
        );
        let message = refused("jobs:\n  poll:\n    every: 1m\n    retries: 3\n");
        assert!(message.contains("unknown field `retries`"), "{message}");
    }

    #[test]
    fn names_and_families_are_checked() {
        let message = refused("jobs:\n  \"bad name\":\n    every: 1m\n");
        assert!(
            message.contains("`jobs.bad name`: a name is 1 to 128 characters"),
            "{message}"
        );
        let message = refused("families:\n  jobs:\n    runz: x_total\n");
        assert!(
            message.contains("`families.jobs.runz`: unknown key: use one of runs, duration"),
            "{message}"
        );
        let message = refused("families:\n  jobs:\n    runs: 9lives\n");
        assert!(
            message.contains("family name \"9lives\" is not a metric name"),
            "{message}"
        );
        let message = refused("families:\n  http:\n    labels: { service: worker }\n");
        assert!(
            message.contains("constant label \"service\""),
            "a constant label cannot shadow a variable one: {message}"
        );
        let message = refused("workers:\n  w:\n    ttl: 0s\n");
        assert!(
            message.contains("`workers.w.ttl`: must be longer than 0s"),
            "{message}"
        );
    }
}
