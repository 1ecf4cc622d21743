//! The receive loop shared by the UDP and Unix datagram listeners: a dedicated thread that reads
//! batches with `recvmmsg`, joins each batch's datagrams into one [`Batch`](crate::ingest::batch::Batch)
//! (parsed first with `listen.udp.parse_on_receive`) and follows the kernel's drop counter.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use prometheus::IntCounter;
use socket2::Socket;

use super::Sink;
use super::parsed::{ParseBudget, Parsed};
use super::recvmmsg::BatchReceiver;

use crate::ingest::batch::{Batch, Payload, Transport};
use crate::supervise::{Finished, Supervisor, fault};
use crate::telemetry::Telemetry;

/// How often a blocked receive wakes up to check for shutdown.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a UDP receive loop waits after a receive that did not fill its batch, so that the
/// datagrams of the next few milliseconds are read (and applied) together: at 100 k lines/s
/// (about 2 600 datagrams) this turns as many wake-ups of this thread and of the aggregator per
/// second into at most 200. It cannot make the receive buffer overflow: a receive that did not
/// fill its batch means fewer than a batch of datagrams came during the last wait, so about as
/// few come during the next one, and a buffer holds several batches (64 datagrams of 1 400
/// bytes take about 150 KiB of the kernel's accounting; even the 416 KiB a pod gets without
/// `CAP_NET_ADMIN` holds more than two). A full batch is read again at once, so the most lines
/// per second are not limited by it. Never for Unix datagrams: their socket queues a few
/// datagrams only (`net.unix.max_dgram_qlen`, 10 by default), and its senders would block on a
/// reader that waits.
pub(crate) const LINGER: Duration = Duration::from_millis(5);
/// At most this many datagrams are expected to arrive during a [`LINGER`]: at high rates the
/// wait is shorter, so that a wait never asks the receive buffer to hold more than half a batch
/// of the default size, whatever `batch_datagrams` is.
const LINGER_DATAGRAMS: u32 = 32;

/// The wait after a receive of `count` datagrams (fewer than a batch) that arrived within
/// `elapsed`: `most`, or less if at that rate more than [`LINGER_DATAGRAMS`] would come
/// meanwhile.
fn linger_after(count: usize, elapsed: Duration, most: Duration) -> Duration {
    let count = u32::try_from(count).unwrap_or(u32::MAX).max(1);
    (elapsed / count).saturating_mul(LINGER_DATAGRAMS).min(most)
}

/// Pause after an unexpected receive error, so that a persistent one cannot spin a core.
const ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// A bound datagram socket and how to read it.
#[derive(Debug)]
pub(crate) struct Receiver {
    /// Blocking, with [`POLL_INTERVAL`] as its receive timeout.
    pub socket: Socket,
    /// The listener's config key, for the `listener` label and the thread name.
    pub listener: &'static str,
    /// The `transport` label of its lines.
    pub transport: Transport,
    /// Datagrams per `recvmmsg` call.
    pub batch_datagrams: usize,
    /// Bytes per datagram buffer.
    pub max_datagram_bytes: usize,
    /// The kernel drops of every socket of the listener (several with `receive_threads`).
    pub drops: Arc<AtomicU64>,
    /// The wait after a receive that did not fill its batch ([`LINGER`] for UDP), if any.
    pub linger: Option<Duration>,
    /// Parse each batch here, within this budget, instead of on the aggregator
    /// (`listen.udp.parse_on_receive`).
    pub parse: Option<Arc<ParseBudget>>,
}

impl Receiver {
    /// Starts the receive thread, supervised as the listener's component; it runs until `stop`
    /// is set.
    pub(crate) fn spawn(
        self,
        sink: Sink,
        stop: Arc<AtomicBool>,
        supervisor: &Supervisor,
    ) -> io::Result<Finished> {
        supervisor.thread(self.listener, move || self.run(&sink, &stop))
    }

    fn run(self, sink: &Sink, stop: &AtomicBool) {
        // Present from the start at 0: the kernel reports a count only once it dropped one.
        sink.telemetry().kernel_drops(self.listener, 0);
        let deferred = self
            .parse
            .as_ref()
            .and_then(|_| sink.telemetry().parse_deferred(self.listener));
        let mut buffers = BatchReceiver::new(self.batch_datagrams, self.max_datagram_bytes);
        let mut drops = DropCount::default();
        let mut truncated_seen = false;
        let mut last_receive = Instant::now();
        while !stop.load(Ordering::Acquire) {
            fault::check(self.listener);
            let count = match buffers.receive(self.socket.as_fd()) {
                Ok(count) => count,
                Err(error) if is_timeout(&error) => continue,
                Err(error) => {
                    tracing::warn!(listener = self.listener, %error, "receive failed");
                    thread::sleep(ERROR_BACKOFF);
                    continue;
                }
            };
            let mut joined =
                Joined::with_capacity((0..count).map(|i| buffers.datagram(i).data.len() + 1).sum());
            let mut counter = None;
            for index in 0..count {
                let datagram = buffers.datagram(index);
                joined.push(datagram.data, datagram.truncated);
                counter = datagram.drops.or(counter);
            }
            if joined.truncated > 0 && !truncated_seen {
                truncated_seen = true;
                tracing::warn!(
                    listener = self.listener,
                    max_datagram_bytes = self.max_datagram_bytes,
                    "a datagram was longer than the buffer; its cut last line was dropped (raise `max_datagram_bytes` for this listener)"
                );
            }
            if let Some(added) = counter.and_then(|counter| drops.update(counter)) {
                let total = self.drops.fetch_add(added, Ordering::Relaxed) + added;
                self.report_drops(sink.telemetry(), total);
            }
            let payload = self.payload(joined.data, sink, deferred.as_ref());
            let mut batch = Batch::of(self.transport, payload);
            // The cut last line of each truncated datagram is a line over the length limit:
            // counted as read and rejected as `too_long`, like any other line (PROTOCOL L6).
            batch.cut = joined.truncated as u64;
            sink.send(batch, count as u64, joined.bytes);
            let received = Instant::now();
            if let Some(linger) = self.linger
                && count < self.batch_datagrams
            {
                thread::sleep(linger_after(count, received - last_receive, linger));
            }
            last_receive = received;
        }
    }

    /// The lines as they go to the aggregator: parsed here when asked, unless the datagram
    /// queue is full (the batch would be dropped, its parse wasted) or the parse budget is
    /// spent (the aggregator then parses them, as without the option; counted in `deferred`,
    /// `heartwire_receive_parse_deferred_total`).
    fn payload(&self, data: Vec<u8>, sink: &Sink, deferred: Option<&IntCounter>) -> Payload {
        match &self.parse {
            Some(budget) if sink.datagram_room() => match Parsed::within(data, budget) {
                Ok(parsed) => Payload::Parsed(parsed),
                Err(data) => {
                    if let Some(deferred) = deferred {
                        deferred.inc();
                    }
                    Payload::Raw(data)
                }
            },
            _ => Payload::Raw(data),
        }
    }

    fn report_drops(&self, telemetry: &Telemetry, total: u64) {
        telemetry.kernel_drops(self.listener, total);
        tracing::debug!(
            listener = self.listener,
            total,
            "kernel dropped datagrams: the receive buffer was full"
        );
    }
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The datagrams of one receive, joined by `\n` so that no line runs into the next datagram's.
#[derive(Debug, Default)]
struct Joined {
    data: Vec<u8>,
    bytes: u64,
    truncated: usize,
}

impl Joined {
    fn with_capacity(capacity: usize) -> Joined {
        Joined {
            data: Vec::with_capacity(capacity),
            ..Joined::default()
        }
    }

    fn push(&mut self, datagram: &[u8], truncated: bool) {
        self.bytes += datagram.len() as u64;
        let keep = if truncated {
            self.truncated += 1;
            // The cut line could read as a different valid line (`x:12|c` from `x:125|c`).
            match datagram.iter().rposition(|&byte| byte == b'\n') {
                Some(end) => &datagram[..=end],
                None => return,
            }
        } else {
            datagram
        };
        if keep.is_empty() {
            return;
        }
        self.data.extend_from_slice(keep);
        if keep.last() != Some(&b'\n') {
            self.data.push(b'\n');
        }
    }
}

/// The kernel's per-socket drop counter is a `u32` that wraps; this follows its increments.
#[derive(Debug, Default)]
struct DropCount {
    last: u32,
}

impl DropCount {
    /// The drops since the last update, when the counter moved.
    fn update(&mut self, counter: u32) -> Option<u64> {
        if counter == self.last {
            return None;
        }
        let added = u64::from(counter.wrapping_sub(self.last));
        self.last = counter;
        Some(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ingest::parsed::{LINE_BYTES, ParseBudget};

    #[test]
    fn a_batch_past_the_parse_budget_goes_unparsed_and_is_counted() {
        let registry = prometheus::Registry::new();
        let telemetry = Arc::new(Telemetry::new(&registry).expect("self-metrics"));
        let (sink, _queues) = crate::ingest::queues(4, Arc::clone(&telemetry));
        let socket =
            Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
        let receiver = Receiver {
            socket,
            listener: "udp",
            transport: Transport::Udp,
            batch_datagrams: 1,
            max_datagram_bytes: 64,
            drops: Arc::default(),
            linger: None,
            // Room for two parsed lines.
            parse: Some(ParseBudget::new(2 * LINE_BYTES)),
        };
        let deferred = || {
            let text = prometheus::TextEncoder::new()
                .encode_to_string(&registry.gather())
                .expect("the self-metrics encode");
            text.lines()
                .find_map(|line| {
                    line.strip_prefix("heartwire_receive_parse_deferred_total{listener=\"udp\"} ")
                })
                .map(str::to_owned)
        };
        let counter = sink.telemetry().parse_deferred("udp");
        assert_eq!(deferred().as_deref(), Some("0"));
        let payload = |data: &[u8]| receiver.payload(data.to_vec(), &sink, counter.as_ref());
        let parsed = payload(b"a:1|c\nb:1|c\n");
        assert!(matches!(parsed, Payload::Parsed(_)));
        // The two lines above are still in flight: three more do not fit.
        let raw = payload(b"a:1|c\nb:1|c\nc:1|c\n");
        assert!(matches!(raw, Payload::Raw(_)));
        assert_eq!(deferred().as_deref(), Some("1"));
        drop(parsed);
        assert!(matches!(payload(b"a:1|c\n"), Payload::Parsed(_)));
        assert_eq!(deferred().as_deref(), Some("1"));
    }

    #[test]
    fn joined_datagrams_never_run_into_each_other() {
        let mut joined = Joined::default();
        joined.push(b"a:1|c", false);
        joined.push(b"b:1|c\n", false);
        joined.push(b"", false);
        joined.push(b"c:1|c\nd:1|c", false);
        assert_eq!(joined.data, b"a:1|c\nb:1|c\nc:1|c\nd:1|c\n");
        assert_eq!(joined.bytes, 5 + 6 + 11);
    }

    #[test]
    fn truncated_datagram_keeps_only_its_whole_lines() {
        let mut joined = Joined::default();
        joined.push(b"a:1|c\nb:12", true);
        joined.push(b"no newline at all", true);
        assert_eq!(joined.data, b"a:1|c\n");
        assert_eq!(joined.truncated, 2);
    }

    #[test]
    fn the_wait_shrinks_so_that_at_most_half_a_batch_arrives_meanwhile() {
        let ms = Duration::from_millis;
        // 100 k lines/s: 13 datagrams in 5 ms, the whole wait.
        assert_eq!(linger_after(13, ms(5), LINGER), LINGER);
        // A quiet socket (a blocking receive that returned one datagram after a long time).
        assert_eq!(linger_after(1, Duration::from_secs(3), LINGER), LINGER);
        assert_eq!(linger_after(0, Duration::ZERO, LINGER), Duration::ZERO);
        // 60 datagrams in 2 ms: at that rate 32 come in 1.07 ms.
        let wait = linger_after(60, ms(2), LINGER);
        assert!(
            wait > ms(1) && wait < Duration::from_micros(1100),
            "{wait:?}"
        );
        // Never longer than asked, even for a huge elapsed time.
        assert_eq!(linger_after(1, Duration::MAX, LINGER), LINGER);
    }

    #[test]
    fn drop_count_follows_the_kernel_counter_across_wraparound() {
        let mut drops = DropCount::default();
        assert_eq!(drops.update(0), None);
        assert_eq!(drops.update(5), Some(5));
        assert_eq!(drops.update(5), None);
        assert_eq!(drops.update(u32::MAX), Some(u64::from(u32::MAX) - 5));
        assert_eq!(drops.update(3), Some(4));
    }
}
