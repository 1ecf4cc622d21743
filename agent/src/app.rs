//! The agent's lifecycle: wire the tasks, wait for SIGTERM/SIGINT (reloading on SIGHUP) or the
//! failure of a component, shut down in order.
//!
//! Start: the aggregator thread, then every listener (all bind or the agent exits), then the
//! HTTP servers and the push outputs; the ready file is written last. Every long-lived task and
//! thread is a supervised component ([`Supervisor`]).
//!
//! Stop is one decision, taken once: the first SIGTERM or SIGINT, or the failure of a component.
//! Then: stop reading (socket listeners and `POST /ingest`; socket files are removed), let the
//! push outputs send the state once the queues are applied (each bounded by its own timeout),
//! let the aggregator finish (bounded by `shutdown.drain_timeout`), then stop serving `/metrics`.
//! A second TERM or INT cuts the final push and the drain short; SIGHUP during shutdown is
//! ignored (a reload then would be pointless, and it must not be taken for a stop). After a
//! component failed, `/healthz` says so for [`FAILURE_GRACE`], every step is bounded by
//! [`FAILURE_DEADLINE`], and the agent exits with status 70 so that it is restarted.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::aggregate::{self, Aggregator};
use crate::clock::Now;
use crate::cmd::cli::{OnInvalidConfig, ServeArgs};
use crate::config::reload::{self, Reloader, Reloads, Trigger};
use crate::config::{self, Config};
use crate::export::{self, ExportError, Exporters};
use crate::expose::Exposition;
use crate::expose::http::{self, Endpoints};
use crate::ingest::{self, Bound, ListenError, Listeners, Sink};
use crate::state::StateKeeper;
use crate::supervise::{Failure, Finished, Supervisor};

/// Exit code for a configuration that cannot be used (`EX_USAGE`).
const EXIT_CONFIG: u8 = 64;
/// Exit code after a component of the agent failed (`EX_SOFTWARE`).
const EXIT_FAILED: u8 = 70;
/// How long `/healthz` names a failed component before the agent starts to stop.
pub const FAILURE_GRACE: Duration = Duration::from_secs(1);
/// The bound of each shutdown step after a failure (the drain timeout, if shorter).
pub const FAILURE_DEADLINE: Duration = Duration::from_secs(2);

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener could not start.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The self-metrics could not be registered.
    #[error("cannot set up the agent's own metrics: {0}")]
    Telemetry(#[from] prometheus::Error),
    /// A push output (OTLP, textfile) could not start.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(io::Error),
    /// The ready file could not be written.
    #[error("cannot write the ready file {}: {source}", path.display())]
    ReadyFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The aggregator's thread could not start.
    #[error("cannot start the aggregator: {0}")]
    Aggregator(io::Error),
    /// A component stopped while the agent ran.
    #[error("the agent stopped because a component failed: {0}")]
    Failed(Failure),
}

/// Runs `heartwire serve`: logs to stderr, loads the config (exit 64 if it is invalid), runs the
/// agent until SIGTERM/SIGINT (exit 0) or a startup failure (exit 1).
pub fn main(args: &ServeArgs) -> ExitCode {
    tune_malloc();
    init_logging();
    let source = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| config::ConfigError::Read {
                path: path.clone(),
                source,
            })
            .map(|text| (path.display().to_string(), text)),
        None => Ok((
            "<embedded default>".to_owned(),
            config::DEFAULT_YAML.to_owned(),
        )),
    };
    let loaded = source.and_then(|(origin, text)| {
        let config = match &args.config {
            // A relative `statsd.mapping_file` is read beside the config file.
            Some(path) => config::from_file_text(&text, path)?,
            None => config::from_str(&text, &origin)?,
        };
        Ok((config, text))
    });
    let (config, text, invalid) = match loaded {
        Ok((config, text)) => (config, text, None),
        Err(error) if args.on_invalid_config == OnInvalidConfig::Default => {
            tracing::error!(
                "invalid configuration: {error}; serving with the embedded default until the file is fixed (--on-invalid-config default)"
            );
            let text = args
                .config
                .as_deref()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .unwrap_or_default();
            (config::fallback(Some(&text)), text, Some(error.to_string()))
        }
        Err(error) => {
            tracing::error!("invalid configuration: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let source = Source {
        path: args.config.as_deref(),
        text: &text,
        invalid: invalid.as_deref(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let readers = match readers_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime of the HTTP endpoints");
            return ExitCode::FAILURE;
        }
    };
    let ran = runtime.block_on(run(
        config,
        source,
        args.ready_file.as_deref(),
        readers.handle(),
    ));
    readers.shutdown_timeout(FAILURE_DEADLINE);
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(error @ AppError::Failed(_)) => {
            tracing::error!("{error}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime of the read-only HTTP endpoints (`/metrics`, `/healthz`, `/readyz`, `/status`):
/// its threads, and the blocking threads that render pages, run at a lower scheduling priority
/// (nice +[`READERS_NICE`]) than ingest. When scrapes and ingest compete for a core, the kernel
/// gives ingest (the datagram receive threads, the aggregator, stream connections) the lion's
/// share: a flood of readers slows the readers, never the lines.
fn readers_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("heartwire-http")
        .on_thread_start(lower_priority)
        .build()
}

/// The nice value of the HTTP endpoints' threads: CFS then weighs them about 1 to 9 against
/// ingest threads (nice 0).
const READERS_NICE: libc::c_int = 10;

/// Lowers the scheduling priority of the calling thread (never needs a privilege).
fn lower_priority() {
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours; on Linux
    // PRIO_PROCESS with a thread id applies to that thread only.
    let result = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, READERS_NICE)
    };
    if result != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "cannot lower the priority of an HTTP thread");
    }
}

/// glibc's malloc, tuned for an agent whose largest buffers (a `/metrics` page of megabytes, its
/// gzip copy, a snapshot) come and go with every published state: blocks from 128 KiB are
/// mapped and given back when freed, and at most two arenas are kept. Measured with 100 000
/// series of distinct names: 20 MiB less resident after a scrape (glibc otherwise raises its
/// mapping threshold as big blocks are freed, and keeps them). Free memory at the top of the
/// heap is returned once it passes 2 MiB (and all of it every [`GIVE_BACK_EVERY`]): with the
/// 128 KiB default, the 64 KiB pieces of a page being sent were given back and faulted in
/// again one after another (a plain scrape of 10 000 tagged series: 40 000 page faults over 40
/// scrapes, 5 000–8 000 with 2 MiB, p50 5.5–6.5 → 4.1–4.5 ms).
/// A setting given in the environment (`MALLOC_ARENA_MAX`, `MALLOC_TRIM_THRESHOLD_`,
/// `MALLOC_MMAP_THRESHOLD_`) is left as given.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 2 << 20),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mallopt takes two integers and changes the allocator's own settings; it is
            // called before any other thread of the agent exists.
            unsafe { libc::mallopt(parameter, value) };
        }
    }
}

/// How often the allocator's free memory is given back to the system ([`give_back_memory`]).
const GIVE_BACK_EVERY: Duration = Duration::from_secs(10);

/// Every [`GIVE_BACK_EVERY`], has glibc return the free pages inside its heaps to the system
/// (`malloc_trim`): a burst that filled the datagram queue (up to `queue_batches` batches, tens
/// of megabytes) leaves freed blocks between live ones, which the trim threshold alone does not
/// return, and a sidecar should not keep a burst's memory. Measured with the load benchmark:
/// after its UDP steps at the most lines/s, RSS with 10 000 series came back to 13 MiB instead
/// of staying near 32 MiB. It walks the free lists (about a millisecond with 100 000 series).
async fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut every = tokio::time::interval(GIVE_BACK_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim only reads and adjusts the allocator's own state, under its
            // locks; it may be called from any thread at any time.
            unsafe { libc::malloc_trim(0) };
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colours = io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(colours)
        .init();
}

/// Where the running config came from: its file (none for the embedded default) and text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The file, watched for changes.
    pub path: Option<&'a Path>,
    /// The text that was loaded.
    pub text: &'a str,
    /// Why the file could not be used, when the agent serves the embedded default instead
    /// (`--on-invalid-config default`).
    pub invalid: Option<&'a str>,
}

/// Runs the agent described by `config` until SIGTERM or SIGINT, or until a component fails;
/// reloads it on a change of its file, on SIGHUP and on `POST /-/reload`.
pub async fn run(
    config: Config,
    source: Source<'_>,
    ready_file: Option<&Path>,
    readers: &tokio::runtime::Handle,
) -> Result<(), AppError> {
    // Installed first: from here on a SIGTERM means "shut down cleanly", never "die".
    let mut signals = Signals::install().map_err(AppError::Signals)?;
    let supervisor = Supervisor::new();
    tokio::spawn(give_back_memory());
    let started = Now::read().wall;
    let (exposition, telemetry) = Exposition::new()?;
    let (sink, queues) = ingest::queues(config.fixed.pipeline.queue_batches, telemetry.clone());
    // Keeps the aggregator running at shutdown until the push outputs have read the final state.
    let held_open = sink.clone();
    let keeper = StateKeeper::new(&config.fixed.state, exposition.registry())?;
    let mut aggregator = Aggregator::new(config.aggregate_settings());
    // Before any line: the first snapshot already holds the verdicts the agent left with.
    if let Some(memory) = keeper.as_ref().and_then(StateKeeper::load) {
        aggregator.recall(&memory, Now::read());
    }
    let (handle, aggregation) =
        aggregate::spawn(aggregator, queues, &supervisor).map_err(AppError::Aggregator)?;
    let (stop_state, state_signal) = watch::channel(false);
    if let Some(keeper) = &keeper {
        supervisor.spawn("state", keeper.clone().run(handle.clone(), state_signal));
    }
    let mut reloader = Reloader::new(
        source.path,
        source.text,
        config.clone(),
        handle.clone(),
        exposition.registry(),
    )?;
    if let Some(error) = source.invalid {
        reloader.started_without_the_file(source.text, error);
    }
    let (reloads, reloading) = reloader.spawn(&supervisor);
    // Dropped at shutdown, which stops the watcher thread.
    let _watcher = match source.path {
        Some(path) => match reload::watch(path, reloads.clone()) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, config = %path.display(), "cannot watch the config file; reload with SIGHUP or POST /-/reload");
                None
            }
        },
        None => None,
    };

    let listeners = Listeners::start(&config.fixed.listen, &sink, &supervisor)?;
    let mut bound = listeners.bound().to_vec();
    let (stop_ingest, ingest_signal) = watch::channel(false);
    let (stop_endpoints, endpoints_signal) = watch::channel(false);
    let ingest = start_ingest_http(
        &config,
        &sink,
        &reloads,
        ingest_signal,
        &mut bound,
        &supervisor,
    )?;
    drop(sink);
    let endpoints = {
        // Registered with the runtime that serves it.
        let _readers = readers.enter();
        http::bind(config.fixed.http.address, "HTTP (/metrics)", "http.address")?
    };
    bound.push(Bound {
        name: "http",
        address: local_address(&endpoints, config.fixed.http.address),
    });
    let outputs = export::Source {
        handle: handle.clone(),
        exposition: exposition.clone(),
    };
    let exporters = Exporters::start(&config, &outputs, started, &supervisor)?;
    let router = http::router(Endpoints::new(
        handle.clone(),
        exposition,
        supervisor.clone(),
    ));
    let endpoints = supervisor.spawn_on(
        readers,
        "http",
        http::serve(endpoints, router, endpoints_signal),
    );

    if let Some(path) = ready_file {
        write_ready_file(path, &bound).map_err(|source| AppError::ReadyFile {
            path: path.to_path_buf(),
            source,
        })?;
    }
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "heartwire is ready");

    let failure = loop {
        tokio::select! {
            received = signals.next() => match received {
                Received::Hangup => reloads.trigger(Trigger::Hangup),
                Received::Stop(name) => {
                    tracing::info!(signal = name, "shutting down: no longer reading");
                    break None;
                }
            },
            failure = supervisor.failed() => break Some(failure),
        }
    };
    let mut deadline = config.fixed.shutdown.drain_timeout;
    if let Some(failure) = &failure {
        tracing::error!(%failure, grace = ?FAILURE_GRACE, "shutting down after a failure; /healthz reports it until the agent exits");
        deadline = deadline.min(FAILURE_DEADLINE);
        tokio::select! {
            () = tokio::time::sleep(FAILURE_GRACE) => {}
            name = signals.next_stop() => tracing::warn!(signal = name, "stop signal during the failure grace"),
        }
    }
    supervisor.stopping();
    reloading.abort();
    stop_ingest.send_replace(true);
    listeners.stop().await;
    if let Some(ingest) = ingest {
        finish("POST /ingest", ingest, deadline).await;
    }
    tokio::select! {
        () = exporters.finish(&held_open, &handle, deadline) => {}
        name = signals.next_stop() => tracing::warn!(signal = name, "second signal: stopping without the final push"),
    }
    drop(held_open);
    stop_state.send_replace(true);
    drain(aggregation, deadline, &mut signals).await;
    if let Some(keeper) = &keeper {
        keeper.write_final(&handle).await;
    }
    stop_endpoints.send_replace(true);
    finish("/metrics", endpoints, deadline).await;
    match failure {
        Some(failure) => Err(AppError::Failed(failure)),
        None => {
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// Starts `POST /ingest` on its own listener, if enabled.
fn start_ingest_http(
    config: &Config,
    sink: &Sink,
    reloads: &Reloads,
    signal: watch::Receiver<bool>,
    bound: &mut Vec<Bound>,
    supervisor: &Supervisor,
) -> Result<Option<JoinHandle<()>>, ListenError> {
    let settings = &config.fixed.listen.http;
    if !settings.enabled {
        return Ok(None);
    }
    let listener = http::bind(
        settings.address,
        "HTTP (POST /ingest)",
        "listen.http.address",
    )?;
    if !settings.address.ip().is_loopback() {
        tracing::warn!(address = %settings.address, "POST /ingest is reachable from other hosts: anyone who can reach it can write metrics");
    }
    bound.push(Bound {
        name: "http_ingest",
        address: local_address(&listener, settings.address),
    });
    let router = ingest::http::router(sink.clone(), settings.max_body_bytes)
        .merge(reload::router(reloads.clone()));
    Ok(Some(supervisor.spawn(
        "http_ingest",
        http::serve(listener, router, signal),
    )))
}

fn local_address(listener: &tokio::net::TcpListener, configured: std::net::SocketAddr) -> String {
    let address = listener.local_addr().unwrap_or(configured);
    tracing::info!(%address, "listening for HTTP");
    address.to_string()
}

/// Waits for an HTTP server to finish its requests in flight; a client that holds one open past
/// `deadline` (a trickled upload, say) is cut off rather than keeping the agent alive.
async fn finish(what: &'static str, server: JoinHandle<()>, deadline: std::time::Duration) {
    let abort = server.abort_handle();
    if tokio::time::timeout(deadline, server).await.is_err() {
        tracing::warn!(
            server = what,
            "requests still in flight at the deadline were cut off"
        );
        abort.abort();
    }
}

/// Waits for the aggregator to apply what is queued: at most `timeout`, and not past a second
/// stop signal.
async fn drain(aggregation: Finished, timeout: Duration, signals: &mut Signals) {
    tokio::select! {
        finished = tokio::time::timeout(timeout, aggregation.wait()) => match finished {
            Ok(()) => tracing::info!("queue drained"),
            Err(_) => tracing::warn!(?timeout, "the queue was not drained in time; the rest is dropped"),
        },
        name = signals.next_stop() => tracing::warn!(signal = name, "second signal: stopping without draining"),
    }
}

/// Writes `NAME ADDRESS` lines to `path` through a temporary file and a rename, so that a reader
/// never sees half of it.
fn write_ready_file(path: &Path, bound: &[Bound]) -> io::Result<()> {
    let mut text = String::new();
    for listener in bound {
        text.push_str(listener.name);
        text.push(' ');
        text.push_str(&listener.address);
        text.push('\n');
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// SIGTERM, SIGINT and SIGHUP, as one stream.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal received.
    async fn next(&mut self) -> Received {
        tokio::select! {
            _ = self.terminate.recv() => Received::Stop("SIGTERM"),
            _ = self.interrupt.recv() => Received::Stop("SIGINT"),
            _ = self.hangup.recv() => Received::Hangup,
        }
    }

    /// The name of the next SIGTERM or SIGINT. Used once the agent is stopping: a SIGHUP then
    /// is logged and ignored, so that it can never cut the final push or the drain short.
    async fn next_stop(&mut self) -> &'static str {
        loop {
            match self.next().await {
                Received::Stop(name) => return name,
                Received::Hangup => {
                    tracing::info!("SIGHUP ignored: the agent is shutting down");
                }
            }
        }
    }
}

/// A signal the agent acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// SIGTERM or SIGINT, by name.
    Stop(&'static str),
    /// SIGHUP: reload the config.
    Hangup,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals")
    }
}
