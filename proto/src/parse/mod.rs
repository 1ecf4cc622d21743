//! The parser: one pass over a line, no allocation, never panics.
//!
//! Each function implements one rule of the grammar in `PROTOCOL.md` and is named after it:
//! [`native`] for heartwire's verbs, [`statsd`] for metric lines, [`dogstatsd`] for events and
//! service checks; what they share is here.

mod dogstatsd;
mod fast;
mod native;
mod statsd;

use crate::MAX_LINE_LEN;
use crate::error::{ErrorKind, ParseError};
use crate::line::Line;

use self::dogstatsd::{event, service_check};
pub use self::native::is_name;
use self::native::native;
pub use self::statsd::is_statsd_name;
use self::statsd::metric;
pub(crate) use self::statsd::{tags, value};

const fn err(kind: ErrorKind, detail: &'static str) -> ParseError {
    ParseError::new(kind, detail)
}

/// Parses one line. A trailing `\n` or `\r\n` and surrounding blanks are ignored.
pub(crate) fn line(bytes: &[u8]) -> Result<Line<'_>, ParseError> {
    if bytes.len() > MAX_LINE_LEN {
        return Err(err(ErrorKind::TooLong, "line longer than 8192 bytes"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| err(ErrorKind::InvalidUtf8, "line is not valid UTF-8"))?;
    text_line(text)
}

/// Parses one line already known to be UTF-8, as [`line`] does.
pub(crate) fn text_line(text: &str) -> Result<Line<'_>, ParseError> {
    if text.len() > MAX_LINE_LEN {
        return Err(err(ErrorKind::TooLong, "line longer than 8192 bytes"));
    }
    let text = trim(text);
    if text.is_empty() {
        return Err(err(ErrorKind::Malformed, "empty line"));
    }
    if let Some(rest) = text.strip_prefix("_e{") {
        return event(rest).map(Line::Event);
    }
    if let Some(rest) = text.strip_prefix("_sc|") {
        return service_check(rest).map(Line::ServiceCheck);
    }
    if let Some(line) = fast::line(text) {
        return line;
    }
    rules(text)
}

/// A line that is not an event or a service check, read by the rules of the grammar alone
/// (what [`fast::line`] must agree with).
fn rules(text: &str) -> Result<Line<'_>, ParseError> {
    match memchr::memchr2(b' ', b'\t', text.as_bytes()) {
        Some(space) if memchr::memchr2(b':', b'|', &text.as_bytes()[..space]).is_none() => {
            native(&text[..space], &text[space..])
        }
        _ => metric(text).map(Line::Metric),
    }
}

/// `text` split at its first `byte` (an ASCII separator), as `str::split_once` with a memchr
/// search.
pub(crate) fn split_once(text: &str, byte: u8) -> Option<(&str, &str)> {
    debug_assert!(byte.is_ascii());
    let at = memchr::memchr(byte, text.as_bytes())?;
    // An ASCII byte is a whole character: both sides are on character boundaries.
    Some((&text[..at], &text[at + 1..]))
}

/// The parts of `text` between its `byte` separators (an ASCII byte), as `str::split`.
pub(crate) fn split(text: &str, byte: u8) -> impl Iterator<Item = &str> {
    debug_assert!(byte.is_ascii());
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(byte, current.as_bytes()) {
            Some(at) => {
                rest = Some(&current[at + 1..]);
                Some(&current[..at])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Blanks around a line are not part of it: `\r` from `\r\n`, spaces, tabs.
pub(crate) fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\r', '\n'])
}

/// `number`: decimal with optional sign, fraction and exponent; never NaN or infinite.
pub(crate) fn number(text: &str) -> Result<f64, ParseError> {
    if let Some(value) = fast::number(text.as_bytes()) {
        return Ok(value);
    }
    // Rust also reads "inf", "nan" and "infinity"; the first byte rules those out cheaply.
    let first = text.bytes().next().unwrap_or(b'x');
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Err(err(ErrorKind::InvalidValue, "not a number"));
    }
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(err(ErrorKind::InvalidValue, "number out of range")),
        Err(_) => Err(err(ErrorKind::InvalidValue, "not a number")),
    }
}

/// `unix`: whole seconds since the epoch (`|T`, `d:`).
pub(crate) fn unix_seconds(text: &str) -> Result<u64, ParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            ErrorKind::InvalidField,
            "a timestamp is whole unix seconds",
        ));
    }
    text.parse()
        .map_err(|_| err(ErrorKind::InvalidField, "timestamp out of range"))
}

/// A field value with no control characters, not empty.
pub(crate) fn printable<'a>(text: &'a str, detail: &'static str) -> Result<&'a str, ParseError> {
    if text.is_empty() || text.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(err(ErrorKind::InvalidField, detail));
    }
    Ok(text)
}

/// DogStatsD origin fields: 1.2 container id, 1.5 external data, 1.6 cardinality. Known, and of
/// no use to a sidecar that already knows its pod.
pub(crate) fn is_origin_field(field: &str) -> bool {
    field.starts_with("c:") || field.starts_with("e:") || field.starts_with("card:")
}
