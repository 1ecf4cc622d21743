//! What the listeners hand to the aggregator: raw lines, tagged with the way they came in.
//!
//! Listeners copy what they read into a [`Batch`] and hand it to one of two bounded queues (see
//! [`super::Sink`]); the aggregator parses with `heartwire-proto` and applies the lines. With
//! `listen.udp.parse_on_receive`, the UDP receive threads parse their batches themselves
//! ([`Payload::Parsed`]), and the aggregator only applies them.

use super::parsed::Parsed;

/// The way a batch came in, for `heartwire_lines_received_total{transport}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// A UDP socket.
    Udp,
    /// A Unix datagram socket.
    UnixDatagram,
    /// A Unix stream socket (newline or 4-byte length-prefix framing).
    UnixStream,
    /// A TCP connection (newline framing).
    Tcp,
    /// `POST /ingest`.
    Http,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::UnixDatagram,
        Transport::UnixStream,
        Transport::Tcp,
        Transport::Http,
    ];

    /// The `transport` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::UnixDatagram => "unixgram",
            Transport::UnixStream => "unix",
            Transport::Tcp => "tcp",
            Transport::Http => "http",
        }
    }

    /// The position of this transport in [`Transport::ALL`], for array-indexed counters.
    pub fn index(&self) -> usize {
        *self as usize
    }
}

/// Identifies one stream connection for the lifetime of the agent. A connection whose lines
/// include `hello` is a session: what runs and workers report on it ends with it.
pub type ConnectionId = u64;

/// The lines of a batch, as read or already parsed.
#[derive(Debug)]
pub enum Payload {
    /// `\n`-separated lines (a trailing `\n` or none), parsed by the aggregator.
    Raw(Vec<u8>),
    /// Lines parsed on the receive thread.
    Parsed(Parsed),
}

impl Payload {
    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Raw(data) => data.is_empty(),
            Payload::Parsed(parsed) => parsed.is_empty(),
        }
    }
}

/// Lines from one transport: one or more datagrams or stream frames, joined by `\n` so that the
/// last line of one datagram never runs into the first line of the next.
#[derive(Debug)]
pub struct Batch {
    /// Where the lines came from.
    pub transport: Transport,
    /// The lines.
    pub payload: Payload,
    /// The stream connection the lines came on; `None` for datagrams and HTTP.
    pub connection: Option<ConnectionId>,
    /// The peer closed the connection after these lines (not sent when the agent itself closes
    /// connections to shut down).
    pub closed: bool,
    /// Lines the receive buffer cut off (the last line of a datagram longer than the buffer):
    /// counted as read and rejected as `too_long`, never parsed.
    pub cut: u64,
}

impl Batch {
    /// Lines that came on no connection.
    pub fn new(transport: Transport, data: Vec<u8>) -> Batch {
        Batch::of(transport, Payload::Raw(data))
    }

    /// Lines, raw or parsed, that came on no connection.
    pub fn of(transport: Transport, payload: Payload) -> Batch {
        Batch {
            transport,
            payload,
            connection: None,
            closed: false,
            cut: 0,
        }
    }

    /// Lines that came on the stream connection `connection`.
    pub fn on(connection: ConnectionId, transport: Transport, data: Vec<u8>) -> Batch {
        Batch {
            transport,
            payload: Payload::Raw(data),
            connection: Some(connection),
            closed: false,
            cut: 0,
        }
    }

    /// The peer closed `connection`.
    pub fn closed(connection: ConnectionId, transport: Transport) -> Batch {
        Batch {
            transport,
            payload: Payload::Raw(Vec::new()),
            connection: Some(connection),
            closed: true,
            cut: 0,
        }
    }
}
