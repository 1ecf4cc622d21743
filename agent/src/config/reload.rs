//! Live configuration: reload on a change of the file, on SIGHUP and on `POST /-/reload`.
//!
//! The watcher follows the config file's directory, not the file: editors save by renaming and
//! Kubernetes updates a mounted ConfigMap by swapping its `..data` symlink, and neither touches
//! the original path. Its events are debounced, and `Access` events (the agent's own reads) are
//! ignored; a trigger whose file text is unchanged reloads nothing, so no event can loop.
//!
//! A reload reads and validates the whole file off the aggregating task. An invalid file is
//! refused, logged with its errors and counted, and the running config stays. A valid one is
//! applied atomically by the aggregating task between two batches: its live part
//! ([`config::Live`]: jobs, workers, defaults, StatsD mapping and ttls, alerts) at once; a change
//! to its fixed part ([`config::Fixed`]: listeners, HTTP, pipeline, shutdown, limits, buckets,
//! family names and the push outputs) only at the next start (the reload names the sections
//! that differ, and `heartwire_config_restart_required` is 1).

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use prometheus::Registry;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::aggregate::Handle;
use crate::clock::Now;
use crate::config::{self, Config};
use crate::supervise::Supervisor;
use crate::telemetry::reload::ReloadTelemetry;

/// How long the watcher waits for a burst of file events to settle.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// What asked for a reload.
#[derive(Debug)]
pub enum Trigger {
    /// The watched directory changed.
    FileChanged,
    /// SIGHUP.
    Hangup,
    /// `POST /-/reload`, which waits for the outcome.
    Request(oneshot::Sender<Result<Outcome, String>>),
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file is the one already running.
    Unchanged,
    /// The new config is in force; parts that need a restart are named.
    Applied {
        /// Top-level keys whose change waits for a restart.
        restart_required: Vec<&'static str>,
    },
}

/// Sends reload requests to the reloader.
#[derive(Debug, Clone)]
pub struct Reloads(mpsc::Sender<Trigger>);

impl Reloads {
    /// A reload that nobody waits for; coalesced with one already pending.
    pub fn trigger(&self, trigger: Trigger) {
        let _ = self.0.try_send(trigger);
    }

    /// A reload whose outcome the caller waits for (`POST /-/reload`).
    pub async fn request(&self) -> Result<Outcome, String> {
        let (reply, outcome) = oneshot::channel();
        self.0
            .send(Trigger::Request(reply))
            .await
            .map_err(|_| "the agent is shutting down".to_owned())?;
        outcome
            .await
            .map_err(|_| "the agent is shutting down".to_owned())?
    }
}

/// The reloader: owns the running config and applies new ones.
#[derive(Debug)]
pub struct Reloader {
    path: Option<PathBuf>,
    running: Config,
    hash: String,
    /// The text last refused: file events keep coming (editors, the agent's own reads) and
    /// must not refuse the same file again and again.
    refused_hash: Option<String>,
    handle: Handle,
    telemetry: ReloadTelemetry,
}

impl Reloader {
    /// A reloader for the config loaded from `path` (`None`: the embedded default, which never
    /// changes) with the text `text`.
    pub fn new(
        path: Option<&Path>,
        text: &str,
        running: Config,
        handle: Handle,
        registry: &Registry,
    ) -> Result<Reloader, prometheus::Error> {
        let telemetry = ReloadTelemetry::new(registry)?;
        let hash = hash(&config::watched_text(text, path));
        telemetry.loaded(&hash, Now::read());
        Ok(Reloader {
            path: path.map(Path::to_path_buf),
            running,
            hash,
            refused_hash: None,
            handle,
            telemetry,
        })
    }

    /// The file (whose text is `text`) was invalid at start and the agent serves the embedded
    /// default: the load counts as a failed one (`heartwire_config_last_reload_successful 0`),
    /// and the same text is not tried again until the file changes.
    pub fn started_without_the_file(&mut self, text: &str, error: &str) {
        let hash = hash(&config::watched_text(text, self.path.as_deref()));
        self.refused_hash = Some(hash);
        self.hash = String::new();
        let _ = self.refused(error.to_owned());
    }

    /// Starts the reloader task; the returned [`Reloads`] feed it.
    pub fn spawn(self, supervisor: &Supervisor) -> (Reloads, tokio::task::JoinHandle<()>) {
        let (sender, triggers) = mpsc::channel(4);
        let task = supervisor.spawn("config_reload", self.run(triggers));
        (Reloads(sender), task)
    }

    async fn run(mut self, mut triggers: mpsc::Receiver<Trigger>) {
        while let Some(trigger) = triggers.recv().await {
            match trigger {
                Trigger::Request(reply) => {
                    let _ = reply.send(self.reload(true).await);
                }
                Trigger::Hangup => {
                    let _ = self.reload(true).await;
                }
                Trigger::FileChanged => {
                    let _ = self.reload(false).await;
                }
            }
        }
    }

    /// Reloads if the file's text changed; `forced` also counts an unchanged file as a reload.
    async fn reload(&mut self, forced: bool) -> Result<Outcome, String> {
        let Some(path) = self.path.clone() else {
            tracing::info!("no --config file: nothing to reload");
            return Ok(Outcome::Unchanged);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) => {
                return Err(self.refused(format!(
                    "cannot read config file {}: {error}",
                    path.display()
                )));
            }
        };
        // The mapping file counts too: a ConfigMap swap may change only that file.
        let hash = hash(&config::watched_text(&text, Some(&path)));
        if !forced && (hash == self.hash || self.refused_hash.as_ref() == Some(&hash)) {
            return Ok(Outcome::Unchanged);
        }
        let config = match config::from_file_text(&text, &path) {
            Ok(config) => config,
            Err(error) => {
                self.refused_hash = Some(hash);
                return Err(self.refused(error.to_string()));
            }
        };
        self.refused_hash = None;
        let restart_required = self.running.fixed.differing(&config.fixed);
        if !self.handle.reconfigure(config.aggregate_settings()).await {
            return Err("the agent is shutting down".to_owned());
        }
        self.telemetry.reloads.with_label_values(&["success"]).inc();
        self.telemetry.loaded(&hash, Now::read());
        self.telemetry
            .restart_required
            .set(i64::from(!restart_required.is_empty()));
        if restart_required.is_empty() {
            tracing::info!(config = %path.display(), "config reloaded");
        } else {
            tracing::warn!(
                config = %path.display(),
                restart_required = ?restart_required,
                "config reloaded; changes to these sections take effect only after a restart"
            );
        }
        // Parts that need a restart keep running as they are: the running config takes only the
        // live part, and stays the reference for the next comparison.
        self.running.live = config.live;
        self.hash = hash;
        Ok(Outcome::Applied { restart_required })
    }

    fn refused(&self, error: String) -> String {
        tracing::error!("config reload refused, the running config stays: {error}");
        self.telemetry.reloads.with_label_values(&["failure"]).inc();
        self.telemetry.last_successful.set(0);
        error
    }
}

/// The config's hash, for `heartwire_config_info{hash}`: the first 8 bytes of the SHA-256 of
/// its bytes (the config file's, followed by its `statsd.mapping_file`'s if it names one), in 16
/// lowercase hex digits. A named hash, so the same file shows the same hash in every build and
/// Rust release: without a mapping file, `sha256sum heartwire.yaml | cut -c1-16`.
fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `POST /-/reload`, for the loopback listener: 200 with what was applied, 400 with the errors
/// of a refused file (the running config stays).
pub fn router(reloads: Reloads) -> axum::Router {
    axum::Router::new()
        .route("/-/reload", axum::routing::post(reload))
        .with_state(reloads)
}

async fn reload(
    axum::extract::State(reloads): axum::extract::State<Reloads>,
) -> (axum::http::StatusCode, String) {
    use axum::http::StatusCode;
    match reloads.request().await {
        Ok(Outcome::Unchanged) => (StatusCode::OK, "config unchanged\n".to_owned()),
        Ok(Outcome::Applied { restart_required }) if restart_required.is_empty() => {
            (StatusCode::OK, "config reloaded\n".to_owned())
        }
        Ok(Outcome::Applied { restart_required }) => (
            StatusCode::OK,
            format!(
                "config reloaded; changes to {} take effect after a restart\n",
                restart_required.join(", ")
            ),
        ),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            format!("config refused, the running config stays: {error}\n"),
        ),
    }
}

/// Watches the directory of `path` and triggers a reload when something in it changes. The
/// watcher stops when the returned value is dropped.
pub fn watch(
    path: &Path,
    reloads: Reloads,
) -> notify::Result<Debouncer<notify::RecommendedWatcher, RecommendedCache>> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut debouncer =
        new_debouncer(
            DEBOUNCE,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    if events
                        .iter()
                        .any(|event| !matches!(event.kind, EventKind::Access(_)))
                    {
                        reloads.trigger(Trigger::FileChanged);
                    }
                }
                Err(errors) => {
                    for error in errors {
                        tracing::warn!(%error, "config watcher error");
                    }
                }
            },
        )?;
    debouncer.watch(&directory, RecursiveMode::NonRecursive)?;
    tracing::info!(directory = %directory.display(), "watching the config directory for changes");
    Ok(debouncer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sections_that_cannot_change_live_require_a_restart() {
        let running = config::from_str("jobs:\n  a: { every: 1m }\n", "a.yaml").unwrap();
        let jobs_only =
            config::from_str("jobs:\n  b: { every: 5m }\nworkers:\n  w: {}\n", "b.yaml").unwrap();
        assert!(running.fixed.differing(&jobs_only.fixed).is_empty());
        let listeners = config::from_str(
            "families:\n  jobs: { runs: x_total }\nlisten:\n  udp: { address: \"127.0.0.1:9125\" }\nlimits:\n  max_series: 10\n",
            "c.yaml",
        )
        .unwrap();
        assert_eq!(
            running.fixed.differing(&listeners.fixed),
            ["listen", "limits", "families"],
            "in file order"
        );
    }

    #[test]
    fn the_hash_follows_the_text() {
        assert_eq!(hash("jobs: {}\n"), hash("jobs: {}\n"));
        assert_ne!(hash("jobs: {}\n"), hash("jobs: {}\n\n"));
        assert_eq!(hash("x").len(), 16);
        // The SHA-256 of no bytes, as `sha256sum` prints it: the same in every build.
        assert_eq!(hash(""), "e3b0c44298fc1c14");
    }
}
