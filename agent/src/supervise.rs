//! Supervision: every long-lived task and thread of the agent is a named component.
//!
//! A component that ends while the agent is not stopping (it panicked, or its loop returned) is
//! a failure: it is logged with the reason, `/healthz` answers 503 naming it from that moment,
//! and the agent stops and exits non-zero (see `app`), so that Kubernetes restarts it. Nothing
//! dies silently behind a green `/healthz`.
//!
//! Tasks are spawned through [`Supervisor::spawn`] (the component runs as its own task, watched
//! by a second one that sees its panic), threads through [`Supervisor::thread`] (the body runs
//! under `catch_unwind`). Once [`Supervisor::stopping`] is called, components that end are
//! expected to.
//!
//! Built with the `fault-injection` feature (the end-to-end tests are), the environment variable
//! `HEARTWIRE_FAULT=<component>@<delay>` makes that component panic `delay` after the agent
//! started: the tests prove each supervision path on the real binary with it.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};

/// A component that ended while the agent was running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The component, e.g. `aggregator`, `udp`, `http`.
    pub component: &'static str,
    /// Why it ended: the panic message, or that it returned.
    pub why: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} stopped: {}", self.component, self.why)
    }
}

/// Watches the components. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    stopping: AtomicBool,
    failures: Mutex<Vec<Failure>>,
    failed: watch::Sender<bool>,
}

impl Default for Supervisor {
    fn default() -> Supervisor {
        Supervisor::new()
    }
}

impl Supervisor {
    /// A supervisor with no component yet.
    pub fn new() -> Supervisor {
        fault::arm();
        Supervisor {
            inner: Arc::new(Inner {
                stopping: AtomicBool::new(false),
                failures: Mutex::new(Vec::new()),
                failed: watch::channel(false).0,
            }),
        }
    }

    /// Runs `future` as the task of `component`. The returned handle ends when the component
    /// does; aborting it aborts the component.
    pub fn spawn<F>(&self, component: &'static str, future: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.spawn_on(&tokio::runtime::Handle::current(), component, future)
    }

    /// Like [`Supervisor::spawn`], on the runtime `runtime`.
    pub fn spawn_on<F>(
        &self,
        runtime: &tokio::runtime::Handle,
        component: &'static str,
        future: F,
    ) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = runtime.spawn(fault::inject_into(component, future));
        let supervisor = self.clone();
        tokio::spawn(async move {
            let _abort = AbortOnDrop(task.abort_handle());
            match task.await {
                Ok(()) => supervisor.ended(component, None),
                Err(error) if error.is_panic() => {
                    supervisor.ended(component, Some(panic_message(&*error.into_panic())))
                }
                // Aborted: only the agent's own shutdown aborts components.
                Err(_) => supervisor.ended(component, Some("cancelled".to_owned())),
            }
        })
    }

    /// Runs `body` on a new thread named `heartwire-<component>`. The returned handle resolves
    /// when the body has returned or panicked.
    pub fn thread<F>(&self, component: &'static str, body: F) -> std::io::Result<Finished>
    where
        F: FnOnce() + Send + 'static,
    {
        let supervisor = self.clone();
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("heartwire-{component}"))
            .spawn(move || {
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(body));
                let why = outcome.err().map(|payload| panic_message(&*payload));
                supervisor.ended(component, why);
                let _ = done.send(());
            })?;
        Ok(Finished(finished))
    }

    /// From now on the agent is stopping: components that end are expected to.
    pub fn stopping(&self) {
        self.inner.stopping.store(true, Ordering::Release);
    }

    /// Whether [`Supervisor::stopping`] was called.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// The components that failed, first first; empty while every component is alive.
    pub fn failures(&self) -> Vec<Failure> {
        self.inner
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Resolves at the first failure (at once if one already happened).
    pub async fn failed(&self) -> Failure {
        let mut failed = self.inner.failed.subscribe();
        // The sender lives as long as `self`, so this only returns once the flag is set.
        let _ = failed.wait_for(|failed| *failed).await;
        self.failures()
            .into_iter()
            .next()
            .unwrap_or_else(|| Failure {
                component: "unknown",
                why: "failed".to_owned(),
            })
    }

    /// `component` ended; `why` is its panic message, if it panicked.
    fn ended(&self, component: &'static str, why: Option<String>) {
        if self.is_stopping() && why.is_none() {
            return;
        }
        if self.is_stopping() {
            // A panic while stopping is still a bug worth a log line, but no longer a verdict.
            tracing::error!(
                component,
                why = why.as_deref(),
                "a component panicked while the agent was stopping"
            );
            return;
        }
        let why = match why {
            Some(message) => format!("panicked: {message}"),
            None => "ended unexpectedly".to_owned(),
        };
        tracing::error!(
            component,
            why,
            "a component of the agent stopped; the agent stops too, so that it is restarted"
        );
        self.inner
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Failure { component, why });
        self.inner.failed.send_replace(true);
    }
}

/// The end of a supervised thread.
#[derive(Debug)]
pub struct Finished(oneshot::Receiver<()>);

impl Finished {
    /// Resolves when the thread's body has returned or panicked.
    pub async fn wait(self) {
        let _ = self.0.await;
    }
}

/// Aborts a task when dropped: the watcher of a component takes the component with it.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Test-only fault injection (`fault-injection` feature); without the feature every function
/// here does nothing and compiles away.
pub mod fault {
    #[cfg(feature = "fault-injection")]
    mod enabled {
        use std::future::Future;
        use std::sync::OnceLock;
        use std::time::Duration;

        use tokio::time::Instant;

        /// The component to fail and when, from `HEARTWIRE_FAULT=<component>@<delay>`.
        static FAULT: OnceLock<Option<(String, Instant)>> = OnceLock::new();

        pub fn arm() {
            FAULT.get_or_init(|| {
                let spec = std::env::var("HEARTWIRE_FAULT").ok()?;
                let (component, delay) = spec.split_once('@').unwrap_or((&spec, "0s"));
                let delay: Duration = humantime::parse_duration(delay).ok()?;
                tracing::warn!(
                    component,
                    ?delay,
                    "HEARTWIRE_FAULT: a fault will be injected"
                );
                Some((component.to_owned(), crate::clock::Now::read().mono + delay))
            });
        }

        fn planned(component: &str) -> Option<Instant> {
            match FAULT.get()? {
                Some((name, at)) if name == component => Some(*at),
                _ => None,
            }
        }

        /// Panics if `component` is the one to fail and its time has come.
        pub fn check(component: &str) {
            if planned(component).is_some_and(|at| crate::clock::Now::read().mono >= at) {
                panic!("fault injected into {component} (HEARTWIRE_FAULT)");
            }
        }

        /// `future`, made to panic at the planned time if `component` is the one to fail.
        pub async fn inject_into<F: Future<Output = ()>>(component: &'static str, future: F) {
            let Some(at) = planned(component) else {
                return future.await;
            };
            tokio::select! {
                () = future => {}
                () = tokio::time::sleep_until(at) => {
                    panic!("fault injected into {component} (HEARTWIRE_FAULT)")
                }
            }
        }
    }

    #[cfg(not(feature = "fault-injection"))]
    mod enabled {
        use std::future::Future;

        pub fn arm() {}

        #[inline(always)]
        pub fn check(_component: &str) {}

        pub async fn inject_into<F: Future<Output = ()>>(_component: &'static str, future: F) {
            future.await
        }
    }

    pub use enabled::check;
    pub(crate) use enabled::{arm, inject_into};
}
