//! Stream connections (TCP and Unix stream): the accept loop with its connection bound, and the
//! per-connection reader with its framing.
//!
//! Framing rule for listeners that accept both (Unix stream): the first four bytes decide. If the
//! fourth byte is NUL the connection carries DogStatsD's 4-byte little-endian length prefix (any
//! frame under 16 MiB has a zero high byte), otherwise it is newline-framed (no text line holds a
//! NUL). A connection that closes before sending four bytes is read as newline-framed.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{Sink, stopped};
use crate::ingest::batch::{Batch, ConnectionId, Transport};
use crate::telemetry::CloseReason;

/// Bytes read per `read` call at most.
const READ_CHUNK: usize = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors), so that it cannot spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Numbers stream connections across all listeners, so that sessions never collide.
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// How a listener's connections are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `\n`-terminated lines only.
    Newline,
    /// Newline or length prefix, decided per connection by its first bytes.
    Detect,
}

/// What a stream listener needs to know about its connections.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub transport: Transport,
    pub framing: Framing,
    pub max_connections: usize,
    /// Longest unfinished line a newline-framed connection may hold.
    pub max_line_bytes: usize,
    /// Longest frame a length-prefixed connection may announce.
    pub max_frame_bytes: usize,
    /// A connection that sends nothing for this long is closed, unless it is a session.
    pub idle_timeout: Duration,
    /// The listener's name in logs.
    pub listener: &'static str,
}

/// A listening socket that yields connections.
pub(crate) trait Accept: Send + 'static {
    type Stream: AsyncRead + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        let (stream, _) = tokio::net::TcpListener::accept(self).await?;
        Ok(stream)
    }
}

impl Accept for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        let (stream, _) = tokio::net::UnixListener::accept(self).await?;
        Ok(stream)
    }
}

/// Accepts connections until shutdown, at most `max_connections` at once; then waits for the
/// open ones to close (they see the same shutdown signal).
///
/// At the cap the listener stops accepting until a connection closes: new ones wait in the
/// kernel's backlog with what they wrote, and are read in turn. That is backpressure, like a
/// full queue: nothing a stream sender wrote is lost, where closing the connection would lose
/// what it had already written.
pub(crate) async fn accept_loop<L: Accept>(
    listener: L,
    settings: Settings,
    sink: Sink,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let limit = Arc::new(Semaphore::new(settings.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(listener = settings.listener, %error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        sink.telemetry().connection_opened(settings.transport);
        let (settings, sink, shutdown) = (settings.clone(), sink.clone(), shutdown.clone());
        let connection = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
        connections.spawn(async move {
            let mut stream = stream;
            let reason = serve(&mut stream, connection, &settings, &sink, shutdown).await;
            // Counted before the socket closes, so that a peer that sees the close also sees it
            // counted.
            sink.telemetry()
                .connection_closed(settings.transport, reason);
            drop(stream);
            // The agent closing its own connections to stop is no crash of the peer's.
            if reason != CloseReason::Shutdown {
                sink.closed(connection, settings.transport).await;
            }
            drop(permit);
        });
    }
    while connections.join_next().await.is_some() {}
}

/// Reads one connection until it ends, handing on its complete lines after every read. Each
/// batch waits for room in the stream queue before the next read: backpressure, not loss.
///
/// A connection that sends nothing for `idle_timeout` is closed, unless its first line is
/// `hello`: a session stays open as long as the app lives, since its close is the signal.
async fn serve<S: AsyncRead + Unpin>(
    mut stream: S,
    connection: ConnectionId,
    settings: &Settings,
    sink: &Sink,
    mut shutdown: watch::Receiver<bool>,
) -> CloseReason {
    let mut decoder = Decoder::new(settings);
    let mut session = false;
    let mut first = true;
    loop {
        decoder.buffer.reserve(READ_CHUNK);
        let mut chunk = (&mut stream).take(READ_CHUNK as u64);
        let idle = async {
            if session {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(settings.idle_timeout).await
            }
        };
        let read = tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => return CloseReason::Shutdown,
            read = chunk.read_buf(&mut decoder.buffer) => read,
            () = idle => {
                tracing::debug!(listener = settings.listener, timeout = ?settings.idle_timeout, "connection closed: idle");
                return CloseReason::Idle;
            }
        };
        let decoded = match read {
            Ok(0) => {
                if let Some(last) = decoder.finish() {
                    let batch = Batch::on(connection, settings.transport, last.data);
                    sink.send_stream(batch, last.bytes).await;
                }
                return CloseReason::Eof;
            }
            Ok(_) => decoder.decode(),
            Err(error) => {
                tracing::debug!(listener = settings.listener, %error, "connection read failed");
                return CloseReason::Error;
            }
        };
        match decoded {
            Ok(Some(lines)) => {
                if std::mem::take(&mut first) {
                    session = is_hello(&lines.data);
                }
                let batch = Batch::on(connection, settings.transport, lines.data);
                sink.send_stream(batch, lines.bytes).await;
            }
            Ok(None) => {}
            Err(Garbage(why)) => {
                tracing::debug!(
                    listener = settings.listener,
                    why,
                    "connection closed: not the protocol"
                );
                return CloseReason::Garbage;
            }
        }
    }
}

/// Whether `lines` start with a `hello` line: the connection is a session.
fn is_hello(lines: &[u8]) -> bool {
    let first = lines
        .split(|&byte| byte == b'\n')
        .next()
        .unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    first == b"hello" || first.starts_with(b"hello ")
}

/// The framing a connection turned out to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Undecided,
    Newline,
    LengthPrefix,
}

/// Complete lines taken from a connection's buffer.
#[derive(Debug, PartialEq, Eq)]
struct Lines {
    /// `\n`-terminated lines.
    data: Vec<u8>,
    /// Bytes they took on the wire.
    bytes: u64,
}

/// The connection broke the framing; it is closed.
#[derive(Debug, PartialEq, Eq)]
struct Garbage(&'static str);

/// Splits a connection's bytes into complete lines, holding at most one unfinished line or
/// frame (bounded by the settings) between reads.
#[derive(Debug)]
struct Decoder {
    mode: Mode,
    buffer: Vec<u8>,
    max_line: usize,
    max_frame: usize,
}

impl Decoder {
    fn new(settings: &Settings) -> Decoder {
        let mode = match settings.framing {
            Framing::Newline => Mode::Newline,
            Framing::Detect => Mode::Undecided,
        };
        Decoder {
            mode,
            buffer: Vec::new(),
            max_line: settings.max_line_bytes,
            max_frame: settings.max_frame_bytes,
        }
    }

    /// The complete lines in the buffer, if any.
    fn decode(&mut self) -> Result<Option<Lines>, Garbage> {
        if self.mode == Mode::Undecided {
            match self.buffer.get(3) {
                None => return Ok(None),
                Some(0) => self.mode = Mode::LengthPrefix,
                Some(_) => self.mode = Mode::Newline,
            }
        }
        match self.mode {
            Mode::LengthPrefix => self.frames(),
            _ => self.lines(),
        }
    }

    fn lines(&mut self) -> Result<Option<Lines>, Garbage> {
        let Some(end) = self.buffer.iter().rposition(|&byte| byte == b'\n') else {
            if self.buffer.len() > self.max_line {
                return Err(Garbage("a line longer than max_line_bytes"));
            }
            return Ok(None);
        };
        let rest = self.buffer.split_off(end + 1);
        if rest.len() > self.max_line {
            return Err(Garbage("a line longer than max_line_bytes"));
        }
        let data = std::mem::replace(&mut self.buffer, rest);
        let bytes = data.len() as u64;
        Ok(Some(Lines { data, bytes }))
    }

    fn frames(&mut self) -> Result<Option<Lines>, Garbage> {
        let mut data = Vec::new();
        let mut frames = 0;
        let mut at = 0;
        while let Some(prefix) = self.buffer.get(at..at + 4) {
            let length = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            if length > self.max_frame {
                return Err(Garbage("a frame longer than max_frame_bytes"));
            }
            let Some(payload) = self.buffer.get(at + 4..at + 4 + length) else {
                break;
            };
            if !payload.is_empty() {
                data.extend_from_slice(payload);
                if payload.last() != Some(&b'\n') {
                    data.push(b'\n');
                }
            }
            frames += 1;
            at += 4 + length;
        }
        self.buffer.drain(..at);
        if frames == 0 {
            return Ok(None);
        }
        Ok(Some(Lines {
            data,
            bytes: at as u64,
        }))
    }

    /// At end of stream: a newline-framed connection's last line may lack its `\n`. An unfinished
    /// frame is dropped.
    fn finish(&mut self) -> Option<Lines> {
        if self.mode == Mode::LengthPrefix
            || self.buffer.is_empty()
            || self.buffer.len() > self.max_line
        {
            return None;
        }
        let mut data = std::mem::take(&mut self.buffer);
        let bytes = data.len() as u64;
        data.push(b'\n');
        Some(Lines { data, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_framing(framing: Framing) -> Decoder {
        Decoder::new(&Settings {
            transport: Transport::UnixStream,
            framing,
            max_connections: 1,
            max_line_bytes: 32,
            max_frame_bytes: 64,
            idle_timeout: Duration::from_secs(60),
            listener: "test",
        })
    }

    fn feed(decoder: &mut Decoder, bytes: &[u8]) -> Result<Option<Lines>, Garbage> {
        decoder.buffer.extend_from_slice(bytes);
        decoder.decode()
    }

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn newline_framing_hands_on_complete_lines_and_keeps_the_rest() {
        let mut decoder = with_framing(Framing::Detect);
        let lines = feed(&mut decoder, b"a:1|c\nb:2|c\nc:").unwrap().unwrap();
        assert_eq!(lines.data, b"a:1|c\nb:2|c\n");
        assert_eq!(feed(&mut decoder, b"3").unwrap(), None);
        let lines = feed(&mut decoder, b"|c\n").unwrap().unwrap();
        assert_eq!(lines.data, b"c:3|c\n");
        assert!(decoder.buffer.is_empty());
    }

    #[test]
    fn length_prefix_is_detected_from_a_nul_fourth_byte() {
        let mut decoder = with_framing(Framing::Detect);
        let mut wire = framed(b"a:1|c");
        wire.extend(framed(b"b:2|c\nc:3|c\n"));
        wire.extend(&framed(b"d:4|c")[..6]);
        let lines = feed(&mut decoder, &wire).unwrap().unwrap();
        assert_eq!(lines.data, b"a:1|c\nb:2|c\nc:3|c\n");
        // The two complete frames, prefixes included; the third waits for its end.
        assert_eq!(lines.bytes, 4 + 5 + 4 + 12);
        assert_eq!(decoder.mode, Mode::LengthPrefix);
        let lines = feed(&mut decoder, b"4|c").unwrap().unwrap();
        assert_eq!(lines.data, b"d:4|c\n");
    }

    #[test]
    fn framing_waits_for_four_bytes_before_deciding() {
        let mut decoder = with_framing(Framing::Detect);
        assert_eq!(feed(&mut decoder, &[5, 0]).unwrap(), None);
        assert_eq!(decoder.mode, Mode::Undecided);
        assert_eq!(feed(&mut decoder, &[0, 0]).unwrap(), None);
        assert_eq!(decoder.mode, Mode::LengthPrefix);
        assert_eq!(
            feed(&mut decoder, b"x:1|c").unwrap().unwrap().data,
            b"x:1|c\n"
        );
    }

    #[test]
    fn a_frame_longer_than_the_limit_is_garbage() {
        let mut decoder = with_framing(Framing::Detect);
        let wire = 65u32.to_le_bytes();
        assert!(feed(&mut decoder, &wire).is_err());
    }

    #[test]
    fn an_endless_line_is_garbage() {
        let mut decoder = with_framing(Framing::Newline);
        assert_eq!(feed(&mut decoder, &[b'x'; 32]).unwrap(), None);
        assert!(feed(&mut decoder, b"x").is_err());
        let mut decoder = with_framing(Framing::Newline);
        assert!(feed(&mut decoder, &[&b"ok\n"[..], &[b'x'; 33]].concat()).is_err());
    }

    #[test]
    fn newline_only_listeners_never_read_a_length_prefix() {
        let mut decoder = with_framing(Framing::Newline);
        let mut wire = framed(b"a:1|c");
        wire.push(b'\n');
        let lines = feed(&mut decoder, &wire).unwrap().unwrap();
        assert_eq!(lines.data, wire);
    }

    #[test]
    fn a_connection_whose_first_line_is_hello_is_a_session() {
        assert!(is_hello(b"hello app=web\njob.start x\n"));
        assert!(is_hello(b"hello\r\n"));
        assert!(!is_hello(b"hellox app=web\n"));
        assert!(!is_hello(b"job.start x\nhello app=web\n"));
    }

    #[test]
    fn the_last_line_at_end_of_stream_needs_no_newline() {
        let mut decoder = with_framing(Framing::Detect);
        assert_eq!(feed(&mut decoder, b"a:1").unwrap(), None);
        assert_eq!(decoder.finish().unwrap().data, b"a:1\n");
        let mut decoder = with_framing(Framing::Detect);
        feed(&mut decoder, &framed(b"a:1|c")[..7]).unwrap();
        assert_eq!(decoder.finish(), None);
    }
}
