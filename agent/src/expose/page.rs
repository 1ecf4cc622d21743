//! The `/metrics` page, a [`CHUNK`] at a time.
//!
//! A page has two parts. The *stored* part (the snapshot's families: every StatsD series,
//! counter and histogram) is by far the larger; it changes only when the aggregator publishes.
//! The *live* part (verdicts evaluated at the time of the read, and the self-metrics) is small
//! and rendered for every request, after the stored part.
//!
//! A page is never held whole uncompressed: its stored part is written [`CHUNK`] by [`CHUNK`]
//! and each piece is sent (plain) or compressed (gzip) before the next is written, so that a
//! scrape of 110 000 series (17.9 MB of text) holds a few [`CHUNK`]s of it, and the
//! client reads the first piece while the next is written.
//!
//! Plain readers (curl, a person) render their own page this way. gzip readers (Prometheus)
//! share one compressed stored part per snapshot (its epoch): the first reader of an epoch
//! starts its render on a blocking thread, and every reader of that epoch follows the
//! [`Spool`] as it grows, so concurrent scrapes cost one render, however many there are.
//!
//! The newest compressed part is kept for [`KEEP`] after it is made, so that the readers of one
//! moment (two Prometheus replicas, a dashboard's burst) share it, then freed: between scrapes
//! the agent holds no rendered page, only the snapshot it is rendered from. A newer part frees
//! the older one at once (but for the readers still sending it), so parts never pile up,
//! however fast the state changes and readers come.
//!
//! The gzip body is one standard gzip member all the same: the stored part is compressed as a
//! raw deflate stream ending with a sync flush (byte-aligned, not final), the live part as a
//! second deflate stream that ends the member, and the trailer's CRC-32 is the combination of
//! the two parts' CRCs. Any gzip reader decodes it; none needs multi-member support.

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use tokio::sync::watch;

use crate::aggregate::Snapshot;

/// How long a compressed stored part is kept after it is made, for the readers that come at
/// about the same time.
pub const KEEP: Duration = Duration::from_secs(2);

/// The text a render writes before it is sent or compressed (a series is never cut, so a piece
/// may be a little longer). Below glibc's mmap threshold (see `app::tune_malloc`) with
/// [`PIECE`]'s room to spare, so that a piece's buffer is taken from the heap the last piece
/// went back to, not mapped and faulted in afresh.
pub const CHUNK: usize = 64 * 1024;

/// The room a piece's buffer is made with: a [`CHUNK`], and the series that ends it.
pub const PIECE: usize = CHUNK + 16 * 1024;

/// The compression level of `/metrics`: zlib-rs's level 2 (zlib-ng's `deflate_fast`) makes a
/// page of 10 000 tagged series a third smaller than level 1 (`deflate_quick`) for 10 % to 30 %
/// more time (6.7 MB of tagged histograms: 7.6 % of the text against 11.5 %; the load
/// benchmark's 4.2 MB page: 263 KB in 4.3 ms against 390 KB in 3.3 ms), and both are several
/// times faster than the levels above (level 3: twice the time of level 2, barely smaller).
const LEVEL: Compression = Compression::new(2);

/// gzip's fixed header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// The compressed stored part of the page of one snapshot, made at most once.
#[derive(Debug)]
pub struct Stored {
    /// The epoch of the snapshot it belongs to. Not the snapshot itself: a page kept after its
    /// readers left must not keep its snapshot alive beside the newer one the aggregator
    /// publishes (at 110 000 series, megabytes).
    epoch: u64,
    gzip: OnceLock<Arc<Spool>>,
}

impl Stored {
    fn new(snapshot: &Snapshot) -> Stored {
        Stored {
            epoch: snapshot.epoch,
            gzip: OnceLock::new(),
        }
    }

    /// The compressed stored part of `snapshot`'s page, as far as it is made: the first reader
    /// starts `render` on a blocking thread, writing into the spool; every reader of the epoch
    /// follows the same spool. Needs a Tokio runtime.
    pub fn spool<F>(&self, snapshot: &Arc<Snapshot>, render: F) -> Arc<Spool>
    where
        F: FnOnce(&Snapshot, &SpoolWriter) -> io::Result<Ending> + Send + 'static,
    {
        debug_assert_eq!(snapshot.epoch, self.epoch);
        self.gzip
            .get_or_init(|| {
                let spool = Arc::new(Spool::default());
                let writer = SpoolWriter {
                    spool: spool.clone(),
                };
                let snapshot = snapshot.clone();
                tokio::task::spawn_blocking(move || {
                    let ending = render(&snapshot, &writer);
                    writer.end(ending.map_err(|error| error.to_string()));
                });
                spool
            })
            .clone()
    }
}

/// A compressed stored part as it is made: its pieces in order, then how it ended. Readers
/// follow it while it grows.
#[derive(Debug)]
pub struct Spool {
    made: watch::Sender<Spooled>,
}

impl Default for Spool {
    fn default() -> Spool {
        Spool {
            made: watch::Sender::new(Spooled::default()),
        }
    }
}

#[derive(Debug, Default)]
struct Spooled {
    pieces: Vec<Bytes>,
    end: Option<Result<Ending, String>>,
}

/// What a reader gets from a [`Spool`].
#[derive(Debug)]
pub enum Piece {
    /// The next piece of the compressed stored part, shared by every reader.
    Data(Bytes),
    /// The stored part is all sent: what its gzip member's tail is made from.
    End(Ending),
}

impl Spool {
    /// A reader of the spool from its first piece.
    pub fn reader(self: &Arc<Self>) -> SpoolReader {
        SpoolReader {
            made: self.made.subscribe(),
            next: 0,
        }
    }
}

/// Reads a [`Spool`] in order, waiting for pieces not made yet.
#[derive(Debug)]
pub struct SpoolReader {
    made: watch::Receiver<Spooled>,
    next: usize,
}

impl SpoolReader {
    /// The next piece, once it is made; an error if the render failed.
    pub async fn next(&mut self) -> io::Result<Piece> {
        loop {
            {
                let spooled = self.made.borrow_and_update();
                if let Some(piece) = spooled.pieces.get(self.next) {
                    self.next += 1;
                    return Ok(Piece::Data(piece.clone()));
                }
                match &spooled.end {
                    Some(Ok(ending)) => return Ok(Piece::End(ending.clone())),
                    Some(Err(error)) => return Err(io::Error::other(error.clone())),
                    None => {}
                }
            }
            // The sender lives in the spool, which this reader's page holds: it is not dropped.
            self.made.changed().await.map_err(io::Error::other)?;
        }
    }
}

/// The render's end of a [`Spool`]. Dropped without an ending (the render panicked), it ends
/// the spool with an error, so that no reader waits for ever.
#[derive(Debug)]
pub struct SpoolWriter {
    spool: Arc<Spool>,
}

impl SpoolWriter {
    /// Adds a piece for the readers.
    pub fn push(&self, piece: Bytes) {
        if !piece.is_empty() {
            self.spool
                .made
                .send_modify(|spooled| spooled.pieces.push(piece));
        }
    }

    fn end(&self, end: Result<Ending, String>) {
        self.spool.made.send_modify(|spooled| {
            spooled.end.get_or_insert(end);
        });
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        self.end(Err("the page's render stopped".to_owned()));
    }
}

/// The compressed stored part of the newest snapshot a reader asked for, so that readers share
/// it while any of them holds it (and for [`KEEP`] after it is made).
#[derive(Debug, Default)]
pub struct Pages {
    current: Mutex<Current>,
}

impl Pages {
    /// The stored part of `snapshot`'s page: the one already made for its epoch, if a reader
    /// still holds it or it was made less than [`KEEP`] ago. An older snapshot (a reader that
    /// was slow to ask) never replaces a newer one.
    pub fn stored(self: &Arc<Self>, snapshot: &Snapshot) -> Arc<Stored> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match current.page.upgrade() {
            Some(page) if page.epoch == snapshot.epoch => page,
            Some(page) if page.epoch > snapshot.epoch => Arc::new(Stored::new(snapshot)),
            _ => {
                let page = Arc::new(Stored::new(snapshot));
                current.page = Arc::downgrade(&page);
                // The page kept until now is let go: only its readers hold it still.
                current.kept = Some(page.clone());
                self.let_go_later(&page);
                page
            }
        }
    }

    /// Lets `page` go after [`KEEP`], if it is still the one kept then, on the runtime (there
    /// is always one when serving; without one the page is kept until a newer one comes).
    fn let_go_later(self: &Arc<Self>, page: &Arc<Stored>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pages, page) = (Arc::downgrade(self), Arc::downgrade(page));
        runtime.spawn(async move {
            tokio::time::sleep(KEEP).await;
            let Some(pages) = pages.upgrade() else {
                return;
            };
            let mut current = pages.current.lock().unwrap_or_else(PoisonError::into_inner);
            if current
                .kept
                .as_ref()
                .is_some_and(|kept| std::ptr::eq(Arc::as_ptr(kept), page.as_ptr()))
            {
                current.kept = None;
            }
        });
    }
}

/// The newest page: shared while a reader holds it, kept for [`KEEP`] after it is made.
#[derive(Debug, Default)]
struct Current {
    page: Weak<Stored>,
    kept: Option<Arc<Stored>>,
}

/// What the tail of a gzip member is made from, once its first stream (the stored part) ended
/// with a sync flush: that text's CRC-32 and length.
#[derive(Debug, Clone)]
pub struct Ending {
    crc: crc32fast::Hasher,
    length: u64,
}

impl Ending {
    /// The rest of the gzip member after the stored part: `tail` compressed as the final
    /// stream, then the CRC-32 and length of the whole text.
    pub fn tail(&self, tail: &[u8]) -> io::Result<Vec<u8>> {
        let mut rest = deflate(tail, FlushCompress::Finish)?;
        let mut crc = self.crc.clone();
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(tail);
        crc.combine(&tail_crc);
        // ISIZE is the length modulo 2^32 (RFC 1952).
        let length = (self.length + tail.len() as u64) as u32;
        rest.extend_from_slice(&crc.finalize().to_le_bytes());
        rest.extend_from_slice(&length.to_le_bytes());
        Ok(rest)
    }
}

/// A text compressed whole, as the first stream of a gzip member: for the benchmarks and
/// tests.
#[derive(Debug)]
pub struct Deflated {
    /// The gzip header and the compressed text.
    pub member: Bytes,
    /// What the member's tail is made from.
    pub ending: Ending,
}

impl Deflated {
    /// Compresses `text`.
    pub fn new(text: &[u8]) -> io::Result<Deflated> {
        let mut deflater = Deflater::new();
        deflater.write(text)?;
        let mut member = deflater.take();
        let (last, ending) = deflater.finish()?;
        member.extend_from_slice(&last);
        Ok(Deflated {
            member: member.into(),
            ending,
        })
    }

    /// The whole gzip body of this text followed by `tail`.
    pub fn gzip_body(&self, tail: &[u8]) -> io::Result<Vec<u8>> {
        Ok([&self.member[..], &self.ending.tail(tail)?].concat())
    }
}

/// Compresses a text as it is written, so that a large page never exists whole uncompressed:
/// the renderer hands over its text every [`CHUNK`] bytes or so and takes the output made so
/// far (a fast [`LEVEL`]: this runs once per published snapshot of a page that can be
/// megabytes, and the agent's CPU is the app's too).
#[derive(Debug)]
pub struct Deflater {
    compress: Compress,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    length: u64,
}

impl Default for Deflater {
    fn default() -> Deflater {
        Deflater::new()
    }
}

impl Deflater {
    /// A compressor whose first output is the gzip header.
    pub fn new() -> Deflater {
        let mut out = Vec::with_capacity(CHUNK / 4);
        out.extend_from_slice(&GZIP_HEADER);
        Deflater {
            compress: Compress::new(LEVEL, false),
            out,
            crc: crc32fast::Hasher::new(),
            length: 0,
        }
    }

    /// Compresses `text`, the next part of the stream.
    pub fn write(&mut self, text: &[u8]) -> io::Result<()> {
        self.crc.update(text);
        self.length += text.len() as u64;
        self.run(text, FlushCompress::None)
    }

    /// The output made since the last take.
    pub fn take(&mut self) -> Vec<u8> {
        let room = self.out.capacity().max(4096);
        std::mem::replace(&mut self.out, Vec::with_capacity(room))
    }

    /// Ends the stream with a sync flush (byte-aligned, open for the live part): the last
    /// output, and what the member's tail is made from.
    pub fn finish(mut self) -> io::Result<(Vec<u8>, Ending)> {
        self.run(&[], FlushCompress::Sync)?;
        Ok((
            self.out,
            Ending {
                crc: self.crc,
                length: self.length,
            },
        ))
    }

    fn run(&mut self, data: &[u8], flush: FlushCompress) -> io::Result<()> {
        let start = self.compress.total_in();
        loop {
            let consumed = usize::try_from(self.compress.total_in() - start).unwrap_or(data.len());
            if self.out.capacity() - self.out.len() < 1024 {
                self.out.reserve(self.out.capacity().max(4096));
            }
            self.compress
                .compress_vec(&data[consumed.min(data.len())..], &mut self.out, flush)
                .map_err(io::Error::other)?;
            let all_in = self.compress.total_in() - start == data.len() as u64;
            // zlib is done with a flush (or with its input) when it leaves output space unused.
            if all_in && self.out.len() < self.out.capacity() {
                return Ok(());
            }
        }
    }
}

/// `data` as a raw deflate stream, ended by `flush` (`Sync`: byte-aligned and open, `Finish`:
/// the final block).
fn deflate(data: &[u8], flush: FlushCompress) -> io::Result<Vec<u8>> {
    let mut compress = Compress::new(LEVEL, false);
    let mut out = Vec::with_capacity(data.len() / 4 + 1024);
    loop {
        let consumed = usize::try_from(compress.total_in()).unwrap_or(data.len());
        let status = compress
            .compress_vec(&data[consumed.min(data.len())..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = compress.total_in() == data.len() as u64;
        // zlib is done with a flush when it leaves output space unused.
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => all_in && out.len() < out.capacity(),
        };
        if done {
            return Ok(out);
        }
        out.reserve(out.capacity().max(4096));
    }
}

/// Whether an `Accept-Encoding` header value accepts gzip (`gzip` or `*` with a q above 0).
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality > 0.0
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // GzDecoder reads one member only: the spliced body must be exactly one.
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn a_spliced_gzip_body_is_one_member_holding_both_parts() {
        let stored: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("series_{}{{shard=\"{}\"}} {}\n", i % 97, i % 13, i).into_bytes())
            .collect();
        let deflated = Deflated::new(&stored).unwrap();
        for tail in [&b""[..], b"live 1\n", &vec![b'x'; 300_000]] {
            let body = deflated.gzip_body(tail).unwrap();
            let mut expected = stored.clone();
            expected.extend_from_slice(tail);
            assert_eq!(gunzip(&body), expected);
            assert!(body.len() < expected.len() / 3, "it compresses");
        }
    }

    fn snapshot(epoch: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            epoch,
            ..Snapshot::empty()
        })
    }

    #[tokio::test(start_paused = true)]
    async fn readers_of_one_epoch_share_a_page_which_is_freed_after_keep() {
        let pages = Arc::new(Pages::default());
        let first = pages.stored(&snapshot(1));
        let weak = Arc::downgrade(&first);
        assert!(
            Arc::ptr_eq(&first, &pages.stored(&snapshot(1))),
            "shared while held"
        );
        drop(first);
        // Nobody holds it now, but it was made less than KEEP ago.
        tokio::time::sleep(KEEP / 2).await;
        assert!(Arc::ptr_eq(
            &weak.upgrade().unwrap(),
            &pages.stored(&snapshot(1))
        ));
        tokio::time::sleep(KEEP).await;
        assert!(weak.upgrade().is_none(), "freed once KEEP has passed");
        // The next reader of the same epoch renders it again.
        let again = pages.stored(&snapshot(1));
        assert_eq!(again.epoch, 1);
        // An older snapshot never replaces the newer page.
        let newer = pages.stored(&snapshot(3));
        let _older = pages.stored(&snapshot(2));
        assert!(Arc::ptr_eq(&newer, &pages.stored(&snapshot(3))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_page_lets_the_older_go_at_once() {
        let pages = Arc::new(Pages::default());
        let older = Arc::downgrade(&pages.stored(&snapshot(1)));
        tokio::time::sleep(KEEP / 4).await;
        let newer = Arc::downgrade(&pages.stored(&snapshot(2)));
        assert!(
            older.upgrade().is_none(),
            "not kept once a newer page is made"
        );
        assert!(newer.upgrade().is_some(), "the newest is kept");
        // The older page's timer ends: the newer page stays until its own.
        tokio::time::sleep(KEEP * 3 / 4).await;
        assert!(newer.upgrade().is_some());
        tokio::time::sleep(KEEP / 2).await;
        assert!(newer.upgrade().is_none());
    }

    #[test]
    fn a_text_compressed_as_it_is_written_makes_one_member() {
        let stored: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("x_{}{{a=\"{}\"}} {}\n", i % 31, i % 7, i).into_bytes())
            .collect();
        let mut deflater = Deflater::new();
        let mut body = Vec::new();
        for piece in stored.chunks(CHUNK / 3 + 17) {
            deflater.write(piece).unwrap();
            body.extend(deflater.take());
        }
        let (last, ending) = deflater.finish().unwrap();
        body.extend(last);
        body.extend(ending.tail(b"live 1\n").unwrap());
        let mut expected = stored.clone();
        expected.extend_from_slice(b"live 1\n");
        assert_eq!(gunzip(&body), expected);
    }

    #[tokio::test]
    async fn readers_of_a_spool_share_its_pieces_and_wait_for_the_next() {
        let spool = Arc::new(Spool::default());
        let writer = SpoolWriter {
            spool: spool.clone(),
        };
        let (mut early, mut late) = (spool.reader(), spool.reader());
        writer.push(Bytes::from_static(b"one"));
        let Piece::Data(first) = early.next().await.unwrap() else {
            panic!("a piece was pushed");
        };
        // The early reader waits for the second piece until it is pushed.
        let waiting = tokio::spawn(async move { (early.next().await, early) });
        tokio::task::yield_now().await;
        writer.push(Bytes::from_static(b"two"));
        let (second, mut early) = waiting.await.unwrap();
        assert!(matches!(second.unwrap(), Piece::Data(piece) if piece == "two"));
        writer.end(Ok(Deflater::new().finish().unwrap().1));
        assert!(matches!(early.next().await.unwrap(), Piece::End(_)));
        // A later reader reads the same bytes, not a copy.
        let Piece::Data(again) = late.next().await.unwrap() else {
            panic!("the first piece");
        };
        assert_eq!(again.as_ptr(), first.as_ptr());
    }

    #[tokio::test]
    async fn a_render_that_stops_without_ending_fails_its_readers() {
        let spool = Arc::new(Spool::default());
        let mut reader = spool.reader();
        let writer = SpoolWriter {
            spool: spool.clone(),
        };
        let waiting = tokio::spawn(async move { reader.next().await });
        drop(writer);
        assert!(waiting.await.unwrap().is_err());
    }

    #[test]
    fn an_empty_stored_part_still_makes_a_valid_body() {
        let body = Deflated::new(b"").unwrap().gzip_body(b"up 1\n").unwrap();
        assert_eq!(gunzip(&body), b"up 1\n");
    }

    #[test]
    fn accept_encoding_is_read_with_its_quality() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, gzip;q=1.0, *;q=0.5"));
        assert!(accepts_gzip("br, *"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }
}
