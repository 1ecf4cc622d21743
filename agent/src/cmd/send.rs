//! `heartwire send`: emits lines to a running agent, so that scripts need no `nc`.
//!
//! Every line is checked with the protocol parser first; if one is invalid nothing is sent and
//! the command fails (exit 65) naming the line and the reason. Datagram transports pack as many
//! lines as fit into each datagram; stream transports send newline-framed lines.
//!
//! Without `--to` (or `HEARTWIRE_TO`) the lines go to the agent's Unix stream socket at its
//! default location ([`DefaultSocket`], where the embedded default listens), or, when nothing
//! listens there, over TCP to `127.0.0.1:8125`.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use crate::cmd::cli::SendArgs;
use crate::config::DefaultSocket;

/// UDP payload that fits a 1500-byte MTU with IP and UDP headers (DogStatsD's default too).
const UDP_PAYLOAD: usize = 1432;
/// Unix datagram payload: the agent's default `max_datagram_bytes`.
const UNIXGRAM_PAYLOAD: usize = 8192;
/// How long connecting or writing may take before the command gives up.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// Where to send: parsed from `udp://HOST:PORT`, `tcp://HOST:PORT`, `unix:///PATH`,
/// `unixgram:///PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// UDP to `host:port`.
    Udp(String),
    /// TCP to `host:port`, newline-framed.
    Tcp(String),
    /// A Unix stream socket, newline-framed.
    Unix(PathBuf),
    /// A Unix datagram socket.
    Unixgram(PathBuf),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` has no scheme: write udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH or unixgram:///PATH"))?;
        if rest.is_empty() {
            return Err(format!("`{text}` has no address after `{scheme}://`"));
        }
        match scheme {
            "udp" => Ok(Target::Udp(rest.to_owned())),
            "tcp" => Ok(Target::Tcp(rest.to_owned())),
            "unix" => Ok(Target::Unix(PathBuf::from(rest))),
            "unixgram" => Ok(Target::Unixgram(PathBuf::from(rest))),
            other => Err(format!(
                "unknown scheme `{other}`: use udp, tcp, unix or unixgram"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Udp(address) => write!(f, "udp://{address}"),
            Target::Tcp(address) => write!(f, "tcp://{address}"),
            Target::Unix(path) => write!(f, "unix://{}", path.display()),
            Target::Unixgram(path) => write!(f, "unixgram://{}", path.display()),
        }
    }
}

/// The TCP address tried when the default socket is not there: the embedded default's.
pub(crate) const FALLBACK_TCP: &str = "127.0.0.1:8125";

/// Where the commands report: the target they were given, or the default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `--to` or `HEARTWIRE_TO`: there and nowhere else.
    Given(Target),
    /// Neither given: the first Unix stream socket that answers, else TCP.
    Default {
        /// Where the embedded default listens for this user ([`DefaultSocket`]), then the
        /// Helm chart's shared socket if that is elsewhere.
        sockets: Vec<PathBuf>,
        /// The fallback, `tcp://127.0.0.1:8125`.
        tcp: Target,
    },
}

impl Destination {
    /// The given target, or the default for this process.
    pub fn new(given: Option<Target>) -> Destination {
        match given {
            Some(target) => Destination::Given(target),
            None => {
                let mut sockets = vec![DefaultSocket::here().path];
                // An app container of the Helm chart runs as another user than the agent, which
                // listens on the shared socket: the default before this one existed.
                let shared = PathBuf::from(DefaultSocket::SHARED);
                if !sockets.contains(&shared) {
                    sockets.push(shared);
                }
                Destination::Default {
                    sockets,
                    tcp: Target::Tcp(FALLBACK_TCP.to_owned()),
                }
            }
        }
    }
}

/// The first of `sockets` that accepts a connection, with its path; else why each did not.
pub(crate) fn connect_first(
    sockets: &[PathBuf],
) -> Result<(&Path, UnixStream), Vec<(&Path, io::Error)>> {
    let mut refused = Vec::with_capacity(sockets.len());
    for socket in sockets {
        match connect_unix(socket) {
            Ok(stream) => return Ok((socket, stream)),
            Err(error) => refused.push((socket.as_path(), error)),
        }
    }
    Err(refused)
}

/// `PATH (why), PATH (why)`: the sockets that did not answer.
pub(crate) fn unanswered(refused: &[(&Path, io::Error)]) -> String {
    let each: Vec<String> = refused
        .iter()
        .map(|(path, error)| format!("{} ({error})", path.display()))
        .collect();
    each.join(", ")
}

/// A delivery that failed: where it was tried (with why, for every place but the last) and
/// what the OS said at the last place.
#[derive(Debug)]
pub(crate) struct Undelivered {
    pub(crate) tried: String,
    pub(crate) source: io::Error,
}

impl Undelivered {
    /// Neither the default sockets (`refused`) nor the TCP fallback (`source`) took it.
    pub(crate) fn neither(
        refused: &[(&Path, io::Error)],
        tcp: &Target,
        source: io::Error,
    ) -> Undelivered {
        Undelivered {
            tried: format!("the socket {} or to {tcp}", unanswered(refused)),
            source,
        }
    }
}

/// Why `heartwire send` failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// A line is not valid; nothing was sent.
    #[error("line {number} `{line}` is invalid ({reason}); nothing was sent")]
    InvalidLine {
        /// 1-based, counting every line given.
        number: usize,
        /// The line.
        line: String,
        /// The parser's reason.
        reason: heartwire_proto::ParseError,
    },
    /// No non-blank line was given.
    #[error("no lines to send")]
    Empty,
    /// Standard input could not be read.
    #[error("cannot read lines from standard input: {0}")]
    Stdin(io::Error),
    /// The agent could not be reached or the lines could not be written.
    #[error("cannot send to {target}: {source} (is the agent running and listening there?)")]
    Io {
        /// Where it was tried.
        target: String,
        /// What the OS said.
        source: io::Error,
    },
}

impl SendError {
    fn exit_code(&self) -> ExitCode {
        match self {
            // EX_DATAERR: the input was wrong, retrying will not help.
            SendError::InvalidLine { .. } | SendError::Empty => ExitCode::from(65),
            SendError::Stdin(_) | SendError::Io { .. } => ExitCode::FAILURE,
        }
    }
}

/// Runs `heartwire send`, reporting a failure on stderr.
pub fn main(args: &SendArgs) -> ExitCode {
    match run(args, io::stdin().lock()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(io::stderr().lock(), "heartwire send: {error}");
            error.exit_code()
        }
    }
}

/// Checks and sends the lines of `args` (`-` reads `stdin`); returns how many were sent.
pub fn run(args: &SendArgs, stdin: impl BufRead) -> Result<usize, SendError> {
    let lines = collect(&args.lines, stdin)?;
    deliver_to(&Destination::new(args.to.clone()), &lines).map_err(|failed| SendError::Io {
        target: failed.tried,
        source: failed.source,
    })?;
    Ok(lines.len())
}

/// The non-blank lines, in order, each checked with the parser.
fn collect(arguments: &[String], stdin: impl BufRead) -> Result<Vec<String>, SendError> {
    let mut given = Vec::new();
    let mut stdin = Some(stdin);
    for argument in arguments {
        if argument == "-" {
            // Only the first `-` reads; standard input is empty after it.
            if let Some(input) = stdin.take() {
                for line in input.lines() {
                    given.push(line.map_err(SendError::Stdin)?);
                }
            }
        } else {
            given.extend(argument.split('\n').map(str::to_owned));
        }
    }
    let mut lines = Vec::with_capacity(given.len());
    for (index, line) in given.into_iter().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Err(reason) = heartwire_proto::parse_line(line.as_bytes()) {
            return Err(SendError::InvalidLine {
                number: index + 1,
                line: line.to_owned(),
                reason,
            });
        }
        lines.push(line.to_owned());
    }
    if lines.is_empty() {
        return Err(SendError::Empty);
    }
    Ok(lines)
}

/// Lines joined into payloads of at most `limit` bytes; a longer line goes alone.
fn pack(lines: &[String], limit: usize) -> Vec<Vec<u8>> {
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for line in lines {
        let fits = payloads
            .last()
            .is_some_and(|last| last.len() + line.len() < limit);
        if !fits {
            payloads.push(Vec::with_capacity(limit.min(line.len() + 1)));
        }
        if let Some(last) = payloads.last_mut() {
            last.extend_from_slice(line.as_bytes());
            last.push(b'\n');
        }
    }
    payloads
}

/// Sends checked `lines` to `destination`; returns the target that took them. The default
/// falls back to TCP only when the socket cannot be connected to, so that no line goes twice.
pub(crate) fn deliver_to(
    destination: &Destination,
    lines: &[String],
) -> Result<Target, Undelivered> {
    match destination {
        Destination::Given(target) => {
            deliver(target, lines)
                .map(|()| target.clone())
                .map_err(|source| Undelivered {
                    tried: target.to_string(),
                    source,
                })
        }
        Destination::Default { sockets, tcp } => match connect_first(sockets) {
            Ok((socket, stream)) => {
                let target = Target::Unix(socket.to_path_buf());
                match write_stream(stream, lines) {
                    Ok(()) => Ok(target),
                    Err(source) => Err(Undelivered {
                        tried: target.to_string(),
                        source,
                    }),
                }
            }
            Err(refused) => deliver(tcp, lines)
                .map(|()| tcp.clone())
                .map_err(|source| Undelivered::neither(&refused, tcp, source)),
        },
    }
}

/// A connection to the Unix stream socket at `path`, with the write timeout set.
pub(crate) fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    let stream = UnixStream::connect(path)?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Sends checked `lines` to `target` on a fresh socket; `heartwire run` reuses it.
pub(crate) fn deliver(target: &Target, lines: &[String]) -> io::Result<()> {
    match target {
        Target::Udp(address) => send_udp(resolve(address)?, &pack(lines, UDP_PAYLOAD)),
        Target::Unixgram(path) => {
            let socket = UnixDatagram::unbound()?;
            socket.set_write_timeout(Some(TIMEOUT))?;
            socket.connect(path)?;
            pack(lines, UNIXGRAM_PAYLOAD)
                .iter()
                .try_for_each(|payload| socket.send(payload).map(drop))
        }
        Target::Tcp(address) => {
            let stream = TcpStream::connect_timeout(&resolve(address)?, TIMEOUT)?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            write_stream(stream, lines)
        }
        Target::Unix(path) => write_stream(connect_unix(path)?, lines),
    }
}

fn resolve(address: &str) -> io::Result<SocketAddr> {
    address.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{address}` resolves to no address"),
        )
    })
}

fn send_udp(address: SocketAddr, payloads: &[Vec<u8>]) -> io::Result<()> {
    let local: SocketAddr = if address.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(address)?;
    for payload in payloads {
        socket.send(payload)?;
    }
    // UDP confirms nothing, but a local "port unreachable" arrives before send returns: report
    // it rather than claim success.
    match socket.take_error()? {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn write_stream(mut stream: impl Write, lines: &[String]) -> io::Result<()> {
    for payload in pack(lines, 64 * 1024) {
        stream.write_all(&payload)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests;
