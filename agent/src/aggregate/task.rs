//! The one task that owns the [`Aggregator`].
//!
//! It waits on two queues: snapshot requests and batches. Requests go first (`biased`), so a
//! scrape waits for at most the batch being applied, never for the queue behind it. Readers get
//! an `Arc<Snapshot>` and render it on their own task: ingest and scrapes share no lock.
//!
//! Every [`expiry::TICK`] it also removes idle StatsD series ([`Aggregator::expire`]): on a
//! timer, so that memory stays bounded whether or not anything scrapes. The tick is polled
//! before batches, so a steady flood of batches cannot starve it; it fires at most once a tick.
//!
//! The task ends once the batch channel is closed (every sender dropped) and drained: that is
//! the graceful shutdown. Snapshot requests after that get `None`.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{Aggregator, Settings, Snapshot, expiry};
use crate::batch::Batch;
use crate::clock::Now;

/// Pending snapshot requests beyond this make `Handle::snapshot` wait (readers only).
const PENDING_REQUESTS: usize = 64;

/// Asks the aggregating task for snapshots. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    requests: mpsc::Sender<oneshot::Sender<Arc<Snapshot>>>,
    settings: mpsc::Sender<(Settings, oneshot::Sender<()>)>,
}

impl Handle {
    /// The current state, or `None` once the task has ended.
    pub async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        answer.await.ok()
    }

    /// Applies the jobs and workers of reloaded settings between two batches; `false` once the
    /// task has ended. Returns when they are in force.
    pub async fn reconfigure(&self, settings: Settings) -> bool {
        let (reply, applied) = oneshot::channel();
        if self.settings.send((settings, reply)).await.is_err() {
            return false;
        }
        applied.await.is_ok()
    }
}

/// Starts the task. It ends after `batches` is closed and every queued batch is applied.
pub fn spawn(aggregator: Aggregator, batches: mpsc::Receiver<Batch>) -> (Handle, JoinHandle<()>) {
    let (requests, pending) = mpsc::channel(PENDING_REQUESTS);
    let (settings, reloads) = mpsc::channel(1);
    let task = tokio::spawn(run(aggregator, batches, pending, reloads));
    (Handle { requests, settings }, task)
}

async fn run(
    mut aggregator: Aggregator,
    mut batches: mpsc::Receiver<Batch>,
    mut requests: mpsc::Receiver<oneshot::Sender<Arc<Snapshot>>>,
    mut reloads: mpsc::Receiver<(Settings, oneshot::Sender<()>)>,
) {
    let mut expiry = tokio::time::interval(expiry::TICK);
    expiry.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            Some(reply) = requests.recv() => {
                // A reader that gave up has dropped its receiver; nothing to do then.
                let _ = reply.send(Arc::new(aggregator.snapshot(Now::read())));
            }
            Some((settings, applied)) = reloads.recv() => {
                aggregator.reconfigure(&settings, Now::read());
                let _ = applied.send(());
            }
            _ = expiry.tick() => {
                aggregator.expire(Now::read());
            }
            batch = batches.recv() => match batch {
                Some(batch) => aggregator.ingest(&batch, Now::read()),
                None => break,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::aggregate::Settings;
    use crate::aggregate::snapshot::Value;
    use crate::batch::Transport;
    use crate::telemetry::Telemetry;

    fn aggregator() -> Aggregator {
        let telemetry = Telemetry::new(&prometheus::Registry::new()).unwrap();
        Aggregator::new(Settings::default(), Arc::new(telemetry))
    }

    fn counter(snapshot: &Snapshot, name: &str) -> f64 {
        match snapshot.family(name).map(|family| &family.series[0].value) {
            Some(Value::Number(value)) => *value,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn snapshots_see_every_batch_sent_before_them() {
        let (sender, receiver) = mpsc::channel(16);
        let (handle, task) = spawn(aggregator(), receiver);
        for _ in 0..10 {
            sender
                .send(Batch::new(Transport::Udp, b"hits:2|c\nhits:3|c\n".to_vec()))
                .await
                .unwrap();
        }
        // The task may be behind; a request queued after the batches still sees them once the
        // task catches up, because both queues are drained in order by one task.
        let mut seen = 0.0;
        for _ in 0..1000 {
            let snapshot = handle.snapshot().await.unwrap();
            seen = snapshot
                .family("hits_total")
                .map_or(0.0, |_| counter(&snapshot, "hits_total"));
            if seen == 50.0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(seen, 50.0);
        drop(sender);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn closing_the_batch_channel_drains_it_then_ends_the_task() {
        let registry = prometheus::Registry::new();
        let telemetry = Arc::new(Telemetry::new(&registry).unwrap());
        let (sender, receiver) = mpsc::channel(16);
        for _ in 0..16 {
            sender
                .try_send(Batch::new(Transport::Tcp, b"job.ok nightly 1.5\n".to_vec()))
                .unwrap();
        }
        drop(sender);
        let (handle, task) = spawn(Aggregator::new(Settings::default(), telemetry), receiver);
        task.await.unwrap();
        assert!(handle.snapshot().await.is_none());
        let received = registry
            .gather()
            .into_iter()
            .find(|family| family.name() == "heartwire_lines_received_total")
            .and_then(|family| {
                family
                    .get_metric()
                    .iter()
                    .find(|m| m.get_label()[0].value() == "tcp")
                    .map(|m| m.get_counter().get_value())
            });
        assert_eq!(received, Some(16.0));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_series_expire_on_the_timer_with_no_scrape_in_between() {
        let config = crate::config::from_str("statsd:\n  gauge_ttl: 5s\n", "t.yaml").unwrap();
        let telemetry = Arc::new(Telemetry::new(&prometheus::Registry::new()).unwrap());
        let aggregator = Aggregator::new(config.aggregate_settings(), telemetry);
        let (sender, receiver) = mpsc::channel(16);
        let (handle, task) = spawn(aggregator, receiver);
        sender
            .send(Batch::new(Transport::Udp, b"temp:21|g\n".to_vec()))
            .await
            .unwrap();
        let mut seen = false;
        for _ in 0..1000 {
            if handle.snapshot().await.unwrap().family("temp").is_some() {
                seen = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(seen, "the gauge never arrived");
        // Nothing asks for a snapshot while the paused clock runs past the ttl: only the
        // task's own timer can remove the series.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let snapshot = handle.snapshot().await.unwrap();
        assert!(snapshot.family("temp").is_none());
        let account = snapshot.accounts.iter().find(|a| &*a.family == "temp");
        assert_eq!(account.map(|a| (a.series, a.expired)), Some((0, 1)));
        drop(sender);
        task.await.unwrap();
    }
}
