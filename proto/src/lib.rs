//! The heartwire line protocol.
//!
//! Apps tell heartwire what their jobs and outbound calls did, one line per event, many lines per
//! datagram. `PROTOCOL.md` beside this crate is the contract; this crate is its reference
//! implementation:
//!
//! - [`lines`] splits a datagram and parses each line into a borrowed [`Line`], or a
//!   [`ParseError`] whose [`ErrorKind`] is one of a small fixed set. One bad line never affects
//!   the others.
//! - [`encode`] writes lines, so that Rust apps never format them by hand.
//!
//! The crate does no I/O, never allocates while parsing, and never panics on any input.
//!
//! ```
//! use heartwire_proto::{lines, Line};
//!
//! let datagram = b"job.ok viewer-poll 0.3\nbogus line\npage.views:1|c|#env:prod\n";
//! let parsed: Vec<_> = lines(datagram).collect();
//! assert!(matches!(parsed[0], Ok(Line::JobOk(ref end)) if end.job == "viewer-poll"));
//! assert_eq!(parsed[1].as_ref().unwrap_err().kind().as_str(), "unknown_verb");
//! assert!(matches!(parsed[2], Ok(Line::Metric(ref m)) if m.name == "page.views"));
//! ```
//!
//! # Grammar (summary; `PROTOCOL.md` has every rule and decision)
//!
//! ```text
//! datagram  = line *( "\n" line ) [ "\n" ]          ; "\r\n" accepted, blank lines skipped
//! line      = native / metric / event / check
//! native    = verb 1*( " " arg ) *( " " key "=" value )
//! verb      = "job.start" / "job.ok" / "job.error" / "job.skip" / "job.progress"
//!           / "hb" / "worker.stop" / "http" / "hello"
//! name      = 1*128( ALPHA / DIGIT / "_" / "." / ":" / "/" / "-" )
//! metric    = statsd-name ":" value *( ":" value ) "|" type
//!             *( "|@" rate / "|#" tags / "|T" unix / "|c:" container / "|" unknown )
//! type      = "c" / "g" / "ms" / "h" / "d" / "s"
//! tags      = tag *( "," tag ) ; tag = key [ ":" value ]
//! event     = "_e{" len "," len "}:" title "|" text *( "|" event-field )
//! check     = "_sc|" statsd-name "|" ( "0" / "1" / "2" / "3" ) *( "|" check-field )
//! ```

mod encode;
mod error;
mod line;
mod parse;

pub use encode::{encode, encode_line};
pub use error::{ErrorKind, ParseError};
pub use line::{
    AlertType, CheckStatus, Dialect, Event, Heartbeat, Hello, Http, HttpStatus, JobEnd,
    JobProgress, JobSkip, JobStart, Line, Metric, MetricKind, ServiceCheck, Tag, TagIter, Tags,
    Value, ValueIter, Values, WorkerStop,
};
pub use parse::{is_name, is_statsd_name};

/// The longest line accepted, in bytes, without its terminator. Longer lines are rejected as
/// [`ErrorKind::TooLong`]; the rest of the datagram is still read.
pub const MAX_LINE_LEN: usize = 8192;
/// The longest native name (job, worker, service, endpoint, id, reason), in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// The longest StatsD metric or service-check name, in bytes.
pub const MAX_STATSD_NAME_LEN: usize = 255;
/// The most tags one line may carry.
pub const MAX_TAGS: usize = 64;
/// The longest tag (`key:value`), in bytes.
pub const MAX_TAG_LEN: usize = 256;
/// The smallest sample rate honoured: a value sent with `@rate` weighs at most `1 / MIN_SAMPLE_RATE`.
pub const MIN_SAMPLE_RATE: f64 = 1e-6;

/// Parses one line. A trailing `\n` or `\r\n` and blanks around the line are ignored; an empty
/// line is [`ErrorKind::Malformed`] here (but [`lines`] skips blank lines without a word).
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, ParseError> {
    parse::line(line)
}

/// Splits a datagram (or a chunk of a stream) into its lines and parses each one.
///
/// Blank lines are skipped and yield nothing; every other line yields exactly one item.
///
/// The text is checked to be UTF-8 once, as a whole; only if it is not is each line checked on
/// its own (so an invalid line is rejected alone, and its neighbours are still read).
pub fn lines(datagram: &[u8]) -> Lines<'_> {
    Lines {
        rest: match std::str::from_utf8(datagram) {
            Ok(text) => Rest::Text(text),
            Err(_) => Rest::Raw(raw_lines(datagram)),
        },
    }
}

/// Splits a datagram into its non-blank lines, without parsing them: for callers that want the
/// raw bytes of a rejected line (to log it).
pub fn raw_lines(datagram: &[u8]) -> RawLines<'_> {
    RawLines { rest: datagram }
}

/// Iterator over the parsed lines of a datagram; see [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: Rest<'a>,
}

/// The lines left: a text known to be UTF-8, or bytes each line of which is checked alone.
#[derive(Debug, Clone)]
enum Rest<'a> {
    Text(&'a str),
    Raw(RawLines<'a>),
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = match &mut self.rest {
            Rest::Text(text) => text,
            Rest::Raw(raw) => return raw.next().map(parse::line),
        };
        while !text.is_empty() {
            // `\n` is one byte of UTF-8: both sides of it are on character boundaries.
            let line = match memchr::memchr(b'\n', text.as_bytes()) {
                Some(end) => {
                    let line = &text[..end];
                    *text = &text[end + 1..];
                    line
                }
                None => std::mem::take(text),
            };
            if !is_blank(line.as_bytes()) {
                return Some(parse::text_line(line));
            }
        }
        None
    }
}

/// Iterator over the raw non-blank lines of a datagram; see [`raw_lines`].
#[derive(Debug, Clone)]
pub struct RawLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let line = match memchr::memchr(b'\n', self.rest) {
                Some(end) => {
                    let line = &self.rest[..end];
                    self.rest = &self.rest[end + 1..];
                    line
                }
                None => std::mem::take(&mut self.rest),
            };
            if !is_blank(line) {
                return Some(line);
            }
        }
        None
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// The examples in `PROTOCOL.md` are compiled and run as doctests, so the spec cannot drift from
/// the code.
#[cfg(doctest)]
#[doc = include_str!("../PROTOCOL.md")]
struct ProtocolExamples;
