//! Push outputs: the families of `/metrics`, sent to an OTLP collector ([`otlp`]) and written
//! to a file for node_exporter's textfile collector ([`textfile`]).
//!
//! The only module that knows OTLP types. Each output runs on its own task and reads the same
//! snapshots and self-metrics as `/metrics` ([`Source`]), so a slow collector or disk never
//! touches ingest or scrapes. On shutdown, [`Exporters::finish`] waits for the ingest queue to
//! drain, then lets each output push the final state once, within a bounded time.

pub mod convert;
pub mod otlp;
mod resource;
pub mod settings;
pub mod textfile;
mod transport;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::otlp::OtlpExporter;
use self::settings::SettingError;
use self::textfile::TextfileWriter;
use crate::aggregate::Handle;
use crate::config::Config;
use crate::expose::Exposition;
use crate::ingest::Sink;
use crate::supervise::Supervisor;

/// How often the drain of the ingest queue is checked at shutdown.
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// Grace on top of an output's own bound before its task is abandoned.
const GRACE: Duration = Duration::from_secs(1);

/// What an output could not set up.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// An OTLP setting, from the config or the environment, cannot be used.
    #[error(transparent)]
    Otlp(#[from] SettingError),
    /// The textfile directory cannot take a file.
    #[error(
        "textfile output: cannot create files in {}: {source}; create the directory, let the agent write to it, or set textfile.directory to node_exporter's --collector.textfile.directory",
        directory.display()
    )]
    Textfile {
        /// The directory.
        directory: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The outputs' self-metrics could not be registered.
    #[error("cannot register the push outputs' own metrics: {0}")]
    Telemetry(#[from] prometheus::Error),
}

/// What the outputs read: the aggregator's snapshots and the exposition (self-metrics and the
/// renderer), as `/metrics` does.
#[derive(Debug, Clone)]
pub struct Source {
    /// Snapshots of the aggregation state.
    pub handle: Handle,
    /// The registry and renderer of `/metrics`.
    pub exposition: Exposition,
}

/// The running outputs.
#[derive(Debug)]
pub struct Exporters {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, Duration, JoinHandle<()>)>,
}

impl Exporters {
    /// Starts the outputs `config` turns on (OTLP also from the standard environment). Cumulative
    /// OTLP points start at `started`, the agent's start.
    pub fn start(
        config: &Config,
        source: &Source,
        started: SystemTime,
        supervisor: &Supervisor,
    ) -> Result<Exporters, ExportError> {
        let (stop, stopped) = watch::channel(false);
        let registry = source.exposition.registry();
        let mut tasks = Vec::new();
        let env = settings::process_env;
        if let Some(otlp) = settings::resolve(&config.fixed.otlp, &env)? {
            let resource = resource::attributes(&env);
            let timeout = otlp.timeout;
            let exporter = OtlpExporter::new(otlp, resource, source.clone(), started, registry)?;
            let settings = exporter.settings();
            tracing::info!(
                endpoint = %settings.endpoint,
                protocol = settings.protocol.as_str(),
                interval = ?settings.interval,
                "pushing OTLP metrics"
            );
            tasks.push((
                "OTLP",
                timeout,
                supervisor.spawn("otlp", exporter.run(stopped.clone())),
            ));
        }
        let textfile = &config.fixed.textfile;
        if textfile.enabled {
            let writer = TextfileWriter::new(textfile, source.clone(), registry)?;
            tracing::info!(path = %writer.path().display(), interval = ?textfile.interval, "writing the textfile");
            tasks.push((
                "textfile",
                GRACE,
                supervisor.spawn("textfile", writer.run(stopped)),
            ));
        }
        Ok(Exporters { stop, tasks })
    }

    /// Waits (at most `drain`) until the ingest queues are empty and the aggregator published
    /// what they held, so that the final export holds every line read before shutdown, then
    /// stops the outputs and waits for their final push, each bounded by its own timeout. The
    /// caller holds `queue` open until this returns, which keeps the aggregator running.
    pub async fn finish(self, queue: &Sink, handle: &Handle, drain: Duration) {
        if self.tasks.is_empty() {
            return;
        }
        let waited = tokio::time::timeout(drain, async {
            while !queue.is_drained() {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            handle.publish().await;
        })
        .await;
        if waited.is_err() {
            tracing::warn!(
                ?drain,
                "the ingest queue did not drain in time; the final export holds what was applied"
            );
        }
        self.stop.send_replace(true);
        for (name, bound, task) in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(bound + GRACE, task).await.is_err() {
                tracing::warn!(
                    output = name,
                    "the final push did not finish in time and was abandoned"
                );
                abort.abort();
            }
        }
    }
}
