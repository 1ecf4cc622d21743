//! `/metrics`: a snapshot and the self-metrics, in the Prometheus text format 0.0.4.
//!
//! The only module that knows Prometheus types. The [`Exposition`] owns the agent's registry
//! (the self-metrics of [`crate::telemetry`]; never the global default registry). A snapshot's
//! families are written by [`text`], straight from the snapshot; the registry's through the
//! `prometheus` crate's `TextEncoder`. Both escape label values (`\`, `"`, newline) so that no
//! input breaks the exposition; the encoder is also the writer's oracle in the tests.
//!
//! A page is the snapshot's stored families (sent as they are rendered, a [`page::CHUNK`] at a
//! time; compressed once per published snapshot for all its gzip readers, see [`page`]), then
//! its verdicts evaluated at the time of the read, then the registry's self-metrics. The
//! aggregator's own counts (lines read and rejected, series held) are part of the snapshot and
//! rendered with it, so a scrape counts exactly the lines whose effect it shows.

pub mod collector;
pub mod http;
pub mod page;
pub mod status;
pub mod text;

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
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

/// A `/metrics` response body.
#[derive(Debug)]
pub struct Body {
    /// The bytes to send.
    pub content: Content,
    /// Whether they are gzip-compressed.
    pub gzip: bool,
}

/// The bytes of a [`Body`].
pub enum Content {
    /// A page of at most [`page::CHUNK`] or so, whole: its length is known.
    Whole(Vec<Bytes>),
    /// A larger page, as it is rendered (or, gzip, as its shared compression is made).
    Stream(Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>),
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Whole(chunks) => f.debug_tuple("Whole").field(chunks).finish(),
            Content::Stream(_) => f.write_str("Stream"),
        }
    }
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
        write_stored(snapshot, self.telemetry.listening_on(), &taken, out);
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
        );
        let own = own
            .into_iter()
            .filter(|family| !family.name().starts_with("process_"))
            .collect();
        Some(write_live(&snapshot, Now::read(), own, out).map_err(io::Error::other))
    }

    /// The `/metrics` body of the published state, read now: gzip-compressed when `gzip`.
    /// Plain, the stored families are rendered for this read a [`page::CHUNK`] at a time as
    /// the body is sent (a page that fits in one is sent whole, with its length). gzip, they are
    /// rendered and compressed once per snapshot, whatever the number of readers, and every
    /// reader sends the shared compressed pieces as they are made (see [`page`]). Either way
    /// the page is never held whole uncompressed. `None` once the aggregator has failed.
    pub async fn page(&self, handle: &Handle, gzip: bool) -> Option<io::Result<Body>> {
        let snapshot = handle.snapshot()?;
        // The listeners start before /metrics is served, and only a restart changes them.
        let listening = self.telemetry.listening_on();
        Some(if gzip {
            Ok(self.gzip_page(snapshot, listening))
        } else {
            self.plain_page(snapshot, listening)
        })
    }

    /// A gzip body following the compressed stored part of `snapshot`'s page, whose render the
    /// first reader of the snapshot starts; the live part is compressed at the end.
    fn gzip_page(&self, snapshot: Arc<Snapshot>, listening: Listening) -> Body {
        let stored = self.pages.stored(&snapshot);
        let registry = self.registry.clone();
        let spool = stored.spool(&snapshot, move |snapshot, spool| {
            let own = registry.gather();
            let taken = names_of(&own);
            let mut cursor = StoredCursor::default();
            let mut deflater = page::Deflater::new();
            let mut text = Vec::with_capacity(page::PIECE);
            loop {
                let done = cursor.write(snapshot, listening, &taken, page::CHUNK, &mut text);
                deflater.write(&text)?;
                text.clear();
                spool.push(deflater.take().into());
                if done {
                    let (last, ending) = deflater.finish()?;
                    spool.push(last.into());
                    return Ok(ending);
                }
            }
        });
        let read = GzipRead {
            reader: spool.reader(),
            stored: Some(stored),
            snapshot,
            exposition: self.clone(),
        };
        Body {
            content: Content::Stream(Box::pin(futures_util::stream::try_unfold(
                read,
                GzipRead::next,
            ))),
            gzip: true,
        }
    }

    /// A plain body rendered as it is sent: whole if the page fits in one piece.
    fn plain_page(&self, snapshot: Arc<Snapshot>, listening: Listening) -> io::Result<Body> {
        let taken: HashSet<String> = names_of(&self.registry.gather())
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut cursor = StoredCursor::default();
        let mut first = Vec::with_capacity(page::PIECE);
        if cursor.write(&snapshot, listening, &taken, page::CHUNK, &mut first) {
            let live = self.live(&snapshot, Now::read())?;
            return Ok(Body {
                content: Content::Whole(vec![first.into(), live.into()]),
                gzip: false,
            });
        }
        let read = PlainRead {
            snapshot,
            cursor,
            taken,
            listening,
            exposition: self.clone(),
            live_sent: false,
        };
        let rest = futures_util::stream::try_unfold(read, |mut read| {
            let piece = read.next();
            async move { Ok(piece?.map(|piece| (piece, read))) }
        });
        let body = futures_util::stream::once(async { Ok(Bytes::from(first)) }).chain(rest);
        Ok(Body {
            content: Content::Stream(Box::pin(body)),
            gzip: false,
        })
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
/// those names, so this is a second guard, not a path taken).
fn write_stored(
    snapshot: &Snapshot,
    listening: Listening,
    taken: &HashSet<&str>,
    out: &mut Vec<u8>,
) {
    StoredCursor::default().write(snapshot, listening, taken, usize::MAX, out);
}

/// A render of a snapshot's stored part (see [`write_stored`]) that stops after any series and
/// goes on from there later: a page is written [`page::CHUNK`] at a time.
#[derive(Debug, Default)]
struct StoredCursor {
    writer: TextWriter,
    /// The next family of the snapshot's to write (its part, its index in the part), and its
    /// next series.
    part: usize,
    family: usize,
    series: usize,
    done: bool,
}

impl StoredCursor {
    /// Writes the stored part on from where it stopped until `out` holds `limit` bytes or more
    /// (a series is never cut) or the part ends, with the bookkeeping families (a few small
    /// ones) in one go at the end. Returns whether the part is done.
    fn write<T: Borrow<str> + Eq + Hash>(
        &mut self,
        snapshot: &Snapshot,
        listening: Listening,
        taken: &HashSet<T>,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if self.done {
            return true;
        }
        let parts = snapshot.families.parts();
        while let Some(part) = parts.get(self.part) {
            let Some(family) = part.get(self.family) else {
                (self.part, self.family) = (self.part + 1, 0);
                continue;
            };
            if out.len() >= limit {
                return false;
            }
            if !taken.contains(&*family.name) {
                self.series = self.writer.family_from(family, self.series, limit, out);
                if self.series < family.series.len() {
                    return false;
                }
            }
            self.family += 1;
            self.series = 0;
        }
        for family in collector::bookkeeping(snapshot, listening) {
            if !taken.contains(family.name) {
                (self.writer).simple(family.name, family.help, family.kind, family.series, out);
            }
        }
        self.done = true;
        true
    }
}

/// A gzip page being sent: the shared compressed stored part it follows (held until it is
/// all sent), then its own live part.
struct GzipRead {
    reader: page::SpoolReader,
    stored: Option<Arc<page::Stored>>,
    snapshot: Arc<Snapshot>,
    exposition: Exposition,
}

impl GzipRead {
    /// The next piece of the body; `None` when all is sent.
    async fn next(mut self) -> io::Result<Option<(Bytes, GzipRead)>> {
        if self.stored.is_none() {
            return Ok(None);
        }
        match self.reader.next().await? {
            page::Piece::Data(piece) => Ok(Some((piece, self))),
            page::Piece::End(ending) => {
                // The rest of the member: the live part read now, compressed, and the trailer.
                let live = self.exposition.live(&self.snapshot, Now::read())?;
                let tail = Bytes::from(ending.tail(&live)?);
                self.stored = None;
                Ok(Some((tail, self)))
            }
        }
    }
}

/// A plain page being sent: its snapshot, and where its render is.
struct PlainRead {
    snapshot: Arc<Snapshot>,
    cursor: StoredCursor,
    taken: HashSet<String>,
    listening: Listening,
    exposition: Exposition,
    live_sent: bool,
}

impl PlainRead {
    /// The next piece of the page: a [`page::CHUNK`] of the stored part, then the live part
    /// read now; `None` when all is sent.
    fn next(&mut self) -> io::Result<Option<Bytes>> {
        if self.live_sent {
            return Ok(None);
        }
        let mut piece = Vec::with_capacity(page::PIECE);
        let (snapshot, listening) = (&self.snapshot, self.listening);
        if !(self.cursor).write(snapshot, listening, &self.taken, page::CHUNK, &mut piece) {
            return Ok(Some(piece.into()));
        }
        self.live_sent = true;
        write_live(
            snapshot,
            Now::read(),
            self.exposition.registry.gather(),
            &mut piece,
        )
        .map_err(io::Error::other)?;
        Ok(Some(piece.into()))
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
