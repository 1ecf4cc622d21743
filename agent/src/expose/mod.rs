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
use prometheus::{Encoder, Gauge, Opts, Registry, TextEncoder};

use crate::aggregate::Snapshot;
use crate::telemetry::{self, Telemetry};

pub use self::collector::SnapshotCollector;

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The agent's registry and the renderer of `/metrics`.
#[derive(Debug)]
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

    /// Writes the self-metrics and `snapshot` to `out`. A snapshot family whose name the
    /// registry already uses is left out rather than written twice (the aggregator reserves
    /// those names, so this is a second guard, not a path taken).
    pub fn render(&self, snapshot: &Snapshot, out: &mut Vec<u8>) -> Result<(), prometheus::Error> {
        let mut families = self.registry.gather();
        let mut written: HashSet<String> = families
            .iter()
            .map(|family| family.name().to_owned())
            .collect();
        for family in SnapshotCollector::new(snapshot).collect() {
            if !family.get_metric().is_empty() && written.insert(family.name().to_owned()) {
                families.push(family);
            }
        }
        TextEncoder::new().encode(&families, out)
    }
}

#[cfg(test)]
mod tests;
