//! The loaded configuration: what the file says, resolved and checked, in the types the agent
//! runs on. Nothing here can be invalid: [`super::load`] is the only way to get one from a file,
//! and it refuses what does not fit.
//!
//! The model is split by when a change applies. [`Live`] is what a reload applies while the
//! agent runs (the aggregator takes it between two batches); [`Fixed`] is what the agent set up
//! at its start (sockets, queues, memory bounds, names) and what only a restart changes. A
//! reload therefore derives what needs a restart by comparing two [`Fixed`] parts section by
//! section ([`Fixed::differing`]); nothing lists the sections by hand.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    AlertGuards, Alerts, Dashboard, Defaults, Http, Listen, Otlp, Pipeline, Shutdown, State,
    Textfile,
};
use crate::aggregate::{self, Buckets, Expiry, FamilyNames, Limits, Mapping};
use crate::health::job::JobSpec;

/// A valid configuration. The default is the embedded `default.yaml`'s.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// What a reload applies at once.
    pub live: Live,
    /// What applies only at the next start.
    pub fixed: Fixed,
}

/// The sections a reload applies while the agent runs: what heartwire watches and how it names
/// StatsD series.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// `jobs:`, in config order, each with its schedule and every threshold filled in.
    pub jobs: Vec<(String, JobSpec)>,
    /// `workers:`, in config order, each with its heartbeat ttl (its own, else
    /// `defaults.worker_ttl`).
    pub workers: Vec<(String, Duration)>,
    /// `defaults:`.
    pub defaults: Defaults,
    /// `statsd:`: the compiled mapping rules and the default ttls.
    pub statsd: StatsdSettings,
    /// `alerts:`, for `heartwire rules` and the dashboard.
    pub alerts: Alerts,
    /// `alert_guards:`, the conditions alerts name under `unless` and `and`.
    pub alert_guards: AlertGuards,
    /// `dashboard:`, the rows of panels `heartwire dashboard` adds.
    pub dashboard: Dashboard,
}

/// The `statsd:` section, compiled.
#[derive(Debug, Clone, Default)]
pub struct StatsdSettings {
    /// The rules, inline or from the mapping file.
    pub mapping: Mapping,
    /// The default ttls of idle series.
    pub expiry: Expiry,
    /// The mapping file the rules come from, if they come from one.
    pub mapping_file: Option<PathBuf>,
}

/// Declares [`Fixed`] and its comparison from one list of sections, so that a section added to
/// the one is compared by the other.
macro_rules! fixed {
    ($($(#[doc = $doc:literal])* $section:ident: $type:ty,)*) => {
        /// The sections that apply only at the next start.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Fixed {
            $($(#[doc = $doc])* pub $section: $type,)*
        }

        impl Fixed {
            /// The top-level keys of the sections that differ between `self` and `other`, in
            /// file order.
            pub fn differing(&self, other: &Fixed) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(if self.$section != other.$section {
                    keys.push(stringify!($section));
                })*
                keys
            }
        }
    };
}

fixed! {
    /// `listen:`: the sockets.
    listen: Listen,
    /// `http:`: the read-only endpoints.
    http: Http,
    /// `pipeline:`: the queues between listeners and the aggregator.
    pipeline: Pipeline,
    /// `shutdown:`.
    shutdown: Shutdown,
    /// `limits:`: the aggregator's memory bounds.
    limits: Limits,
    /// `buckets:`: histogram buckets.
    buckets: Buckets,
    /// `families:`: the names of the built-in families, resolved over the catalogue.
    families: FamilyNames,
    /// `otlp:`: OTLP push.
    otlp: Otlp,
    /// `textfile:`: the textfile output.
    textfile: Textfile,
    /// `state:`: the state file.
    state: State,
}

impl Config {
    /// What the aggregator starts with: the model's own parts, cloned.
    pub fn aggregate_settings(&self) -> aggregate::Settings {
        let (live, fixed) = (&self.live, &self.fixed);
        aggregate::Settings {
            limits: fixed.limits.clone(),
            buckets: fixed.buckets.clone(),
            names: fixed.families.clone(),
            jobs: live.jobs.clone(),
            workers: live.workers.clone(),
            default_worker_ttl: live.defaults.worker_ttl,
            learn_schedules: live.defaults.learn_schedules,
            mapping: live.statsd.mapping.clone(),
            expiry: live.statsd.expiry,
        }
    }
}
