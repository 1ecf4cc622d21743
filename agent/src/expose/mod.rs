//! `/metrics`: a snapshot and the self-metrics, in the Prometheus text format 0.0.4.
//!
//! The only module that knows Prometheus types. The [`Exposition`] owns the agent's registry
//! (self-metrics, the process collector, build info; never the global default registry) and
//! renders it together with a snapshot through the `prometheus` crate's `TextEncoder`, which
//! escapes label values (`\`, `"`, newline) so that no input breaks the exposition.

pub mod collector;
pub mod names;

use std::collections::HashSet;
use std::sync::Arc;

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Gauge, Opts, Registry, TextEncoder};

use crate::aggregate::{Handle, Snapshot};
use crate::telemetry::{self, Telemetry};

pub use self::collector::SnapshotCollector;

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The agent's registry and the renderer of `/metrics`. Clones share the registry.
#[derive(Debug, Clone)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// Creates the registry with the self-metrics, the process collector and build info.
    pub fn new() -> Result<(Exposition, Arc<Telemetry>), prometheus::Error> {
        let registry = Registry::new();
        let telemetry = Arc::new(Telemetry::new(&registry)?);
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let build = Gauge::with_opts(
            Opts::new(
                telemetry::names::BUILD_INFO,
                "heartwire build, as a constant 1 labelled with the version.",
            )
            .const_label("version", env!("CARGO_PKG_VERSION")),
        )?;
        build.set(1.0);
        registry.register(Box::new(build))?;
        Ok((Exposition { registry }, telemetry))
    }

    /// The agent's own registry, for self-metrics kept outside [`Telemetry`] (config reloads).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Writes the self-metrics and `snapshot` to `out`.
    pub fn render(&self, snapshot: &Snapshot, out: &mut Vec<u8>) -> Result<(), prometheus::Error> {
        TextEncoder::new().encode(&self.families(snapshot), out)
    }

    /// The families `/metrics` shows right now: the snapshot first, then the self-metrics, so
    /// that every line whose effect the snapshot shows is counted (the counters may run a batch
    /// ahead of the snapshot). `None` once the aggregator has stopped.
    pub async fn current(&self, handle: &Handle) -> Option<Vec<MetricFamily>> {
        let snapshot = handle.snapshot().await?;
        Some(self.families(&snapshot))
    }

    /// Writes `families` in the text format.
    pub fn encode(families: &[MetricFamily], out: &mut Vec<u8>) -> Result<(), prometheus::Error> {
        TextEncoder::new().encode(families, out)
    }

    /// What node_exporter's textfile collector should read: `families` less the `process_*`
    /// ones, which node_exporter already exports about itself (a family collected twice is an
    /// error there, and one of the two sets would be silently dropped).
    pub fn for_textfile(mut families: Vec<MetricFamily>) -> Vec<MetricFamily> {
        families.retain(|family| !family.name().starts_with("process_"));
        families
    }

    /// The families `/metrics` shows: the self-metrics, then `snapshot`'s. The OTLP export
    /// sends these too, so that both outputs always carry the same families. A snapshot family
    /// whose name the registry already uses is left out rather than written twice (the
    /// aggregator reserves those names, so this is a second guard, not a path taken).
    pub fn families(&self, snapshot: &Snapshot) -> Vec<MetricFamily> {
        merge(self.registry.gather(), snapshot)
    }
}

/// The self-metrics, then `snapshot`'s families.
fn merge(mut families: Vec<MetricFamily>, snapshot: &Snapshot) -> Vec<MetricFamily> {
    let mut written: HashSet<String> = families
        .iter()
        .map(|family| family.name().to_owned())
        .collect();
    for family in SnapshotCollector::new(snapshot).collect() {
        if !family.get_metric().is_empty() && written.insert(family.name().to_owned()) {
            families.push(family);
        }
    }
    families
}

#[cfg(test)]
mod tests;
