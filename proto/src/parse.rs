//! The parser: one pass over a line, no allocation, never panics.
//!
//! Each function implements one rule of the grammar in `PROTOCOL.md` and is named after it.

use crate::error::{ErrorKind, ParseError};
use crate::line::{
    AlertType, CheckStatus, Event, Heartbeat, Hello, Http, HttpStatus, JobEnd, JobProgress,
    JobSkip, JobStart, Line, Metric, MetricKind, ServiceCheck, Tags, Value, Values, WorkerStop,
};
use crate::{
    MAX_LINE_LEN, MAX_NAME_LEN, MAX_STATSD_NAME_LEN, MAX_TAG_LEN, MAX_TAGS, MIN_SAMPLE_RATE,
};

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
    match text.find([' ', '\t']) {
        Some(space) if !text[..space].contains([':', '|']) => {
            native(&text[..space], &text[space..])
        }
        _ => metric(text).map(Line::Metric),
    }
}

/// Blanks around a line are not part of it: `\r` from `\r\n`, spaces, tabs.
pub(crate) fn trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\r', '\n'])
}

// ---------------------------------------------------------------------------------------------
// Native verbs
// ---------------------------------------------------------------------------------------------

/// Up to four positional arguments (`http` has the most) and the `key=value` fields.
struct Args<'a> {
    positional: [&'a str; 4],
    count: usize,
    fields: &'a str,
}

impl<'a> Args<'a> {
    fn split(rest: &'a str) -> Result<Args<'a>, ParseError> {
        let mut args = Args {
            positional: [""; 4],
            count: 0,
            fields: "",
        };
        let mut tokens = rest.split([' ', '\t']).filter(|t| !t.is_empty());
        let mut fields_start = None;
        for token in tokens.by_ref() {
            if token.contains('=') {
                // Offsets within `rest`: tokens are subslices of it.
                fields_start = Some(token.as_ptr() as usize - rest.as_ptr() as usize);
                break;
            }
            if args.count == args.positional.len() {
                return Err(err(ErrorKind::Malformed, "too many arguments"));
            }
            args.positional[args.count] = token;
            args.count += 1;
        }
        if let Some(start) = fields_start {
            args.fields = &rest[start..];
            if args
                .fields
                .split([' ', '\t'])
                .any(|t| !t.is_empty() && !t.contains('='))
            {
                return Err(err(
                    ErrorKind::Malformed,
                    "argument after a key=value field",
                ));
            }
        }
        Ok(args)
    }

    fn get(&self, index: usize) -> Option<&'a str> {
        (index < self.count).then(|| self.positional[index])
    }

    fn require(&self, index: usize, what: &'static str) -> Result<&'a str, ParseError> {
        self.get(index).ok_or(err(ErrorKind::MissingField, what))
    }

    fn at_most(&self, count: usize) -> Result<(), ParseError> {
        if self.count > count {
            return Err(err(ErrorKind::Malformed, "too many arguments"));
        }
        Ok(())
    }

    /// Visits each `key=value` field. Later fields override earlier ones.
    fn fields(
        &self,
        mut visit: impl FnMut(&'a str, &'a str) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        for field in self.fields.split([' ', '\t']).filter(|t| !t.is_empty()) {
            let (key, value) = field.split_once('=').unwrap_or((field, ""));
            visit(key, value)?;
        }
        Ok(())
    }
}

fn native<'a>(verb: &'a str, rest: &'a str) -> Result<Line<'a>, ParseError> {
    let args = Args::split(rest)?;
    match verb {
        "job.start" => job_start(&args).map(Line::JobStart),
        "job.ok" => job_end(&args, false).map(Line::JobOk),
        "job.error" => job_end(&args, true).map(Line::JobError),
        "job.skip" => job_skip(&args).map(Line::JobSkip),
        "job.progress" => job_progress(&args).map(Line::JobProgress),
        "hb" => heartbeat(&args).map(Line::Heartbeat),
        "worker.stop" => worker_stop(&args).map(Line::WorkerStop),
        "http" => http(&args).map(Line::Http),
        "hello" => hello(&args).map(Line::Hello),
        _ if is_verb_shaped(verb) => Err(err(ErrorKind::UnknownVerb, "unknown verb")),
        _ => Err(err(
            ErrorKind::Malformed,
            "neither a native verb nor a statsd line",
        )),
    }
}

/// Lower-case words joined by dots: what a future verb would look like.
fn is_verb_shaped(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 32
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
}

fn job_start<'a>(args: &Args<'a>) -> Result<JobStart<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = JobStart {
        job: name(args.require(0, "job.start needs a job name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_end<'a>(args: &Args<'a>, error: bool) -> Result<JobEnd<'a>, ParseError> {
    args.at_most(2)?;
    let missing = if error {
        "job.error needs a job name"
    } else {
        "job.ok needs a job name"
    };
    let mut line = JobEnd {
        job: name(args.require(0, missing)?)?,
        seconds: args.get(1).map(seconds).transpose()?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            "reason" => line.reason = Some(token(value)?),
            "exit" => line.exit = Some(exit_code(value)?),
            "signal" if error => line.signal = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_skip<'a>(args: &Args<'a>) -> Result<JobSkip<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = JobSkip {
        job: name(args.require(0, "job.skip needs a job name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            "reason" => line.reason = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn job_progress<'a>(args: &Args<'a>) -> Result<JobProgress<'a>, ParseError> {
    args.at_most(2)?;
    let mut line = JobProgress {
        job: name(args.require(0, "job.progress needs a job name")?)?,
        amount: args.get(1).map(non_negative).transpose()?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "id" => line.id = Some(token(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn heartbeat<'a>(args: &Args<'a>) -> Result<Heartbeat<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = Heartbeat {
        worker: name(args.require(0, "hb needs a worker name")?)?,
        ..Default::default()
    };
    args.fields(|key, value| {
        match key {
            "ttl" => line.ttl = Some(ttl(value)?),
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    Ok(line)
}

fn worker_stop<'a>(args: &Args<'a>) -> Result<WorkerStop<'a>, ParseError> {
    args.at_most(1)?;
    let mut line = WorkerStop {
        worker: name(args.require(0, "worker.stop needs a worker name")?)?,
        ..Default::default()
    };
    args.fields(|_, _| {
        line.unknown_fields = line.unknown_fields.saturating_add(1);
        Ok(())
    })?;
    Ok(line)
}

fn http<'a>(args: &Args<'a>) -> Result<Http<'a>, ParseError> {
    let mut line = Http {
        service: name(args.require(0, "http needs a service")?)?,
        endpoint: name(args.require(1, "http needs an endpoint")?)?,
        status: http_status(args.require(2, "http needs a status")?)?,
        seconds: args.get(3).map(seconds).transpose()?,
        unknown_fields: 0,
    };
    args.fields(|_, _| {
        line.unknown_fields = line.unknown_fields.saturating_add(1);
        Ok(())
    })?;
    Ok(line)
}

fn hello<'a>(args: &Args<'a>) -> Result<Hello<'a>, ParseError> {
    args.at_most(0)?;
    let mut app = None;
    let mut line = Hello::default();
    args.fields(|key, value| {
        match key {
            "app" => app = Some(name(value)?),
            "pid" => {
                line.pid = Some(
                    value
                        .parse()
                        .map_err(|_| err(ErrorKind::InvalidField, "pid= must be a process id"))?,
                )
            }
            _ => line.unknown_fields = line.unknown_fields.saturating_add(1),
        }
        Ok(())
    })?;
    line.app = app.ok_or(err(ErrorKind::MissingField, "hello needs app=<name>"))?;
    Ok(line)
}

/// `name`: 1–128 bytes of `[A-Za-z0-9_.:/-]`.
pub(crate) fn name(text: &str) -> Result<&str, ParseError> {
    if is_name(text) {
        Ok(text)
    } else if text.is_empty() || text.len() > MAX_NAME_LEN {
        Err(err(ErrorKind::InvalidName, "a name is 1 to 128 characters"))
    } else {
        Err(err(
            ErrorKind::InvalidName,
            "a name may only hold A-Z a-z 0-9 _ . : / -",
        ))
    }
}

/// Whether `text` obeys the `name` rule.
pub fn is_name(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_NAME_LEN && text.bytes().all(is_name_byte)
}

#[inline]
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-')
}

/// `token` (ids, reasons, signals): the `name` rule, reported as a bad field.
fn token(text: &str) -> Result<&str, ParseError> {
    if is_name(text) {
        Ok(text)
    } else {
        Err(err(
            ErrorKind::InvalidField,
            "a field value is 1 to 128 characters of A-Z a-z 0-9 _ . : / -",
        ))
    }
}

/// `seconds`: a finite, non-negative number.
fn seconds(text: &str) -> Result<f64, ParseError> {
    non_negative(text)
}

fn non_negative(text: &str) -> Result<f64, ParseError> {
    let value = number(text)?;
    if value < 0.0 {
        return Err(err(
            ErrorKind::InvalidValue,
            "a duration or amount cannot be negative",
        ));
    }
    Ok(value)
}

fn ttl(text: &str) -> Result<f64, ParseError> {
    match number(text) {
        Ok(value) if value > 0.0 => Ok(value),
        _ => Err(err(
            ErrorKind::InvalidField,
            "ttl= must be a positive number of seconds",
        )),
    }
}

fn exit_code(text: &str) -> Result<i32, ParseError> {
    text.parse().map_err(|_| {
        err(
            ErrorKind::InvalidField,
            "exit= must be an integer exit code",
        )
    })
}

fn http_status(text: &str) -> Result<HttpStatus, ParseError> {
    match text {
        "network" => Ok(HttpStatus::Network),
        "timeout" => Ok(HttpStatus::Timeout),
        _ => match text.parse::<u16>() {
            Ok(code) if (100..=599).contains(&code) && text.len() == 3 => {
                Ok(HttpStatus::Code(code))
            }
            _ => Err(err(
                ErrorKind::InvalidValue,
                "status is 100-599, network or timeout",
            )),
        },
    }
}

/// `number`: decimal with optional sign, fraction and exponent; never NaN or infinite.
pub(crate) fn number(text: &str) -> Result<f64, ParseError> {
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

// ---------------------------------------------------------------------------------------------
// StatsD / DogStatsD metrics
// ---------------------------------------------------------------------------------------------

fn metric(text: &str) -> Result<Metric<'_>, ParseError> {
    let Some((name, rest)) = text.split_once(':') else {
        let detail = if text.contains('|') {
            "no ':' between name and value"
        } else {
            "neither a native verb nor a statsd line"
        };
        return Err(err(ErrorKind::Malformed, detail));
    };
    let name = statsd_name(name)?;
    let Some((values, rest)) = rest.split_once('|') else {
        return Err(err(ErrorKind::MissingField, "no '|type' after the value"));
    };
    let (kind, fields) = match rest.split_once('|') {
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
pub(crate) fn statsd_name(text: &str) -> Result<&str, ParseError> {
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
    !text.is_empty()
        && text.len() <= MAX_STATSD_NAME_LEN
        && text.bytes().all(|b| {
            b > b' '
                && b != 0x7f
                && !matches!(
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
    if !text.contains(':') {
        return value(text, kind).map(Values::One);
    }
    for part in text.split(':') {
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
    for field in fields.split('|') {
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
fn sample_rate(text: &str) -> Result<(f64, bool), ParseError> {
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

fn unix_seconds(text: &str) -> Result<u64, ParseError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            ErrorKind::InvalidField,
            "a timestamp is whole unix seconds",
        ));
    }
    text.parse()
        .map_err(|_| err(ErrorKind::InvalidField, "timestamp out of range"))
}

fn printable<'a>(text: &'a str, detail: &'static str) -> Result<&'a str, ParseError> {
    if text.is_empty() || text.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(err(ErrorKind::InvalidField, detail));
    }
    Ok(text)
}

/// `tags`: at most 64 comma-separated tags, each at most 256 bytes without control characters,
/// `key[:value]` with a non-empty key. Empty entries are skipped.
pub(crate) fn tags(text: &str) -> Result<Tags<'_>, ParseError> {
    let mut count = 0;
    for tag in text.split(',') {
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
        if tag.bytes().any(|b| b < b' ' || b == 0x7f || b == b'|') {
            return Err(err(
                ErrorKind::InvalidTag,
                "a tag may not hold control characters or '|'",
            ));
        }
    }
    Ok(Tags::new_unchecked(text))
}

// ---------------------------------------------------------------------------------------------
// DogStatsD events and service checks
// ---------------------------------------------------------------------------------------------

/// DogStatsD origin fields: 1.2 container id, 1.5 external data, 1.6 cardinality. Known, and of
/// no use to a sidecar that already knows its pod.
fn is_origin_field(field: &str) -> bool {
    field.starts_with("c:") || field.starts_with("e:") || field.starts_with("card:")
}

/// Splits `d:123` into `("d:", "123")`; a field shorter than two bytes (or whose second byte is
/// inside a multi-byte character) has no key.
fn split_key(field: &str) -> (&str, &str) {
    match field.get(..2) {
        Some(key) => (key, &field[2..]),
        None => ("", field),
    }
}

/// `_e{<title length>,<text length>}:<title>|<text>[|field…]`; lengths are in bytes.
fn event(rest: &str) -> Result<Event<'_>, ParseError> {
    const BAD: ParseError = err(
        ErrorKind::Malformed,
        "an event is _e{<title bytes>,<text bytes>}:<title>|<text>",
    );
    let (lengths, rest) = rest.split_once("}:").ok_or(BAD)?;
    let (title_len, text_len) = lengths.split_once(',').ok_or(BAD)?;
    let title_len: usize = title_len.parse().map_err(|_| BAD)?;
    let text_len: usize = text_len.parse().map_err(|_| BAD)?;
    let title = rest.get(..title_len).ok_or(BAD)?;
    let rest = rest
        .get(title_len..)
        .ok_or(BAD)?
        .strip_prefix('|')
        .ok_or(BAD)?;
    let text = rest.get(..text_len).ok_or(BAD)?;
    let rest = rest.get(text_len..).ok_or(BAD)?;
    if title.is_empty() {
        return Err(err(ErrorKind::MissingField, "an event needs a title"));
    }
    let mut event = Event {
        title,
        text,
        ..Default::default()
    };
    let fields = match rest.strip_prefix('|') {
        Some(fields) => fields,
        None if rest.is_empty() => "",
        None => return Err(BAD),
    };
    let mut tagged = false;
    for field in fields.split('|').filter(|f| !f.is_empty()) {
        match split_key(field) {
            ("d:", ts) => event.timestamp = Some(unix_seconds(ts)?),
            ("h:", host) => event.hostname = Some(printable(host, "h: needs a hostname")?),
            ("k:", key) => {
                event.aggregation_key = Some(printable(key, "k: needs an aggregation key")?)
            }
            ("p:", priority) => event.priority = Some(printable(priority, "p: is normal or low")?),
            ("s:", source) => {
                event.source_type = Some(printable(source, "s: needs a source type")?)
            }
            ("t:", alert) => event.alert_type = Some(alert_type(alert)?),
            _ if field.starts_with('#') => {
                if tagged {
                    return Err(err(ErrorKind::InvalidTag, "tags given twice"));
                }
                tagged = true;
                event.tags = tags(&field[1..])?;
            }
            _ if is_origin_field(field) => {}
            _ => event.unknown_fields = event.unknown_fields.saturating_add(1),
        }
    }
    Ok(event)
}

fn alert_type(text: &str) -> Result<AlertType, ParseError> {
    Ok(match text {
        "error" => AlertType::Error,
        "warning" => AlertType::Warning,
        "info" => AlertType::Info,
        "success" => AlertType::Success,
        _ => {
            return Err(err(
                ErrorKind::InvalidField,
                "t: is error, warning, info or success",
            ));
        }
    })
}

/// `_sc|<name>|<status>[|d:<unix>][|h:<host>][|#tags][|m:<message>]`; the message ends at the
/// next `|`, as the Datadog agent reads it (clients append `|c:` after it).
fn service_check(rest: &str) -> Result<ServiceCheck<'_>, ParseError> {
    let mut parts = rest.splitn(3, '|');
    let name = statsd_name(parts.next().unwrap_or(""))?;
    let status = match parts.next() {
        Some("0") => CheckStatus::Ok,
        Some("1") => CheckStatus::Warning,
        Some("2") => CheckStatus::Critical,
        Some("3") => CheckStatus::Unknown,
        Some("") | None => {
            return Err(err(
                ErrorKind::MissingField,
                "a service check needs a status",
            ));
        }
        Some(_) => {
            return Err(err(
                ErrorKind::InvalidValue,
                "a service check status is 0, 1, 2 or 3",
            ));
        }
    };
    let mut check = ServiceCheck {
        name,
        status,
        timestamp: None,
        hostname: None,
        tags: Tags::EMPTY,
        message: None,
        unknown_fields: 0,
    };
    let mut tagged = false;
    for field in parts
        .next()
        .unwrap_or("")
        .split('|')
        .filter(|f| !f.is_empty())
    {
        match split_key(field) {
            ("d:", ts) => check.timestamp = Some(unix_seconds(ts)?),
            ("h:", host) => check.hostname = Some(printable(host, "h: needs a hostname")?),
            ("m:", message) => check.message = Some(message),
            _ if field.starts_with('#') => {
                if tagged {
                    return Err(err(ErrorKind::InvalidTag, "tags given twice"));
                }
                tagged = true;
                check.tags = tags(&field[1..])?;
            }
            _ if is_origin_field(field) => {}
            _ => check.unknown_fields = check.unknown_fields.saturating_add(1),
        }
    }
    Ok(check)
}
