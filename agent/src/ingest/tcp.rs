//! The TCP listener: newline-framed lines, so that `echo '…' | nc 127.0.0.1 8125` works.

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use super::stream::{self, Framing};
use super::{Bound, ListenError, Sink};
use crate::config;
use crate::ingest::batch::Transport;
use crate::supervise::Supervisor;

const KEY: &str = "listen.tcp.address";
/// Connections the kernel may hold before the agent accepts them.
const BACKLOG: i32 = 1024;

/// Binds the TCP socket described by `config` and starts accepting connections.
pub(super) fn start(
    config: &config::Tcp,
    sink: &Sink,
    shutdown: &watch::Receiver<bool>,
    supervisor: &Supervisor,
) -> Result<(tokio::task::JoinHandle<()>, Bound), ListenError> {
    let address = config.address;
    let fail = |source| ListenError::bind("TCP", address.to_string(), KEY, source);
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(fail)?;
    // A restarted agent must not wait for the previous run's connections to leave TIME_WAIT.
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&address.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    let listener = tokio::net::TcpListener::from_std(socket.into()).map_err(fail)?;
    let local = listener.local_addr().unwrap_or(address);
    tracing::info!(address = %local, "listening for TCP");
    let settings = stream::Settings {
        transport: Transport::Tcp,
        framing: Framing::Newline,
        max_connections: config.max_connections,
        max_line_bytes: config.max_line_bytes,
        max_frame_bytes: 0,
        idle_timeout: config.idle_timeout,
        listener: "tcp",
    };
    let task = supervisor.spawn(
        "tcp",
        stream::accept_loop(listener, settings, sink.clone(), shutdown.clone()),
    );
    Ok((
        task,
        Bound {
            name: "tcp",
            address: local.to_string(),
        },
    ))
}
