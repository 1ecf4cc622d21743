//! The OTLP exporter task: every `interval`, the families of `/metrics` go to the collector.
//!
//! # Why not the SDK's `MetricExporter`
//! `opentelemetry-otlp` 0.33 exports only `opentelemetry_sdk::metrics::data::ResourceMetrics`,
//! whose fields are crate-private with no constructor: only the SDK's own instruments can fill
//! it (opentelemetry-rust issue #3469). Observable instruments could report heartwire's counters
//! and gauges, but not a histogram that is already aggregated, and they would stamp their own
//! start times. So the request is built from the same families `/metrics` renders, with the
//! official protobuf types (`opentelemetry-proto`), and sent with the transports the otlp crate
//! is built on: tonic's generated `MetricsServiceClient` and reqwest. The SDK still reads the
//! resource from the environment.
//!
//! # Failure behaviour
//! One task, one export at a time: a collector that is down, slow or failing holds this task
//! only, never ingest or `/metrics`, and memory holds at most one request. Each request has a
//! timeout. A transient failure (unreachable, `UNAVAILABLE`, HTTP 429/502/503/504, a timeout)
//! is retried with doubling, jittered backoff (or the delay the collector asks for) until the
//! next export is due; then the newer values replace the old ones, which is lossless for
//! cumulative data. A final rejection (bad request, authentication) is not retried. Every
//! export is counted by result.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prometheus::Registry;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::Source;
use super::convert::{self, Starts};
use super::settings::OtlpSettings;
use super::transport::{Failure, Transport};
use crate::clock::Now;
use crate::telemetry::export::{OtlpCounters as Counters, Outcome};

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The [`Outcome`] of a failed export.
fn outcome_of(failure: &Failure) -> Outcome {
    match failure {
        Failure::Rejected(_) => Outcome::Rejected,
        Failure::Unavailable { .. } => Outcome::Unavailable,
        Failure::Timeout => Outcome::Timeout,
    }
}

/// Pushes the families of `/metrics` to one collector.
#[derive(Debug)]
pub struct OtlpExporter {
    settings: OtlpSettings,
    transport: Transport,
    resource: Arc<[KeyValue]>,
    source: Source,
    starts: Starts,
    counters: Counters,
    /// Whether the last export failed, so that a long outage logs once, not every interval.
    failing: bool,
}

impl OtlpExporter {
    /// An exporter for `settings`, for an agent started at `started`. Registers its
    /// self-metrics on `registry`.
    pub fn new(
        settings: OtlpSettings,
        resource: Vec<KeyValue>,
        source: Source,
        started: SystemTime,
        registry: &Registry,
    ) -> Result<OtlpExporter, super::ExportError> {
        let transport = Transport::new(&settings)?;
        Ok(OtlpExporter {
            transport,
            resource: resource.into(),
            source,
            starts: Starts::new(unix_nanos(started)),
            counters: Counters::register(registry)?,
            failing: false,
            settings,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &OtlpSettings {
        &self.settings
    }

    /// Exports every `interval` until `stop` is set, then once more, once, within the timeout.
    /// An export in flight when `stop` comes is abandoned for the final one, which reads the
    /// state after the queue was drained.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let interval = self.settings.interval;
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = crate::ingest::stopped(&mut stop) => break,
            }
            let due = Instant::now() + interval;
            tokio::select! {
                _ = self.export(Some(due)) => {}
                _ = crate::ingest::stopped(&mut stop) => break,
            }
        }
        tracing::info!(endpoint = %self.settings.endpoint, "final OTLP export");
        self.export(None).await;
    }

    /// One export: retried until `due` when given, a single attempt otherwise.
    async fn export(&mut self, due: Option<Instant>) {
        let Some(request) = self.request().await else {
            return;
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            let began = Instant::now();
            let sent = self.transport.send(&request, self.settings.timeout).await;
            self.counters
                .duration
                .observe(began.elapsed().as_secs_f64());
            let failure = match sent {
                Ok(partial) => {
                    self.succeeded(&request, partial);
                    return;
                }
                Err(failure) => failure,
            };
            let retry_after = match &failure {
                Failure::Rejected(_) => None,
                Failure::Unavailable { retry_after, .. } => Some(retry_after.unwrap_or(backoff)),
                Failure::Timeout => Some(backoff),
            };
            let wait = retry_after.map(jitter);
            match (wait, due) {
                (Some(wait), Some(due)) if Instant::now() + wait < due => {
                    tracing::debug!(%failure, ?wait, "OTLP export failed; retrying");
                    self.counters.retries.inc();
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                _ => {
                    self.failed(&failure);
                    return;
                }
            }
        }
    }

    /// The request for the current state, or `None` once the aggregator has stopped.
    async fn request(&mut self) -> Option<ExportMetricsServiceRequest> {
        let snapshot = self.source.handle.snapshot()?;
        let now = Now::read();
        let parts = self.source.exposition.parts(&snapshot, now);
        Some(convert::request(
            &parts,
            &self.resource,
            &mut self.starts,
            unix_nanos(now.wall),
        ))
    }

    fn succeeded(
        &mut self,
        request: &ExportMetricsServiceRequest,
        partial: Option<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess,
        >,
    ) {
        self.counters.count(Outcome::Success, &Now::read());
        if let Some(partial) = partial {
            tracing::warn!(
                rejected_points = partial.rejected_data_points,
                message = %partial.error_message,
                "the collector accepted the OTLP export only in part"
            );
        }
        if std::mem::take(&mut self.failing) {
            tracing::info!(endpoint = %self.settings.endpoint, "OTLP export works again");
        }
        tracing::debug!(
            points = convert::data_points(request),
            "OTLP export accepted"
        );
    }

    fn failed(&mut self, failure: &Failure) {
        self.counters.count(outcome_of(failure), &Now::read());
        if self.failing {
            tracing::debug!(%failure, "OTLP export failed again");
        } else {
            tracing::warn!(
                endpoint = %self.settings.endpoint,
                protocol = self.settings.protocol.as_str(),
                "OTLP export failed: {failure}; ingest and /metrics are unaffected, the next export is tried on schedule"
            );
        }
        self.failing = true;
    }
}

/// Up to a fifth more, so that agents restarted together do not retry in step.
fn jitter(wait: Duration) -> Duration {
    let random = RandomState::new().hash_one(Instant::now());
    let fifth = wait.as_millis() as u64 / 5;
    let extra = if fifth == 0 { 0 } else { random % fifth };
    wait + Duration::from_millis(extra)
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_adds_at_most_a_fifth() {
        for _ in 0..100 {
            let wait = jitter(Duration::from_secs(10));
            assert!(
                wait >= Duration::from_secs(10) && wait < Duration::from_secs(12),
                "{wait:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn every_outcome_has_its_own_counter() {
        let registry = Registry::new();
        let counters = Counters::register(&registry).unwrap();
        let now = Now::at_unix_seconds(1_700_000_000.0);
        counters.count(Outcome::Timeout, &now);
        counters.count(Outcome::Success, &now);
        counters.count(Outcome::Success, &now);
        let index = |outcome| Outcome::ALL.iter().position(|o| *o == outcome).unwrap();
        assert_eq!(counters.exports[index(Outcome::Success)].get(), 2);
        assert_eq!(counters.exports[index(Outcome::Timeout)].get(), 1);
        assert_eq!(counters.exports[index(Outcome::Rejected)].get(), 0);
        assert_eq!(counters.last_success.get(), 1_700_000_000.0);
    }

    #[test]
    fn nanoseconds_count_from_the_epoch() {
        assert_eq!(
            unix_nanos(UNIX_EPOCH + Duration::from_millis(1500)),
            1_500_000_000
        );
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
