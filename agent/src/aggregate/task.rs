//! The one task that owns the [`Aggregator`].
//!
//! It waits on two queues: snapshot requests and batches. Requests go first (`biased`), so a
//! scrape waits for at most the batch being applied, never for the queue behind it. Readers get
//! an `Arc<Snapshot>` and render it on their own task: ingest and scrapes share no lock.
//!
//! The task ends once the batch channel is closed (every sender dropped) and drained: that is
//! the graceful shutdown. Snapshot requests after that get `None`.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Aggregator, Settings, Snapshot};
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
            batch = batches.recv() => match batch {
                Some(batch) => aggregator.ingest(&batch, Now::read()),
                None => break,
            },
        }
    }
}

#[cfg(test)]
mod tests {
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
}
