//! IANA time zones for `chrono`, backed by jiff's copy of the tz database.
//!
//! croner is generic over `chrono::TimeZone`; this module gives it the zones. The database is
//! jiff's bundled one (`tzdb-bundle-always`): compact TZif bytes, read lazily and only for the
//! zones a config names. chrono-tz, used before, compiles every zone into tables of
//! `&'static str` pointers that the loader relocates at start, about 0.9 MB of `.data.rel.ro`
//! resident in every pod (issue 16). Bundling rather than reading `/usr/share/zoneinfo` keeps a
//! job's slots the same on every host, images without tzdata included.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{
    FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use jiff::tz::AmbiguousOffset;

/// An IANA time zone, named exactly as the tz database spells it.
#[derive(Clone)]
pub struct Zone(Arc<Named>);

struct Named {
    name: Box<str>,
    tz: jiff::tz::TimeZone,
}

/// The name is not in the tz database (case matters, as it did with chrono-tz).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownZone;

impl FromStr for Zone {
    type Err = UnknownZone;

    fn from_str(name: &str) -> Result<Zone, UnknownZone> {
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| UnknownZone)?;
        // jiff looks names up case-insensitively; configs that chrono-tz refused stay refused,
        // and the name reported is the one written. `Etc/Unknown` has no IANA name.
        if tz.iana_name() != Some(name) {
            return Err(UnknownZone);
        }
        Ok(Zone(Arc::new(Named {
            name: name.into(),
            tz,
        })))
    }
}

impl Zone {
    /// The IANA name, as written in config (`Europe/Berlin`, `US/Eastern`, `UTC`).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    fn offset(&self, seconds: i32) -> ZoneOffset {
        ZoneOffset {
            zone: self.clone(),
            // jiff's offsets stay within ±26 h, chrono's within ±24 h: real zones fit both.
            fixed: FixedOffset::east_opt(seconds).unwrap_or_else(|| Utc.fix()),
        }
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The offset in force at one instant of a zone; it carries the zone, since chrono recovers a
/// `DateTime`'s zone from its offset (`TimeZone::from_offset`).
#[derive(Clone)]
pub struct ZoneOffset {
    zone: Zone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.fixed, f)
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.fixed, f)
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone.clone()
    }

    /// One offset that occurs on the date, chosen as chrono-tz chose it: a date is only ambiguous
    /// to the hour, and callers want a `Date` rather than an error.
    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        let end = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN);
        let first = self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN));
        let last = self.offset_from_local_datetime(&local.and_time(end));
        match (first, last) {
            (MappedLocalTime::Single(o), _)
            | (_, MappedLocalTime::Single(o))
            | (MappedLocalTime::Ambiguous(o, _), _)
            | (_, MappedLocalTime::Ambiguous(o, _)) => MappedLocalTime::Single(o),
            (MappedLocalTime::None, MappedLocalTime::None) => MappedLocalTime::None,
        }
    }

    /// A wall-clock time in the spring-forward gap has no offset; one in the fall-back fold has
    /// two, the earlier instant's first.
    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        match self.0.tz.to_ambiguous_timestamp(civil(local)).offset() {
            AmbiguousOffset::Unambiguous { offset } => {
                MappedLocalTime::Single(self.offset(offset.seconds()))
            }
            AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            AmbiguousOffset::Fold { before, after } => MappedLocalTime::Ambiguous(
                self.offset(before.seconds()),
                self.offset(after.seconds()),
            ),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let seconds = utc.and_utc().timestamp();
        let instant = jiff::Timestamp::from_second(seconds).unwrap_or(if seconds < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        });
        self.offset(self.0.tz.to_offset(instant).seconds())
    }
}

/// chrono's wall-clock time as jiff's, to the second (transitions fall on whole seconds).
/// chrono reaches further than jiff's ±9999 years; beyond that the nearest end stands in.
fn civil(local: &NaiveDateTime) -> jiff::civil::DateTime {
    use chrono::{Datelike, Timelike};
    use jiff::civil::DateTime;
    let beyond = if local.year() < 0 {
        DateTime::MIN
    } else {
        DateTime::MAX
    };
    let Ok(year) = i16::try_from(local.year()) else {
        return beyond;
    };
    // Only the year can be out of jiff's range; the other fields always fit.
    let field = |n: u32| i8::try_from(n).unwrap_or(0);
    DateTime::new(
        year,
        field(local.month()),
        field(local.day()),
        field(local.hour()),
        field(local.minute()),
        field(local.second()),
        0,
    )
    .unwrap_or(beyond)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::schedule::Schedule;
    use chrono::DateTime;

    // Expected values generated once with Python's `zoneinfo` over the host's tzdata 2025b, the
    // release chrono-tz 0.10.4 compiled in; none of these zones changed its rules up to the
    // 2026f that jiff bundles. Each DST transition of 2024-2027 appears as its last second
    // before and its first second after.
    /// (zone, UTC instant, offset east of UTC in seconds).
    const OFFSETS: &[(&str, &str, i32)] = &[
        ("Europe/Berlin", "2024-03-31T00:59:59Z", 3600),
        ("Europe/Berlin", "2024-03-31T01:00:00Z", 7200),
        ("Europe/Berlin", "2024-10-27T00:59:59Z", 7200),
        ("Europe/Berlin", "2024-10-27T01:00:00Z", 3600),
        ("Europe/Berlin", "2025-03-30T00:59:59Z", 3600),
        ("Europe/Berlin", "2025-03-30T01:00:00Z", 7200),
        ("Europe/Berlin", "2025-10-26T00:59:59Z", 7200),
        ("Europe/Berlin", "2025-10-26T01:00:00Z", 3600),
        ("Europe/Berlin", "2026-03-29T00:59:59Z", 3600),
        ("Europe/Berlin", "2026-03-29T01:00:00Z", 7200),
        ("Europe/Berlin", "2026-10-25T00:59:59Z", 7200),
        ("Europe/Berlin", "2026-10-25T01:00:00Z", 3600),
        ("Europe/Berlin", "2027-03-28T00:59:59Z", 3600),
        ("Europe/Berlin", "2027-03-28T01:00:00Z", 7200),
        ("Europe/Berlin", "2027-10-31T00:59:59Z", 7200),
        ("Europe/Berlin", "2027-10-31T01:00:00Z", 3600),
        ("America/New_York", "2024-03-10T06:59:59Z", -18000),
        ("America/New_York", "2024-03-10T07:00:00Z", -14400),
        ("America/New_York", "2024-11-03T05:59:59Z", -14400),
        ("America/New_York", "2024-11-03T06:00:00Z", -18000),
        ("America/New_York", "2025-03-09T06:59:59Z", -18000),
        ("America/New_York", "2025-03-09T07:00:00Z", -14400),
        ("America/New_York", "2025-11-02T05:59:59Z", -14400),
        ("America/New_York", "2025-11-02T06:00:00Z", -18000),
        ("America/New_York", "2026-03-08T06:59:59Z", -18000),
        ("America/New_York", "2026-03-08T07:00:00Z", -14400),
        ("America/New_York", "2026-11-01T05:59:59Z", -14400),
        ("America/New_York", "2026-11-01T06:00:00Z", -18000),
        ("America/New_York", "2027-03-14T06:59:59Z", -18000),
        ("America/New_York", "2027-03-14T07:00:00Z", -14400),
        ("America/New_York", "2027-11-07T05:59:59Z", -14400),
        ("America/New_York", "2027-11-07T06:00:00Z", -18000),
        ("Australia/Lord_Howe", "2024-04-06T14:59:59Z", 39600),
        ("Australia/Lord_Howe", "2024-04-06T15:00:00Z", 37800),
        ("Australia/Lord_Howe", "2024-10-05T15:29:59Z", 37800),
        ("Australia/Lord_Howe", "2024-10-05T15:30:00Z", 39600),
        ("Australia/Lord_Howe", "2025-04-05T14:59:59Z", 39600),
        ("Australia/Lord_Howe", "2025-04-05T15:00:00Z", 37800),
        ("Australia/Lord_Howe", "2025-10-04T15:29:59Z", 37800),
        ("Australia/Lord_Howe", "2025-10-04T15:30:00Z", 39600),
        ("Australia/Lord_Howe", "2026-04-04T14:59:59Z", 39600),
        ("Australia/Lord_Howe", "2026-04-04T15:00:00Z", 37800),
        ("Australia/Lord_Howe", "2026-10-03T15:29:59Z", 37800),
        ("Australia/Lord_Howe", "2026-10-03T15:30:00Z", 39600),
        ("Australia/Lord_Howe", "2027-04-03T14:59:59Z", 39600),
        ("Australia/Lord_Howe", "2027-04-03T15:00:00Z", 37800),
        ("Australia/Lord_Howe", "2027-10-02T15:29:59Z", 37800),
        ("Australia/Lord_Howe", "2027-10-02T15:30:00Z", 39600),
        ("Asia/Kolkata", "2024-01-15T12:00:00Z", 19800),
        ("Asia/Kolkata", "2027-07-15T12:00:00Z", 19800),
        ("America/Sao_Paulo", "2024-01-15T12:00:00Z", -10800),
        ("America/Sao_Paulo", "2027-07-15T12:00:00Z", -10800),
        ("UTC", "2024-01-15T12:00:00Z", 0),
        ("UTC", "2027-07-15T12:00:00Z", 0),
    ];
    /// (zone, wall-clock time, its offsets: none in a spring-forward gap, two in a fall-back
    /// fold, the earlier instant's first), each side of the 2025 and 2026 transitions.
    const WALL_CLOCK: &[(&str, &str, &[i32])] = &[
        ("Europe/Berlin", "2025-03-30T01:59:59", &[3600]),
        ("Europe/Berlin", "2025-03-30T02:30:00", &[]),
        ("Europe/Berlin", "2025-03-30T03:00:00", &[7200]),
        ("Europe/Berlin", "2025-10-26T01:59:59", &[7200]),
        ("Europe/Berlin", "2025-10-26T02:30:00", &[7200, 3600]),
        ("Europe/Berlin", "2025-10-26T03:00:00", &[3600]),
        ("Europe/Berlin", "2026-03-29T01:59:59", &[3600]),
        ("Europe/Berlin", "2026-03-29T02:30:00", &[]),
        ("Europe/Berlin", "2026-03-29T03:00:00", &[7200]),
        ("Europe/Berlin", "2026-10-25T01:59:59", &[7200]),
        ("Europe/Berlin", "2026-10-25T02:30:00", &[7200, 3600]),
        ("Europe/Berlin", "2026-10-25T03:00:00", &[3600]),
        ("America/New_York", "2025-03-09T01:59:59", &[-18000]),
        ("America/New_York", "2025-03-09T02:30:00", &[]),
        ("America/New_York", "2025-03-09T03:00:00", &[-14400]),
        ("America/New_York", "2025-11-02T00:59:59", &[-14400]),
        ("America/New_York", "2025-11-02T01:30:00", &[-14400, -18000]),
        ("America/New_York", "2025-11-02T02:00:00", &[-18000]),
        ("America/New_York", "2026-03-08T01:59:59", &[-18000]),
        ("America/New_York", "2026-03-08T02:30:00", &[]),
        ("America/New_York", "2026-03-08T03:00:00", &[-14400]),
        ("America/New_York", "2026-11-01T00:59:59", &[-14400]),
        ("America/New_York", "2026-11-01T01:30:00", &[-14400, -18000]),
        ("America/New_York", "2026-11-01T02:00:00", &[-18000]),
        ("Australia/Lord_Howe", "2025-04-06T01:29:59", &[39600]),
        (
            "Australia/Lord_Howe",
            "2025-04-06T01:45:00",
            &[39600, 37800],
        ),
        ("Australia/Lord_Howe", "2025-04-06T02:00:00", &[37800]),
        ("Australia/Lord_Howe", "2025-10-05T01:59:59", &[37800]),
        ("Australia/Lord_Howe", "2025-10-05T02:15:00", &[]),
        ("Australia/Lord_Howe", "2025-10-05T02:30:00", &[39600]),
        ("Australia/Lord_Howe", "2026-04-05T01:29:59", &[39600]),
        (
            "Australia/Lord_Howe",
            "2026-04-05T01:45:00",
            &[39600, 37800],
        ),
        ("Australia/Lord_Howe", "2026-04-05T02:00:00", &[37800]),
        ("Australia/Lord_Howe", "2026-10-04T01:59:59", &[37800]),
        ("Australia/Lord_Howe", "2026-10-04T02:15:00", &[]),
        ("Australia/Lord_Howe", "2026-10-04T02:30:00", &[39600]),
    ];
    fn zone(name: &str) -> Zone {
        Zone::from_str(name).unwrap()
    }

    #[test]
    fn offsets_match_the_tz_database_across_dst_transitions() {
        for &(name, instant, expected) in OFFSETS {
            let utc: DateTime<Utc> = instant.parse().unwrap();
            let local = utc.with_timezone(&zone(name));
            assert_eq!(
                local.offset().fix().local_minus_utc(),
                expected,
                "{name} at {instant}"
            );
            assert_eq!(local.timezone().name(), name, "the offset carries its zone");
        }
    }

    #[test]
    fn wall_clock_times_in_gaps_and_folds_resolve_as_chrono_tz_resolved_them() {
        for &(name, wall, expected) in WALL_CLOCK {
            let naive: NaiveDateTime = wall.parse().unwrap();
            let offsets: Vec<i32> = match zone(name).offset_from_local_datetime(&naive) {
                MappedLocalTime::None => vec![],
                MappedLocalTime::Single(o) => vec![o.fix().local_minus_utc()],
                MappedLocalTime::Ambiguous(a, b) => {
                    vec![a.fix().local_minus_utc(), b.fix().local_minus_utc()]
                }
            };
            assert_eq!(offsets, expected, "{name} at {wall}");
        }
    }

    #[test]
    fn names_are_matched_exactly_as_chrono_tz_matched_them() {
        for name in [
            "UTC",
            "Etc/UTC",
            "Europe/Berlin",
            "US/Eastern",
            "EST5EDT",
            "Etc/GMT+5",
        ] {
            assert_eq!(zone(name).name(), name);
            let schedule = Schedule::cron("0 * * * *", name).unwrap();
            assert_eq!(schedule.zone(), name);
        }
        // jiff alone would take these (case-insensitive lookup, its `Etc/Unknown`).
        for name in [
            "utc",
            "europe/berlin",
            "Etc/Unknown",
            "Mars/Olympus",
            " UTC",
            "",
        ] {
            assert_eq!(
                Zone::from_str(name).map(|z| z.to_string()),
                Err(UnknownZone)
            );
        }
    }

    #[test]
    fn instants_beyond_jiffs_range_take_the_offset_at_its_end() {
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            berlin
                .offset_from_utc_datetime(&NaiveDateTime::MAX)
                .fix()
                .local_minus_utc(),
            3600
        );
        assert!(matches!(
            berlin.offset_from_local_datetime(&NaiveDateTime::MIN),
            MappedLocalTime::Single(_)
        ));
    }
}
