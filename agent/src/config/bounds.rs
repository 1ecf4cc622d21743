//! The range of every duration and count the configuration accepts: one constant per kind of
//! value, so that `default.yaml`, the validation and its messages say the same.
//!
//! Every bound is generous for an operator and small enough that no arithmetic on it can
//! overflow: ten years on top of any date chrono and croner handle is still a date.

use std::fmt::Write as _;
use std::time::Duration;

/// humantime's year (365.25 days), so that `10y` in a config is exactly the bound.
const YEAR: Duration = Duration::from_secs(31_557_600);
const DAY: Duration = Duration::from_secs(86_400);

/// A range of durations, as the config writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    /// The shortest accepted.
    pub min: Duration,
    /// The longest accepted.
    pub max: Duration,
    /// `0s` is accepted too, meaning "never" or "off".
    pub zero_is_off: bool,
}

/// A range of counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// The smallest accepted.
    pub min: u64,
    /// The largest accepted.
    pub max: u64,
}

const fn durations(min: Duration, max: Duration) -> Durations {
    Durations {
        min,
        max,
        zero_is_off: false,
    }
}

/// `jobs.*.every`, a cron schedule's period, and `alert_after`, `late_after`, `max_runtime`,
/// `stall_after`: 1s to 10y.
pub const SCHEDULE: Durations = durations(Duration::from_secs(1), YEAR.saturating_mul(10));
/// `workers.*.ttl`, `defaults.worker_ttl`: 1s to 1y.
pub const WORKER_TTL: Durations = durations(Duration::from_secs(1), YEAR);
/// `statsd.gauge_ttl`, `statsd.counter_ttl`, a mapping's `ttl`: 0s (never) or 1s to 1y.
/// Counters and histograms also need 1h or more (the aggregator says why).
pub const SERIES_TTL: Durations = Durations {
    min: Duration::from_secs(1),
    max: YEAR,
    zero_is_off: true,
};
/// `limits.set_window`: 1s to 1d.
pub const SET_WINDOW: Durations = durations(Duration::from_secs(1), DAY);
/// `listen.tcp.idle_timeout`, `listen.unix_stream.idle_timeout`: 1s to 7d.
pub const IDLE_TIMEOUT: Durations = durations(Duration::from_secs(1), DAY.saturating_mul(7));
/// `shutdown.drain_timeout`: 0s (do not wait) to 10m.
pub const DRAIN: Durations = durations(Duration::ZERO, Duration::from_secs(600));
/// `otlp.interval`, `otlp.timeout`, `textfile.interval` (and their OTEL_* variables): 1ms to
/// 1d.
pub const EXPORT_PERIOD: Durations = durations(Duration::from_millis(1), DAY);
/// `alerts.*.failure_ratio.window`: 1s to 1y.
/// `state.interval`.
pub const STATE_INTERVAL: Durations = durations(Duration::from_secs(1), DAY);
pub const ALERT_WINDOW: Durations = durations(Duration::from_secs(1), YEAR);
/// `alerts.*.for`: 0s (fire at once) to 1y.
pub const ALERT_FOR: Durations = durations(Duration::ZERO, YEAR);

/// `listen.*.max_datagram_bytes`: 512 to 1 MiB.
pub const DATAGRAM: Counts = Counts {
    min: 512,
    max: 1 << 20,
};
/// `listen.*.batch_datagrams`: the kernel refuses more than 1024 messages per recvmmsg call
/// (UIO_MAXIOV).
pub const BATCH: Counts = Counts { min: 1, max: 1024 };
/// `listen.udp.receive_threads`: 1 to 64 sockets and threads (each thread's buffers and socket
/// buffer cost memory; more threads than cores gain nothing).
pub const RECEIVE_THREADS: Counts = Counts { min: 1, max: 64 };
/// `listen.*.receive_buffer_bytes`: 0 keeps the kernel's default size; at most 1 GiB.
pub const RECEIVE_BUFFER: Counts = Counts {
    min: 0,
    max: 1 << 30,
};
/// `listen.*.max_connections`: 1 to 65536.
pub const CONNECTIONS: Counts = Counts { min: 1, max: 65536 };
/// `listen.*.max_line_bytes`: a line the parser accepts must never close its connection; at
/// most 16 MiB.
pub const LINE: Counts = Counts {
    min: heartwire_proto::MAX_LINE_LEN as u64,
    max: 1 << 24,
};
/// `listen.unix_stream.max_frame_bytes`: below 16 MiB, so that every length prefix has a NUL
/// fourth byte (the framing rule).
pub const FRAME: Counts = Counts {
    min: 1024,
    max: (1 << 24) - 1,
};
/// `listen.http.max_body_bytes`: 1 to 1 GiB.
pub const BODY: Counts = Counts {
    min: 1,
    max: 1 << 30,
};
/// `pipeline.queue_batches`: 1 to 1 Mi.
pub const QUEUE: Counts = Counts {
    min: 1,
    max: 1 << 20,
};
/// `limits.*` counts: 1 to 100 000 000.
pub const MEMORY_CAP: Counts = Counts {
    min: 1,
    max: 100_000_000,
};
/// Entries of one histogram bucket list: 1 to 64.
pub const BUCKETS: Counts = Counts { min: 1, max: 64 };
/// `jobs.*.failure_threshold`: 1 to 1 000 000.
pub const FAILURES: Counts = Counts {
    min: 1,
    max: 1_000_000,
};
/// `dashboard.rows`: 0 to 50.
pub const DASHBOARD_ROWS: Counts = Counts { min: 0, max: 50 };
/// The panels of a row: 1 to 50.
pub const DASHBOARD_PANELS: Counts = Counts { min: 1, max: 50 };
/// The families of a panel's `rate`, `increase` or `value` list: 1 to 12.
pub const DASHBOARD_FAMILIES: Counts = Counts { min: 1, max: 12 };
/// The labels of a panel's `by`: 0 (one total) to 10.
pub const DASHBOARD_LABELS: Counts = Counts { min: 0, max: 10 };
/// A panel's `windows`: 1 to 4.
pub const DASHBOARD_WINDOWS: Counts = Counts { min: 1, max: 4 };
/// A panel's `quantiles`: 1 to 5.
pub const DASHBOARD_QUANTILES: Counts = Counts { min: 1, max: 5 };
/// A panel's `thresholds`: 1 to 10 steps.
pub const DASHBOARD_THRESHOLDS: Counts = Counts { min: 1, max: 10 };
/// A panel's `width`: 1 to 24 columns (Grafana's grid).
pub const PANEL_WIDTH: Counts = Counts { min: 1, max: 24 };
/// A panel's `height`: 2 to 40 grid rows.
pub const PANEL_HEIGHT: Counts = Counts { min: 2, max: 40 };
/// A panel's windows: 1s to 1y.
pub const PANEL_WINDOW: Durations = durations(Duration::from_secs(1), YEAR);

impl Durations {
    /// Whether `value` is in range; the error says what is accepted.
    pub fn check(&self, value: Duration) -> Result<Duration, String> {
        if (self.zero_is_off && value.is_zero()) || (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(format!("{} is out of range: use {self}", compact(value)))
    }
}

impl std::fmt::Display for Durations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.zero_is_off {
            f.write_str("0s (never) or ")?;
        }
        write!(f, "{} to {}", compact(self.min), compact(self.max))
    }
}

impl Counts {
    /// Whether `value` is in range; the error says what is accepted.
    pub fn check(&self, value: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&value) {
            return Ok(value);
        }
        Err(format!("{value} is out of range: use {self}"))
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to {}", self.min, self.max)
    }
}

/// A duration the way a config writes it, and humantime reads it back: `10y`, `1h 30m`,
/// `250ms`, `0s`.
pub fn compact(value: Duration) -> String {
    const UNITS: [(&str, u64); 5] = [
        ("y", 31_557_600),
        ("d", 86_400),
        ("h", 3600),
        ("m", 60),
        ("s", 1),
    ];
    let mut out = String::new();
    let mut seconds = value.as_secs();
    for (unit, size) in UNITS {
        if seconds >= size {
            let _ = write!(out, " {}{unit}", seconds / size);
            seconds %= size;
        }
    }
    let nanos = value.subsec_nanos();
    for (unit, size, of) in [("ms", 1_000_000, 1000), ("us", 1000, 1000), ("ns", 1, 1000)] {
        let part = nanos / size % of;
        if part > 0 {
            let _ = write!(out, " {part}{unit}");
        }
    }
    if out.is_empty() {
        return "0s".to_owned();
    }
    out.split_off(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_durations_read_back_as_the_same_duration() {
        for (value, text) in [
            (Duration::ZERO, "0s"),
            (YEAR * 10, "10y"),
            (YEAR * 300_000, "300000y"),
            (Duration::from_secs(5400), "1h 30m"),
            (Duration::from_millis(250), "250ms"),
            (Duration::new(1, 1_001), "1s 1us 1ns"),
            (DAY * 7, "7d"),
        ] {
            assert_eq!(compact(value), text);
            assert_eq!(humantime::parse_duration(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn out_of_range_messages_say_what_is_accepted() {
        assert_eq!(
            SCHEDULE.check(YEAR * 300_000).unwrap_err(),
            "300000y is out of range: use 1s to 10y"
        );
        assert_eq!(
            SERIES_TTL.check(YEAR * 2).unwrap_err(),
            "2y is out of range: use 0s (never) or 1s to 1y"
        );
        assert_eq!(SERIES_TTL.check(Duration::ZERO), Ok(Duration::ZERO));
        assert!(SCHEDULE.check(Duration::ZERO).is_err());
        assert_eq!(
            FAILURES.check(0).unwrap_err(),
            "0 is out of range: use 1 to 1000000"
        );
    }
}
