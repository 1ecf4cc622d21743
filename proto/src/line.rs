//! Borrowed views of parsed lines.
//!
//! Every string in these types borrows from the datagram it was parsed from; nothing here
//! allocates. Fields are documented with the grammar rule of `PROTOCOL.md` they come from.

use crate::error::ParseError;
use crate::parse;

/// One parsed line: a native verb, a StatsD/DogStatsD metric, a DogStatsD event or a service
/// check.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// `job.start <job> [id=<run>]`
    JobStart(JobStart<'a>),
    /// `job.ok <job> [<seconds>] [reason=<token>] [id=<run>] [exit=<code>]`
    JobOk(JobEnd<'a>),
    /// `job.error <job> [<seconds>] [reason=<token>] [id=<run>] [exit=<code>] [signal=<name>]`
    JobError(JobEnd<'a>),
    /// `job.skip <job> [reason=<token>] [id=<run>]`
    JobSkip(JobSkip<'a>),
    /// `job.progress <job> [<n>] [id=<run>]`
    JobProgress(JobProgress<'a>),
    /// `hb <worker> [ttl=<seconds>]`
    Heartbeat(Heartbeat<'a>),
    /// `worker.stop <worker>`
    WorkerStop(WorkerStop<'a>),
    /// `http <service> <endpoint> <status> [<seconds>]`
    Http(Http<'a>),
    /// `hello app=<name> [pid=<n>]`
    Hello(Hello<'a>),
    /// `name:value[:value…]|type[|@rate][|#tags][|T<unix>][|c:<container>]`
    Metric(Metric<'a>),
    /// `_e{<title length>,<text length>}:<title>|<text>[|…]`
    Event(Event<'a>),
    /// `_sc|<name>|<status>[|d:<unix>][|h:<host>][|#tags][|m:<message>]`
    ServiceCheck(ServiceCheck<'a>),
}

impl<'a> Line<'a> {
    /// Parses one line (without its terminator). See [`crate::parse_line`].
    pub fn parse(line: &'a [u8]) -> Result<Line<'a>, ParseError> {
        parse::line(line)
    }

    /// Whether the line carried `key=value` fields or `|x` extensions this version does not know.
    /// Such lines are accepted; the agent counts them so that a newer client is visible.
    pub fn has_unknown_fields(&self) -> bool {
        match self {
            Line::JobStart(l) => l.unknown_fields > 0,
            Line::JobOk(l) | Line::JobError(l) => l.unknown_fields > 0,
            Line::JobSkip(l) => l.unknown_fields > 0,
            Line::JobProgress(l) => l.unknown_fields > 0,
            Line::Heartbeat(l) => l.unknown_fields > 0,
            Line::WorkerStop(l) => l.unknown_fields > 0,
            Line::Http(l) => l.unknown_fields > 0,
            Line::Hello(l) => l.unknown_fields > 0,
            Line::Metric(l) => l.unknown_fields > 0,
            Line::Event(l) => l.unknown_fields > 0,
            Line::ServiceCheck(l) => l.unknown_fields > 0,
        }
    }

    /// The dialect the line was written in.
    pub fn dialect(&self) -> Dialect {
        match self {
            Line::Metric(_) => Dialect::Statsd,
            Line::Event(_) | Line::ServiceCheck(_) => Dialect::DogStatsd,
            _ => Dialect::Native,
        }
    }
}

/// The two dialects of the protocol (`PROTOCOL.md`, "Telling dialects apart").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// heartwire's own verbs: `job.*`, `hb`, `worker.stop`, `http`, `hello`.
    Native,
    /// StatsD metric lines, with or without DogStatsD extensions.
    Statsd,
    /// DogStatsD events (`_e`) and service checks (`_sc`).
    DogStatsd,
}

/// `job.start <job> [id=<run>]`: a run began.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobStart<'a> {
    /// The job name (`name` rule).
    pub job: &'a str,
    /// The run id (`id=`), which pairs this start with its `job.ok`/`job.error`.
    pub id: Option<&'a str>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `job.ok` and `job.error`: a run ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobEnd<'a> {
    /// The job name (`name` rule).
    pub job: &'a str,
    /// The run's duration in seconds as measured by the app; `None` means "now minus the
    /// matching start".
    pub seconds: Option<f64>,
    /// Why the run ended as it did (`reason=`, `token` rule): a failure's cause, or a success's
    /// detail such as `nothing_to_do`.
    pub reason: Option<&'a str>,
    /// The run id (`id=`).
    pub id: Option<&'a str>,
    /// The process exit code (`exit=`), when the run was a process.
    pub exit: Option<i32>,
    /// The signal that ended the process (`signal=`, e.g. `TERM`, `SIGKILL` or `9`).
    pub signal: Option<&'a str>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `job.skip <job> [reason=<token>] [id=<run>]`: the slot was handled without doing work.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobSkip<'a> {
    /// The job name (`name` rule).
    pub job: &'a str,
    /// Why the run was skipped (`reason=`).
    pub reason: Option<&'a str>,
    /// The run id (`id=`).
    pub id: Option<&'a str>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `job.progress <job> [<n>] [id=<run>]`: the job made progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobProgress<'a> {
    /// The job name (`name` rule).
    pub job: &'a str,
    /// How much progress was made (pages, rows); `None` means 1.
    pub amount: Option<f64>,
    /// The run id (`id=`), which extends that run's overrun deadline.
    pub id: Option<&'a str>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `hb <worker> [ttl=<seconds>]`: a long-running worker is alive.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Heartbeat<'a> {
    /// The worker name (`name` rule).
    pub worker: &'a str,
    /// How long this heartbeat keeps the worker up; `None` means the configured ttl.
    pub ttl: Option<f64>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `worker.stop <worker>`: a worker stopped cleanly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerStop<'a> {
    /// The worker name (`name` rule).
    pub worker: &'a str,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// `http <service> <endpoint> <status> [<seconds>]`: an outbound call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Http<'a> {
    /// The called service (`name` rule), e.g. `kick`.
    pub service: &'a str,
    /// The endpoint (`name` rule), e.g. `oauth/token`.
    pub endpoint: &'a str,
    /// How the call ended.
    pub status: HttpStatus,
    /// How long the call took, in seconds.
    pub seconds: Option<f64>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// How an outbound call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpStatus {
    /// A response arrived with this status code (100–599).
    Code(u16),
    /// The call never reached a response: DNS, TCP, TLS or an abort.
    Network,
    /// The call timed out.
    Timeout,
}

impl HttpStatus {
    /// The status as the wire and the `status_code` label spell it.
    pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
        match self {
            HttpStatus::Code(code) => std::borrow::Cow::Owned(code.to_string()),
            HttpStatus::Network => std::borrow::Cow::Borrowed("network"),
            HttpStatus::Timeout => std::borrow::Cow::Borrowed("timeout"),
        }
    }
}

/// `hello app=<name> [pid=<n>]`: the first line of a Unix stream connection opens a session.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hello<'a> {
    /// The application name (`name` rule).
    pub app: &'a str,
    /// The sender's process id, for logs only.
    pub pid: Option<u32>,
    /// Count of unknown `key=value` fields that were ignored.
    pub unknown_fields: u8,
}

/// The StatsD metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// `c`: a counter increment.
    Counter,
    /// `g`: a gauge; a value with a leading sign is a delta.
    Gauge,
    /// `ms`: a timing in milliseconds.
    Timer,
    /// `h`: a histogram sample.
    Histogram,
    /// `d`: a distribution sample (treated as a histogram).
    Distribution,
    /// `s`: a set member.
    Set,
}

impl MetricKind {
    /// The type as written on the wire (`c`, `g`, `ms`, `h`, `d`, `s`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricKind::Counter => "c",
            MetricKind::Gauge => "g",
            MetricKind::Timer => "ms",
            MetricKind::Histogram => "h",
            MetricKind::Distribution => "d",
            MetricKind::Set => "s",
        }
    }
}

/// One numeric value of a metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    /// The number, always finite.
    pub number: f64,
    /// For gauges: the value was written with a leading `+` or `-` and is a delta.
    /// Always `false` for other types.
    pub relative: bool,
}

impl Value {
    /// An absolute value.
    pub fn absolute(number: f64) -> Value {
        Value {
            number,
            relative: false,
        }
    }

    /// A gauge delta.
    pub fn delta(number: f64) -> Value {
        Value {
            number,
            relative: true,
        }
    }
}

/// The values of one metric line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Values<'a> {
    /// One number: the common case, parsed once.
    One(Value),
    /// Two or more `:`-separated numbers (DogStatsD 1.1 packing), already validated.
    Packed(&'a str),
    /// The member of a set (`s`), as written.
    Member(&'a str),
}

impl<'a> Values<'a> {
    /// Iterates over the numeric values. Yields nothing for a set member.
    pub fn iter(&self, kind: MetricKind) -> ValueIter<'a> {
        match *self {
            Values::One(value) => ValueIter {
                first: Some(value),
                rest: None,
                kind,
            },
            Values::Packed(raw) => ValueIter {
                first: None,
                rest: Some(raw),
                kind,
            },
            Values::Member(_) => ValueIter {
                first: None,
                rest: None,
                kind,
            },
        }
    }

    /// How many values the line carries (1 for a set member).
    pub fn len(&self) -> usize {
        match self {
            Values::One(_) | Values::Member(_) => 1,
            Values::Packed(raw) => raw.bytes().filter(|&b| b == b':').count() + 1,
        }
    }

    /// Never true: a metric line carries at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Iterator over the numeric values of a metric line.
#[derive(Debug, Clone)]
pub struct ValueIter<'a> {
    first: Option<Value>,
    rest: Option<&'a str>,
    kind: MetricKind,
}

impl Iterator for ValueIter<'_> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        if let Some(value) = self.first.take() {
            return Some(value);
        }
        let rest = self.rest?;
        let (head, tail) = match rest.split_once(':') {
            Some((head, tail)) => (head, Some(tail)),
            None => (rest, None),
        };
        self.rest = tail;
        // The text was validated when the line was parsed.
        parse::value(head, self.kind).ok()
    }
}

/// The DogStatsD tags of a line (`|#k:v,k2:v2,bare`), validated, iterated without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags<'a> {
    raw: &'a str,
}

impl<'a> Tags<'a> {
    /// No tags.
    pub const EMPTY: Tags<'static> = Tags { raw: "" };

    /// Validates a tag list as written after `|#`.
    pub fn parse(raw: &'a str) -> Result<Tags<'a>, ParseError> {
        parse::tags(raw)
    }

    pub(crate) fn new_unchecked(raw: &'a str) -> Tags<'a> {
        Tags { raw }
    }

    /// The tag list as written, without the leading `#`.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// Whether the line had no tags.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Iterates the tags in the order written. Empty entries (`a,,b`) are skipped; duplicate
    /// keys are yielded as written (the agent keeps the last one).
    pub fn iter(&self) -> TagIter<'a> {
        TagIter { rest: self.raw }
    }
}

/// One DogStatsD tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The part before the first `:`, or the whole tag when it has none.
    pub key: &'a str,
    /// The part after the first `:`; `None` for a bare tag such as `#canary`.
    pub value: Option<&'a str>,
}

/// Iterator over the tags of a line.
#[derive(Debug, Clone)]
pub struct TagIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for TagIter<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (tag, rest) = match self.rest.split_once(',') {
                Some((tag, rest)) => (tag, rest),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if tag.is_empty() {
                continue;
            }
            return Some(match tag.split_once(':') {
                Some((key, value)) => Tag {
                    key,
                    value: Some(value),
                },
                None => Tag {
                    key: tag,
                    value: None,
                },
            });
        }
    }
}

/// A StatsD or DogStatsD metric line.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric<'a> {
    /// The metric name as written (`statsd-name` rule); the agent maps it to a Prometheus name.
    pub name: &'a str,
    /// The metric type.
    pub kind: MetricKind,
    /// The value or values.
    pub values: Values<'a>,
    /// The sample rate from `|@rate`, in (0, 1]; 1 when absent. Each value weighs `1 / rate`.
    pub rate: f64,
    /// The rate was outside (0, 1] or below [`crate::MIN_SAMPLE_RATE`] and was clamped.
    pub rate_clamped: bool,
    /// DogStatsD tags (`|#…`).
    pub tags: Tags<'a>,
    /// The client's timestamp from `|T<unix seconds>`.
    pub timestamp: Option<u64>,
    /// The container id from `|c:<id>` (DogStatsD 1.2).
    pub container: Option<&'a str>,
    /// Count of unknown `|x` extension fields that were ignored.
    pub unknown_fields: u8,
}

impl<'a> Metric<'a> {
    /// A metric line with one absolute value, rate 1 and no tags.
    pub fn new(name: &'a str, kind: MetricKind, number: f64) -> Metric<'a> {
        Metric {
            name,
            kind,
            values: Values::One(Value::absolute(number)),
            rate: 1.0,
            rate_clamped: false,
            tags: Tags::EMPTY,
            timestamp: None,
            container: None,
            unknown_fields: 0,
        }
    }

    /// The weight of each value: `1 / rate`.
    pub fn weight(&self) -> f64 {
        1.0 / self.rate
    }
}

/// A DogStatsD event: `_e{<title length>,<text length>}:<title>|<text>|…`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event<'a> {
    /// The title, as written.
    pub title: &'a str,
    /// The text as written; `\\n` stands for a newline.
    pub text: &'a str,
    /// `d:<unix seconds>`.
    pub timestamp: Option<u64>,
    /// `h:<hostname>`.
    pub hostname: Option<&'a str>,
    /// `k:<aggregation key>`.
    pub aggregation_key: Option<&'a str>,
    /// `p:normal|low`.
    pub priority: Option<&'a str>,
    /// `s:<source type>`.
    pub source_type: Option<&'a str>,
    /// `t:error|warning|info|success`.
    pub alert_type: Option<AlertType>,
    /// `#tags`.
    pub tags: Tags<'a>,
    /// Count of unknown `|x` fields that were ignored.
    pub unknown_fields: u8,
}

/// The alert type of a DogStatsD event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertType {
    /// `t:error`
    Error,
    /// `t:warning`
    Warning,
    /// `t:info` (the default)
    Info,
    /// `t:success`
    Success,
}

impl AlertType {
    /// The alert type as the wire spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertType::Error => "error",
            AlertType::Warning => "warning",
            AlertType::Info => "info",
            AlertType::Success => "success",
        }
    }
}

/// A DogStatsD service check: `_sc|<name>|<status>|…`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheck<'a> {
    /// The check name (`statsd-name` rule).
    pub name: &'a str,
    /// The reported status.
    pub status: CheckStatus,
    /// `d:<unix seconds>`.
    pub timestamp: Option<u64>,
    /// `h:<hostname>`.
    pub hostname: Option<&'a str>,
    /// `#tags`.
    pub tags: Tags<'a>,
    /// `m:<message>`, up to the next `|`.
    pub message: Option<&'a str>,
    /// Count of unknown `|x` fields that were ignored.
    pub unknown_fields: u8,
}

/// The status of a service check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// `0`
    Ok = 0,
    /// `1`
    Warning = 1,
    /// `2`
    Critical = 2,
    /// `3`
    Unknown = 3,
}

impl CheckStatus {
    /// The status as a number, 0–3.
    pub fn code(&self) -> u8 {
        *self as u8
    }
}
