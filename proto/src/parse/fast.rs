//! The shapes nearly every line has, read in one forward pass over its bytes: a StatsD or
//! DogStatsD metric line with one plain number, an optional sample rate and tags, and the verb of
//! a native line. At the rates a sidecar sees (millions of short lines a second) the rules'
//! separate searches for each separator cost more than the reading itself.
//!
//! This path never decides anything of its own: for a line of another shape, and for every
//! malformed line, it answers `None` and the rules of the grammar read the line again from its
//! start. Where it answers, it answers exactly what the rules would (a property test compares
//! the two on random lines built from the grammar's separators).

use super::native::native;
use super::statsd::sample_rate;
use crate::error::ParseError;
use crate::line::{Line, Metric, MetricKind, Tags, Value, Values};
use crate::{MAX_STATSD_NAME_LEN, MAX_TAG_LEN, MAX_TAGS};

/// The bytes a `statsd-name` may not hold: blanks and control characters, DEL, and the
/// separators `: | @ # , ; = [ ]`. The first of them after a line's name says what the line is.
static NAME_END: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = byte <= 0x20
            || byte == 0x7f
            || matches!(
                byte as u8,
                b':' | b'|' | b'@' | b'#' | b',' | b';' | b'=' | b'[' | b']'
            );
        byte += 1;
    }
    table
};

/// The line, parsed, when it has one of the common shapes; `None` for the rules to read it.
/// `text` is trimmed, not empty, and neither an event nor a service check.
pub(super) fn line(text: &str) -> Option<Result<Line<'_>, ParseError>> {
    let bytes = text.as_bytes();
    let end = bytes.iter().position(|&byte| NAME_END[usize::from(byte)])?;
    match bytes[end] {
        // A blank before any ':' or '|': a native verb and its arguments, as the rules find it.
        b' ' | b'\t' => Some(native(text.get(..end)?, text.get(end..)?)),
        b':' => metric(text, end).map(|metric| Ok(Line::Metric(metric))),
        _ => None,
    }
}

/// `name:number|type[|@rate][|#tags]`, the name ending at `name_end` (a ':').
fn metric(text: &str, name_end: usize) -> Option<Metric<'_>> {
    if name_end == 0 || name_end > MAX_STATSD_NAME_LEN {
        return None;
    }
    let bytes = text.as_bytes();
    let value_end = field_end(bytes, name_end + 1);
    let kind_end = field_end(bytes, value_end + 1);
    let kind = match bytes.get(value_end + 1..kind_end)? {
        b"c" => MetricKind::Counter,
        b"g" => MetricKind::Gauge,
        b"ms" => MetricKind::Timer,
        b"h" => MetricKind::Histogram,
        b"d" => MetricKind::Distribution,
        // Sets, a missing or unknown type: the rules.
        _ => return None,
    };
    let value = bytes.get(name_end + 1..value_end)?;
    let number = number(value)?;
    let mut metric = Metric::new(text.get(..name_end)?, kind, 0.0);
    metric.values = Values::One(Value {
        number,
        relative: kind == MetricKind::Gauge && matches!(value.first(), Some(b'+' | b'-')),
    });
    let mut tagged = false;
    let mut at = kind_end;
    while at < bytes.len() {
        let end = field_end(bytes, at + 1);
        let field = text.get(at + 1..end)?;
        match field.as_bytes().first() {
            Some(b'@') => {
                let (rate, clamped) = sample_rate(field.get(1..)?).ok()?;
                metric.rate = rate;
                metric.rate_clamped = clamped;
            }
            Some(b'#') if !tagged => {
                tagged = true;
                metric.tags = tags(field.get(1..)?)?;
            }
            // Timestamps, containers, origin and unknown fields, empty fields, tags twice.
            _ => return None,
        }
        at = end;
    }
    Some(metric)
}

/// Where the field starting at `start` ends: at the next '|', or at the end of the line.
fn field_end(bytes: &[u8], start: usize) -> usize {
    bytes
        .get(start..)
        .and_then(|rest| rest.iter().position(|&byte| byte == b'|'))
        .map_or(bytes.len(), |at| start + at)
}

/// A plain decimal number of at most 15 digits, with optional sign and fraction and no exponent:
/// the digits as an integer (exact in an `f64`) divided by a power of ten (exact up to 10²²),
/// one correctly rounded operation, so the same `f64` as the rules' `str::parse` gives. Any
/// other number (and anything not a number): `None`.
pub(super) fn number(text: &[u8]) -> Option<f64> {
    /// 10⁰ to 10¹⁵, every one exact in an `f64`.
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    let mut mantissa = 0u64;
    let mut count = 0usize;
    let mut point = None;
    for (at, &byte) in digits.iter().enumerate() {
        match byte {
            b'0'..=b'9' => {
                count += 1;
                if count >= POWERS.len() {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(byte - b'0');
            }
            b'.' if point.is_none() => point = Some(at),
            _ => return None,
        }
    }
    if count == 0 {
        return None;
    }
    let decimals = point.map_or(0, |point| digits.len() - point - 1);
    let value = mantissa as f64 / POWERS.get(decimals)?;
    Some(if negative { -value } else { value })
}

/// A tag list the rules would accept: at most [`MAX_TAGS`] comma-separated tags of at most
/// [`MAX_TAG_LEN`] bytes, none starting with ':', no control characters (a '|' cannot occur:
/// it ended the field).
fn tags(text: &str) -> Option<Tags<'_>> {
    let bytes = text.as_bytes();
    // A short list has at most 64 tags (each takes a byte and a comma) of at most 256 bytes:
    // what is left to check is done without early exit, many bytes per instruction.
    if bytes.len() < 2 * MAX_TAGS && MAX_TAGS * 2 <= MAX_TAG_LEN {
        let control = bytes
            .iter()
            .fold(false, |bad, &byte| bad | (byte < b' ') | (byte == 0x7f));
        let key_missing = bytes.first() == Some(&b':')
            || bytes
                .iter()
                .zip(bytes.iter().skip(1))
                .fold(false, |bad, (&a, &b)| bad | ((a == b',') & (b == b':')));
        return (!control && !key_missing).then_some(Tags::new_unchecked(text));
    }
    let mut count = 0;
    let mut start = 0;
    loop {
        let mut end = start;
        while let Some(&byte) = bytes.get(end) {
            if byte == b',' {
                break;
            }
            if byte < b' ' || byte == 0x7f {
                return None;
            }
            end += 1;
        }
        if end > start {
            count += 1;
            if count > MAX_TAGS || end - start > MAX_TAG_LEN || bytes[start] == b':' {
                return None;
            }
        }
        if end >= bytes.len() {
            return Some(Tags::new_unchecked(text));
        }
        start = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn numbers_read_as_the_standard_library_reads_them() {
        for text in [
            "0",
            "1",
            "-0",
            "+0",
            "42",
            "-42",
            "+7",
            "0.1",
            "0.3",
            "-0.25",
            ".5",
            "5.",
            "-.5",
            "123456789012345",
            "99999999999999.9",
            "0.00000000000001",
            "1.10",
            "007",
        ] {
            let fast = number(text.as_bytes()).unwrap_or_else(|| panic!("{text}: not read"));
            let std: f64 = text.parse().unwrap();
            assert_eq!(fast.to_bits(), std.to_bits(), "{text}");
        }
    }

    #[test]
    fn other_numbers_are_left_to_the_rules() {
        for text in [
            "",
            "-",
            "+",
            ".",
            "1e3",
            "1.2.3",
            "1234567890123456",
            "0x10",
            "inf",
            "NaN",
            "1_0",
            "--1",
            " 1",
            "1 ",
            "0.000000000000001",
        ] {
            assert_eq!(number(text.as_bytes()), None, "{text}");
        }
    }

    /// Pieces of lines: every separator of the grammar, names, numbers of each form, tags,
    /// fields of each kind, blanks, a control character and non-ASCII text.
    #[rustfmt::skip]
    const PIECES: &[&str] = &[
        "a", "api.req", "é", "€x", ":", "|", "c", "g", "ms", "h", "d", "s", "x", "@", "@0.5", "@2",
        "@0", "#", "#k:v", ",", "k:v", "k", ":v", "1", "-2", "+3", ".5", "5.", "0.25", "1e3",
        "123456789012345", "1234567890123456", "inf", " ", "\t", "\u{1}", "\u{7f}", "=", "[", "]",
        ";", "T123", "c:id", "e:x", "card:low", "job.ok", "hb", "x=1", "",
    ];

    /// A tag list past the short case, a tag over the longest allowed, 40 tags.
    const LONG: &str = concat!(
        "long:",
        "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv",
    );
    const HUGE: &str = concat!(
        "huge:",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "0123456789012345678901234567890123456789012345678901234567890123456789",
    );
    const MANY: &str =
        "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,0,1,2,3,4,5,6,7,8,9,-,_,.,/";

    /// Values of each form the fast path reads or leaves to the rules.
    #[rustfmt::skip]
    const VALUES: &[&str] = &["1", "-2", "+3", ".5", "5.", "0.25", "123456789012345", "1e3", ":"];

    fn piece() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(PIECES)
    }

    /// Mostly one of `likely`, at times any piece.
    fn one_of(likely: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
        prop_oneof![4 => proptest::sample::select(likely), 1 => piece()]
    }

    /// A metric line of the common shape with random parts, or random pieces joined.
    fn text() -> impl Strategy<Value = String> {
        let name = proptest::collection::vec(one_of(&["a", "api.req", "é", "x"]), 1..4);
        let value = proptest::collection::vec(one_of(VALUES), 1..3);
        let kind = one_of(&["c", "g", "ms", "h", "d", "s"]);
        let field = proptest::collection::vec(
            one_of(&[
                "@", "@0.5", "@2", "#", "k:v", ",", "k", ":", ":v", "\u{1}", "é", LONG, HUGE, MANY,
            ]),
            0..6,
        );
        let shaped = (name, value, kind, proptest::collection::vec(field, 0..4)).prop_map(
            |(name, value, kind, fields)| {
                let mut line = format!("{}:{}|{kind}", name.concat(), value.concat());
                for field in fields {
                    line.push('|');
                    line.push_str(&field.concat());
                }
                line
            },
        );
        prop_oneof![
            shaped,
            proptest::collection::vec(piece(), 1..16).prop_map(|pieces| pieces.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Wherever the fast path answers, it answers what the rules answer, to the bit.
        #[test]
        fn the_fast_path_agrees_with_the_rules(text in text()) {
            let text = super::super::trim(&text);
            prop_assume!(!text.is_empty() && !text.starts_with("_e{") && !text.starts_with("_sc|"));
            if let Some(fast) = line(text) {
                prop_assert_eq!(format!("{fast:?}"), format!("{:?}", super::super::rules(text)));
            }
        }
    }

    #[test]
    fn long_tag_lists_are_checked_as_the_rules_check_them() {
        let tags = |n: usize| {
            (0..n)
                .map(|i| format!("t{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let tag = |n: usize| format!("k:{}", "v".repeat(n - 2));
        for (list, accepted) in [
            (tags(64), true),
            (tags(65), false),
            (format!("{},,,", tags(64)), true),
            (format!("{},x:\u{1}", tags(50)), false),
            (format!("{},:x", tags(50)), false),
            (tag(256), true),
            (format!("{},{}", tags(10), tag(257)), false),
        ] {
            assert!(list.len() >= 2 * MAX_TAGS, "{list}: a short list");
            let text = format!("a:1|c|#{list}");
            let rules = format!("{:?}", super::super::rules(&text));
            match line(&text) {
                Some(fast) => assert_eq!(format!("{fast:?}"), rules),
                None => assert!(!accepted, "{text}: left to the rules"),
            }
            assert_eq!(rules.starts_with("Ok"), accepted, "{text}");
        }
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        for text in [
            "loadgen.plain:1|c",
            "loadgen.hits:1|c|#shard:3,env:bench,region:eu-west-1",
            "api.latency:12.5|ms|@0.1|#route:/users",
            "queue.depth:-3|g",
            "job.ok viewer-poll 0.3",
            "a:1|c|#",
        ] {
            let fast = line(text).unwrap_or_else(|| panic!("{text}: left to the rules"));
            assert_eq!(
                format!("{fast:?}"),
                format!("{:?}", super::super::rules(text))
            );
        }
    }
}
