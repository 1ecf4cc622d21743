//! `/metrics`: a snapshot and the self-metrics, in the Prometheus text format 0.0.4.
//!
//! The only module that knows Prometheus types. The [`Exposition`] owns the agent's registry
//! (the self-metrics of [`crate::telemetry`]; never the global default registry). A snapshot's
//! families are written by [`text`], straight from the snapshot; the registry's through the
//! `prometheus` crate's `TextEncoder`. Both escape label values (`\`, `"`, newline) so that no
//! input breaks the exposition; the encoder is also the writer's oracle in the tests.
//!
//! A page is the snapshot's stored families (rendered once per published snapshot and shared
//! by its readers, see [`page`]), then its verdicts evaluated at the time of the read, then the
//! registry's self-metrics. The aggregator's own counts (lines read and rejected, series held)
//! are part of the snapshot and rendered with it, so a scrape counts exactly the lines whose
//! effect it shows.

pub mod collector;
pub mod http;
pub mod page;
pub mod status;
pub mod text;

use std::collections::HashSet;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, Registry, TextEncoder};

use crate::aggregate::snapshot::Family;
use crate::aggregate::{Handle, Snapshot};
use crate::clock::Now;
use crate::telemetry::{self, Listening, Telemetry};

use self::page::Pages;
use self::text::TextWriter;

pub use self::collector::SnapshotCollector;

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The agent's registry and the renderer of `/metrics`. Clones share the registry.
#[derive(Debug, Clone)]
pub struct Exposition {
    registry: Registry,
    telemetry: Arc<Telemetry>,
    pages: Arc<Pages>,
}

/// A rendered `/metrics` response body.
#[derive(Debug)]
pub struct Body {
    /// The bytes to send, in order: the stored part is shared with the other readers of its
    /// snapshot, not copied.
    pub chunks: Vec<Bytes>,
    /// Whether they are gzip-compressed.
    pub gzip: bool,
}

impl Exposition {
    /// Creates the registry with the self-metrics, the process collector and build info.
    pub fn new() -> Result<(Exposition, Arc<Telemetry>), prometheus::Error> {
        let registry = Registry::new();
        let telemetry = Arc::new(Telemetry::new(&registry)?);
        telemetry::register_process(&registry)?;
        Ok((
            Exposition {
                registry,
                telemetry: telemetry.clone(),
                pages: Arc::default(),
            },
            telemetry,
        ))
    }

    /// The agent's own registry, for self-metrics kept outside [`Telemetry`] (config reloads).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Writes the whole page of `snapshot` at `now` to `out`, in one go (no shared render).
    pub fn render(
        &self,
        snapshot: &Snapshot,
        now: Now,
        out: &mut Vec<u8>,
    ) -> Result<(), prometheus::Error> {
        let own = self.registry.gather();
        let taken = names_of(&own);
        write_stored(snapshot, self.telemetry.listening_on(), &taken, out, |_| {});
        write_live(snapshot, now, own, out)
    }

    /// The page node_exporter's textfile collector should read, at `now`: the whole page less
    /// the `process_*` families, which node_exporter already exports about itself (a family
    /// collected twice is an error there, and one of the two sets would be silently dropped).
    /// `None` once the aggregator has failed.
    pub fn textfile(&self, handle: &Handle, out: &mut Vec<u8>) -> Option<io::Result<()>> {
        let snapshot = handle.snapshot()?;
        let own = self.registry.gather();
        write_stored(
            &snapshot,
            self.telemetry.listening_on(),
            &names_of(&own),
            out,
            |_| {},
        );
        let own = own
            .into_iter()
            .filter(|family| !family.name().starts_with("process_"))
            .collect();
        Some(write_live(&snapshot, Now::read(), own, out).map_err(io::Error::other))
    }

    /// The `/metrics` body of the published state, read now: gzip-compressed when `gzip`.
    /// The stored families are rendered once per snapshot for the plain readers and once,
    /// compressed as they are written, for the gzip ones (Prometheus), whatever the number of
    /// readers; a gzip render never holds the page uncompressed, only [`page::CHUNK`] of it.
    /// `None` once the aggregator has failed.
    pub async fn page(&self, handle: &Handle, gzip: bool) -> Option<io::Result<Body>> {
        let snapshot = handle.snapshot()?;
        let stored = self.pages.stored(&snapshot);
        let registry = self.registry.clone();
        // The listeners start before /metrics is served, and only a restart changes them.
        let listening = self.telemetry.listening_on();
        let pages = self.pages.clone();
        let page = async {
            if gzip {
                let deflated = stored
                    .deflated(&snapshot, move |snapshot| {
                        let own = registry.gather();
                        let mut deflater = pages.deflater();
                        let mut text = Vec::with_capacity(page::CHUNK + 64 * 1024);
                        let mut failed = Ok(());
                        write_stored(snapshot, listening, &names_of(&own), &mut text, |text| {
                            if text.len() >= page::CHUNK && failed.is_ok() {
                                failed = deflater.write(text);
                                text.clear();
                            }
                        });
                        failed?;
                        deflater.write(&text)?;
                        let deflated = deflater.finish()?;
                        pages.deflated(deflated.compressed_len());
                        Ok(deflated)
                    })
                    .await?;
                let live = self.live(&snapshot, Now::read())?;
                return Ok(Body {
                    chunks: deflated.gzip_chunks(&live)?.into(),
                    gzip: true,
                });
            }
            let text = stored
                .text(&snapshot, move |snapshot| {
                    let mut text = pages.buffer();
                    let own = registry.gather();
                    write_stored(snapshot, listening, &names_of(&own), &mut text, |_| {});
                    pages.rendered(text.len());
                    Ok(text)
                })
                .await?;
            let live = self.live(&snapshot, Now::read())?;
            Ok(Body {
                chunks: vec![text, live.into()],
                gzip: false,
            })
        };
        Some(page.await)
    }

    /// The part of a page rendered for every read: verdicts at `now`, then the self-metrics.
    fn live(&self, snapshot: &Snapshot, now: Now) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 * 1024);
        write_live(snapshot, now, self.registry.gather(), &mut out).map_err(io::Error::other)?;
        Ok(out)
    }

    /// What `/metrics` shows of `snapshot` at `now`, in the parts the page is written from: for
    /// the OTLP export, which converts them itself.
    pub fn parts<'a>(&self, snapshot: &'a Snapshot, now: Now) -> Parts<'a> {
        Parts {
            snapshot,
            health: snapshot.health(now).families,
            listening: self.telemetry.listening_on(),
            own: self.registry.gather(),
        }
    }

    /// The families `/metrics` shows at `now`, as `prometheus` structs: `snapshot`'s stored
    /// families and verdicts, then the self-metrics. The oracle of the text writer and of the
    /// OTLP conversion in the tests.
    pub fn families(&self, snapshot: &Snapshot, now: Now) -> Vec<MetricFamily> {
        self.parts(snapshot, now).into_families()
    }
}

/// What `/metrics` shows at one moment, in the order of the page: the snapshot's stored
/// families, its bookkeeping, its verdicts, then the registry's self-metrics. A snapshot family
/// whose name the registry has is left out ([`Parts::taken`]).
#[derive(Debug, Clone)]
pub struct Parts<'a> {
    /// The published state.
    pub snapshot: &'a Snapshot,
    /// Its verdict families at the moment of the read.
    pub health: Vec<Family>,
    /// The transports whose listener started (the bookkeeping lists their lines).
    pub listening: Listening,
    /// The registry's self-metrics.
    pub own: Vec<MetricFamily>,
}

impl Parts<'_> {
    /// The aggregator's bookkeeping families (lines read and rejected, series held).
    pub fn bookkeeping(&self) -> Vec<collector::Bookkeeping<'_>> {
        collector::bookkeeping(self.snapshot, self.listening)
    }

    /// The names of the self-metrics: a snapshot family of one of these names is left out (the
    /// aggregator reserves them, so this is a second guard, not a path taken).
    pub fn taken(&self) -> HashSet<&str> {
        names_of(&self.own)
    }

    /// Every family with series, as `prometheus` structs.
    pub fn into_families(self) -> Vec<MetricFamily> {
        let taken = self.taken();
        let mut families: Vec<MetricFamily> = SnapshotCollector::new(self.snapshot, self.listening)
            .collect()
            .into_iter()
            .chain(collector::families(&self.health))
            .filter(|family| !family.get_metric().is_empty() && !taken.contains(family.name()))
            .collect();
        families.extend(self.own);
        families
    }
}

/// The names of `families`.
fn names_of(families: &[MetricFamily]) -> HashSet<&str> {
    families.iter().map(MetricFamily::name).collect()
}

/// Writes the stored part of `snapshot`'s page: its families, then the aggregator's
/// bookkeeping, less any family whose name is `taken` by the registry (the aggregator reserves
/// those names, so this is a second guard, not a path taken). `after_family` may take the text
/// written so far out of `out` (to compress it) after each family.
fn write_stored(
    snapshot: &Snapshot,
    listening: Listening,
    taken: &HashSet<&str>,
    out: &mut Vec<u8>,
    mut after_family: impl FnMut(&mut Vec<u8>),
) {
    let mut writer = TextWriter::default();
    for family in &snapshot.families {
        if !taken.contains(&*family.name) {
            writer.family(family, out);
            after_family(out);
        }
    }
    for family in collector::bookkeeping(snapshot, listening) {
        if !taken.contains(family.name) {
            writer.simple(family.name, family.help, family.kind, family.series, out);
        }
    }
}

/// Writes the part of a page that depends on the time of the read: `snapshot`'s verdicts at
/// `now` (less any family the registry has), then the registry's families `own`.
fn write_live(
    snapshot: &Snapshot,
    now: Now,
    own: Vec<MetricFamily>,
    out: &mut Vec<u8>,
) -> Result<(), prometheus::Error> {
    let health = snapshot.health(now);
    let taken = names_of(&own);
    let mut writer = TextWriter::default();
    for family in &health.families {
        if !taken.contains(&*family.name) {
            writer.family(family, out);
        }
    }
    TextEncoder::new().encode(&own, out)
}

#[cfg(test)]
mod tests;
