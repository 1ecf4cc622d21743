//! Times as a person reads them: ages in words ("3 min ago", "in 2 min") and RFC 3339 stamps.

use chrono::{DateTime, SecondsFormat};

/// A length of time, rounded to the largest unit that fits: `45 s`, `3 min`, `2 h`, `3 d`.
///
/// Rounded, not truncated, so that 1 h 59 min reads `2 h`; the exact timestamp sits beside it
/// (the RFC 3339 string in `/status`, a tooltip on the page).
pub fn span(seconds: f64) -> String {
    let seconds = seconds.abs();
    if !seconds.is_finite() {
        return "forever".to_owned();
    }
    // Each unit in seconds and the count at which the next unit takes over; rounding first
    // keeps 59.7 s from reading `60 s`.
    let units = [(1.0, 60.0, "s"), (60.0, 60.0, "min"), (3600.0, 24.0, "h")];
    for (size, next, unit) in units {
        let count = (seconds / size).round();
        if count < next {
            return format!("{count} {unit}");
        }
    }
    format!("{} d", (seconds / 86_400.0).round())
}

/// How long a run took, exact to what a person compares: `0.25 s`, `12.5 s` below a minute,
/// then whole units, `1 min 30 s`, `2 h 5 min`, `1 d 3 h` (the two largest that are not 0).
pub fn took(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "unknown".to_owned();
    }
    if seconds < 59.995 {
        let text = format!("{seconds:.2}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        return format!("{text} s");
    }
    // Beyond u64 seconds the cast saturates: 584 billion years is long enough.
    let mut rest = seconds.round() as u64;
    let mut parts = Vec::with_capacity(2);
    for (size, unit) in [(86_400, "d"), (3600, "h"), (60, "min"), (1, "s")] {
        let count = rest / size;
        rest %= size;
        if count > 0 || !parts.is_empty() {
            parts.push((count, unit));
        }
        if parts.len() == 2 {
            break;
        }
    }
    parts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, unit)| format!("{count} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Where `at` lies relative to `now`, both Unix seconds: `just now` within a second, else
/// `45 s ago` or `in 2 min`.
pub fn relative(at: f64, now: f64) -> String {
    let delta = now - at;
    if !delta.is_finite() {
        return "unknown".to_owned();
    }
    if delta.abs() < 1.0 {
        "just now".to_owned()
    } else if delta > 0.0 {
        format!("{} ago", span(delta))
    } else {
        format!("in {}", span(delta))
    }
}

/// `2026-11-22T10:15:00.250Z`, or `None` for a time chrono cannot place (not finite, or beyond
/// year 262143).
pub fn rfc3339(unix_seconds: f64) -> Option<String> {
    if !unix_seconds.is_finite() {
        return None;
    }
    let millis = (unix_seconds * 1000.0).round();
    // Outside i64 the cast saturates, and chrono rejects the result below.
    let time = DateTime::from_timestamp_millis(millis as i64)?;
    Some(time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_to_the_largest_unit_that_fits() {
        let cases = [
            (0.4, "0 s"),
            (45.2, "45 s"),
            (59.7, "1 min"),
            (89.0, "1 min"),
            (3.0 * 60.0 + 10.0, "3 min"),
            (3600.0 + 59.0 * 60.0, "2 h"),
            (22.0 * 3600.0, "22 h"),
            (86_399.0, "1 d"),
            (3.2 * 86_400.0, "3 d"),
            (-45.0, "45 s"),
            (f64::INFINITY, "forever"),
        ];
        for (seconds, words) in cases {
            assert_eq!(span(seconds), words, "span({seconds})");
        }
    }

    #[test]
    fn run_durations_are_exact_below_a_minute_and_in_two_units_above() {
        let cases = [
            (0.0, "0 s"),
            (0.25, "0.25 s"),
            (1.5, "1.5 s"),
            (12.0, "12 s"),
            (59.996, "1 min"),
            (90.0, "1 min 30 s"),
            (3600.0, "1 h"),
            (2.0 * 3600.0 + 5.0 * 60.0 + 7.0, "2 h 5 min"),
            (86_400.0 + 30.0, "1 d"),
            (27.0 * 3600.0, "1 d 3 h"),
            (-1.0, "unknown"),
            (f64::NAN, "unknown"),
        ];
        for (seconds, words) in cases {
            assert_eq!(took(seconds), words, "took({seconds})");
        }
    }

    #[test]
    fn relative_times_say_ago_or_in() {
        let now = 1_700_000_000.0;
        assert_eq!(relative(now - 0.6, now), "just now");
        assert_eq!(relative(now + 0.6, now), "just now");
        assert_eq!(relative(now - 45.0, now), "45 s ago");
        assert_eq!(relative(now - 180.0, now), "3 min ago");
        assert_eq!(relative(now + 120.0, now), "in 2 min");
        assert_eq!(relative(now - 7_300.0, now), "2 h ago");
        assert_eq!(relative(now - 3.2 * 86_400.0, now), "3 d ago");
        assert_eq!(relative(f64::NAN, now), "unknown");
    }

    #[test]
    fn rfc3339_keeps_milliseconds_in_utc() {
        assert_eq!(rfc3339(0.0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            rfc3339(1_700_000_000.25).as_deref(),
            Some("2023-11-14T22:13:20.250Z")
        );
        assert_eq!(rfc3339(f64::NAN), None);
        assert_eq!(rfc3339(1e300), None);
    }
}
