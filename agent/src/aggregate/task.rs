//! The one thread that owns the [`Aggregator`], and how readers see its state.
//!
//! The aggregator applies batches from two queues: datagrams (UDP, Unix datagram), which
//! listeners never wait for, and streams (TCP, Unix stream, `POST /ingest`), whose readers wait
//! for room. It takes from both in turn, so that neither starves the other.
//!
//! Readers never ask the aggregator for anything. It *publishes* its state: after it applied
//! something, at most every [`PUBLISH_INTERVAL`], it builds a [`Snapshot`] and stores it in a
//! `watch` channel, from which any number of readers take an `Arc` without waiting. Nothing a
//! reader does can delay a batch, and a line applied at T is in every snapshot read after
//! T + [`PUBLISH_INTERVAL`] (plus the time to build one snapshot). Verdicts that depend on the
//! time are evaluated by the reader ([`Snapshot::health`]), so a job still goes stale on time
//! when nothing arrives.
//!
//! Every [`expiry::TICK`] it also removes idle StatsD series ([`Aggregator::expire`]): on a
//! timer, so that memory stays bounded whether or not anything scrapes.
//!
//! The aggregator runs on its own thread (a single-threaded runtime), so that the kernel gives
//! it its share of the CPU however many HTTP requests the agent's other threads are serving.
//! It ends once both queues are closed (every sender dropped) and drained: that is the graceful
//! shutdown; it publishes the final state first.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use super::{Aggregator, Memory, Settings, Snapshot, expiry};
use crate::clock::Now;
use crate::ingest::batch::Batch;
use crate::supervise::{self, Finished, Supervisor};

/// The shortest time between two published snapshots: how long at most a line applied waits
/// before readers see it.
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// The name of the aggregator's component and thread.
const COMPONENT: &str = "aggregator";

/// What the aggregator is asked to do between batches.
#[derive(Debug)]
enum Command {
    /// Apply reloaded settings, publish, then answer.
    Reconfigure(Box<Settings>, oneshot::Sender<()>),
    /// Publish what is applied now, then answer.
    Publish(oneshot::Sender<()>),
    /// Answer with what to keep across a restart.
    Remember(oneshot::Sender<Memory>),
}

/// Reads the published state and talks to the aggregator. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    published: watch::Receiver<Option<Arc<Snapshot>>>,
    commands: mpsc::Sender<Command>,
    /// What the aggregator kept when it ended after applying everything queued.
    last_memory: watch::Receiver<Option<Arc<Memory>>>,
}

impl Handle {
    /// The state last published; `None` if the aggregator failed (its state is lost). After a
    /// graceful end it is the final state.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.published.borrow().clone()
    }

    /// Applies the live parts of reloaded settings between two batches and publishes the
    /// result; `false` once the aggregator has ended. Returns when they are in force.
    pub async fn reconfigure(&self, settings: Settings) -> bool {
        self.ask(|reply| Command::Reconfigure(Box::new(settings), reply))
            .await
    }

    /// Publishes what the aggregator has applied now, without waiting for the interval;
    /// `false` once it has ended (its final state is then published already).
    pub async fn publish(&self) -> bool {
        self.ask(Command::Publish).await
    }

    /// What the aggregator would keep across a restart now, taken between two batches; `None`
    /// once it has ended (then see [`Handle::final_memory`]).
    pub async fn remember(&self) -> Option<Memory> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Remember(reply)).await.ok()?;
        answer.await.ok()
    }

    /// What the aggregator kept when it ended gracefully, after the last queued batch; `None`
    /// while it runs, or if it failed.
    pub fn final_memory(&self) -> Option<Arc<Memory>> {
        self.last_memory.borrow().clone()
    }

    async fn ask(&self, command: impl FnOnce(oneshot::Sender<()>) -> Command) -> bool {
        let (reply, done) = oneshot::channel();
        if self.commands.send(command(reply)).await.is_err() {
            return false;
        }
        done.await.is_ok()
    }
}

/// The receiving ends of the two ingest queues.
#[derive(Debug)]
pub struct Queues {
    /// Datagram batches: their listeners drop a batch when this queue is full.
    pub datagrams: mpsc::Receiver<Batch>,
    /// Stream batches: their readers wait for room, so nothing is lost and order is kept.
    pub streams: mpsc::Receiver<Batch>,
}

impl Queues {
    /// The next batch, from each queue in turn; `None` once both are closed and empty.
    async fn next(&mut self, turn: &mut bool) -> Option<Batch> {
        poll_fn(|cx| {
            *turn = !*turn;
            let (first, second) = if *turn {
                (&mut self.streams, &mut self.datagrams)
            } else {
                (&mut self.datagrams, &mut self.streams)
            };
            let first = first.poll_recv(cx);
            if let Poll::Ready(Some(batch)) = first {
                return Poll::Ready(Some(batch));
            }
            match (first, second.poll_recv(cx)) {
                (_, Poll::Ready(Some(batch))) => Poll::Ready(Some(batch)),
                (Poll::Ready(None), Poll::Ready(None)) => Poll::Ready(None),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

/// Starts the aggregator's thread. It ends after both queues are closed and every queued batch
/// is applied, with the final state published.
pub fn spawn(
    mut aggregator: Aggregator,
    queues: Queues,
    supervisor: &Supervisor,
) -> std::io::Result<(Handle, Finished)> {
    let (publisher, published) = watch::channel(None);
    let (remembered, last_memory) = watch::channel(None);
    let (commands, received) = mpsc::channel(1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut publisher = Publisher {
        published: publisher,
        epoch: 0,
        finished: false,
    };
    // Readers have a state from the start.
    publisher.publish(&mut aggregator);
    let finished = supervisor.thread(COMPONENT, move || {
        runtime.block_on(supervise::fault::inject_into(
            COMPONENT,
            run(aggregator, queues, received, publisher, remembered),
        ));
    })?;
    Ok((
        Handle {
            published,
            commands,
            last_memory,
        },
        finished,
    ))
}

/// Publishes snapshots. Dropped without [`Publisher::finish`] (the aggregator panicked), it
/// withdraws the state, so that readers answer that it is lost rather than show it frozen.
struct Publisher {
    published: watch::Sender<Option<Arc<Snapshot>>>,
    epoch: u64,
    finished: bool,
}

impl Publisher {
    fn publish(&mut self, aggregator: &mut Aggregator) {
        self.epoch += 1;
        let mut snapshot = aggregator.next_snapshot(Now::read());
        snapshot.epoch = self.epoch;
        self.published.send_replace(Some(Arc::new(snapshot)));
    }

    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if !self.finished {
            self.published.send_replace(None);
        }
    }
}

async fn run(
    mut aggregator: Aggregator,
    mut queues: Queues,
    mut commands: mpsc::Receiver<Command>,
    mut publisher: Publisher,
    remembered: watch::Sender<Option<Arc<Memory>>>,
) {
    let mut expiry = tokio::time::interval(expiry::TICK);
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut publishing = tokio::time::interval(PUBLISH_INTERVAL);
    publishing.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut changed = false;
    let mut turn = false;
    loop {
        tokio::select! {
            biased;
            Some(command) = commands.recv() => match command {
                Command::Reconfigure(settings, applied) => {
                    aggregator.reconfigure(&settings, Now::read());
                    publisher.publish(&mut aggregator);
                    changed = false;
                    let _ = applied.send(());
                }
                Command::Publish(done) => {
                    publisher.publish(&mut aggregator);
                    changed = false;
                    let _ = done.send(());
                }
                Command::Remember(reply) => {
                    let _ = reply.send(aggregator.remember(Now::read()));
                }
            },
            _ = publishing.tick(), if changed => {
                publisher.publish(&mut aggregator);
                changed = false;
            }
            _ = expiry.tick() => {
                let now = Now::read();
                changed |= aggregator.expire(now) > 0;
                changed |= aggregator.count_missed(now) > 0;
            }
            batch = queues.next(&mut turn) => match batch {
                Some(batch) => {
                    aggregator.ingest(&batch, Now::read());
                    changed = true;
                }
                None => break,
            },
        }
    }
    publisher.publish(&mut aggregator);
    remembered.send_replace(Some(Arc::new(aggregator.remember(Now::read()))));
    publisher.finish();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::snapshot::Value;
    use crate::ingest::batch::Transport;

    fn counter(snapshot: &Snapshot, name: &str) -> Option<f64> {
        match snapshot.family(name).map(|family| &family.series[0].value) {
            Some(Value::Number(value)) => Some(*value),
            _ => None,
        }
    }

    /// The two queues, with their senders.
    fn queues() -> (mpsc::Sender<Batch>, mpsc::Sender<Batch>, Queues) {
        let (datagrams, datagram_batches) = mpsc::channel(16);
        let (streams, stream_batches) = mpsc::channel(16);
        let queues = Queues {
            datagrams: datagram_batches,
            streams: stream_batches,
        };
        (datagrams, streams, queues)
    }

    fn start(settings: Settings) -> (Handle, Finished) {
        let aggregator = Aggregator::new(settings);
        let (datagrams, streams, queues) = queues();
        let (handle, finished) = spawn(aggregator, queues, &Supervisor::new()).unwrap();
        // Nothing else will be sent: the aggregator drains and ends.
        drop((datagrams, streams));
        (handle, finished)
    }

    fn lines_received(snapshot: &Snapshot, transport: Transport) -> u64 {
        snapshot.lines.received[transport.index()]
    }

    #[tokio::test]
    async fn a_snapshot_is_published_from_the_start() {
        let (datagrams, streams, queues) = queues();
        let aggregator = Aggregator::new(Settings::default());
        let (handle, finished) = spawn(aggregator, queues, &Supervisor::new()).unwrap();
        let first = handle.snapshot().unwrap();
        assert_eq!(first.epoch, 1);
        drop((datagrams, streams));
        finished.wait().await;
    }

    #[tokio::test]
    async fn batches_from_both_queues_are_published_within_the_interval() {
        let (datagrams, streams, queues) = queues();
        let aggregator = Aggregator::new(Settings::default());
        let (handle, finished) = spawn(aggregator, queues, &Supervisor::new()).unwrap();
        for _ in 0..10 {
            datagrams
                .send(Batch::new(Transport::Udp, b"hits:2|c\n".to_vec()))
                .await
                .unwrap();
            streams
                .send(Batch::new(Transport::Tcp, b"hits:3|c\n".to_vec()))
                .await
                .unwrap();
        }
        // Polled, never asked for: readers only take what was published.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let snapshot = handle.snapshot().unwrap();
            if counter(&snapshot, "hits_total") == Some(50.0) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never published");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The lines are counted in the same snapshot that shows their effect.
        let snapshot = handle.snapshot().unwrap();
        assert_eq!(lines_received(&snapshot, Transport::Udp), 10);
        assert_eq!(lines_received(&snapshot, Transport::Tcp), 10);
        drop((datagrams, streams));
        finished.wait().await;
    }

    #[tokio::test]
    async fn closing_both_queues_drains_them_publishes_and_ends() {
        let (datagrams, streams, queues) = queues();
        for _ in 0..16 {
            streams
                .try_send(Batch::new(Transport::Tcp, b"job.ok nightly 1.5\n".to_vec()))
                .unwrap();
        }
        drop((datagrams, streams));
        let aggregator = Aggregator::new(Settings::default());
        let (handle, finished) = spawn(aggregator, queues, &Supervisor::new()).unwrap();
        finished.wait().await;
        let last = handle.snapshot().expect("the final state stays readable");
        assert_eq!(lines_received(&last, Transport::Tcp), 16);
        let runs = last
            .family("heartwire_job_runs_total")
            .map(|family| family.series.len());
        assert!(runs.is_some(), "the final state holds every batch");
        assert!(!handle.publish().await, "the aggregator has ended");
    }

    #[tokio::test]
    async fn a_reconfigure_is_published_before_it_returns() {
        let (handle, finished) = start(Settings::default());
        let config =
            crate::config::from_str("jobs:\n  nightly: { every: 1h }\n", "t.yaml").unwrap();
        // The queues are closed: the aggregator may already have ended, and then says so.
        if handle.reconfigure(config.aggregate_settings()).await {
            let snapshot = handle.snapshot().unwrap();
            let health = snapshot.health(Now::read());
            assert_eq!(health.jobs.len(), 1);
        }
        finished.wait().await;
    }

    #[tokio::test]
    async fn idle_series_expire_on_the_timer_with_no_reader() {
        let config = crate::config::from_str("statsd:\n  gauge_ttl: 1s\n", "t.yaml").unwrap();
        let aggregator = Aggregator::new(config.aggregate_settings());
        let (datagrams, streams, queues) = queues();
        let (handle, finished) = spawn(aggregator, queues, &Supervisor::new()).unwrap();
        datagrams
            .send(Batch::new(Transport::Udp, b"temp:21|g\n".to_vec()))
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        loop {
            let snapshot = handle.snapshot().unwrap();
            match (seen, snapshot.family("temp").is_some()) {
                (false, true) => seen = true,
                (true, false) => {
                    let account = snapshot.accounts.iter().find(|a| &*a.family == "temp");
                    assert_eq!(account.map(|a| (a.series, a.expired)), Some((0, 1)));
                    break;
                }
                _ => {}
            }
            assert!(std::time::Instant::now() < deadline, "seen: {seen}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        drop((datagrams, streams));
        finished.wait().await;
    }

    #[test]
    fn a_panicking_aggregator_withdraws_its_state_and_is_reported() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let supervisor = Supervisor::new();
            let (sender, published) = watch::channel(None);
            let mut publisher = Publisher {
                published: sender,
                epoch: 0,
                finished: false,
            };
            publisher.publish(&mut Aggregator::new(Settings::default()));
            assert!(published.borrow().is_some());
            let finished = supervisor
                .thread("aggregator", move || {
                    let _publisher = publisher;
                    panic!("boom");
                })
                .unwrap();
            finished.wait().await;
            assert!(
                published.borrow().is_none(),
                "a lost state is not shown frozen"
            );
            let failures = supervisor.failures();
            assert_eq!(failures.len(), 1);
            assert_eq!(failures[0].component, "aggregator");
            assert!(failures[0].why.contains("boom"), "{}", failures[0].why);
        });
    }
}
