//! The push outputs' own metrics: OTLP exports and textfile writes.

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};

use super::names;
use crate::clock::Now;

/// How an export ended, for `heartwire_otlp_exports_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The collector accepted it.
    Success,
    /// The collector refused it for good.
    Rejected,
    /// Unreachable or failing, until the next export was due.
    Unavailable,
    /// The last attempt got no answer in time.
    Timeout,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Rejected,
        Outcome::Unavailable,
        Outcome::Timeout,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Rejected => "rejected",
            Outcome::Unavailable => "unavailable",
            Outcome::Timeout => "timeout",
        }
    }
}

/// The exporter's self-metrics, on the agent's registry.
#[derive(Debug, Clone)]
pub struct OtlpCounters {
    pub(crate) exports: [IntCounter; 4],
    pub(crate) retries: IntCounter,
    pub(crate) last_success: Gauge,
    pub(crate) duration: Histogram,
}

impl OtlpCounters {
    /// Creates the OTLP metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<OtlpCounters, prometheus::Error> {
        let exports = IntCounterVec::new(
            Opts::new(
                names::OTLP_EXPORTS,
                "OTLP exports, by result: success, rejected (refused for good), unavailable (unreachable or failing until the next export was due), timeout.",
            ),
            &["result"],
        )?;
        let retries = IntCounter::new(
            names::OTLP_RETRIES,
            "OTLP requests repeated after a transient failure.",
        )?;
        let last_success = Gauge::new(
            names::OTLP_LAST_SUCCESS,
            "Unix time of the last OTLP export the collector accepted (0: none yet).",
        )?;
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                names::OTLP_DURATION,
                "How long OTLP requests took, whatever their result.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        registry.register(Box::new(exports.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        let child = |outcome: Outcome| exports.get_metric_with_label_values(&[outcome.as_str()]);
        Ok(OtlpCounters {
            exports: [
                child(Outcome::ALL[0])?,
                child(Outcome::ALL[1])?,
                child(Outcome::ALL[2])?,
                child(Outcome::ALL[3])?,
            ],
            retries,
            last_success,
            duration,
        })
    }

    /// An export ended with `outcome` at `now`.
    pub fn count(&self, outcome: Outcome, now: &Now) {
        let index = Outcome::ALL.iter().position(|o| *o == outcome).unwrap_or(0);
        self.exports[index].inc();
        if outcome == Outcome::Success {
            self.last_success.set(now.unix_seconds());
        }
    }
}

/// The textfile writer's metrics, on the agent's registry.
#[derive(Debug)]
pub struct TextfileCounters {
    pub(crate) success: IntCounter,
    pub(crate) failure: IntCounter,
    pub(crate) last_success: Gauge,
}

impl TextfileCounters {
    /// Creates the textfile metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<TextfileCounters, prometheus::Error> {
        let writes = IntCounterVec::new(
            Opts::new(
                names::TEXTFILE_WRITES,
                "Textfile writes, by result (success, failure).",
            ),
            &["result"],
        )?;
        let last_success = Gauge::new(
            names::TEXTFILE_LAST_SUCCESS,
            "Unix time of the last complete textfile write (0: none yet).",
        )?;
        registry.register(Box::new(writes.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        Ok(TextfileCounters {
            success: writes.get_metric_with_label_values(&["success"])?,
            failure: writes.get_metric_with_label_values(&["failure"])?,
            last_success,
        })
    }
}
