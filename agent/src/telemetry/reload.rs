//! The config reloads: how many, whether the last one worked, which config is in force.

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::names;
use crate::clock::Now;

/// Counts reloads and shows the active config.
#[derive(Debug)]
pub struct ReloadTelemetry {
    pub(crate) reloads: IntCounterVec,
    pub(crate) last_success: Gauge,
    pub(crate) last_successful: IntGauge,
    pub(crate) info: IntGaugeVec,
    pub(crate) restart_required: IntGauge,
}

impl ReloadTelemetry {
    /// Creates the reload metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<ReloadTelemetry, prometheus::Error> {
        let reloads = IntCounterVec::new(
            Opts::new(
                names::CONFIG_RELOADS,
                "Config reloads by result: success, failure.",
            ),
            &["result"],
        )?;
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        let telemetry = ReloadTelemetry {
            reloads,
            last_success: Gauge::new(
                names::CONFIG_LAST_SUCCESS,
                "Unix time the config in force was loaded.",
            )?,
            last_successful: IntGauge::new(
                names::CONFIG_LAST_SUCCESSFUL,
                "1 when the last reload attempt succeeded.",
            )?,
            info: IntGaugeVec::new(
                Opts::new(
                    names::CONFIG_INFO,
                    "The config in force, as 1 labelled with a hash of its text.",
                ),
                &["hash"],
            )?,
            restart_required: IntGauge::new(
                names::CONFIG_RESTART_REQUIRED,
                "1 when the config file changes a part (listeners, limits, names) that only a restart applies.",
            )?,
        };
        registry.register(Box::new(telemetry.reloads.clone()))?;
        registry.register(Box::new(telemetry.last_success.clone()))?;
        registry.register(Box::new(telemetry.last_successful.clone()))?;
        registry.register(Box::new(telemetry.info.clone()))?;
        registry.register(Box::new(telemetry.restart_required.clone()))?;
        Ok(telemetry)
    }

    /// The config with the hash `hash` is in force since `now`.
    pub fn loaded(&self, hash: &str, now: Now) {
        self.info.reset();
        self.info.with_label_values(&[hash]).set(1);
        self.last_success.set(now.unix_seconds());
        self.last_successful.set(1);
    }
}
