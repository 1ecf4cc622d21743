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
//! A series exists only where it can change: a transport's series appear, at 0, when its
//! listener starts ([`Telemetry::listening`]); datagram series (datagrams received and dropped,
//! bytes dropped, kernel drops, receive buffer) only for the datagram transports, connection
//! series only for the transports with connections (TCP, Unix stream). `METRICS.md` lists
//! every family, and the end-to-end test `self_metrics` checks it against a live scrape.
//!
//! What the aggregator counts (lines read by transport and rejected by reason, samples set
//! aside, series held, dropped at a cap and in conflict by family) is part of its published
//! snapshot ([`crate::aggregate::Tally`], the accounts), and the exposition renders it from
//! there: a scrape counts exactly the lines whose effect its snapshot shows. All the names are
//! in [`names`].

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

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

/// Whether `transport` reads datagrams (each one a batch that a full queue drops), rather than
/// streams (which wait for room and are never dropped).
pub fn is_datagram(transport: Transport) -> bool {
    matches!(transport, Transport::Udp | Transport::UnixDatagram)
}

/// Whether `transport` accepts connections that the agent counts: TCP and Unix stream. `POST
/// /ingest` is a stream transport too, but its connections belong to the HTTP server.
pub fn has_connections(transport: Transport) -> bool {
    matches!(transport, Transport::Tcp | Transport::UnixStream)
}

/// The transports whose listener started, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listening(u8);

impl Listening {
    /// Whether `transport`'s listener started.
    pub fn contains(self, transport: Transport) -> bool {
        self.0 & (1 << transport.index()) != 0
    }

    /// The set with `transport` added.
    pub fn with(self, transport: Transport) -> Listening {
        Listening(self.0 | (1 << transport.index()))
    }
}

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

/// The self-metrics, registered once. A transport's labelled children are created when its
/// listener starts, so that they show 0 before anything happens and updates never look up a
/// label; a transport that is off has none.
#[derive(Debug)]
pub struct Telemetry {
    listening: AtomicU8,
    traffic: Traffic,
    connections: Connections,
}

/// Bytes and datagrams in front of the aggregator: received, dropped, lost in the kernel.
#[derive(Debug)]
struct Traffic {
    datagrams_received: ByTransport,
    bytes_received: ByTransport,
    datagrams_dropped: ByTransport,
    bytes_dropped: ByTransport,
    kernel_drops: IntCounterVec,
    parse_deferred: IntCounterVec,
    receive_buffer: IntGaugeVec,
}

/// Stream connections.
#[derive(Debug)]
struct Connections {
    opened: ByTransport,
    closed: IntCounterVec,
    closed_children: [OnceLock<[IntCounter; CLOSE_REASONS]>; TRANSPORTS],
    open: IntGaugeVec,
    open_children: [OnceLock<IntGauge>; TRANSPORTS],
}

impl Telemetry {
    /// Creates the self-metrics and registers them on `registry`. No transport has series yet.
    pub fn new(registry: &Registry) -> Result<Telemetry, prometheus::Error> {
        let make = Maker { registry };
        Ok(Telemetry {
            listening: AtomicU8::new(0),
            traffic: Traffic::new(&make)?,
            connections: Connections::new(&make)?,
        })
    }

    /// `transport`'s listener started: its series appear, at 0. Idempotent.
    pub fn listening(&self, transport: Transport) {
        // Fails only if a family's label names did not match its values, which the unit tests
        // rule out: the counts then go uncounted rather than stop the listener.
        if let Err(error) = self.create(transport) {
            tracing::error!(transport = transport.as_str(), %error, "self-metrics not created");
        }
        self.listening
            .fetch_or(1 << transport.index(), Ordering::Release);
    }

    fn create(&self, transport: Transport) -> Result<(), prometheus::Error> {
        let traffic = &self.traffic;
        traffic.bytes_received.open(transport)?;
        if is_datagram(transport) {
            traffic.datagrams_received.open(transport)?;
            traffic.datagrams_dropped.open(transport)?;
            traffic.bytes_dropped.open(transport)?;
        }
        if has_connections(transport) {
            self.connections.open(transport)?;
        }
        Ok(())
    }

    /// The transports whose listener started.
    pub fn listening_on(&self) -> Listening {
        Listening(self.listening.load(Ordering::Acquire))
    }

    /// `datagrams` datagrams holding `bytes` bytes arrived on a datagram transport.
    pub fn datagrams_received(&self, transport: Transport, datagrams: u64, bytes: u64) {
        self.traffic.datagrams_received.inc_by(transport, datagrams);
        self.traffic.bytes_received.inc_by(transport, bytes);
    }

    /// `bytes` bytes arrived on a stream transport (a read, a frame or a request body).
    pub fn bytes_received(&self, transport: Transport, bytes: u64) {
        self.traffic.bytes_received.inc_by(transport, bytes);
    }

    /// A batch of datagrams was dropped because the aggregation queue was full.
    pub fn batch_dropped(&self, transport: Transport, datagrams: u64, bytes: u64) {
        self.traffic.datagrams_dropped.inc_by(transport, datagrams);
        self.traffic.bytes_dropped.inc_by(transport, bytes);
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

    /// `listener`'s receive threads parse what they read (`parse_on_receive`): its count of
    /// batches left unparsed to the aggregator (the parse budget was spent), shown from 0 on.
    /// The counter is looked up here once, not for every batch.
    pub fn parse_deferred(&self, listener: &str) -> Option<IntCounter> {
        self.traffic
            .parse_deferred
            .get_metric_with_label_values(&[listener])
            .ok()
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
        self.connections.opened.inc_by(transport, 1);
        if let Some(open) = self.connections.open_children[transport.index()].get() {
            open.inc();
        }
    }

    /// A stream connection ended.
    pub fn connection_closed(&self, transport: Transport, reason: CloseReason) {
        let reason_index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        let connections = &self.connections;
        if let Some(closed) = connections.closed_children[transport.index()].get() {
            closed[reason_index].inc();
        }
        if let Some(open) = connections.open_children[transport.index()].get() {
            open.dec();
        }
    }
}

impl Traffic {
    fn new(make: &Maker<'_>) -> Result<Traffic, prometheus::Error> {
        Ok(Traffic {
            datagrams_received: make.by_transport(
                names::DATAGRAMS_RECEIVED,
                "Datagrams received, by datagram transport.",
            )?,
            bytes_received: make.by_transport(
                names::BYTES_RECEIVED,
                "Bytes received, by transport.",
            )?,
            datagrams_dropped: make.by_transport(
                names::DATAGRAMS_DROPPED,
                "Datagrams dropped because the aggregation queue was full, by datagram transport.",
            )?,
            bytes_dropped: make.by_transport(
                names::BYTES_DROPPED,
                "Bytes of datagrams dropped because the aggregation queue was full, by datagram transport.",
            )?,
            kernel_drops: make.register(IntCounterVec::new(
                Opts::new(
                    names::KERNEL_DROPS,
                    "Datagrams the kernel dropped on a listener's socket before heartwire read them (receive buffer full).",
                ),
                &["listener"],
            )?)?,
            parse_deferred: make.register(IntCounterVec::new(
                Opts::new(
                    names::RECEIVE_PARSE_DEFERRED,
                    "Batches a receive thread with parse_on_receive sent unparsed, for the aggregator to parse: the budget of parsed lines in flight was spent.",
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
        Ok(Connections {
            opened: make.by_transport(
                names::CONNECTIONS_OPENED,
                "Stream connections opened, by transport.",
            )?,
            closed: make.register(IntCounterVec::new(
                Opts::new(
                    names::CONNECTIONS_CLOSED,
                    "Stream connections closed, by transport and reason.",
                ),
                &["transport", "reason"],
            )?)?,
            closed_children: Default::default(),
            open: make.register(IntGaugeVec::new(
                Opts::new(
                    names::CONNECTIONS_OPEN,
                    "Stream connections open now, by transport.",
                ),
                &["transport"],
            )?)?,
            open_children: Default::default(),
        })
    }

    /// Creates `transport`'s connection series, at 0.
    fn open(&self, transport: Transport) -> Result<(), prometheus::Error> {
        let index = transport.index();
        let name = transport.as_str();
        self.opened.open(transport)?;
        if self.closed_children[index].get().is_none() {
            let closed = try_array(|reason| {
                self.closed
                    .get_metric_with_label_values(&[name, CloseReason::ALL[reason].as_str()])
            })?;
            let _ = self.closed_children[index].set(closed);
        }
        if self.open_children[index].get().is_none() {
            let open = self.open.get_metric_with_label_values(&[name])?;
            let _ = self.open_children[index].set(open);
        }
        Ok(())
    }
}

/// A counter family labelled by `transport`, with a child only for the transports opened.
#[derive(Debug)]
struct ByTransport {
    family: IntCounterVec,
    children: [OnceLock<IntCounter>; TRANSPORTS],
}

impl ByTransport {
    /// Creates `transport`'s child, at 0, if it has none yet.
    fn open(&self, transport: Transport) -> Result<(), prometheus::Error> {
        let slot = &self.children[transport.index()];
        if slot.get().is_none() {
            let child = self
                .family
                .get_metric_with_label_values(&[transport.as_str()])?;
            let _ = slot.set(child);
        }
        Ok(())
    }

    /// Adds `by` to `transport`'s child; nothing when its listener never started.
    fn inc_by(&self, transport: Transport, by: u64) {
        if let Some(child) = self.children[transport.index()].get() {
            child.inc_by(by);
        }
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

    /// A counter family labelled by `transport`, with no child yet.
    fn by_transport(&self, name: &str, help: &str) -> Result<ByTransport, prometheus::Error> {
        Ok(ByTransport {
            family: self.register(IntCounterVec::new(Opts::new(name, help), &["transport"])?)?,
            children: Default::default(),
        })
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
        telemetry.listening(Transport::Tcp);
        telemetry.listening(Transport::Udp);
        telemetry.connection_opened(Transport::Tcp);
        telemetry.connection_opened(Transport::Tcp);
        telemetry.connection_closed(Transport::Tcp, CloseReason::Garbage);
        telemetry.bytes_received(Transport::Tcp, 40);
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
    fn a_transport_has_series_only_once_its_listener_starts_and_only_those_that_can_change() {
        let registry = Registry::new();
        let telemetry = Telemetry::new(&registry).unwrap();
        assert_eq!(render(&registry), "", "no listener, no series");
        // Counted before its listener started (never happens): still no series.
        telemetry.bytes_received(Transport::Http, 5);
        telemetry.listening(Transport::UnixDatagram);
        telemetry.listening(Transport::UnixStream);
        telemetry.listening(Transport::UnixStream);
        let text = render(&registry);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut expected = vec![
            "heartwire_bytes_dropped_total{transport=\"unixgram\"} 0".to_owned(),
            "heartwire_bytes_received_total{transport=\"unix\"} 0".to_owned(),
            "heartwire_bytes_received_total{transport=\"unixgram\"} 0".to_owned(),
            "heartwire_connections{transport=\"unix\"} 0".to_owned(),
        ];
        let mut reasons = CloseReason::ALL.map(|reason| reason.as_str());
        reasons.sort_unstable();
        expected.extend(reasons.iter().map(|reason| {
            format!(
                "heartwire_connections_closed_total{{reason=\"{reason}\",transport=\"unix\"}} 0"
            )
        }));
        expected.extend([
            "heartwire_connections_opened_total{transport=\"unix\"} 0".to_owned(),
            "heartwire_datagrams_dropped_total{transport=\"unixgram\"} 0".to_owned(),
            "heartwire_datagrams_received_total{transport=\"unixgram\"} 0".to_owned(),
        ]);
        assert_eq!(samples, expected);
        let listening = telemetry.listening_on();
        assert!(listening.contains(Transport::UnixDatagram));
        assert!(listening.contains(Transport::UnixStream));
        assert!(!listening.contains(Transport::Udp));
        assert_eq!(Listening::default().with(Transport::Tcp), Listening(1 << 3));
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
