//! The catalogue of built-in families: one row per family, and everything derived from it.
//!
//! A row gives the family's key under `families:` (`jobs.runs`), its default name, its kind,
//! its label names, its unit and its help text. From the table come the config keys
//! `families:` accepts and their defaults ([`keys`], [`FamilyNames::set`]), the names a
//! configuration reserves (`FamilyNames::reserved`), the `/metrics` metadata of each family
//! (`Meta::of` in `builtin`) and the configured name the rules and the dashboard select
//! ([`FamilyNames::name`]). Adding a family is one row of `families!` (and the code that feeds
//! it).

use std::collections::HashSet;

use super::snapshot::Kind;
use crate::naming::{is_label_name, is_metric_name};
use crate::telemetry;

/// The groups of `families:`: which lines feed the families, and what constant labels they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// `job.*` lines.
    Jobs,
    /// `http` lines: outbound calls.
    Http,
    /// `hb` and `worker.stop` lines.
    Workers,
    /// DogStatsD service checks.
    Checks,
    /// DogStatsD events.
    Events,
}

impl Group {
    /// Every group, in the order `families:` lists them.
    pub const ALL: [Group; 5] = [
        Group::Jobs,
        Group::Http,
        Group::Workers,
        Group::Checks,
        Group::Events,
    ];

    /// The group's key under `families:`.
    pub fn key(self) -> &'static str {
        match self {
            Group::Jobs => "jobs",
            Group::Http => "http",
            Group::Workers => "workers",
            Group::Checks => "checks",
            Group::Events => "events",
        }
    }
}

/// One built-in family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The family.
    pub family: Family,
    /// Its group under `families:`.
    pub group: Group,
    /// Its key in the group (`runs` for `families.jobs.runs`).
    pub key: &'static str,
    /// Its name unless the config gives one.
    pub name: &'static str,
    /// Its Prometheus type.
    pub kind: Kind,
    /// Its variable label names, as named by default: a group's `label` setting renames the
    /// one it names ([`SETTINGS`]).
    pub labels: &'static [&'static str],
    /// The unit of its values (`seconds`), empty for plain counts and states.
    pub unit: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
}

/// Declares [`Family`] and [`TABLE`] from one list, so that they cannot disagree.
macro_rules! families {
    ($($family:ident = $group:ident.$key:ident: $name:literal, $kind:ident [$($label:literal),*]
        $unit:literal, $help:literal;)*) => {
        /// A built-in family; its row in [`TABLE`] says everything about it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Family {
            $(#[doc = $help] $family,)*
        }

        /// Every built-in family, in the order of the keys of `families:`.
        pub const TABLE: &[Row] = &[$(Row {
            family: Family::$family,
            group: Group::$group,
            key: stringify!($key),
            name: $name,
            kind: Kind::$kind,
            labels: &[$($label),*],
            unit: $unit,
            help: $help,
        },)*];
    };
}

families! {
    JobRuns = Jobs.runs: "heartwire_job_runs_total", Counter ["job", "result"] "",
        "Job runs by result.";
    JobDuration = Jobs.duration: "heartwire_job_duration_seconds", Histogram ["job"] "seconds",
        "Job run duration in seconds.";
    JobLastSuccess = Jobs.last_success: "heartwire_job_last_success_timestamp_seconds", Gauge
        ["job"] "seconds", "Unix time of the last successful run of a job.";
    JobLastRun = Jobs.last_run: "heartwire_job_last_run_timestamp_seconds", Gauge ["job"]
        "seconds", "Unix time of the last run of a job to end, any result.";
    JobRunning = Jobs.running: "heartwire_job_running", Gauge ["job"] "",
        "Runs of a job started and not yet ended.";
    JobProgress = Jobs.progress: "heartwire_job_progress_total", Counter ["job"] "",
        "Progress reported by a job (pages, rows, items).";
    JobLastProgress = Jobs.last_progress: "heartwire_job_last_progress_timestamp_seconds", Gauge
        ["job"] "seconds", "Unix time of the last progress report of a job.";
    JobSecondsSinceSuccess = Jobs.seconds_since_success: "heartwire_job_seconds_since_success",
        Gauge ["job"] "seconds",
        "Seconds since the last successful run of a configured job (since heartwire started watching, if none).";
    JobStale = Jobs.stale: "heartwire_job_stale", Gauge ["job"] "",
        "1 when a configured job has not succeeded before its schedule's deadline.";
    JobDeadline = Jobs.deadline: "heartwire_job_stale_deadline_timestamp_seconds", Gauge ["job"]
        "seconds", "Unix time at which a configured job goes stale without a new success.";
    JobNextExpected = Jobs.next_expected: "heartwire_job_next_expected_timestamp_seconds", Gauge
        ["job"] "seconds", "Unix time the next run of a configured job is due.";
    JobState = Jobs.state: "heartwire_job_state", Gauge ["job", "state"] "",
        "State of a configured job: exactly one of ok, late, stale, failing, warming is 1.";
    JobConsecutiveFailures = Jobs.consecutive_failures: "heartwire_job_consecutive_failures",
        Gauge ["job"] "", "Failed runs of a configured job in a row.";
    JobOverrunRuns = Jobs.overrun_runs: "heartwire_job_overrun_runs", Gauge ["job"] "",
        "Open runs of a configured job past its max_runtime: hung.";
    JobCrashes = Jobs.crashes: "heartwire_job_crashes_total", Counter ["job"] "",
        "Runs that crashed: their session closed before the run ended.";
    JobStalled = Jobs.stalled: "heartwire_job_stalled", Gauge ["job"] "",
        "1 when a progress job has reported no progress for its stall_after.";
    JobLastResult = Jobs.last_result: "heartwire_job_last_result", Gauge
        ["job", "result", "reason"] "",
        "The last run's result and reason as 1; the other combinations seen are 0.";
    JobMissedRuns = Jobs.missed_runs: "heartwire_job_missed_runs_total", Counter ["job"] "",
        "Schedule slots of a job that passed, late_after included, with no run started or reported.";
    JobScheduleInfo = Jobs.schedule_info: "heartwire_job_schedule_info", Gauge
        ["job", "source", "schedule"] "",
        "1 for each job with a schedule: where it comes from (config or learned) and what it is.";
    HttpRequests = Http.requests: "heartwire_external_http_total", Counter
        ["service", "endpoint", "status_code"] "",
        "Outbound calls by service, endpoint and status code (network and timeout when no response came).";
    HttpDuration = Http.duration: "heartwire_external_http_duration_seconds", Histogram
        ["service", "endpoint"] "seconds", "Outbound call duration in seconds.";
    WorkerLastHeartbeat = Workers.last_heartbeat:
        "heartwire_worker_last_heartbeat_timestamp_seconds", Gauge ["worker"] "seconds",
        "Unix time of the last heartbeat of a worker.";
    WorkerStatus = Workers.status: "heartwire_worker_status", Gauge ["worker"] "",
        "1 while a worker's heartbeats arrive within its ttl; 0 once they stop, its session closes or it stops.";
    WorkerStopped = Workers.stopped: "heartwire_worker_stopped", Gauge ["worker"] "",
        "1 when a worker stopped cleanly (worker.stop): down, but not an outage.";
    CheckStatus = Checks.status: "heartwire_service_check_status", Gauge ["check"] "",
        "Last status reported by a service check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.";
    CheckLast = Checks.last: "heartwire_service_check_last_timestamp_seconds", Gauge ["check"]
        "seconds", "Unix time a service check last reported.";
    Events = Events.total: "heartwire_events_total", Counter ["alert_type"] "",
        "DogStatsD events by alert type.";
}

impl Family {
    /// The family's row.
    pub fn row(self) -> &'static Row {
        &TABLE[self as usize]
    }
}

/// A setting of a group under `families:` that is not a family name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// `jobs.label`: the name of the label that tells jobs apart (default `job`).
    JobLabel,
    /// `jobs.skipped_result`: the `result` value of `job.skip` (default `skipped`).
    SkippedResult,
    /// `workers.label`: the name of the label that tells workers apart (default `worker`; seed
    /// 001 uses `name`).
    WorkerLabel,
}

/// One [`Setting`]: its group, its key there and its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingRow {
    /// The setting.
    pub setting: Setting,
    /// Its group.
    pub group: Group,
    /// Its key in the group.
    pub key: &'static str,
    /// Its value unless the config gives one.
    pub default: &'static str,
    /// Whether it renames the label of the group's families that [`Row::labels`] calls by the
    /// default.
    pub renames_label: bool,
}

/// Every [`Setting`], in the order of [`Setting`]'s variants.
pub const SETTINGS: [SettingRow; 3] = [
    SettingRow {
        setting: Setting::JobLabel,
        group: Group::Jobs,
        key: "label",
        default: "job",
        renames_label: true,
    },
    SettingRow {
        setting: Setting::SkippedResult,
        group: Group::Jobs,
        key: "skipped_result",
        default: "skipped",
        renames_label: false,
    },
    SettingRow {
        setting: Setting::WorkerLabel,
        group: Group::Workers,
        key: "label",
        default: "worker",
        renames_label: true,
    },
];

/// The default names of the variable labels of `group`'s families, each once.
pub fn group_labels(group: Group) -> impl Iterator<Item = &'static str> {
    let mut seen: Vec<&'static str> = Vec::new();
    for row in TABLE.iter().filter(|row| row.group == group) {
        for label in row.labels {
            if !seen.contains(label) {
                seen.push(label);
            }
        }
    }
    seen.into_iter()
}

/// The keys of `group` that name something: its families, then its settings (`labels` comes on
/// top).
pub fn keys(group: Group) -> impl Iterator<Item = &'static str> {
    let families = TABLE.iter().filter(move |row| row.group == group);
    let settings = SETTINGS.iter().filter(move |row| row.group == group);
    families
        .map(|row| row.key)
        .chain(settings.map(|row| row.key))
}

/// Labels added to every series of a group's families, e.g. `service="worker"`.
pub type ConstLabels = Vec<(String, String)>;

/// The names the built-in families are exposed under, so that a config can keep an existing
/// dashboard working (seed 000: `vf_worker_poll_runs_total` with `service="worker"`): every
/// family's name, every setting and every group's constant labels. The default is the table's.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyNames {
    /// By [`Family`], in [`TABLE`] order.
    names: Vec<String>,
    /// By [`Setting`], in [`SETTINGS`] order.
    settings: Vec<String>,
    /// By [`Group`], in [`Group::ALL`] order.
    labels: Vec<ConstLabels>,
    /// Variable labels renamed under `label_names:`: the group, the default name, the new one.
    renamed: Vec<(Group, &'static str, String)>,
}

impl Default for FamilyNames {
    fn default() -> FamilyNames {
        FamilyNames {
            names: TABLE.iter().map(|row| row.name.to_owned()).collect(),
            settings: SETTINGS.iter().map(|row| row.default.to_owned()).collect(),
            labels: vec![ConstLabels::new(); Group::ALL.len()],
            renamed: Vec::new(),
        }
    }
}

impl FamilyNames {
    /// The name `family` is exposed under.
    pub fn name(&self, family: Family) -> &str {
        &self.names[family as usize]
    }

    /// The value of `setting`.
    pub fn setting(&self, setting: Setting) -> &str {
        &self.settings[setting as usize]
    }

    /// The constant labels of `group`'s families.
    pub fn labels(&self, group: Group) -> &ConstLabels {
        &self.labels[group as usize]
    }

    /// Sets the name of the family or the setting `key` of `group`; false if the group has no
    /// such key.
    pub fn set(&mut self, group: Group, key: &str, value: &str) -> bool {
        let family = TABLE
            .iter()
            .position(|row| row.group == group && row.key == key);
        let setting = SETTINGS
            .iter()
            .position(|row| row.group == group && row.key == key);
        let slot = match (family, setting) {
            (Some(index), _) => &mut self.names[index],
            (None, Some(index)) => &mut self.settings[index],
            (None, None) => return false,
        };
        value.clone_into(slot);
        true
    }

    /// Sets the name of `family`.
    pub fn rename(&mut self, family: Family, name: &str) {
        name.clone_into(&mut self.names[family as usize]);
    }

    /// Sets the constant labels of `group`'s families.
    pub fn set_labels(&mut self, group: Group, labels: ConstLabels) {
        self.labels[group as usize] = labels;
    }

    /// The variable label names of `family`, as configured.
    pub fn label_names(&self, family: Family) -> Vec<&str> {
        let row = family.row();
        row.labels
            .iter()
            .map(|label| self.label(row.group, label))
            .collect()
    }

    /// The name the variable label called `default` by default has in `group`'s families:
    /// renamed by the group's `label` setting (`jobs.label`, `workers.label`) or `label_names`.
    pub fn label<'a>(&'a self, group: Group, default: &'a str) -> &'a str {
        if let Some(setting) = SETTINGS.iter().find(|setting| {
            setting.renames_label && setting.group == group && setting.default == default
        }) {
            return self.setting(setting.setting);
        }
        self.renamed
            .iter()
            .find(|(g, from, _)| *g == group && *from == default)
            .map_or(default, |(_, _, to)| to.as_str())
    }

    /// Renames the variable label `default` of `group`'s families to `name`; false if no family
    /// of the group has such a label.
    pub fn rename_label(&mut self, group: Group, default: &str, name: &str) -> bool {
        let Some(known) = group_labels(group).find(|label| *label == default) else {
            return false;
        };
        if let Some(setting) = SETTINGS.iter().find(|setting| {
            setting.renames_label && setting.group == group && setting.default == known
        }) {
            name.clone_into(&mut self.settings[setting.setting as usize]);
            return true;
        }
        self.renamed
            .retain(|(g, from, _)| !(*g == group && *from == known));
        self.renamed.push((group, known, name.to_owned()));
        true
    }

    /// Every name the families claim in the exposition, with the self-metrics': a StatsD family
    /// may take none of them.
    pub(crate) fn reserved(&self) -> Vec<String> {
        let mut reserved = Vec::new();
        for row in TABLE {
            reserved.extend(claimed_names(self.name(row.family), row.kind));
        }
        for name in telemetry::names::ALL {
            let kind = if name.ends_with("_total") {
                Kind::Counter
            } else {
                Kind::Gauge
            };
            reserved.extend(claimed_names(name, kind));
        }
        reserved
    }

    /// Checks that every name is a metric name that no other family or self-metric claims, and
    /// that every label name is usable.
    pub fn check(&self) -> Result<(), NameError> {
        let mut taken: HashSet<String> = telemetry::names::ALL
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        for row in TABLE {
            let name = self.name(row.family);
            if !is_metric_name(name) {
                return Err(NameError::InvalidFamilyName {
                    name: name.to_owned(),
                });
            }
            for claimed in claimed_names(name, row.kind) {
                if !taken.insert(claimed) {
                    return Err(NameError::DuplicateFamilyName {
                        name: name.to_owned(),
                    });
                }
            }
            let unusable = |label: &str| NameError::InvalidConstLabel {
                family: name.to_owned(),
                label: label.to_owned(),
            };
            let variable = self.label_names(row.family);
            if let Some(label) = variable.iter().find(|label| !is_label_name(label)) {
                return Err(unusable(label));
            }
            for (index, label) in variable.iter().enumerate() {
                if variable[..index].contains(label) {
                    return Err(NameError::DuplicateLabel {
                        family: name.to_owned(),
                        label: (*label).to_owned(),
                    });
                }
            }
            let constant = self.labels(row.group).iter().map(|(label, _)| label);
            for label in constant {
                if !is_label_name(label) || variable.contains(&label.as_str()) {
                    return Err(unusable(label));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl FamilyNames {
    /// The names of seed 000 (`vf_worker_poll_*` with `service="worker"`), for tests.
    pub(crate) fn seed_000() -> FamilyNames {
        let mut names = FamilyNames::default();
        names.rename(Family::JobRuns, "vf_worker_poll_runs_total");
        names.rename(Family::JobDuration, "vf_worker_poll_duration_seconds");
        names.rename(
            Family::JobLastSuccess,
            "vf_worker_poll_last_success_timestamp_seconds",
        );
        names.set_labels(Group::Jobs, vec![("service".into(), "worker".into())]);
        names.rename(Family::HttpRequests, "vf_external_http_total");
        names
    }
}

/// Names a family claims in the text exposition: its own, plus the sample names a histogram
/// writes, plus a counter's stem (`x` for `x_total`, the OpenMetrics family name). Two families
/// claiming one name would write an exposition Prometheus rejects.
pub fn claimed_names(name: &str, kind: Kind) -> Vec<String> {
    let mut names = vec![name.to_owned()];
    match kind {
        Kind::Counter => {
            if let Some(stem) = name.strip_suffix("_total").filter(|stem| !stem.is_empty()) {
                names.push(stem.to_owned());
            }
        }
        Kind::Gauge => {}
        Kind::Histogram => {
            names.extend(["_bucket", "_count", "_sum"].map(|suffix| format!("{name}{suffix}")));
        }
    }
    names
}

/// Why configured family names cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
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
    /// A label name is invalid, reserved, or a constant label that is also a variable label of
    /// the family.
    #[error(
        "label {label:?} on {family:?} is not usable: use letters, digits and '_', not 'le', 'quantile', '__*' or one of the family's own labels"
    )]
    InvalidConstLabel {
        /// The family.
        family: String,
        /// The label name.
        label: String,
    },
    /// Two variable labels of one family would have the same name.
    #[error("label {label:?} would name two labels of {family:?}: rename one")]
    DuplicateLabel {
        /// The family.
        family: String,
        /// The label name.
        label: String,
    },
}

#[cfg(test)]
mod tests;
