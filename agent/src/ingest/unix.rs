//! The Unix socket listeners: datagram (read like UDP, in batches) and stream (newline or
//! length-prefix framing, see [`stream`]).
//!
//! No kernel drop counter here: a full Unix datagram queue makes the sender wait or fail with
//! `EAGAIN` instead of dropping silently, so the loss is visible to the sending client.

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::sync::watch;

use super::datagram::{self, POLL_INTERVAL};
use super::socket_file::{self, Kind, SocketFile};
use super::stream::{self, Framing};
use super::{ListenError, Sink, udp};
use crate::config;
use crate::ingest::batch::Transport;
use crate::supervise::Supervisor;
use crate::telemetry::Telemetry;

const DATAGRAM_KEY: &str = "listen.unix_datagram.path";
const STREAM_KEY: &str = "listen.unix_stream.path";

/// Binds the Unix datagram socket described by `config`.
pub(super) fn bind_datagram(
    config: &config::UnixDatagram,
    telemetry: &Telemetry,
) -> Result<(datagram::Receiver, SocketFile), ListenError> {
    let path = &config.path;
    let fail = |source| {
        ListenError::bind(
            "Unix datagrams",
            path.display().to_string(),
            DATAGRAM_KEY,
            source,
        )
    };
    socket_file::clear_stale(path, DATAGRAM_KEY, Kind::Datagram)?;
    let socket = Socket::new(Domain::UNIX, Type::DGRAM, None).map_err(fail)?;
    udp::set_receive_buffer(
        &socket,
        config.receive_buffer_bytes,
        "unix_datagram",
        telemetry,
    );
    socket.set_read_timeout(Some(POLL_INTERVAL)).map_err(fail)?;
    socket
        .bind(&SockAddr::unix(path).map_err(fail)?)
        .map_err(fail)?;
    let file = SocketFile::claim(path, config.mode, DATAGRAM_KEY)?;
    tracing::info!(path = %path.display(), mode = %config.mode, "listening for Unix datagrams");
    let receiver = datagram::Receiver {
        socket,
        listener: "unix_datagram",
        transport: Transport::UnixDatagram,
        batch_datagrams: config.batch_datagrams,
        max_datagram_bytes: config.max_datagram_bytes,
    };
    Ok((receiver, file))
}

/// Binds the Unix stream socket described by `config` and starts accepting connections.
pub(super) fn start_stream(
    config: &config::UnixStream,
    sink: &Sink,
    shutdown: &watch::Receiver<bool>,
    supervisor: &Supervisor,
) -> Result<(tokio::task::JoinHandle<()>, SocketFile), ListenError> {
    let path = &config.path;
    let fail = |source| {
        ListenError::bind(
            "Unix streams",
            path.display().to_string(),
            STREAM_KEY,
            source,
        )
    };
    socket_file::clear_stale(path, STREAM_KEY, Kind::Stream)?;
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    let file = SocketFile::claim(path, config.mode, STREAM_KEY)?;
    tracing::info!(path = %path.display(), mode = %config.mode, "listening for Unix streams");
    let settings = stream::Settings {
        transport: Transport::UnixStream,
        framing: Framing::Detect,
        max_connections: config.max_connections,
        max_line_bytes: config.max_line_bytes,
        max_frame_bytes: config.max_frame_bytes,
        idle_timeout: config.idle_timeout,
        listener: "unix_stream",
    };
    let task = supervisor.spawn(
        "unix_stream",
        stream::accept_loop(listener, settings, sink.clone(), shutdown.clone()),
    );
    Ok((task, file))
}
