//! Aggregation: parsed lines in, metric state out.
//!
//! One task owns the [`Aggregator`] ([`task::spawn`]); listeners hand it [`Batch`]es over a
//! bounded channel, and readers ask it for a [`Snapshot`], so ingest and scrapes never share a
//! lock. The state is plain data driven by an explicit [`Now`]: tests run it without a runtime
//! and without sleeping.
//!
//! - `jobs` and `builtin`: the families of the native verbs, service checks and events.
//! - `families`: the catalogue of those families (key, name, kind, labels, unit, help), from
//!   which their `/metrics` metadata, the `families:` config keys and the reserved names come.
//! - `series` and `set`: generic StatsD/DogStatsD metrics, with conflicts and caps;
//!   `mapping`: statsd_exporter-style rules that name them; `expiry`: idle series removed on a
//!   timer ([`Aggregator::expire`]).
//! - `limits`: series caps and the bounded `family` label of their self-metrics.
//! - `registry`: jobs and workers by name and by a handle that stays valid when others go.

mod builtin;
pub mod expiry;
pub mod families;
mod histogram;
mod jobs;
mod limits;
pub mod mapping;
pub mod memory;
mod registry;
mod series;
mod set;
mod settings;
pub mod snapshot;
pub mod task;
mod workers;

use std::sync::Arc;

use hashbrown::HashMap;
use heartwire_proto::{ErrorKind, Line, MetricKind, ParseError};

pub use self::expiry::Expiry;
pub use self::families::{
    ConstLabels, Family, FamilyNames, Group, NameError, Setting, TABLE, claimed_names,
};
pub use self::histogram::HistogramSnapshot;
pub use self::mapping::Mapping;
pub use self::memory::Memory;
pub use self::settings::{Buckets, DEFAULT_BUCKETS, DEFAULT_WORKER_TTL, Limits, Settings};
use self::snapshot::Family as SnapshotFamily;
pub use self::snapshot::{Families, Health, JobStatus, Kind, Snapshot, WorkerStatus};
pub use self::task::{Handle, spawn};

use self::builtin::{Calls, Checks, Events};
use self::histogram::Bounds;
use self::jobs::{Jobs, Outcome};
use self::limits::Accounting;
use self::series::Statsd;
use self::workers::Workers;
use crate::clock::Now;
use crate::ingest::batch::{Batch, ConnectionId, Payload, Transport};

/// What the applied lines did since the agent started: lines read by transport, rejected by
/// reason, and the samples set aside. It is published with every snapshot and rendered from
/// it, so that `/metrics` counts exactly the lines whose effect its snapshot shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Lines read (accepted or rejected), by [`Transport::index`].
    pub received: [u64; Transport::ALL.len()],
    /// Lines rejected, by [`ErrorKind::index`].
    pub rejected: [u64; ErrorKind::ALL.len()],
    /// Accepted lines that carried fields this version does not know.
    pub unknown_fields: u64,
    /// Metric lines whose sample rate was clamped.
    pub rates_clamped: u64,
    /// Samples ignored because they would leave a value that is not finite.
    pub non_finite: u64,
    /// Open job starts evicted at their bound.
    pub starts_evicted: u64,
    /// Set members not counted because their series was full.
    pub set_members_dropped: u64,
    /// StatsD lines a mapping rule dropped.
    pub mapping_dropped: u64,
}

/// The aggregation state and the rules that change it.
#[derive(Debug)]
pub struct Aggregator {
    /// What the applied lines did.
    tally: Tally,
    /// Stream connections that said `hello`, and the app they named. Bounded by the stream
    /// listeners' connection caps: an entry leaves when its connection closes.
    sessions: HashMap<ConnectionId, Arc<str>>,
    accounting: Accounting,
    jobs: Jobs,
    calls: Calls,
    workers: Workers,
    checks: Checks,
    events: Events,
    statsd: Statsd,
}

impl Aggregator {
    /// An empty state that starts watching the configured jobs and workers now. `settings`
    /// come from a loaded configuration, which holds only valid ones.
    pub fn new(settings: Settings) -> Aggregator {
        Aggregator::starting_at(settings, Now::read())
    }

    /// Like [`Aggregator::new`], watching from `now`: for tests and replays.
    pub fn starting_at(settings: Settings, now: Now) -> Aggregator {
        let limits = &settings.limits;
        let names = &settings.names;
        let mut accounting = Accounting::new(limits);
        let bounds = |list: &[f64]| -> Bounds { Arc::from(list) };
        let mut jobs = Jobs::new(
            names,
            limits,
            bounds(&settings.buckets.job_duration),
            &mut accounting,
        );
        jobs.set_learning(settings.learn_schedules);
        jobs.configure(&settings.jobs, now, &mut accounting);
        let mut workers = Workers::new(names, settings.default_worker_ttl, &mut accounting);
        workers.configure(&settings.workers, &mut accounting);
        let mut statsd = Statsd::new(limits, bounds(&settings.buckets.statsd), names.reserved());
        statsd.remap(settings.mapping.clone(), settings.expiry);
        Aggregator {
            sessions: HashMap::new(),
            jobs,
            calls: Calls::new(
                names,
                bounds(&settings.buckets.http_duration),
                &mut accounting,
            ),
            workers,
            checks: Checks::new(names, &mut accounting),
            events: Events::new(names),
            statsd,
            accounting,
            tally: Tally::default(),
        }
    }

    /// Parses every line of the batch (unless its receive thread did), applies the good ones,
    /// and counts lines received by transport and rejected by reason.
    pub fn ingest(&mut self, batch: &Batch, now: Now) {
        let mut tally = std::mem::take(&mut self.tally);
        let transport = batch.transport.index();
        // Lines the receive buffer cut are read, and rejected as too long (PROTOCOL L6).
        tally.received[transport] += batch.cut;
        tally.rejected[ErrorKind::TooLong.index()] += batch.cut;
        match &batch.payload {
            Payload::Raw(data) => {
                for line in heartwire_proto::lines(data) {
                    tally.received[transport] += 1;
                    match check(line) {
                        Ok(line) => self.apply(&line, batch.connection, now, &mut tally),
                        Err(kind) => tally.rejected[kind.index()] += 1,
                    }
                }
            }
            // The same counts as above: a snapshot is only taken between two batches, so the
            // order of rejections within one is never seen.
            Payload::Parsed(parsed) => {
                for (kind, count) in parsed.rejected().iter().enumerate() {
                    tally.received[transport] += count;
                    tally.rejected[kind] += count;
                }
                for line in parsed.accepted() {
                    tally.received[transport] += 1;
                    self.apply(line, batch.connection, now, &mut tally);
                }
            }
        }
        self.tally = tally;
        if batch.closed
            && let Some(connection) = batch.connection
            && self.sessions.remove(&connection).is_some()
        {
            self.jobs.session_closed(connection, now);
            self.workers.session_closed(connection);
        }
    }

    fn apply(
        &mut self,
        line: &Line<'_>,
        connection: Option<ConnectionId>,
        now: Now,
        tally: &mut Tally,
    ) {
        if line.has_unknown_fields() {
            tally.unknown_fields += 1;
        }
        // Runs and workers bind to the connection only once it said `hello`.
        let session = connection.filter(|connection| self.sessions.contains_key(connection));
        let accounting = &mut self.accounting;
        match line {
            Line::Hello(hello) => {
                if let Some(connection) = connection {
                    self.sessions.insert(connection, Arc::from(hello.app));
                }
            }
            Line::JobStart(start) => self.jobs.start(start, session, now, accounting, tally),
            Line::JobOk(end) => self.jobs.end(end, Outcome::Ok, now, accounting),
            Line::JobError(end) => self.jobs.end(end, Outcome::Error, now, accounting),
            Line::JobSkip(skip) => self.jobs.skip(skip, now, accounting),
            Line::JobProgress(progress) => self.jobs.progress(progress, now, accounting, tally),
            Line::Heartbeat(heartbeat) => {
                self.workers.heartbeat(heartbeat, session, now, accounting)
            }
            Line::WorkerStop(stop) => self.workers.stop(stop, accounting),
            Line::Http(call) => self.calls.record(call, accounting),
            Line::ServiceCheck(check) => self.checks.report(check, now, accounting),
            Line::Event(event) => self.events.record(event),
            Line::Metric(metric) => {
                if metric.rate_clamped {
                    tally.rates_clamped += 1;
                }
                self.statsd.apply(metric, now, accounting, tally);
            }
        }
    }

    /// Applies the parts of reloaded settings that change live: the watched jobs and workers,
    /// the StatsD mapping rules and default ttls. Counters and histograms of everything that
    /// stays keep their values; a job or worker no longer configured loses its verdict families
    /// (its counters stay if it reported); existing StatsD series keep their names and values,
    /// and new samples are mapped by the new rules. The other parts (names, limits, buckets)
    /// take effect at the next start.
    pub fn reconfigure(&mut self, settings: &Settings, now: Now) {
        let accounting = &mut self.accounting;
        self.jobs.set_learning(settings.learn_schedules);
        self.jobs.reconfigure(&settings.jobs, now, accounting);
        self.workers
            .reconfigure(&settings.workers, settings.default_worker_ttl, accounting);
        self.statsd.remap(settings.mapping.clone(), settings.expiry);
    }

    /// Removes the StatsD series idle past their ttl at `now` (see [`expiry`]); the aggregating
    /// task calls it every [`expiry::TICK`]. Returns how many went.
    pub fn expire(&mut self, now: Now) -> u64 {
        self.statsd.expire(now.mono, &mut self.accounting)
    }

    /// Counts the schedule slots every job with a schedule missed by `now`
    /// ([`crate::health::missed`]); the aggregating task calls it every [`expiry::TICK`], so a
    /// slot is counted within a second of its `late_after` running out. Returns how many.
    pub fn count_missed(&mut self, now: Now) -> u64 {
        self.jobs.count_missed(now)
    }

    /// The current state, every part built afresh: what [`Aggregator::next_snapshot`] (which
    /// the aggregating task publishes for `/metrics`) must equal, for the tests and benches.
    /// Shares every string with the live state; verdicts that depend on the time are left to
    /// be evaluated when read ([`Snapshot::health`]).
    pub fn snapshot(&self, now: Now) -> Snapshot {
        let mut parts = vec![self.builtin_families()];
        self.statsd.snapshot(now, &mut parts);
        self.snapshot_of(parts, now)
    }

    /// [`Aggregator::snapshot`], sharing the parts of the StatsD families that did not change
    /// since the last call with the snapshot it made: what the aggregating task publishes.
    pub fn next_snapshot(&mut self, now: Now) -> Snapshot {
        let mut parts = vec![self.builtin_families()];
        self.statsd.snapshot_reusing(now, &mut parts);
        self.snapshot_of(parts, now)
    }

    /// The families of jobs, calls, workers, checks and events (a few, built every time).
    fn builtin_families(&self) -> Arc<[SnapshotFamily]> {
        let mut builtin = Vec::new();
        self.jobs.snapshot(&mut builtin);
        self.calls.snapshot(&mut builtin);
        self.workers.snapshot(&mut builtin);
        self.checks.snapshot(&mut builtin);
        self.events.snapshot(&mut builtin);
        builtin.into()
    }

    fn snapshot_of(&self, parts: Vec<Arc<[SnapshotFamily]>>, now: Now) -> Snapshot {
        Snapshot {
            epoch: 0,
            taken_at: now.unix_seconds(),
            families: Families::new(parts),
            accounts: self.accounting.accounts(),
            lines: self.tally.clone(),
            jobs: self.jobs.watched(),
            workers: self.workers.watched(),
        }
    }
}

/// Whether the aggregator takes a parsed line, and if not why: the parser's reason, or
/// `negative_counter`. A counter increment below zero is valid StatsD (what `decrement` sends)
/// but a Prometheus counter only goes up: the whole line is rejected. UDP receive threads call
/// this too when they parse ([`crate::ingest::parsed`]), so a line counts the same either way.
pub(crate) fn check(line: Result<Line<'_>, ParseError>) -> Result<Line<'_>, ErrorKind> {
    match line {
        Ok(line) if is_negative_counter(&line) => Err(ErrorKind::NegativeCounter),
        Ok(line) => Ok(line),
        Err(error) => Err(error.kind()),
    }
}

fn is_negative_counter(line: &Line<'_>) -> bool {
    match line {
        Line::Metric(metric) if metric.kind == MetricKind::Counter => metric
            .values
            .iter(metric.kind)
            .any(|value| value.number < 0.0),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
