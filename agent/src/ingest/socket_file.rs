//! Unix socket files: make room for one (replacing a stale file from a crashed run, never
//! anything else), set its mode, and remove it when the listener goes away.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};

use super::ListenError;
use crate::config::FileMode;

/// The kind of socket expected at a path, to probe whether a process still serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Datagram,
    Stream,
}

/// Makes `path` free for a new socket. A socket file nobody serves (left by a crashed run) is
/// removed; a socket some process serves, or any file that is not a socket, is an error.
pub(crate) fn clear_stale(path: &Path, key: &'static str, kind: Kind) -> Result<(), ListenError> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(ListenError::bind(
                "a socket file",
                path.display().to_string(),
                key,
                error,
            ));
        }
    };
    if !metadata.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_path_buf(),
            key,
        });
    }
    let probe = match kind {
        Kind::Stream => UnixStream::connect(path).map(drop),
        Kind::Datagram => UnixDatagram::unbound().and_then(|socket| socket.connect(path)),
    };
    match probe {
        // Only a refused connection proves that nobody is listening.
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "replacing a stale socket file");
            fs::remove_file(path).map_err(|error| {
                ListenError::bind("a socket file", path.display().to_string(), key, error)
            })
        }
        _ => Err(ListenError::InUse {
            path: path.to_path_buf(),
            key,
        }),
    }
}

/// A socket file this agent bound. Dropping it removes the file, if it is still the same file
/// (another process may have replaced it meanwhile).
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl SocketFile {
    /// Takes ownership of the freshly bound socket at `path` and sets its mode.
    pub(crate) fn claim(
        path: &Path,
        mode: FileMode,
        key: &'static str,
    ) -> Result<SocketFile, ListenError> {
        let identity = fs::symlink_metadata(path)
            .ok()
            .map(|metadata| (metadata.dev(), metadata.ino()));
        let file = SocketFile {
            path: path.to_path_buf(),
            identity,
        };
        fs::set_permissions(path, fs::Permissions::from_mode(mode.0)).map_err(|error| {
            ListenError::bind("a socket file", path.display().to_string(), key, error)
        })?;
        Ok(file)
    }

    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let current = fs::symlink_metadata(&self.path)
            .ok()
            .map(|metadata| (metadata.dev(), metadata.ino()));
        if current.is_some()
            && current == self.identity
            && let Err(error) = fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), %error, "could not remove the socket file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        clear_stale(&path, "key", Kind::Stream).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_live_socket_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let error = clear_stale(&path, "listen.unix_stream.path", Kind::Stream).unwrap_err();
        assert!(matches!(error, ListenError::InUse { .. }), "{error}");
        let _socket = UnixDatagram::bind(dir.path().join("live.dgram")).unwrap();
        let error = clear_stale(&dir.path().join("live.dgram"), "k", Kind::Datagram).unwrap_err();
        assert!(matches!(error, ListenError::InUse { .. }), "{error}");
        assert!(path.exists());
    }

    #[test]
    fn a_regular_file_is_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("precious.txt");
        fs::write(&path, "data").unwrap();
        let error = clear_stale(&path, "listen.unix_datagram.path", Kind::Datagram).unwrap_err();
        assert!(error.to_string().contains("is not a socket"), "{error}");
        assert!(
            error.to_string().contains("listen.unix_datagram.path"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "data");
    }

    #[test]
    fn a_claimed_socket_gets_its_mode_and_is_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.sock");
        let _socket = UnixDatagram::bind(&path).unwrap();
        let file = SocketFile::claim(&path, FileMode(0o600), "k").unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn a_socket_file_replaced_by_someone_else_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.sock");
        let _first = UnixDatagram::bind(&path).unwrap();
        let file = SocketFile::claim(&path, FileMode::default(), "k").unwrap();
        // Bound while the first still exists, so it cannot reuse the first one's inode.
        let _second = UnixDatagram::bind(dir.path().join("other.sock")).unwrap();
        fs::rename(dir.path().join("other.sock"), &path).unwrap();
        drop(file);
        assert!(path.exists());
    }
}
