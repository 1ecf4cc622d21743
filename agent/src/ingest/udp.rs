//! The UDP listener: a socket with a large receive buffer and kernel drop accounting, read by a
//! [`datagram::Receiver`] thread.

use std::net::SocketAddr;
use std::sync::Arc;

use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

use super::datagram::{self, POLL_INTERVAL};
use super::parsed::ParseBudget;
use super::{Bound, ListenError};
use crate::config;
use crate::ingest::batch::Transport;
use crate::telemetry::Telemetry;

const KEY: &str = "listen.udp.address";

/// Binds the UDP socket described by `config`: `receive_threads` sockets sharing the address
/// with `SO_REUSEPORT` (the first decides the port when the address asks for any), one receiver
/// each. With `parse_on_receive`, the receivers share a parse budget of as many bytes as
/// `queue_batches` full batches hold raw.
pub(super) fn bind(
    config: &config::Udp,
    queue_batches: usize,
    telemetry: &Telemetry,
) -> Result<(Vec<datagram::Receiver>, Bound), ListenError> {
    let threads = config.receive_threads.max(1);
    let first = socket(config, config.address, threads > 1, telemetry)?;
    let local = first
        .local_addr()
        .ok()
        .and_then(|local| local.as_socket())
        .unwrap_or(config.address);
    let mut sockets = vec![first];
    for _ in 1..threads {
        sockets.push(socket(config, local, true, telemetry)?);
    }
    tracing::info!(address = %local, threads, parse_on_receive = config.parse_on_receive, "listening for UDP");
    // The listener's kernel drops are the sum over its sockets.
    let drops = Arc::default();
    let parse = config.parse_on_receive.then(|| {
        let batch_bytes = config.batch_datagrams * config.max_datagram_bytes;
        ParseBudget::new(queue_batches.saturating_mul(batch_bytes))
    });
    let receivers = sockets
        .into_iter()
        .map(|socket| datagram::Receiver {
            socket,
            listener: "udp",
            transport: Transport::Udp,
            batch_datagrams: config.batch_datagrams,
            max_datagram_bytes: config.max_datagram_bytes,
            drops: Arc::clone(&drops),
            linger: Some(datagram::LINGER),
            parse: parse.clone(),
        })
        .collect();
    Ok((
        receivers,
        Bound {
            name: "udp",
            address: local.to_string(),
        },
    ))
}

/// One UDP socket bound to `address`, shared with others when `reuse_port`.
fn socket(
    config: &config::Udp,
    address: SocketAddr,
    reuse_port: bool,
    telemetry: &Telemetry,
) -> Result<Socket, ListenError> {
    let fail = |source| ListenError::bind("UDP", address.to_string(), KEY, source);
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(fail)?;
    set_receive_buffer(&socket, config.receive_buffer_bytes, "udp", telemetry);
    // The kernel then attaches its per-socket drop counter to every datagram it queues after the
    // first drop: the only way to see loss that happens before the agent reads.
    if let Err(error) = setsockopt(&socket, sockopt::RxqOvfl, &1) {
        tracing::warn!(%error, "kernel drop accounting (SO_RXQ_OVFL) is unavailable on this system");
    }
    if reuse_port {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    socket.set_read_timeout(Some(POLL_INTERVAL)).map_err(fail)?;
    socket.bind(&address.into()).map_err(fail)?;
    Ok(socket)
}

/// Asks for a receive buffer of `requested` bytes (0: keep the kernel's default) and reports the
/// size the kernel granted.
pub(super) fn set_receive_buffer(
    socket: &Socket,
    requested: usize,
    listener: &'static str,
    telemetry: &Telemetry,
) {
    if requested > 0 {
        // SO_RCVBUFFORCE passes net.core.rmem_max when the agent has CAP_NET_ADMIN; without it,
        // plain SO_RCVBUF gets as much as the limit allows.
        if setsockopt(socket, sockopt::RcvBufForce, &requested).is_err()
            && let Err(error) = socket.set_recv_buffer_size(requested)
        {
            tracing::warn!(listener, %error, "could not set the receive buffer size");
        }
    }
    let effective = match socket.recv_buffer_size() {
        Ok(effective) => effective,
        Err(error) => {
            tracing::warn!(listener, %error, "could not read the receive buffer size");
            return;
        }
    };
    telemetry.receive_buffer(listener, effective as u64);
    // Linux reports twice the size granted (half is kept for its own bookkeeping).
    if effective / 2 < requested {
        tracing::warn!(
            listener,
            requested,
            effective,
            "the kernel capped the receive buffer: raise net.core.rmem_max (sysctl) or run with CAP_NET_ADMIN to absorb bursts"
        );
    } else {
        tracing::info!(listener, requested, effective, "receive buffer");
    }
}
