//! The text format 0.0.4, written straight from a snapshot's families.
//!
//! The `prometheus` crate's `TextEncoder` takes `MetricFamily` values: going through it costs a
//! `String` per label per sample and a formatted `String` per value, which made a scrape of
//! 10 000 series (half of them histograms) take tens of milliseconds. This writer appends to one
//! buffer instead: a series' label block is escaped once and copied for each of its lines (a
//! histogram's bucket lines copy one head per series, `name_bucket{labels,`), a family's `le`
//! values are formatted once, and numbers are formatted without allocating (`itoa` for
//! integral values, `ryu`'s shortest round-trip digits otherwise).
//!
//! The output is the same exposition as `TextEncoder`'s, sample for sample: the tests in
//! `expose/tests.rs` parse both for random snapshots and compare, and `promtool check metrics`
//! reads the page in the end-to-end tests. Numbers may be spelled differently (`1e-7` where the
//! encoder writes `0.0000001`); they parse to the same value.

use std::sync::Arc;

use crate::aggregate::snapshot::{Family, HistogramSnapshot, Kind, Value};

/// Reusable scratch space for writing families: keep one across calls to avoid allocating.
#[derive(Debug, Default)]
pub struct TextWriter {
    /// The label block of the series being written: `name="value",...` without braces.
    labels: Vec<u8>,
    /// The ends of a bucket line for each bound last formatted (`le="0.5"} `), and those
    /// bounds.
    le: Vec<Box<[u8]>>,
    le_of: Option<Arc<[f64]>>,
    /// The start of the bucket lines of the series being written: `name_bucket{labels,`.
    bucket_head: Vec<u8>,
}

impl TextWriter {
    /// Writes `family` (HELP, TYPE, then every series) to `out`. A family without series writes
    /// nothing, as the encoder does not either.
    pub fn family(&mut self, family: &Family, out: &mut Vec<u8>) {
        self.family_from(family, 0, usize::MAX, out);
    }

    /// Writes `family`'s series from the one at `from` (its HELP and TYPE first when `from` is
    /// 0) until `out` holds `limit` bytes or more, writing at least one: a series is never cut.
    /// Returns the index of the next series to write, the number of series once the family is
    /// done.
    pub fn family_from(
        &mut self,
        family: &Family,
        from: usize,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> usize {
        if from == 0 && !family.series.is_empty() {
            header(&family.name, &family.help, family.kind, out);
        }
        for (index, series) in family.series.iter().enumerate().skip(from) {
            // At least one series per call: a family's header is never written twice.
            if index > from && out.len() >= limit {
                return index;
            }
            self.labels.clear();
            for (name, value) in family.labels(series) {
                if !self.labels.is_empty() {
                    self.labels.push(b',');
                }
                label(name, value, &mut self.labels);
            }
            match &series.value {
                Value::Number(value) => sample(&family.name, "", &self.labels, *value, out),
                Value::Histogram(histogram) => self.histogram(&family.name, histogram, out),
            }
        }
        family.series.len()
    }

    /// A family of single-label counters or gauges (the agent's own bookkeeping), without
    /// building a [`Family`].
    pub fn simple<'a>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        series: impl IntoIterator<Item = (Option<(&'a str, &'a str)>, f64)>,
        out: &mut Vec<u8>,
    ) {
        let mut series = series.into_iter().peekable();
        if series.peek().is_none() {
            return;
        }
        header(name, help, kind, out);
        for (pair, value) in series {
            self.labels.clear();
            if let Some((label_name, label_value)) = pair {
                label(label_name, label_value, &mut self.labels);
            }
            sample(name, "", &self.labels, value, out);
        }
    }

    fn histogram(&mut self, name: &str, histogram: &HistogramSnapshot, out: &mut Vec<u8>) {
        if !self
            .le_of
            .as_ref()
            .is_some_and(|bounds| Arc::ptr_eq(bounds, &histogram.bounds))
        {
            self.le.clear();
            self.le.extend(histogram.bounds.iter().map(|bound| {
                let mut le = Vec::new();
                label("le", &bound.to_string(), &mut le);
                le.extend_from_slice(b"} ");
                le.into_boxed_slice()
            }));
            self.le_of = Some(histogram.bounds.clone());
        }
        // A histogram is most of a page: its bucket lines differ only after `le`, so their
        // start is written once per series and copied whole, with the end of each bound's.
        self.bucket_head.clear();
        self.bucket_head.extend_from_slice(name.as_bytes());
        self.bucket_head.extend_from_slice(b"_bucket{");
        if !self.labels.is_empty() {
            self.bucket_head.extend_from_slice(&self.labels);
            self.bucket_head.push(b',');
        }
        let head = &self.bucket_head;
        // Counts are rounded once here: the text format holds integers, and rounding the
        // running total keeps the cumulative counts non-decreasing.
        for ((_, count), le) in histogram.cumulative().zip(&self.le) {
            bucket(head, le, round(count), out);
        }
        let count = round(histogram.count);
        bucket(head, b"le=\"+Inf\"} ", count, out);
        sample(name, "_sum", &self.labels, histogram.sum, out);
        sample(name, "_count", &self.labels, count, out);
    }
}

/// One bucket line: its start, the end of its bound (`le="0.5"} `), its count.
fn bucket(head: &[u8], le: &[u8], count: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(head);
    out.extend_from_slice(le);
    number(count, out);
    out.push(b'\n');
}

/// `# HELP` (when there is help) and `# TYPE` lines.
fn header(name: &str, help: &str, kind: Kind, out: &mut Vec<u8>) {
    if !help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        escape(help, false, out);
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(match kind {
        Kind::Counter => b" counter\n",
        Kind::Gauge => b" gauge\n",
        Kind::Histogram => b" histogram\n",
    });
}

/// One sample line: `name suffix {labels} value`.
fn sample(name: &str, suffix: &str, labels: &[u8], value: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        out.extend_from_slice(labels);
        out.push(b'}');
    }
    out.push(b' ');
    number(value, out);
    out.push(b'\n');
}

/// `name="value"`, the value escaped.
fn label(name: &str, value: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape(value, true, out);
    out.push(b'"');
}

/// Escapes `\` and newline (and `"` in label values), as the format requires.
fn escape(text: &str, quote: bool, out: &mut Vec<u8>) {
    let mut rest = text.as_bytes();
    loop {
        let at = if quote {
            memchr::memchr3(b'\\', b'\n', b'"', rest)
        } else {
            memchr::memchr2(b'\\', b'\n', rest)
        };
        let Some(at) = at else {
            out.extend_from_slice(rest);
            return;
        };
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(match rest[at] {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => b"\\\"",
        });
        rest = &rest[at + 1..];
    }
}

/// `value` rounded half away from zero, as `f64::round`, without its libm call for the counts
/// that fit an integer exactly (all but absurd ones).
fn round(value: f64) -> f64 {
    if value.is_nan() || value.abs() >= EXACT_INTEGERS {
        return value.round();
    }
    let whole = (value as i64) as f64;
    let rest = value - whole;
    if rest >= 0.5 {
        whole + 1.0
    } else if rest <= -0.5 {
        whole - 1.0
    } else {
        whole
    }
}

/// Integral values below 2^53 in magnitude are exact as integers.
const EXACT_INTEGERS: f64 = 9_007_199_254_740_992.0;

/// A sample value as Prometheus parses it: `NaN`, `+Inf`, `-Inf`, an integer, or the shortest
/// decimal that reads back to the same `f64`.
pub(crate) fn number(value: f64, out: &mut Vec<u8>) {
    if value.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if value.is_infinite() {
        out.extend_from_slice(if value > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if value.abs() < EXACT_INTEGERS && (value as i64) as f64 == value {
        // Exact: the value is an integer that an i64 holds. (The cast round trip, not `fract`:
        // without SSE4.1 in the target, `fract` and `round` are calls into libm.)
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(value: f64) -> String {
        let mut out = Vec::new();
        number(value, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_read_back_to_the_same_value() {
        for value in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.1,
            1e-7,
            123_456.789,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            -f64::MAX,
        ] {
            let text = formatted(value);
            assert_eq!(text.parse::<f64>().unwrap(), value, "{value} as {text}");
        }
        assert_eq!(formatted(42.0), "42");
        assert_eq!(formatted(0.25), "0.25");
        assert_eq!(formatted(f64::NAN), "NaN");
        assert_eq!(formatted(f64::INFINITY), "+Inf");
        assert_eq!(formatted(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn counts_round_as_f64_round_does() {
        for value in [
            0.0,
            0.499_999_999_999_999_94,
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            1e6 + 0.499,
            4_503_599_627_370_495.5,
            9_007_199_254_740_993.0,
            1e300,
        ] {
            assert_eq!(round(value), value.round(), "{value}");
        }
    }

    #[test]
    fn escapes_what_the_format_requires() {
        let mut out = Vec::new();
        escape("a\\b\"c\nd", true, &mut out);
        assert_eq!(out, b"a\\\\b\\\"c\\nd");
        out.clear();
        escape("help \"quoted\"\\\n", false, &mut out);
        assert_eq!(out, b"help \"quoted\"\\\\\\n");
    }
}
