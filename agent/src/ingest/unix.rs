//! The Unix socket listeners: datagram (read like UDP, in batches) and stream (newline or
//! length-prefix framing, see [`stream`]).
//!
//! No kernel drop counter here: a full Unix datagram queue makes the sender wait or fail with
//! `EAGAIN` instead of dropping silently, so the loss is visible to the sending client.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::sync::watch;

use super::datagram::{self, POLL_INTERVAL};
use super::socket_file::{self, Kind, SocketFile};
use super::stream::{self, Framing};
use super::{ListenError, Sink, udp};
use crate::config::{self, DefaultSocket, FileMode};
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
        drops: std::sync::Arc::default(),
        // Its senders block on a full queue of a few datagrams: read them at once.
        linger: None,
        // Offered for UDP only, whose receive threads scale out with `receive_threads`.
        parse: None,
    };
    Ok((receiver, file))
}

/// Binds the Unix stream socket described by `config` and starts accepting connections.
///
/// `None` when the config names no path and the default location cannot be used (another
/// agent serves it, a directory is not ours, a read-only `/tmp`): the agent runs without the
/// socket, with one warning, since an optional socket must never be the reason a sidecar, and
/// so its app, is down. A configured path that cannot be bound is an error, as for every other
/// listener.
pub(super) fn start_stream(
    config: &config::UnixStream,
    sink: &Sink,
    shutdown: &watch::Receiver<bool>,
    supervisor: &Supervisor,
) -> Result<Option<(tokio::task::JoinHandle<()>, SocketFile)>, ListenError> {
    let (listener, file) = match &config.path {
        Some(path) => bind_stream(path, config.mode)?,
        None => {
            let socket = DefaultSocket::here();
            let bound = make_directory(&socket)
                .map_err(|error| error.to_string())
                .and_then(|()| {
                    bind_stream(&socket.path, config.mode).map_err(|error| error.to_string())
                });
            match bound {
                Ok(bound) => bound,
                Err(error) => {
                    tracing::warn!(
                        path = %socket.path.display(),
                        "no Unix stream socket at its default location: {error}; running without it, so `heartwire run` reports over TCP, without crash detection. Set `listen.unix_stream.path` to a place the agent may create a socket in, or `listen.unix_stream.enabled: false`"
                    );
                    return Ok(None);
                }
            }
        }
    };
    sink.telemetry().listening(Transport::UnixStream);
    tracing::info!(path = %file.path().display(), mode = %config.mode, "listening for Unix streams");
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
    Ok(Some((task, file)))
}

fn bind_stream(
    path: &Path,
    mode: FileMode,
) -> Result<(tokio::net::UnixListener, SocketFile), ListenError> {
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
    let file = SocketFile::claim(path, mode, STREAM_KEY)?;
    Ok((listener, file))
}

/// Creates the default socket's directory, or checks the one there: a private directory must
/// belong to this user and be closed to others, or another user could take the socket's place.
fn make_directory(socket: &DefaultSocket) -> io::Result<()> {
    let directory = socket.directory();
    let mode = socket.directory_mode();
    match fs::DirBuilder::new().mode(mode).create(directory) {
        // The umask may have taken bits away from a system directory's 0755.
        Ok(()) => return fs::set_permissions(directory, fs::Permissions::from_mode(mode)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => {
            let message = format!("cannot create {}: {error}", directory.display());
            return Err(io::Error::new(error.kind(), message));
        }
    }
    let metadata = fs::symlink_metadata(directory)?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} {why}", directory.display()),
        ))
    };
    if !metadata.is_dir() {
        return refuse("is not a directory".to_owned());
    }
    if socket.private {
        let uid = config::effective_uid();
        if metadata.uid() != uid {
            return refuse(format!("belongs to uid {}, not {uid}", metadata.uid()));
        }
        if metadata.mode() & 0o077 != 0 {
            return refuse(format!(
                "is open to other users (mode {:04o}); make it 0700",
                metadata.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private(dir: &Path) -> DefaultSocket {
        DefaultSocket {
            path: dir.join("heartwire").join("stream.sock"),
            private: true,
        }
    }

    #[test]
    fn a_missing_private_directory_is_created_closed_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let socket = private(dir.path());
        make_directory(&socket).unwrap();
        let metadata = fs::metadata(socket.directory()).unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o700);
        make_directory(&socket).unwrap();
    }

    #[test]
    fn a_private_directory_open_to_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = private(dir.path());
        fs::create_dir(socket.directory()).unwrap();
        fs::set_permissions(socket.directory(), fs::Permissions::from_mode(0o777)).unwrap();
        let error = make_directory(&socket).unwrap_err();
        assert!(error.to_string().contains("open to other users"), "{error}");
    }

    #[test]
    fn a_file_in_the_directory_s_place_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let socket = private(dir.path());
        fs::write(socket.directory(), "x").unwrap();
        let error = make_directory(&socket).unwrap_err();
        assert!(error.to_string().contains("is not a directory"), "{error}");
    }
}
