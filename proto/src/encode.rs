//! The encoder: [`Line`] → bytes, so that apps never format lines by hand.
//!
//! Every line written is checked against the parser before it is kept, so an encoder call either
//! appends a line the agent accepts or appends nothing and says why.

use std::fmt::{self, Display, Write as _};

use crate::error::{ErrorKind, ParseError};
use crate::line::{Event, Line, Metric, MetricKind, ServiceCheck, Value, Values};
use crate::parse;

/// Appends `line` and a terminating `\n` to `out`.
///
/// On error nothing is appended: a name breaks its rule, a number is not finite, or an absolute
/// gauge is negative (the wire would read it as a delta).
///
/// ```
/// use heartwire_proto::{encode, JobEnd, Line};
///
/// let mut out = Vec::new();
/// encode(&Line::JobOk(JobEnd { job: "viewer-poll", seconds: Some(0.3), ..Default::default() }), &mut out)?;
/// assert_eq!(out, b"job.ok viewer-poll 0.3\n");
/// # Ok::<(), heartwire_proto::ParseError>(())
/// ```
pub fn encode(line: &Line<'_>, out: &mut Vec<u8>) -> Result<(), ParseError> {
    check_encodable(line)?;
    let start = out.len();
    out.extend_from_slice(line.to_string().as_bytes());
    let read_back = parse::line(&out[start..]).and_then(|parsed| {
        if without_marks(parsed) == without_marks(line.clone()) {
            Ok(())
        } else {
            Err(ParseError::new(
                ErrorKind::Malformed,
                "the line would not read back the same, e.g. a blank at its end is dropped",
            ))
        }
    });
    if let Err(error) = read_back {
        out.truncate(start);
        return Err(error);
    }
    out.push(b'\n');
    Ok(())
}

/// What the parser notes about a line but the encoder never writes: unknown fields (dropped) and
/// a clamped sample rate (written clamped).
fn without_marks(mut line: Line<'_>) -> Line<'_> {
    match &mut line {
        Line::JobStart(l) => l.unknown_fields = 0,
        Line::JobOk(l) | Line::JobError(l) => l.unknown_fields = 0,
        Line::JobSkip(l) => l.unknown_fields = 0,
        Line::JobProgress(l) => l.unknown_fields = 0,
        Line::Heartbeat(l) => l.unknown_fields = 0,
        Line::WorkerStop(l) => l.unknown_fields = 0,
        Line::Http(l) => l.unknown_fields = 0,
        Line::Hello(l) => l.unknown_fields = 0,
        Line::Metric(l) => {
            l.unknown_fields = 0;
            l.rate_clamped = false;
        }
        Line::Event(l) => l.unknown_fields = 0,
        Line::ServiceCheck(l) => l.unknown_fields = 0,
    }
    line
}

/// The line as bytes with its terminating `\n`; see [`encode`].
pub fn encode_line(line: &Line<'_>) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(64);
    encode(line, &mut out)?;
    Ok(out)
}

/// What the parser cannot see once a line is written, and what the agent would reject.
fn check_encodable(line: &Line<'_>) -> Result<(), ParseError> {
    let Line::Metric(metric) = line else {
        return Ok(());
    };
    if let Values::One(value) = metric.values
        && metric.kind == MetricKind::Gauge
        && !value.relative
        && value.number < 0.0
    {
        return Err(ParseError::new(
            ErrorKind::InvalidValue,
            "an absolute gauge cannot be negative on the wire: send 0, then a delta",
        ));
    }
    if metric.kind == MetricKind::Counter && metric.values.iter(metric.kind).any(|v| v.number < 0.0)
    {
        return Err(ParseError::new(
            ErrorKind::NegativeCounter,
            "the agent rejects a negative counter increment: use a gauge delta",
        ));
    }
    if !(metric.rate > 0.0 && metric.rate <= 1.0) {
        return Err(ParseError::new(
            ErrorKind::InvalidSampleRate,
            "a sample rate is above 0 and at most 1",
        ));
    }
    Ok(())
}

/// Writes the line without its terminator. Use [`encode`] to also check it.
impl Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::JobStart(l) => {
                write!(f, "job.start {}", l.job)?;
                field(f, "id", l.id)
            }
            Line::JobOk(l) | Line::JobError(l) => {
                let verb = if matches!(self, Line::JobOk(_)) {
                    "job.ok"
                } else {
                    "job.error"
                };
                write!(f, "{verb} {}", l.job)?;
                arg(f, l.seconds)?;
                field(f, "reason", l.reason)?;
                field(f, "id", l.id)?;
                field(f, "exit", l.exit)?;
                field(f, "signal", l.signal)
            }
            Line::JobSkip(l) => {
                write!(f, "job.skip {}", l.job)?;
                field(f, "reason", l.reason)?;
                field(f, "id", l.id)
            }
            Line::JobProgress(l) => {
                write!(f, "job.progress {}", l.job)?;
                arg(f, l.amount)?;
                field(f, "id", l.id)
            }
            Line::Heartbeat(l) => {
                write!(f, "hb {}", l.worker)?;
                field(f, "ttl", l.ttl)
            }
            Line::WorkerStop(l) => write!(f, "worker.stop {}", l.worker),
            Line::Http(l) => {
                write!(f, "http {} {} {}", l.service, l.endpoint, l.status.as_str())?;
                arg(f, l.seconds)
            }
            Line::Hello(l) => {
                write!(f, "hello app={}", l.app)?;
                field(f, "pid", l.pid)
            }
            Line::Metric(m) => metric(f, m),
            Line::Event(e) => event(f, e),
            Line::ServiceCheck(c) => service_check(f, c),
        }
    }
}

fn arg(f: &mut fmt::Formatter<'_>, value: Option<f64>) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {value}"),
        None => Ok(()),
    }
}

fn field(f: &mut fmt::Formatter<'_>, key: &str, value: Option<impl Display>) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {key}={value}"),
        None => Ok(()),
    }
}

fn metric(f: &mut fmt::Formatter<'_>, m: &Metric<'_>) -> fmt::Result {
    write!(f, "{}:", m.name)?;
    match m.values {
        Values::One(value) => number(f, value, m.kind)?,
        Values::Packed(raw) | Values::Member(raw) => f.write_str(raw)?,
    }
    write!(f, "|{}", m.kind.as_str())?;
    if m.rate != 1.0 {
        write!(f, "|@{}", m.rate)?;
    }
    if !m.tags.is_empty() {
        write!(f, "|#{}", m.tags.as_str())?;
    }
    if let Some(ts) = m.timestamp {
        write!(f, "|T{ts}")?;
    }
    if let Some(container) = m.container {
        write!(f, "|c:{container}")?;
    }
    Ok(())
}

fn number(f: &mut fmt::Formatter<'_>, value: Value, kind: MetricKind) -> fmt::Result {
    if kind == MetricKind::Gauge && value.relative && !value.number.is_sign_negative() {
        f.write_char('+')?;
    }
    write!(f, "{}", value.number)
}

fn event(f: &mut fmt::Formatter<'_>, e: &Event<'_>) -> fmt::Result {
    write!(
        f,
        "_e{{{},{}}}:{}|{}",
        e.title.len(),
        e.text.len(),
        e.title,
        e.text
    )?;
    let fields = [
        ("d:", e.timestamp.map(|ts| ts.to_string())),
        ("h:", e.hostname.map(str::to_owned)),
        ("k:", e.aggregation_key.map(str::to_owned)),
        ("p:", e.priority.map(str::to_owned)),
        ("s:", e.source_type.map(str::to_owned)),
        ("t:", e.alert_type.map(|t| t.as_str().to_owned())),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            write!(f, "|{key}{value}")?;
        }
    }
    if !e.tags.is_empty() {
        write!(f, "|#{}", e.tags.as_str())?;
    }
    Ok(())
}

fn service_check(f: &mut fmt::Formatter<'_>, c: &ServiceCheck<'_>) -> fmt::Result {
    write!(f, "_sc|{}|{}", c.name, c.status.code())?;
    if let Some(ts) = c.timestamp {
        write!(f, "|d:{ts}")?;
    }
    if let Some(host) = c.hostname {
        write!(f, "|h:{host}")?;
    }
    if !c.tags.is_empty() {
        write!(f, "|#{}", c.tags.as_str())?;
    }
    if let Some(message) = c.message {
        write!(f, "|m:{message}")?;
    }
    Ok(())
}
