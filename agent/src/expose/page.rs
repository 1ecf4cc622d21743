//! The `/metrics` page, shared by every reader of the same published snapshot.
//!
//! A page has two parts. The *stored* part (the snapshot's families: every StatsD series,
//! counter and histogram) is by far the larger; it changes only when the aggregator publishes,
//! so it is rendered once per snapshot (its epoch), and gzip-compressed once when a reader asks
//! for gzip, while concurrent readers of that epoch wait for the same render instead of doing
//! their own. The *live* part (verdicts evaluated at the time of the read, and the self-metrics)
//! is small and rendered for every request.
//!
//! The newest page is kept for [`KEEP`] after it is made, so that the readers of one moment (two
//! Prometheus replicas, a dashboard's burst) share it, then freed: between scrapes the agent
//! holds no rendered page, only the snapshot it is rendered from. A newer page frees the older
//! one at once (but for the readers still sending it), so pages never pile up, however fast the
//! state changes and readers come. The stored part of 10 000
//! series with histograms is megabytes, more than the series themselves (issue 16).
//!
//! The gzip body is one standard gzip member all the same: the stored part is compressed as a
//! raw deflate stream ending with a sync flush (byte-aligned, not final), the live part as a
//! second deflate stream that ends the member, and the trailer's CRC-32 is the combination of
//! the two parts' CRCs. Any gzip reader decodes it; none needs multi-member support.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use tokio::sync::OnceCell;

use crate::aggregate::Snapshot;

/// How long a page is kept after it is made, for the readers that come at about the same time.
pub const KEEP: Duration = Duration::from_secs(2);

/// The text a streaming render holds before compressing it (see [`Deflater`]).
pub const CHUNK: usize = 256 * 1024;

/// gzip's fixed header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// The stored part of the page of one snapshot, rendered at most once.
#[derive(Debug)]
pub struct Stored {
    /// The epoch of the snapshot it belongs to. Not the snapshot itself: a page kept after its
    /// readers left must not keep its snapshot alive beside the newer one the aggregator
    /// publishes (at 110 000 series, megabytes).
    epoch: u64,
    text: OnceCell<Bytes>,
    gzip: OnceCell<Arc<Deflated>>,
}

impl Stored {
    fn new(snapshot: &Snapshot) -> Stored {
        Stored {
            epoch: snapshot.epoch,
            text: OnceCell::new(),
            gzip: OnceCell::new(),
        }
    }

    /// The rendered text; `render` runs once per snapshot, on a blocking thread, however many
    /// readers ask at once.
    pub async fn text<F>(&self, snapshot: &Arc<Snapshot>, render: F) -> io::Result<Bytes>
    where
        F: FnOnce(&Snapshot) -> io::Result<Vec<u8>> + Send + 'static,
    {
        debug_assert_eq!(snapshot.epoch, self.epoch);
        let snapshot = snapshot.clone();
        self.text
            .get_or_try_init(|| async move {
                let text = tokio::task::spawn_blocking(move || render(&snapshot))
                    .await
                    .map_err(io::Error::other)??;
                Ok(Bytes::from(text))
            })
            .await
            .cloned()
    }

    /// The text compressed, for the gzip bodies of this snapshot: `render` runs once per
    /// snapshot, on a blocking thread, however many readers ask at once.
    pub async fn deflated<F>(
        &self,
        snapshot: &Arc<Snapshot>,
        render: F,
    ) -> io::Result<Arc<Deflated>>
    where
        F: FnOnce(&Snapshot) -> io::Result<Deflated> + Send + 'static,
    {
        debug_assert_eq!(snapshot.epoch, self.epoch);
        let snapshot = snapshot.clone();
        self.gzip
            .get_or_try_init(|| async move {
                let deflated = tokio::task::spawn_blocking(move || render(&snapshot))
                    .await
                    .map_err(io::Error::other)??;
                Ok(Arc::new(deflated))
            })
            .await
            .cloned()
    }
}

/// The stored part of the newest snapshot a reader asked for, so that readers share it while
/// any of them holds it (and for [`KEEP`] after it is made).
#[derive(Debug, Default)]
pub struct Pages {
    current: Mutex<Current>,
    /// The length of the last stored part rendered: the next one is about as long, and a
    /// buffer of that size from the start is not copied as it grows.
    last_length: AtomicUsize,
    /// The same for the last stored part compressed.
    last_deflated: AtomicUsize,
}

impl Pages {
    /// A buffer for the next stored part: the last one's size, and a little more.
    pub fn buffer(&self) -> Vec<u8> {
        let last = self.last_length.load(Ordering::Relaxed);
        Vec::with_capacity((last + last / 16).max(64 * 1024))
    }

    /// A compressor for the next stored part, its output sized as the last one's.
    pub fn deflater(&self) -> Deflater {
        let last = self.last_deflated.load(Ordering::Relaxed);
        Deflater::new(last + last / 16)
    }

    /// Records the length of a stored part just compressed.
    pub fn deflated(&self, length: usize) {
        self.last_deflated.store(length, Ordering::Relaxed);
    }

    /// Records the length of a stored part just rendered.
    pub fn rendered(&self, length: usize) {
        self.last_length.store(length, Ordering::Relaxed);
    }

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

/// A text compressed as a raw deflate stream that ends with a sync flush, so that another
/// stream can follow it inside one gzip member.
#[derive(Debug)]
pub struct Deflated {
    /// The gzip header and the compressed text.
    member: Bytes,
    crc: crc32fast::Hasher,
    length: u64,
}

impl Deflated {
    /// The length of the compressed text, with the gzip header.
    pub fn compressed_len(&self) -> usize {
        self.member.len()
    }

    /// Compresses `text` (fast level: this runs once per published snapshot of a page that
    /// can be megabytes, and the agent's CPU is the app's too).
    pub fn new(text: &[u8]) -> io::Result<Deflated> {
        let mut deflater = Deflater::new(text.len() / 4);
        deflater.write(text)?;
        deflater.finish()
    }

    /// The gzip body of this text followed by `tail`: the compressed text (shared, not copied)
    /// and the rest of the member.
    pub fn gzip_chunks(&self, tail: &[u8]) -> io::Result<[Bytes; 2]> {
        let mut rest = deflate(tail, FlushCompress::Finish)?;
        let mut crc = self.crc.clone();
        let mut tail_crc = crc32fast::Hasher::new();
        tail_crc.update(tail);
        crc.combine(&tail_crc);
        // ISIZE is the length modulo 2^32 (RFC 1952).
        let length = (self.length + tail.len() as u64) as u32;
        rest.extend_from_slice(&crc.finalize().to_le_bytes());
        rest.extend_from_slice(&length.to_le_bytes());
        Ok([self.member.clone(), rest.into()])
    }
}

/// Compresses a text as it is written, so that a large page never exists whole uncompressed:
/// the renderer hands over its buffer every [`CHUNK`] bytes or so.
#[derive(Debug)]
pub struct Deflater {
    compress: Compress,
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    length: u64,
}

impl Deflater {
    /// A compressor whose output starts with room for `expected` bytes.
    pub fn new(expected: usize) -> Deflater {
        let mut out = Vec::with_capacity(GZIP_HEADER.len() + expected + 1024);
        out.extend_from_slice(&GZIP_HEADER);
        Deflater {
            compress: Compress::new(Compression::fast(), false),
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

    /// Ends the stream with a sync flush (byte-aligned, open for the live part).
    pub fn finish(mut self) -> io::Result<Deflated> {
        self.run(&[], FlushCompress::Sync)?;
        Ok(Deflated {
            member: self.out.into(),
            crc: self.crc,
            length: self.length,
        })
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
    let mut compress = Compress::new(Compression::fast(), false);
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
            let body = deflated.gzip_chunks(tail).unwrap().concat();
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
    fn a_text_compressed_as_it_is_written_makes_the_same_body_in_shared_chunks() {
        let stored: Vec<u8> = (0..100_000u32)
            .flat_map(|i| format!("x_{}{{a=\"{}\"}} {}\n", i % 31, i % 7, i).into_bytes())
            .collect();
        let mut deflater = Deflater::new(0);
        for piece in stored.chunks(CHUNK / 3 + 17) {
            deflater.write(piece).unwrap();
        }
        let deflated = deflater.finish().unwrap();
        let [member, rest] = deflated.gzip_chunks(b"live 1\n").unwrap();
        let body = [&member[..], &rest[..]].concat();
        let mut expected = stored.clone();
        expected.extend_from_slice(b"live 1\n");
        assert_eq!(gunzip(&body), expected);
        // The compressed text is shared by every body, not copied.
        let [again, _] = deflated.gzip_chunks(b"").unwrap();
        assert_eq!(again.as_ptr(), member.as_ptr());
    }

    #[test]
    fn an_empty_stored_part_still_makes_a_valid_body() {
        let body = Deflated::new(b"")
            .unwrap()
            .gzip_chunks(b"up 1\n")
            .unwrap()
            .concat();
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
