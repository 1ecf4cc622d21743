//! The app's session with heartwire: one Unix stream connection whose first line is
//! `hello app=<app>`. Every worker heartbeats on it, so when the process dies, however it dies,
//! the kernel closes the connection and heartwire sets every worker that beat on it to 0 at once.
//!
//! Workers never wait on the socket: their lines go through a bounded queue to one writer task.
//! A heartbeat that finds the queue full is dropped and counted; the next one comes an interval
//! later. When heartwire restarts, the writer reconnects with backoff and opens a new session.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use heartwire_proto::{Heartbeat, Hello, Line, ParseError, WorkerStop, encode};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

/// Lines waiting for the writer. Five workers beating every few seconds never come close; the
/// bound only matters while heartwire is unreachable.
const QUEUE_LINES: usize = 64;
/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why a line could not be handed to the session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A name breaks the protocol's name rule (1–128 of `[A-Za-z0-9_.:/-]`).
    #[error("cannot encode the line for {name:?}: {source}")]
    Encode { name: String, source: ParseError },
    /// The writer task has ended: the app is shutting down.
    #[error("the heartwire session is closed")]
    Closed,
}

/// A handle on the session, cloned into every worker.
#[derive(Debug, Clone)]
pub struct Session {
    lines: mpsc::Sender<Vec<u8>>,
    dropped: Arc<AtomicU64>,
}

impl Session {
    /// Starts the writer task, which connects to `socket` and says `hello app=<app>` first.
    /// The task ends once every `Session` clone is dropped and the queued lines are written.
    pub fn start(socket: PathBuf, app: &str) -> Result<(Session, JoinHandle<()>), SessionError> {
        let hello = encoded(
            &Line::Hello(Hello {
                app,
                pid: Some(std::process::id()),
                unknown_fields: 0,
            }),
            app,
        )?;
        let (lines, queue) = mpsc::channel(QUEUE_LINES);
        let writer = tokio::spawn(write(socket, hello, queue));
        let session = Session {
            lines,
            dropped: Arc::default(),
        };
        Ok((session, writer))
    }

    /// `hb <worker>`: the worker is alive for its configured ttl. Never waits.
    pub fn heartbeat(&self, worker: &str) -> Result<(), SessionError> {
        let line = encoded(
            &Line::Heartbeat(Heartbeat {
                worker,
                ttl: None,
                unknown_fields: 0,
            }),
            worker,
        )?;
        match self.lines.try_send(line) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(SessionError::Closed),
        }
    }

    /// `worker.stop <worker>`: the worker stopped on purpose. Waits for room in the queue, since
    /// unlike a heartbeat this line is not repeated.
    pub async fn stop(&self, worker: &str) -> Result<(), SessionError> {
        let line = encoded(
            &Line::WorkerStop(WorkerStop {
                worker,
                unknown_fields: 0,
            }),
            worker,
        )?;
        self.lines
            .send(line)
            .await
            .map_err(|_| SessionError::Closed)
    }

    /// Heartbeats dropped because the queue was full (heartwire unreachable for a while).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn encoded(line: &Line<'_>, name: &str) -> Result<Vec<u8>, SessionError> {
    let mut out = Vec::with_capacity(48);
    encode(line, &mut out).map_err(|source| SessionError::Encode {
        name: name.to_owned(),
        source,
    })?;
    Ok(out)
}

/// The writer task: (re)connects, says hello, then forwards queued lines until the queue closes.
async fn write(socket: PathBuf, hello: Vec<u8>, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut backoff = FIRST_BACKOFF;
    // A line whose write failed goes first on the next connection.
    let mut unsent: Option<Vec<u8>> = None;
    loop {
        let mut stream = match open(&socket, &hello).await {
            Ok(stream) => {
                tracing::info!(socket = %socket.display(), "heartwire session open");
                backoff = FIRST_BACKOFF;
                stream
            }
            Err(error) => {
                if queue.is_closed() && queue.is_empty() && unsent.is_none() {
                    return;
                }
                tracing::warn!(
                    socket = %socket.display(),
                    %error,
                    "cannot reach heartwire (is `heartwire serve` running with listen.unix_stream enabled at this path?); retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        loop {
            let line = match unsent.take() {
                Some(line) => line,
                None => match queue.recv().await {
                    Some(line) => line,
                    None => {
                        // Every worker is done: close the session cleanly.
                        let _ = stream.shutdown().await;
                        return;
                    }
                },
            };
            if let Err(error) = stream.write_all(&line).await {
                tracing::warn!(%error, "the heartwire session closed; reconnecting");
                unsent = Some(line);
                break;
            }
        }
    }
}

async fn open(socket: &PathBuf, hello: &[u8]) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(socket).await?;
    stream.write_all(hello).await?;
    Ok(stream)
}
