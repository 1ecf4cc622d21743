//! Where the Unix stream socket lives when the config names no `listen.unix_stream.path`: one
//! answer for the agent, which listens there, and for `heartwire run` and `heartwire send`,
//! which look there first, so that the embedded default and the commands meet without a flag.
//!
//! In order: `$XDG_RUNTIME_DIR/heartwire/stream.sock` when `XDG_RUNTIME_DIR` is set to an
//! absolute path (the per-user runtime directory of a login session or a systemd user service);
//! else `/run/heartwire/stream.sock` for root (the location the Helm chart uses too); else
//! `/tmp/heartwire-<uid>/stream.sock`. The commands then try `/run/heartwire/stream.sock`, the
//! Helm chart's socket, which an app container reaches as another user than the agent's.
//! `TMPDIR` is not consulted, so that an agent and a command started with different temporary
//! directories still find each other (tmux does the same).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The socket file's name inside its directory.
const FILE_NAME: &str = "stream.sock";

/// The default location of the Unix stream socket, and how its directory is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultSocket {
    /// The socket file.
    pub path: PathBuf,
    /// Whether the directory belongs to one user (`0700`, and refused when another user owns
    /// it); `/run/heartwire` is a system directory (`0755`, the socket's own mode decides who
    /// may connect).
    pub private: bool,
}

impl DefaultSocket {
    /// The Helm chart's socket, shared with the app's containers: where root's agent listens,
    /// and where `heartwire run` and `heartwire send` look second, since an app container runs
    /// as another user than the agent.
    pub const SHARED: &'static str = "/run/heartwire/stream.sock";

    /// The location for this process: its `XDG_RUNTIME_DIR` and effective user.
    pub fn here() -> DefaultSocket {
        DefaultSocket::resolve(
            std::env::var_os("XDG_RUNTIME_DIR").as_deref(),
            effective_uid(),
        )
    }

    /// The location for a process with `xdg_runtime_dir` in its environment, running as `euid`.
    pub fn resolve(xdg_runtime_dir: Option<&OsStr>, euid: u32) -> DefaultSocket {
        let runtime = xdg_runtime_dir
            .map(Path::new)
            .filter(|dir| dir.is_absolute());
        match runtime {
            Some(dir) => DefaultSocket {
                path: dir.join("heartwire").join(FILE_NAME),
                private: true,
            },
            None if euid == 0 => DefaultSocket {
                path: PathBuf::from(DefaultSocket::SHARED),
                private: false,
            },
            None => {
                let mut dir = OsString::from("/tmp/heartwire-");
                dir.push(euid.to_string());
                DefaultSocket {
                    path: PathBuf::from(dir).join(FILE_NAME),
                    private: true,
                }
            }
        }
    }

    /// The directory the socket file goes in.
    pub fn directory(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("/"))
    }

    /// The mode a missing directory is created with.
    pub fn directory_mode(&self) -> u32 {
        if self.private { 0o700 } else { 0o755 }
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, touches no memory of ours and always succeeds (POSIX).
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_runtime_directory_comes_first_even_for_root() {
        for euid in [0, 1000] {
            let socket = DefaultSocket::resolve(Some(OsStr::new("/run/user/1000")), euid);
            assert_eq!(
                socket.path,
                Path::new("/run/user/1000/heartwire/stream.sock")
            );
            assert!(socket.private);
            assert_eq!(socket.directory(), Path::new("/run/user/1000/heartwire"));
            assert_eq!(socket.directory_mode(), 0o700);
        }
    }

    #[test]
    fn root_without_a_runtime_directory_uses_run_heartwire() {
        let socket = DefaultSocket::resolve(None, 0);
        assert_eq!(socket.path, Path::new("/run/heartwire/stream.sock"));
        assert!(!socket.private);
        assert_eq!(socket.directory_mode(), 0o755);
    }

    #[test]
    fn another_user_without_a_runtime_directory_gets_a_private_one_in_tmp() {
        let socket = DefaultSocket::resolve(None, 65534);
        assert_eq!(socket.path, Path::new("/tmp/heartwire-65534/stream.sock"));
        assert_eq!(socket.directory_mode(), 0o700);
    }

    #[test]
    fn an_empty_or_relative_runtime_directory_is_ignored() {
        for given in ["", "run/user/1000"] {
            let socket = DefaultSocket::resolve(Some(OsStr::new(given)), 1000);
            assert_eq!(socket.path, Path::new("/tmp/heartwire-1000/stream.sock"));
        }
    }
}
