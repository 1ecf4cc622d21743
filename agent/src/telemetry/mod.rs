//! heartwire's own metrics, all on the one registry the exposition owns:
//!
//! - here, [`Telemetry`]: what happened to the lines on their way in;
//! - [`reload`]: config reloads and the config in force;
//! - [`export`]: OTLP exports and textfile writes;
//! - [`register_process`]: the process collector and the build;
//! - [`names`]: every name, reserved against StatsD metrics.
//!
//! [`Telemetry`] holds typed handles registered once on the agent's own registry (never the
//! global default one) for what happens in front of the aggregator: datagrams and bytes
//! received and dropped, kernel drops, connections. Methods are named after what happened, and
//! callers update them once per datagram or batch, never per line. Label values come only from
//! fixed enums ([`Transport`], [`CloseReason`]) or listener names from the config, never from
//! what a sender wrote: a flood of odd input cannot grow these families.
//!
//! What the aggregator counts (lines read by transport and rejected by reason, samples set
//! aside, series held, dropped at a cap and in conflict by family) is part of its published
//! snapshot ([`crate::aggregate::Tally`], the accounts), and the exposition renders it from
//! there: a scrape counts exactly the lines whose effect its snapshot shows. All the names are
//! in [`names`].

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::ingest::batch::Transport;

pub mod export;
pub mod names;
pub mod reload;

/// Why a stream connection ended, for `heartwire_connections_closed_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed it.
    Eof,
    /// A read or write failed.
    Error,
    /// The peer sent something that is not the protocol (a frame too long, no framing).
    Garbage,
    /// heartwire is shutting down.
    Shutdown,
    /// It sent nothing for the listener's `idle_timeout` (sessions are exempt).
    Idle,
}

impl CloseReason {
    /// Every reason, in label order.
    pub const ALL: [CloseReason; 5] = [
        CloseReason::Eof,
        CloseReason::Error,
        CloseReason::Garbage,
        CloseReason::Shutdown,
        CloseReason::Idle,
    ];

    /// The `reason` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloseReason::Eof => "eof",
            CloseReason::Error => "error",
            CloseReason::Garbage => "garbage",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Idle => "idle",
        }
    }
}

const TRANSPORTS: usize = Transport::ALL.len();
const CLOSE_REASONS: usize = CloseReason::ALL.len();

/// Registers what describes the process itself: the process collector (CPU, memory, file
/// descriptors, start time) and `heartwire_build_info{version}`.
pub fn register_process(registry: &Registry) -> Result<(), prometheus::Error> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    let build = prometheus::Gauge::with_opts(
        Opts::new(
            names::BUILD_INFO,
            "heartwire build, as a constant 1 labelled with the version.",
        )
        .const_label("version", env!("CARGO_PKG_VERSION")),
    )?;
    build.set(1.0);
    registry.register(Box::new(build))?;
    Ok(())
}

/// The self-metrics, registered once. Every labelled child is created up front, so that every
/// transport and reason shows 0 before anything happens and updates never look up a label.
#[derive(Debug)]
pub struct Telemetry {
    traffic: Traffic,
    connections: Connections,
}

/// Bytes and datagrams in front of the aggregator: received, dropped, lost in the kernel.
#[derive(Debug)]
struct Traffic {
    datagrams_received: [IntCounter; TRANSPORTS],
    bytes_received: [IntCounter; TRANSPORTS],
    datagrams_dropped: [IntCounter; TRANSPORTS],
    bytes_dropped: [IntCounter; TRANSPORTS],
    kernel_drops: IntCounterVec,
    receive_buffer: IntGaugeVec,
}

/// Stream connections.
#[derive(Debug)]
struct Connections {
    opened: [IntCounter; TRANSPORTS],
    closed: [[IntCounter; CLOSE_REASONS]; TRANSPORTS],
    open: [IntGauge; TRANSPORTS],
}

impl Telemetry {
    /// Creates the self-metrics and registers them on `registry`.
    pub fn new(registry: &Registry) -> Result<Telemetry, prometheus::Error> {
        let make = Maker { registry };
        Ok(Telemetry {
            traffic: Traffic::new(&make)?,
            connections: Connections::new(&make)?,
        })
    }

    /// `datagrams` datagrams (or stream frames) holding `bytes` bytes arrived.
    pub fn datagrams_received(&self, transport: Transport, datagrams: u64, bytes: u64) {
        self.traffic.datagrams_received[transport.index()].inc_by(datagrams);
        self.traffic.bytes_received[transport.index()].inc_by(bytes);
    }

    /// A batch was dropped because the aggregation queue was full.
    pub fn batch_dropped(&self, transport: Transport, datagrams: u64, bytes: u64) {
        self.traffic.datagrams_dropped[transport.index()].inc_by(datagrams);
        self.traffic.bytes_dropped[transport.index()].inc_by(bytes);
    }

    /// The kernel reports `total` drops so far on `listener`'s socket. The counter follows the
    /// kernel's cumulative count and never goes down.
    pub fn kernel_drops(&self, listener: &str, total: u64) {
        if let Ok(counter) = self
            .traffic
            .kernel_drops
            .get_metric_with_label_values(&[listener])
        {
            let seen = counter.get();
            if total > seen {
                counter.inc_by(total - seen);
            }
        }
    }

    /// `listener`'s socket got a receive buffer of `bytes` from the kernel.
    pub fn receive_buffer(&self, listener: &str, bytes: u64) {
        if let Ok(gauge) = self
            .traffic
            .receive_buffer
            .get_metric_with_label_values(&[listener])
        {
            gauge.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// A stream connection was accepted.
    pub fn connection_opened(&self, transport: Transport) {
        self.connections.opened[transport.index()].inc();
        self.connections.open[transport.index()].inc();
    }

    /// A stream connection ended.
    pub fn connection_closed(&self, transport: Transport, reason: CloseReason) {
        let reason_index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        self.connections.closed[transport.index()][reason_index].inc();
        self.connections.open[transport.index()].dec();
    }
}

impl Traffic {
    fn new(make: &Maker<'_>) -> Result<Traffic, prometheus::Error> {
        let transports = Transport::ALL.map(|t| t.as_str());
        Ok(Traffic {
            datagrams_received: make.counters(
                names::DATAGRAMS_RECEIVED,
                "Datagrams or stream frames received, by transport.",
                "transport",
                transports,
            )?,
            bytes_received: make.counters(
                names::BYTES_RECEIVED,
                "Bytes received, by transport.",
                "transport",
                transports,
            )?,
            datagrams_dropped: make.counters(
                names::DATAGRAMS_DROPPED,
                "Datagrams or stream frames dropped because the aggregation queue was full, by transport.",
                "transport",
                transports,
            )?,
            bytes_dropped: make.counters(
                names::BYTES_DROPPED,
                "Bytes dropped because the aggregation queue was full, by transport.",
                "transport",
                transports,
            )?,
            kernel_drops: make.register(IntCounterVec::new(
                Opts::new(
                    names::KERNEL_DROPS,
                    "Datagrams the kernel dropped on a listener's socket before heartwire read them (receive buffer full).",
                ),
                &["listener"],
            )?)?,
            receive_buffer: make.register(IntGaugeVec::new(
                Opts::new(
                    names::RECEIVE_BUFFER,
                    "Effective receive buffer of a listener's socket, after the kernel's limits.",
                ),
                &["listener"],
            )?)?,
        })
    }
}

impl Connections {
    fn new(make: &Maker<'_>) -> Result<Connections, prometheus::Error> {
        let transports = Transport::ALL.map(|t| t.as_str());
        let closed = make.register(IntCounterVec::new(
            Opts::new(
                names::CONNECTIONS_CLOSED,
                "Stream connections closed, by transport and reason.",
            ),
            &["transport", "reason"],
        )?)?;
        let open = make.register(IntGaugeVec::new(
            Opts::new(
                names::CONNECTIONS_OPEN,
                "Stream connections open now, by transport.",
            ),
            &["transport"],
        )?)?;
        Ok(Connections {
            opened: make.counters(
                names::CONNECTIONS_OPENED,
                "Stream connections opened, by transport.",
                "transport",
                transports,
            )?,
            closed: try_array(|t| {
                try_array(|r| {
                    closed.get_metric_with_label_values(&[
                        transports[t],
                        CloseReason::ALL[r].as_str(),
                    ])
                })
            })?,
            open: try_array(|t| open.get_metric_with_label_values(&[transports[t]]))?,
        })
    }
}

/// Creates handles and registers them on the agent's registry.
struct Maker<'a> {
    registry: &'a Registry,
}

impl Maker<'_> {
    fn register<C: Collector + Clone + 'static>(
        &self,
        collector: C,
    ) -> Result<C, prometheus::Error> {
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    /// One counter per value of a fixed label, all created now.
    fn counters<const N: usize>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: [&str; N],
    ) -> Result<[IntCounter; N], prometheus::Error> {
        let vec = self.register(IntCounterVec::new(Opts::new(name, help), &[label])?)?;
        try_array(|i| vec.get_metric_with_label_values(&[values[i]]))
    }
}

/// Builds `[T; N]` from a fallible constructor: the label children of a family, created once.
fn try_array<T, E, const N: usize>(
    mut make: impl FnMut(usize) -> Result<T, E>,
) -> Result<[T; N], E> {
    let mut items = Vec::with_capacity(N);
    for index in 0..N {
        items.push(make(index)?);
    }
    match items.try_into() {
        Ok(array) => Ok(array),
        Err(_) => unreachable!("exactly N items were pushed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn render(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn kernel_drops_follow_the_cumulative_count_and_never_go_down() {
        let registry = Registry::new();
        let telemetry = Telemetry::new(&registry).unwrap();
        telemetry.kernel_drops("udp", 7);
        telemetry.kernel_drops("udp", 12);
        telemetry.kernel_drops("udp", 3);
        telemetry.receive_buffer("udp", 425_984);
        let text = render(&registry);
        assert!(text.contains("heartwire_kernel_drops_total{listener=\"udp\"} 12\n"));
        assert!(text.contains("heartwire_receive_buffer_bytes{listener=\"udp\"} 425984\n"));
    }

    #[test]
    fn connections_are_counted_open_and_closed_by_reason() {
        let registry = Registry::new();
        let telemetry = Telemetry::new(&registry).unwrap();
        telemetry.connection_opened(Transport::Tcp);
        telemetry.connection_opened(Transport::Tcp);
        telemetry.connection_closed(Transport::Tcp, CloseReason::Garbage);
        telemetry.datagrams_received(Transport::Tcp, 2, 40);
        telemetry.batch_dropped(Transport::Udp, 1, 1400);
        let text = render(&registry);
        assert!(text.contains("heartwire_connections_opened_total{transport=\"tcp\"} 2\n"));
        assert!(text.contains(
            "heartwire_connections_closed_total{reason=\"garbage\",transport=\"tcp\"} 1\n"
        ));
        assert!(text.contains("heartwire_connections{transport=\"tcp\"} 1\n"));
        assert!(text.contains("heartwire_bytes_received_total{transport=\"tcp\"} 40\n"));
        assert!(text.contains("heartwire_bytes_dropped_total{transport=\"udp\"} 1400\n"));
    }

    #[test]
    fn every_registered_family_is_listed_in_the_reserved_names() {
        let registry = Registry::new();
        let _telemetry = Telemetry::new(&registry).unwrap();
        for family in registry.gather() {
            assert!(
                names::ALL.contains(&family.name()),
                "{} is not reserved",
                family.name()
            );
        }
    }
}
