//! Real StatsD client libraries as test peers.
//!
//! The peers live in `tests/peers/`: the Python `statsd` and `datadog` packages in a venv, and
//! the Node `hot-shots` package. `.ci/install-peers.sh` installs them. A test asks for a peer
//! with [`peer_or_skip`]: a missing peer skips the test with a loud notice, unless
//! `HEARTWIRE_REQUIRE_PEERS=1` turns that into a failure (as CI does).
//!
//! [`Receiver`] binds the socket a peer sends to and keeps every datagram or connection it got.

use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The environment variable that turns a missing peer from a skip into a failure.
pub const REQUIRE_PEERS: &str = "HEARTWIRE_REQUIRE_PEERS";

/// How long a peer may take to send its script before the test gives up on it.
const PEER_DEADLINE: Duration = Duration::from_secs(60);
/// How often the receiving thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A StatsD client library driven as a real peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The Python `statsd` package (plain StatsD).
    Statsd,
    /// The Python `datadog` package's `DogStatsd` client.
    Datadog,
    /// The Node `hot-shots` package, in DogStatsD mode.
    HotShots,
}

impl Client {
    /// The client's name, as the emit scripts and the capture files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Client::Statsd => "statsd",
            Client::Datadog => "datadog",
            Client::HotShots => "hot-shots",
        }
    }
}

/// How a peer reaches the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP to an ephemeral port on 127.0.0.1.
    Udp,
    /// A Unix datagram socket.
    UnixDatagram,
    /// A Unix stream socket.
    UnixStream,
}

impl Transport {
    /// The transport's name, as the emit scripts and the capture files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::UnixDatagram => "unixgram",
            Transport::UnixStream => "unixstream",
        }
    }
}

/// Why a peer could not be found or run.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer is not installed on this machine.
    #[error("{client} peer not installed: {missing}; run .ci/install-peers.sh")]
    Missing {
        client: &'static str,
        missing: String,
    },
    /// The peer could not be started.
    #[error("could not start the {client} peer ({program}): {source}")]
    Spawn {
        client: &'static str,
        program: PathBuf,
        source: io::Error,
    },
    /// The peer exited with an error.
    #[error("the {client} peer failed over {transport} ({status}):\n{stderr}")]
    Failed {
        client: &'static str,
        transport: &'static str,
        status: String,
        stderr: String,
    },
    /// The peer did not finish in time and was killed.
    #[error("the {client} peer did not finish over {transport} within {PEER_DEADLINE:?}")]
    Hung {
        client: &'static str,
        transport: &'static str,
    },
}

/// A peer found on this machine: an interpreter and the script that drives the client.
#[derive(Debug, Clone)]
pub struct Peer {
    client: Client,
    program: PathBuf,
    script: PathBuf,
}

/// `tests/peers/`, where the peers and their install live.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

impl Peer {
    /// Finds the peer for `client`, able to send over `transport`.
    pub fn find(client: Client, transport: Transport) -> Result<Peer, PeerError> {
        let dir = peers_dir();
        let missing = |missing: String| PeerError::Missing {
            client: client.name(),
            missing,
        };
        match client {
            Client::Statsd | Client::Datadog => {
                let python = dir.join(".venv/bin/python3");
                if !python.is_file() {
                    return Err(missing(format!("no {}", python.display())));
                }
                let package = if client == Client::Statsd {
                    "statsd"
                } else {
                    "datadog"
                };
                if !venv_has_package(&dir.join(".venv"), package) {
                    return Err(missing(format!("the venv has no `{package}` package")));
                }
                Ok(Peer {
                    client,
                    program: python,
                    script: dir.join("python/emit.py"),
                })
            }
            Client::HotShots => {
                let node =
                    on_path("node").ok_or_else(|| missing("no `node` on PATH".to_owned()))?;
                let modules = dir.join("node/node_modules");
                if !modules.join("hot-shots/package.json").is_file() {
                    return Err(missing(format!(
                        "no {}",
                        modules.join("hot-shots").display()
                    )));
                }
                let native = modules.join("unix-dgram/build/Release/unix_dgram.node");
                if transport == Transport::UnixDatagram && !native.is_file() {
                    return Err(missing(format!(
                        "unix-dgram is not built (no {})",
                        native.display()
                    )));
                }
                Ok(Peer {
                    client,
                    program: node,
                    script: dir.join("node/emit.js"),
                })
            }
        }
    }

    /// Runs the client's fixed script against `address` and waits for it to finish.
    ///
    /// The peer gets an empty environment but for `PATH`, so that no `DD_*` variable of the
    /// machine changes what it sends.
    pub fn emit(&self, transport: Transport, address: &str) -> Result<(), PeerError> {
        let client = self.client.name();
        let mut child = Command::new(&self.program)
            .arg(&self.script)
            .args([client, transport.name(), address])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| PeerError::Spawn {
                client,
                program: self.program.clone(),
                source,
            })?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < PEER_DEADLINE => thread::sleep(POLL),
                _ => {
                    // Best effort: the peer is abandoned either way.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PeerError::Hung {
                        client,
                        transport: transport.name(),
                    });
                }
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            // The exit status is the error; stderr only explains it.
            let _ = pipe.read_to_string(&mut stderr);
        }
        Err(PeerError::Failed {
            client,
            transport: transport.name(),
            status: status.to_string(),
            stderr,
        })
    }
}

/// The skip policy: the peer if it is installed; otherwise a loud notice and `None`, or a panic
/// when `HEARTWIRE_REQUIRE_PEERS=1`.
#[track_caller]
pub fn peer_or_skip(client: Client, transport: Transport) -> Option<Peer> {
    match Peer::find(client, transport) {
        Ok(peer) => Some(peer),
        Err(error) if peers_required() => panic!("{error} ({REQUIRE_PEERS}=1)"),
        Err(error) => {
            announce_skip(&error);
            None
        }
    }
}

/// Whether `HEARTWIRE_REQUIRE_PEERS=1` is set.
pub fn peers_required() -> bool {
    std::env::var_os(REQUIRE_PEERS).is_some_and(|value| value == "1")
}

/// Writes straight to the process's stderr: the test harness captures `eprintln!` of a passing
/// test, and a skip must not go unseen.
fn announce_skip(error: &PeerError) {
    let notice = format!("\n********** SKIPPED: {error} **********\n\n");
    // Nothing better to do if stderr is gone.
    let _ = io::stderr().write_all(notice.as_bytes());
}

fn venv_has_package(venv: &Path, package: &str) -> bool {
    let Ok(lib) = std::fs::read_dir(venv.join("lib")) else {
        return false;
    };
    lib.flatten().any(|python| {
        python
            .path()
            .join("site-packages")
            .join(package)
            .join("__init__.py")
            .is_file()
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A bound socket that keeps everything peers send to it, read on a thread of its own so that
/// a sender is never blocked (a Unix datagram socket queues only 10 datagrams).
#[derive(Debug)]
pub struct Receiver {
    address: String,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<io::Result<Vec<Vec<u8>>>>>,
    // Holds the socket file; removed when the receiver is dropped.
    _dir: Option<tempfile::TempDir>,
}

impl Receiver {
    /// Binds a fresh socket for `transport`: an ephemeral UDP port on 127.0.0.1, or a socket
    /// file in a new temporary directory.
    pub fn bind(transport: Transport) -> io::Result<Receiver> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (address, dir, reader) = match transport {
            Transport::Udp => {
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.set_read_timeout(Some(POLL))?;
                let address = socket.local_addr()?.to_string();
                (
                    address,
                    None,
                    thread::spawn(move || read_datagrams(|buf| socket.recv(buf), &flag)),
                )
            }
            Transport::UnixDatagram => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("statsd.sock");
                let socket = UnixDatagram::bind(&path)?;
                socket.set_read_timeout(Some(POLL))?;
                let reader = thread::spawn(move || read_datagrams(|buf| socket.recv(buf), &flag));
                (path_string(&path)?, Some(dir), reader)
            }
            Transport::UnixStream => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join("statsd.sock");
                let listener = UnixListener::bind(&path)?;
                listener.set_nonblocking(true)?;
                (
                    path_string(&path)?,
                    Some(dir),
                    thread::spawn(move || read_connections(&listener, &flag)),
                )
            }
        };
        Ok(Receiver {
            address,
            stop,
            reader: Some(reader),
            _dir: dir,
        })
    }

    /// Where peers send: `127.0.0.1:PORT` or a socket path.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops receiving and returns what arrived: one entry per datagram, or per connection (all
    /// its bytes, in accept order). Call it once the peers have exited: everything they sent is
    /// then already queued in the kernel, and all of it is read before this returns.
    pub fn finish(mut self) -> io::Result<Vec<Vec<u8>>> {
        self.stop.store(true, Ordering::SeqCst);
        let reader = self
            .reader
            .take()
            .ok_or_else(|| io::Error::other("the receiver was already finished"))?;
        reader
            .join()
            .map_err(|_| io::Error::other("the receiving thread panicked"))?
    }
}

impl Drop for Receiver {
    // A test that fails before `finish` still stops the reading thread.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn path_string(path: &Path) -> io::Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("socket path {} is not UTF-8", path.display())))
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads datagrams until a read times out after the stop flag was seen: the queue is then empty
/// and stays so, since the senders have exited.
fn read_datagrams(
    mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>,
    stop: &AtomicBool,
) -> io::Result<Vec<Vec<u8>>> {
    let mut datagrams = Vec::new();
    let mut buf = vec![0; 65_536];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match recv(&mut buf) {
            Ok(len) => datagrams.push(buf[..len].to_vec()),
            Err(error) if is_timeout(&error) && stopping => return Ok(datagrams),
            Err(error) if is_timeout(&error) => {}
            Err(error) => return Err(error),
        }
    }
}

/// Accepts connections and reads each to its end, until no connection is pending after the stop
/// flag was seen.
fn read_connections(listener: &UnixListener, stop: &AtomicBool) -> io::Result<Vec<Vec<u8>>> {
    let mut connections = Vec::new();
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(PEER_DEADLINE))?;
                let mut bytes = Vec::new();
                stream.read_to_end(&mut bytes)?;
                connections.push(bytes);
            }
            Err(error) if is_timeout(&error) && stopping => return Ok(connections),
            Err(error) if is_timeout(&error) => thread::sleep(POLL),
            Err(error) => return Err(error),
        }
    }
}

/// Why a test that runs documented commands against the agent's default addresses cannot run
/// here (`bash`, `curl` or `nc` missing, a default port taken), if so; `what` names the
/// document in the message.
pub fn default_ports_unusable(what: &str) -> Option<String> {
    for tool in ["bash", "curl", "nc"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            return Some(format!(
                "no `{tool}` on PATH; run .ci/install-quickstart.sh"
            ));
        }
    }
    let taken = |address: &str| format!("{address} is taken, and {what} uses the default ports");
    if std::net::UdpSocket::bind("127.0.0.1:8125").is_err() {
        return Some(taken("udp 127.0.0.1:8125"));
    }
    for address in ["127.0.0.1:8125", "0.0.0.0:8127", "127.0.0.1:8128"] {
        if std::net::TcpListener::bind(address).is_err() {
            return Some(taken(&format!("tcp {address}")));
        }
    }
    None
}
