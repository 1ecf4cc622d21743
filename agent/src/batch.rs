//! What the listeners hand to the aggregator: raw lines, tagged with the way they came in.
//!
//! Listeners never parse. They copy what they read into a [`Batch`] and `try_send` it on a
//! bounded channel; the aggregating task parses with `heartwire-proto` and applies the lines.

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

/// Lines from one transport: one or more datagrams or stream frames, joined by `\n` so that the
/// last line of one datagram never runs into the first line of the next.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Where the lines came from.
    pub transport: Transport,
    /// The lines, `\n`-separated (a trailing `\n` or none).
    pub data: Vec<u8>,
}
