//! `heartwire send`: emits lines to a running agent, so that scripts need no `nc`.
//!
//! Every line is checked with the protocol parser first; if one is invalid nothing is sent and
//! the command fails (exit 65) naming the line and the reason. Datagram transports pack as many
//! lines as fit into each datagram; stream transports send newline-framed lines.

use std::fmt;
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use crate::cmd::cli::SendArgs;

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
        /// The target.
        target: Target,
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
    deliver(&args.to, &lines).map_err(|source| SendError::Io {
        target: args.to.clone(),
        source,
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
        Target::Unix(path) => {
            let stream = UnixStream::connect(path)?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            write_stream(stream, lines)
        }
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
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|line| (*line).to_owned()).collect()
    }

    #[test]
    fn targets_parse_from_urls() {
        assert_eq!(
            "udp://127.0.0.1:8125".parse(),
            Ok(Target::Udp("127.0.0.1:8125".into()))
        );
        assert_eq!(
            "unix:///run/h.sock".parse(),
            Ok(Target::Unix("/run/h.sock".into()))
        );
        assert_eq!(
            "unixgram:///run/h.sock".parse(),
            Ok(Target::Unixgram("/run/h.sock".into()))
        );
        assert!(
            "127.0.0.1:8125"
                .parse::<Target>()
                .unwrap_err()
                .contains("no scheme")
        );
        assert!(
            "http://x:1"
                .parse::<Target>()
                .unwrap_err()
                .contains("unknown scheme")
        );
    }

    #[test]
    fn lines_come_from_arguments_and_stdin_in_order() {
        let given = collect(
            &lines(&["a:1|c", "-", "job.ok x"]),
            &b"b:2|c\n\nhb w\r\n"[..],
        )
        .unwrap();
        assert_eq!(given, ["a:1|c", "b:2|c", "hb w", "job.ok x"]);
    }

    #[test]
    fn an_invalid_line_names_its_number_and_reason() {
        let error = collect(&lines(&["a:1|c", "job.okk x"]), &b""[..]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 2 `job.okk x` is invalid (unknown_verb: unknown verb); nothing was sent"
        );
    }

    #[test]
    fn only_blank_lines_is_an_error() {
        assert!(matches!(
            collect(&lines(&[" ", "-"]), &b"\n"[..]),
            Err(SendError::Empty)
        ));
    }

    #[test]
    fn packing_keeps_payloads_under_the_limit() {
        let payloads = pack(&lines(&["aaaa", "bbbb", "cccc", &"x".repeat(20)]), 10);
        assert_eq!(
            payloads,
            [
                b"aaaa\nbbbb\n".to_vec(),
                b"cccc\n".to_vec(),
                format!("{}\n", "x".repeat(20)).into_bytes()
            ]
        );
    }

    #[test]
    fn udp_to_a_closed_port_fails() {
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        assert!(send_udp(address, &[b"a:1|c\n".to_vec()]).is_err());
    }

    #[test]
    fn udp_delivers_packed_lines() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        send_udp(
            receiver.local_addr().unwrap(),
            &pack(&lines(&["a:1|c", "b:1|c"]), UDP_PAYLOAD),
        )
        .unwrap();
        let mut buffer = [0u8; 64];
        let length = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"a:1|c\nb:1|c\n");
    }
}
