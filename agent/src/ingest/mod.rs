//! The ways lines come in: UDP, Unix datagram and stream sockets, TCP and `POST /ingest`.
//!
//! Each listener copies what it reads into a [`Batch`] and hands it to the aggregator through a
//! [`Sink`], onto one of two bounded queues; only UDP receive threads may parse it first
//! ([`parsed`], `listen.udp.parse_on_receive`). Loss is decided per transport:
//!
//! - Datagrams (UDP, Unix datagram) may be lost anyway (the kernel drops them when its buffer is
//!   full, and heartwire counts that), so their receive threads never wait: when the datagram
//!   queue is full the batch is dropped and counted, and the thread goes on reading.
//! - Streams (TCP, Unix stream, `POST /ingest`) are never dropped: losing a `job.ok` while the
//!   session's close still arrives would fabricate a crash. A connection's reader waits for room
//!   in the stream queue before it reads more, so the kernel's socket buffer and then the sender
//!   slow down; a connection's lines and its close reach the aggregator in order. Waiting
//!   readers take turns (the queue is first come, first served per batch, and a batch is at
//!   most one read of 16 KiB), so one busy connection cannot shut out the others, and a
//!   stuck one holds nothing while it sends nothing.
//!
//! The aggregator takes from the two queues in turn, so neither starves the other. Datagram
//! sockets are read on dedicated threads with `recvmmsg`; stream connections are tokio tasks,
//! each bounded in what it may buffer.

pub mod batch;
mod datagram;
pub mod http;
pub mod parsed;
mod recvmmsg;
mod socket_file;
mod stream;
mod tcp;
mod udp;
mod unix;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};

use crate::aggregate::task::Queues;
use crate::config::Listen;
use crate::ingest::batch::{Batch, ConnectionId, Transport};
use crate::supervise::{Finished, Supervisor};
use crate::telemetry::Telemetry;

/// The sending ends of the queues to the aggregator, with the counters every listener updates.
#[derive(Debug, Clone)]
pub struct Sink {
    datagrams: mpsc::Sender<Batch>,
    streams: mpsc::Sender<Batch>,
    telemetry: Arc<Telemetry>,
}

/// The two queues to the aggregator, each holding at most `capacity` batches: the listeners'
/// end and the aggregator's.
pub fn queues(capacity: usize, telemetry: Arc<Telemetry>) -> (Sink, Queues) {
    let (datagrams, datagram_batches) = mpsc::channel(capacity);
    let (streams, stream_batches) = mpsc::channel(capacity);
    let sink = Sink {
        datagrams,
        streams,
        telemetry,
    };
    let queues = Queues {
        datagrams: datagram_batches,
        streams: stream_batches,
    };
    (sink, queues)
}

impl Sink {
    /// The agent's self-metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Counts `datagrams` datagrams of `bytes` bytes as received and queues `batch`. Never
    /// waits: returns `false`, and counts the drop, when the datagram queue is full or the
    /// aggregator is gone.
    pub fn send(&self, batch: Batch, datagrams: u64, bytes: u64) -> bool {
        let transport = batch.transport;
        self.telemetry
            .datagrams_received(transport, datagrams, bytes);
        if batch.payload.is_empty() && batch.cut == 0 {
            return true;
        }
        match self.datagrams.try_send(batch) {
            Ok(()) => true,
            Err(_) => {
                self.telemetry.batch_dropped(transport, datagrams, bytes);
                false
            }
        }
    }

    /// Counts `bytes` bytes as received and queues `batch`, waiting for room: streams are never
    /// dropped. `false` only once the aggregator is gone, when the agent is stopping or has
    /// failed (`/healthz` says which): no drop counter stands for that, since a stream
    /// transport never drops while the agent runs.
    pub async fn send_stream(&self, batch: Batch, bytes: u64) -> bool {
        self.telemetry.bytes_received(batch.transport, bytes);
        if batch.payload.is_empty() {
            return true;
        }
        self.streams.send(batch).await.is_ok()
    }

    /// The peer closed `connection`: queued after its last lines, waiting for room like them.
    pub async fn closed(&self, connection: ConnectionId, transport: Transport) {
        // An error means the aggregator is gone (shutdown): nothing is left to tell.
        let _ = self
            .streams
            .send(Batch::closed(connection, transport))
            .await;
    }

    /// How many batches the datagram queue holds.
    pub(crate) fn datagram_queue_batches(&self) -> usize {
        self.datagrams.max_capacity()
    }

    /// Whether the datagram queue has room for a batch now (it may be gone by the next send).
    pub(crate) fn datagram_room(&self) -> bool {
        self.datagrams.capacity() > 0
    }

    /// Whether both queues are empty: every batch handed over so far has been taken by the
    /// aggregator (and so applied, since it applies a batch as it takes it).
    pub fn is_drained(&self) -> bool {
        let empty = |queue: &mpsc::Sender<Batch>| queue.capacity() == queue.max_capacity();
        empty(&self.datagrams) && empty(&self.streams)
    }
}

/// Why a listener could not start. Every message names the address or path, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The socket could not be created, configured or bound.
    #[error("cannot listen for {what} on {address}: {source}; {hint}")]
    Bind {
        /// The listener, e.g. `UDP`.
        what: &'static str,
        /// The address or socket path.
        address: String,
        /// What the OS said.
        source: io::Error,
        /// What to do about it.
        hint: String,
    },
    /// The socket path holds something that is not a socket; it is never deleted.
    #[error("cannot listen on {}: the path exists and is not a socket, so heartwire will not delete it; remove it yourself or change `{key}`", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// The config key of the path.
        key: &'static str,
    },
    /// The socket path belongs to a running process.
    #[error("cannot listen on {}: a running process is serving this socket (another heartwire?); stop it or change `{key}`", path.display())]
    InUse {
        /// The path.
        path: PathBuf,
        /// The config key of the path.
        key: &'static str,
    },
}

impl ListenError {
    /// A bind failure on `address`, with a hint chosen from the OS error.
    pub(crate) fn bind(
        what: &'static str,
        address: String,
        key: &'static str,
        source: io::Error,
    ) -> ListenError {
        let hint = match source.kind() {
            io::ErrorKind::AddrInUse => {
                format!("another process is listening there: stop it, or change `{key}`")
            }
            io::ErrorKind::AddrNotAvailable => {
                format!("no interface of this host has that address: change `{key}`")
            }
            io::ErrorKind::PermissionDenied => format!(
                "the agent lacks permission (ports below 1024 need privileges; socket directories must be writable): change `{key}` or grant access"
            ),
            io::ErrorKind::NotFound => {
                format!("the directory does not exist: create it, or change `{key}`")
            }
            _ => format!("check `{key}`"),
        };
        ListenError::Bind {
            what,
            address,
            source,
            hint,
        }
    }
}

/// Where a listener ended up: the `name` is the config key (`udp`, `unix_stream`, ...), the
/// address is `ip:port` (with the real port when 0 was asked) or the socket path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// The listener's config key.
    pub name: &'static str,
    /// Its address or path.
    pub address: String,
}

/// The running socket listeners (`POST /ingest` is served with the HTTP endpoints).
#[derive(Debug)]
pub struct Listeners {
    bound: Vec<Bound>,
    // Threads poll the flag between receives; tasks wait on the channel.
    stop: Arc<AtomicBool>,
    shutdown: watch::Sender<bool>,
    threads: Vec<Finished>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    // Removed (if still ours) when dropped, after the readers have stopped.
    socket_files: Vec<socket_file::SocketFile>,
}

impl Listeners {
    /// Binds every enabled listener and starts reading. Fails, leaving nothing behind, if any
    /// cannot bind (except the Unix stream socket at its default location, which is then left
    /// out with a warning). Must run inside the tokio runtime.
    pub fn start(
        config: &Listen,
        sink: &Sink,
        supervisor: &Supervisor,
    ) -> Result<Listeners, ListenError> {
        let (shutdown, signal) = watch::channel(false);
        let mut listeners = Listeners {
            bound: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            shutdown,
            threads: Vec::new(),
            tasks: Vec::new(),
            socket_files: Vec::new(),
        };
        if config.udp.enabled {
            sink.telemetry().listening(Transport::Udp);
            let (receivers, bound) =
                udp::bind(&config.udp, sink.datagram_queue_batches(), sink.telemetry())?;
            for receiver in receivers {
                listeners.spawn_datagram(receiver, &bound, sink, supervisor)?;
            }
            listeners.bound.push(bound);
        }
        if config.unix_datagram.enabled {
            sink.telemetry().listening(Transport::UnixDatagram);
            let (receiver, file) = unix::bind_datagram(&config.unix_datagram, sink.telemetry())?;
            let bound = Bound {
                name: "unix_datagram",
                address: file.path().display().to_string(),
            };
            listeners.socket_files.push(file);
            listeners.spawn_datagram(receiver, &bound, sink, supervisor)?;
            listeners.bound.push(bound);
        }
        if config.tcp.enabled {
            sink.telemetry().listening(Transport::Tcp);
            let (task, bound) = tcp::start(&config.tcp, sink, &signal, supervisor)?;
            listeners.tasks.push(task);
            listeners.bound.push(bound);
        }
        // Only a configured path is required: the default location is skipped, with a warning,
        // when the socket cannot be made there.
        if config.unix_stream.enabled
            && let Some((task, file)) =
                unix::start_stream(&config.unix_stream, sink, &signal, supervisor)?
        {
            listeners.bound.push(Bound {
                name: "unix_stream",
                address: file.path().display().to_string(),
            });
            listeners.socket_files.push(file);
            listeners.tasks.push(task);
        }
        Ok(listeners)
    }

    fn spawn_datagram(
        &mut self,
        receiver: datagram::Receiver,
        bound: &Bound,
        sink: &Sink,
        supervisor: &Supervisor,
    ) -> Result<(), ListenError> {
        let thread = receiver
            .spawn(sink.clone(), self.stop.clone(), supervisor)
            .map_err(|source| {
                ListenError::bind(
                    "a receive thread",
                    bound.address.clone(),
                    bound.name,
                    source,
                )
            })?;
        self.threads.push(thread);
        Ok(())
    }

    /// Where each listener is.
    pub fn bound(&self) -> &[Bound] {
        &self.bound
    }

    /// Stops reading: datagram threads finish their current receive (within their receive
    /// timeout), stream listeners stop accepting and close their connections. Socket files are
    /// removed. Returns once every reader is done, so that no reader holds the queue open.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        for thread in self.threads.drain(..) {
            thread.wait().await;
        }
        self.socket_files.clear();
    }
}

impl Drop for Listeners {
    // On an error path (a later listener failed to bind) the readers started so far stop too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
    }
}

/// Resolves when the shutdown signal is set (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
