//! StatsD and DogStatsD metric lines (PROTOCOL.md section 4).

use super::{err, is_origin_field, number, printable, split, split_once, unix_seconds};
use crate::error::{ErrorKind, ParseError};
use crate::line::{Metric, MetricKind, Tags, Value, Values};
use crate::{MAX_STATSD_NAME_LEN, MAX_TAG_LEN, MAX_TAGS, MIN_SAMPLE_RATE};

pub(super) fn metric(text: &str) -> Result<Metric<'_>, ParseError> {
    let Some((name, rest)) = split_once(text, b':') else {
        let detail = if text.contains('|') {
            "no ':' between name and value"
        } else {
            "neither a native verb nor a statsd line"
        };
        return Err(err(ErrorKind::Malformed, detail));
    };
    let name = statsd_name(name)?;
    let Some((values, rest)) = split_once(rest, b'|') else {
        return Err(err(ErrorKind::MissingField, "no '|type' after the value"));
    };
    let (kind, fields) = match split_once(rest, b'|') {
        Some((kind, fields)) => (metric_kind(kind)?, Some(fields)),
        None => (metric_kind(rest)?, None),
    };
    let mut metric = Metric::new(name, kind, 0.0);
    metric.values = metric_values(values, kind)?;
    if let Some(fields) = fields {
        metric_fields(fields, &mut metric)?;
    }
    Ok(metric)
}

/// `statsd-name`: 1–255 bytes of UTF-8 without blanks, control characters or any of
/// `: | @ # , ; = [ ]` (the separators of this and of the name-embedded tag dialects).
pub(super) fn statsd_name(text: &str) -> Result<&str, ParseError> {
    if text.is_empty() || text.len() > MAX_STATSD_NAME_LEN {
        return Err(err(
            ErrorKind::InvalidName,
            "a metric name is 1 to 255 bytes",
        ));
    }
    if !is_statsd_name(text) {
        return Err(err(
            ErrorKind::InvalidName,
            "a metric name may not hold blanks, control characters or : | @ # , ; = [ ]",
        ));
    }
    Ok(text)
}

/// Whether `text` obeys the `statsd-name` rule.
pub fn is_statsd_name(text: &str) -> bool {
    // A fold without early exit: the compiler checks many bytes per instruction.
    !text.is_empty()
        && text.len() <= MAX_STATSD_NAME_LEN
        && !text.bytes().fold(false, |bad, b| {
            bad | (b <= b' ')
                | (b == 0x7f)
                | matches!(
                    b,
                    b':' | b'|' | b'@' | b'#' | b',' | b';' | b'=' | b'[' | b']'
                )
        })
}

fn metric_kind(text: &str) -> Result<MetricKind, ParseError> {
    Ok(match text {
        "c" => MetricKind::Counter,
        "g" => MetricKind::Gauge,
        "ms" => MetricKind::Timer,
        "h" => MetricKind::Histogram,
        "d" => MetricKind::Distribution,
        "s" => MetricKind::Set,
        "" => return Err(err(ErrorKind::MissingField, "no type after '|'")),
        _ => return Err(err(ErrorKind::InvalidType, "type is one of c g ms h d s")),
    })
}

fn metric_values(text: &str, kind: MetricKind) -> Result<Values<'_>, ParseError> {
    if kind == MetricKind::Set {
        if text.is_empty() || text.bytes().any(|b| b < b' ' || b == 0x7f) {
            return Err(err(
                ErrorKind::InvalidValue,
                "a set member is 1 or more printable characters",
            ));
        }
        return Ok(Values::Member(text));
    }
    if memchr::memchr(b':', text.as_bytes()).is_none() {
        return value(text, kind).map(Values::One);
    }
    for part in split(text, b':') {
        value(part, kind)?;
    }
    Ok(Values::Packed(text))
}

/// One value of a metric line: a number; for gauges a leading sign makes it a delta.
pub(crate) fn value(text: &str, kind: MetricKind) -> Result<Value, ParseError> {
    let number = number(text)?;
    let signed = matches!(text.as_bytes().first(), Some(b'+' | b'-'));
    Ok(Value {
        number,
        relative: signed && kind == MetricKind::Gauge,
    })
}

fn metric_fields<'a>(fields: &'a str, metric: &mut Metric<'a>) -> Result<(), ParseError> {
    let mut tagged = false;
    for field in split(fields, b'|') {
        let Some(&first) = field.as_bytes().first() else {
            continue;
        };
        match first {
            b'@' => {
                let (rate, clamped) = sample_rate(&field[1..])?;
                metric.rate = rate;
                metric.rate_clamped = clamped;
            }
            b'#' => {
                if tagged {
                    return Err(err(ErrorKind::InvalidTag, "tags given twice"));
                }
                tagged = true;
                metric.tags = tags(&field[1..])?;
            }
            b'T' => metric.timestamp = Some(unix_seconds(&field[1..])?),
            b'c' if field.starts_with("c:") => {
                metric.container = Some(printable(&field[2..], "c: needs a container id")?)
            }
            _ if is_origin_field(field) => {}
            _ => metric.unknown_fields = metric.unknown_fields.saturating_add(1),
        }
    }
    Ok(())
}

/// `@rate`: a finite number above 0. Rates above 1 count as 1; rates below
/// [`MIN_SAMPLE_RATE`] count as that floor. Either clamp is reported.
pub(super) fn sample_rate(text: &str) -> Result<(f64, bool), ParseError> {
    let rate = match number(text) {
        Ok(rate) if rate > 0.0 => rate,
        _ => {
            return Err(err(
                ErrorKind::InvalidSampleRate,
                "a sample rate is a number above 0 and at most 1",
            ));
        }
    };
    if rate > 1.0 {
        Ok((1.0, true))
    } else if rate < MIN_SAMPLE_RATE {
        Ok((MIN_SAMPLE_RATE, true))
    } else {
        Ok((rate, false))
    }
}

/// `tags`: at most 64 comma-separated tags, each at most 256 bytes without control characters,
/// `key[:value]` with a non-empty key. Empty entries are skipped.
pub(crate) fn tags(text: &str) -> Result<Tags<'_>, ParseError> {
    // One pass over the whole list (a fold the compiler vectorises) instead of one per tag.
    if text
        .bytes()
        .fold(false, |bad, b| bad | (b < b' ') | (b == 0x7f) | (b == b'|'))
    {
        return Err(err(
            ErrorKind::InvalidTag,
            "a tag may not hold control characters or '|'",
        ));
    }
    let mut count = 0;
    for tag in split(text, b',') {
        if tag.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_TAGS {
            return Err(err(ErrorKind::InvalidTag, "more than 64 tags"));
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(err(ErrorKind::InvalidTag, "a tag is at most 256 bytes"));
        }
        if tag.starts_with(':') {
            return Err(err(ErrorKind::InvalidTag, "a tag needs a key before ':'"));
        }
    }
    Ok(Tags::new_unchecked(text))
}
