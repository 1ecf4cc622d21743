//! The alert rules and the Grafana dashboard a config implies, so that nobody writes them again
//! by hand (`heartwire rules` and `heartwire dashboard` in [`crate::cmd::rules`]).
//!
//! Both read the same [`Source`]: the family names and labels of `families:`, the jobs with their
//! schedules and thresholds, the workers with their ttl, and the extra alerts of `alerts:` with
//! the guards of `alert_guards:`.
//! Job staleness is aggregated across replicas (a job that runs on any one pod is fine), so the
//! rules also hold for a Deployment with several pods of which only one runs a given job.

pub mod dashboard;
mod known;
pub mod prometheus;
pub(crate) mod promql;
mod yaml;

use std::time::Duration;

use crate::aggregate::{FamilyNames, Mapping};
use crate::config::{AlertGuards, Alerts, Config, Dashboard, Textfile};
use crate::health::job::JobSpec;
use crate::health::schedule::Schedule;

pub use self::known::Known;
pub use self::prometheus::{AlertRule, RuleGroup, ScrapeTarget};

/// What the rules and the dashboard are derived from.
#[derive(Debug, Clone)]
pub struct Source {
    /// Family names and constant labels.
    pub names: FamilyNames,
    /// Configured jobs, in config order.
    pub jobs: Vec<(String, JobSpec)>,
    /// Configured workers and their ttl, in config order.
    pub workers: Vec<(String, Duration)>,
    /// The ttl of workers without their own.
    pub default_worker_ttl: Duration,
    /// The `alerts:` section.
    pub alerts: Alerts,
    /// The `alert_guards:` section: the conditions alerts name under `unless` and `and`.
    pub guards: AlertGuards,
    /// The `textfile:` section: how heartwire is seen when nobody scrapes it.
    pub textfile: Textfile,
    /// The StatsD mapping rules: the StatsD families the config declares.
    pub mapping: Mapping,
    /// The `dashboard:` section: rows of panels over any known family.
    pub dashboard: Dashboard,
}

impl Source {
    /// The parts of a loaded config that rules and dashboards need.
    pub fn from_config(config: &Config) -> Source {
        let live = &config.live;
        Source {
            names: config.fixed.families.clone(),
            jobs: live.jobs.clone(),
            workers: live.workers.clone(),
            default_worker_ttl: live.defaults.worker_ttl,
            alerts: live.alerts.clone(),
            guards: live.alert_guards.clone(),
            textfile: config.fixed.textfile.clone(),
            mapping: live.statsd.mapping.clone(),
            dashboard: live.dashboard.clone(),
        }
    }
}

/// Checks what `heartwire rules` and `heartwire dashboard` would derive from `config`: every
/// expression parses and names only families the config knows ([`Known`]). The error is the
/// config key at fault and what is wrong with it, as the loader reports any other problem.
pub fn check(config: &Config) -> Result<(), (String, String)> {
    let source = Source::from_config(config);
    let known = Known::of(&source);
    prometheus::check(&source, &known)?;
    dashboard::check(&source, &known)?;
    Ok(())
}

/// A duration in words for annotations: `5 minutes`, `2 hours`, `30 hours`, `3 days`.
pub(crate) fn in_words(d: Duration) -> String {
    let secs = d.as_secs();
    let unit = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    if d.subsec_nanos() != 0 || secs == 0 {
        humantime::format_duration(d).to_string()
    } else if secs >= 2 * 86_400 && secs.is_multiple_of(86_400) {
        unit(secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) {
        unit(secs / 3600, "hour")
    } else if secs.is_multiple_of(60) {
        unit(secs / 60, "minute")
    } else if secs < 180 {
        unit(secs, "second")
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// How a schedule reads in an annotation: `every minute`, `on cron "45 3 * * *" (UTC)`.
pub(crate) fn schedule_in_words(schedule: &Schedule) -> String {
    match schedule {
        Schedule::Every(period) if *period == Duration::from_secs(60) => "every minute".to_owned(),
        Schedule::Every(period) if *period == Duration::from_secs(3600) => "every hour".to_owned(),
        Schedule::Every(period) => format!("every {}", in_words(*period)),
        Schedule::Cron(_) => format!("on cron \"{}\" ({})", schedule.describe(), schedule.zone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_the_largest_exact_unit() {
        for (secs, words) in [
            (1, "1 second"),
            (90, "90 seconds"),
            (300, "5 minutes"),
            (3600, "1 hour"),
            (7200, "2 hours"),
            (86_400, "24 hours"),
            (108_000, "30 hours"),
            (172_800, "2 days"),
            (185, "3m 5s"),
        ] {
            assert_eq!(in_words(Duration::from_secs(secs)), words);
        }
    }

    #[test]
    fn schedules_read_as_their_config_says() {
        let every = |secs| Schedule::every(Duration::from_secs(secs)).unwrap();
        assert_eq!(schedule_in_words(&every(60)), "every minute");
        assert_eq!(schedule_in_words(&every(900)), "every 15 minutes");
        let cron = Schedule::cron("45 3 * * *", "Europe/Riga").unwrap();
        assert_eq!(
            schedule_in_words(&cron),
            "on cron \"45 3 * * *\" (Europe/Riga)"
        );
    }
}
