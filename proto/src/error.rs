//! Why a line was rejected.

use std::fmt;

/// The reason a line was rejected: a small fixed set, so that the agent can keep one counter per
/// reason (`heartwire_lines_rejected_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The line is longer than [`crate::MAX_LINE_LEN`] bytes.
    TooLong,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line has the shape of a native line but its verb is not one this version knows.
    UnknownVerb,
    /// A required part is missing: a native verb without its name, a metric without a type.
    MissingField,
    /// A name breaks the `name` or `statsd-name` rule (empty, too long, a forbidden character).
    InvalidName,
    /// A value is not a finite number, or out of its range (negative seconds, status 42).
    InvalidValue,
    /// A counter increment is negative: Prometheus counters only go up. The parser accepts such
    /// a line (it is valid StatsD, what `decrement` sends); the agent rejects it with this reason.
    NegativeCounter,
    /// The StatsD type is not one of `c g ms h d s`.
    InvalidType,
    /// The `@rate` is not a number.
    InvalidSampleRate,
    /// A tag breaks the tag rules, or the line has more than [`crate::MAX_TAGS`] tags.
    InvalidTag,
    /// A known field has a bad value (`id=` empty, `exit=x`, `|Tabc`, a repeated `|@`).
    InvalidField,
    /// The line has none of the shapes of the grammar.
    Malformed,
}

impl ErrorKind {
    /// Every kind, in counter order.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::TooLong,
        ErrorKind::InvalidUtf8,
        ErrorKind::UnknownVerb,
        ErrorKind::MissingField,
        ErrorKind::InvalidName,
        ErrorKind::InvalidValue,
        ErrorKind::NegativeCounter,
        ErrorKind::InvalidType,
        ErrorKind::InvalidSampleRate,
        ErrorKind::InvalidTag,
        ErrorKind::InvalidField,
        ErrorKind::Malformed,
    ];

    /// The `reason` label value.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorKind::TooLong => "too_long",
            ErrorKind::InvalidUtf8 => "invalid_utf8",
            ErrorKind::UnknownVerb => "unknown_verb",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::NegativeCounter => "negative_counter",
            ErrorKind::InvalidType => "invalid_type",
            ErrorKind::InvalidSampleRate => "invalid_sample_rate",
            ErrorKind::InvalidTag => "invalid_tag",
            ErrorKind::InvalidField => "invalid_field",
            ErrorKind::Malformed => "malformed",
        }
    }

    /// The position of this kind in [`ErrorKind::ALL`], for array-indexed counters.
    pub fn index(&self) -> usize {
        *self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected line: its [`ErrorKind`] and a static detail for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    kind: ErrorKind,
    detail: &'static str,
}

impl ParseError {
    pub(crate) const fn new(kind: ErrorKind, detail: &'static str) -> ParseError {
        ParseError { kind, detail }
    }

    /// The reason, for counters.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A short human explanation, for logs.
    pub fn detail(&self) -> &'static str {
        self.detail
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

impl std::error::Error for ParseError {}
