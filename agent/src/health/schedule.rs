//! When a job is expected to run: an interval or a cron expression in a time zone.
//!
//! Cron expressions are evaluated by `croner` in the job's IANA zone, with Vixie cron's daylight
//! saving rules (a 02:30 job on the spring-forward day runs at 03:00; on the fall-back day it
//! runs once). Every instant handed in or out is UTC; the zone only shapes the slots.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::zone::Zone;

/// How many upcoming slots the nominal period of a cron job is taken from.
const PERIOD_SAMPLE_SLOTS: usize = 512;

/// A job's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// `every: 60s`: a run is expected one period after the previous one.
    Every(Duration),
    /// `cron: "22 4 * * *"` with `tz:`.
    Cron(Box<CronSchedule>),
}

/// A parsed cron expression and the zone it is read in.
#[derive(Clone)]
pub struct CronSchedule {
    expr: String,
    cron: Cron,
    tz: Zone,
    /// Minute and hour are fixed (no `*`, no step): Vixie cron runs such a job once when the
    /// clock falls back over its time, where stepped jobs run by instant, twice.
    fixed_time: bool,
    /// The nominal period, computed once: it takes 512 slot lookups.
    period: Duration,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cron({:?} in {})", self.expr, self.tz)
    }
}

/// Why a schedule was refused; each message says what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The zone is not an IANA zone name.
    #[error("unknown time zone {0:?}: use an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    UnknownZone(String),
    /// The expression does not have five fields.
    #[error(
        "cron expression {expr:?} has {fields} fields: write five (minute hour day-of-month month day-of-week) or a macro such as @hourly"
    )]
    FieldCount { expr: String, fields: usize },
    /// `@reboot` has no schedule to watch.
    #[error(
        "@reboot is not a schedule heartwire can watch: give the job an interval (every:) or a cron expression"
    )]
    Reboot,
    /// croner refused the expression.
    #[error("invalid cron expression {expr:?}: {reason}")]
    Invalid { expr: String, reason: String },
    /// The expression never matches (e.g. `0 0 31 2 *`).
    #[error("cron expression {0:?} never matches a real date")]
    NeverMatches(String),
    /// The interval is shorter than a second.
    #[error(
        "interval {0:?} is shorter than one second: heartwire watches schedules of a second or more"
    )]
    TooShort(Duration),
}

impl Schedule {
    /// An interval schedule of at least one second.
    pub fn every(period: Duration) -> Result<Schedule, ScheduleError> {
        if period < Duration::from_secs(1) {
            return Err(ScheduleError::TooShort(period));
        }
        Ok(Schedule::Every(period))
    }

    /// A cron schedule: five fields or an `@` macro, read in the IANA zone `tz`.
    pub fn cron(expr: &str, tz: &str) -> Result<Schedule, ScheduleError> {
        let tz = Zone::from_str(tz).map_err(|_| ScheduleError::UnknownZone(tz.to_string()))?;
        let trimmed = expr.trim();
        if trimmed.eq_ignore_ascii_case("@reboot") {
            return Err(ScheduleError::Reboot);
        }
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && fields != 5 {
            return Err(ScheduleError::FieldCount {
                expr: expr.to_string(),
                fields,
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(trimmed)
            .map_err(|e| ScheduleError::Invalid {
                expr: expr.to_string(),
                reason: e.to_string(),
            })?;
        let mut schedule = CronSchedule {
            expr: trimmed.to_string(),
            cron,
            tz,
            fixed_time: is_fixed_time(trimmed),
            period: Duration::ZERO,
        };
        let probe = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single();
        if probe.and_then(|t| schedule.next_after(t)).is_none() {
            return Err(ScheduleError::NeverMatches(expr.to_string()));
        }
        schedule.period = schedule.modal_gap();
        Ok(Schedule::Cron(Box::new(schedule)))
    }

    /// The nominal period `P`: the interval, or for cron the most common gap between the next
    /// 512 slots (so `0 9 * * 1-5` is 24 h, and 23 h or 25 h days around DST do not change it).
    pub fn period(&self) -> Duration {
        match self {
            Schedule::Every(period) => *period,
            Schedule::Cron(cron) => cron.period,
        }
    }

    /// The default `alert_after`: `P + min(4·P, max(1 h, P/4))`, which gives seed 000's table
    /// (60 s → 300 s, 1 h → 2 h, 24 h → 30 h).
    pub fn default_alert_after(&self) -> Duration {
        default_alert_after(self.period())
    }

    /// The first slot strictly after `t`, for cron schedules; `None` for intervals (they have no
    /// fixed slots) or a cron that never fires again.
    pub fn next_slot_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(_) => None,
            Schedule::Cron(cron) => cron.next_after(t),
        }
    }

    /// How the schedule reads in config (`every 60s` or `cron "0 * * * *" in UTC`), for logs,
    /// `heartwire check` and the `schedule` label of `heartwire_job_info`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(period) => format!("every {}", humantime::format_duration(*period)),
            Schedule::Cron(cron) => cron.expr.clone(),
        }
    }

    /// The time zone slots are computed in (`UTC` for intervals).
    pub fn zone(&self) -> &str {
        match self {
            Schedule::Every(_) => "UTC",
            Schedule::Cron(cron) => cron.tz.name(),
        }
    }
}

/// Whether the minute and hour fields are fixed values or lists: what Vixie cron calls a
/// fixed-time job. Macros other than `@hourly` are fixed.
fn is_fixed_time(expr: &str) -> bool {
    if let Some(name) = expr.strip_prefix('@') {
        return !name.eq_ignore_ascii_case("hourly");
    }
    expr.split_whitespace()
        .take(2)
        .all(|field| !field.contains(['*', '/']))
}

/// Whether a local time is the later of two instants with the same wall-clock reading (the
/// hour repeated when the clock falls back).
fn is_second_pass(local: &DateTime<Zone>) -> bool {
    match local.timezone().from_local_datetime(&local.naive_local()) {
        chrono::LocalResult::Ambiguous(_, later) => later == *local,
        _ => false,
    }
}

/// `P + min(4·P, max(1 h, P/4))`, saturating: no period makes it overflow.
pub fn default_alert_after(period: Duration) -> Duration {
    let hour = Duration::from_secs(3600);
    period.saturating_add(period.saturating_mul(4).min(hour.max(period / 4)))
}

impl CronSchedule {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // croner searches years 1 to 5000; nearer chrono's own limits a local time could
        // overflow, so such instants have no slot (the caller falls back to the period).
        if !(1..croner::YEAR_UPPER_LIMIT).contains(&t.year()) {
            return None;
        }
        let mut local = t.with_timezone(&self.tz);
        // A fixed-time job skips the second pass through a repeated hour; at most one such slot
        // in a row can be skipped per fold, so a handful of rounds always suffices.
        for _ in 0..64 {
            let next = self.cron.find_next_occurrence(&local, false).ok()?;
            if !(self.fixed_time && is_second_pass(&next)) {
                return Some(next.with_timezone(&Utc));
            }
            local = next;
        }
        None
    }

    fn modal_gap(&self) -> Duration {
        let Some(mut slot) = Utc
            .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .and_then(|t| self.next_after(t))
        else {
            return Duration::ZERO;
        };
        let mut gaps: Vec<i64> = Vec::with_capacity(PERIOD_SAMPLE_SLOTS);
        for _ in 0..PERIOD_SAMPLE_SLOTS {
            let Some(next) = self.next_after(slot) else {
                break;
            };
            gaps.push((next - slot).num_seconds());
            slot = next;
        }
        gaps.sort_unstable();
        // The most common gap; ties go to the longer one, so a threshold never comes out tighter.
        let mut best = (0usize, 0i64);
        for run in gaps.chunk_by(|a, b| a == b) {
            if run.len() >= best.0 {
                best = (run.len(), run[0]);
            }
        }
        Duration::from_secs(best.1.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Offset;

    fn at(zone: &str, text: &str) -> DateTime<Utc> {
        DateTime::parse_from_str(&format!("{text} {zone}"), "%Y-%m-%d %H:%M %z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The next `n` slots after `start`, written as local time with the offset (`02:00+02`).
    fn slots(expr: &str, tz: &str, start: DateTime<Utc>, n: usize) -> Vec<String> {
        let schedule = Schedule::cron(expr, tz).unwrap();
        let zone = Zone::from_str(tz).unwrap();
        let mut out = Vec::new();
        let mut t = start;
        for _ in 0..n {
            t = schedule.next_slot_after(t).unwrap();
            let local = t.with_timezone(&zone);
            let offset = local.offset().fix().local_minus_utc() / 3600;
            out.push(format!("{}{:+03}", local.format("%m-%d %H:%M"), offset));
        }
        out
    }

    #[test]
    fn default_thresholds_reproduce_seed_000s_table() {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(
            default_alert_after(Duration::from_secs(60)),
            Duration::from_secs(300)
        );
        assert_eq!(default_alert_after(minutes(60)), minutes(120));
        assert_eq!(default_alert_after(minutes(24 * 60)), minutes(30 * 60));
        // The other rows of JOB-HEALTH 8.1.
        assert_eq!(default_alert_after(minutes(5)), minutes(25));
        assert_eq!(default_alert_after(minutes(15)), minutes(75));
        assert_eq!(default_alert_after(minutes(30)), minutes(90));
        assert_eq!(default_alert_after(minutes(6 * 60)), minutes(450));
        assert_eq!(
            default_alert_after(minutes(7 * 24 * 60)),
            minutes(7 * 24 * 60 + 7 * 6 * 60)
        );
    }

    #[test]
    fn thresholds_saturate_instead_of_overflowing() {
        assert_eq!(default_alert_after(Duration::MAX), Duration::MAX);
        let leap_day = Schedule::cron("0 0 29 2 *", "UTC").unwrap();
        assert_eq!(leap_day.period(), Duration::from_secs(1461 * 86_400));
        let year_5000 = Utc
            .with_ymd_and_hms(4999, 12, 31, 0, 0, 0)
            .single()
            .unwrap();
        assert_eq!(leap_day.next_slot_after(year_5000), None);
        assert_eq!(leap_day.next_slot_after(DateTime::<Utc>::MAX_UTC), None);
        assert_eq!(leap_day.next_slot_after(DateTime::<Utc>::MIN_UTC), None);
    }

    #[test]
    fn seed_000_schedules_get_seed_000_thresholds() {
        for (expr, hours) in [
            ("* * * * *", None),
            ("0 * * * *", Some(2)),
            ("45 * * * *", Some(2)),
            ("45 3 * * *", Some(30)),
            ("22 4 * * *", Some(30)),
        ] {
            let schedule = Schedule::cron(expr, "UTC").unwrap();
            let expected =
                hours.map_or(Duration::from_secs(300), |h| Duration::from_secs(h * 3600));
            assert_eq!(schedule.default_alert_after(), expected, "{expr}");
        }
        assert_eq!(
            Schedule::every(Duration::from_secs(60))
                .unwrap()
                .default_alert_after(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn a_weekday_job_has_a_daily_period_despite_dst_days() {
        let schedule = Schedule::cron("0 9 * * 1-5", "Europe/Berlin").unwrap();
        assert_eq!(schedule.period(), Duration::from_secs(24 * 3600));
    }

    #[test]
    fn hourly_across_spring_forward_in_riga() {
        assert_eq!(
            slots(
                "0 * * * *",
                "Europe/Riga",
                at("+0200", "2021-03-28 01:30"),
                2
            ),
            ["03-28 02:00+02", "03-28 04:00+03"]
        );
    }

    #[test]
    fn hourly_across_fall_back_in_riga() {
        assert_eq!(
            slots(
                "0 * * * *",
                "Europe/Riga",
                at("+0300", "2021-10-31 01:30"),
                4
            ),
            [
                "10-31 02:00+03",
                "10-31 03:00+03",
                "10-31 03:00+02",
                "10-31 04:00+02"
            ]
        );
    }

    #[test]
    fn a_daily_job_in_the_skipped_hour_runs_at_the_first_valid_instant() {
        assert_eq!(
            slots(
                "0 3 * * *",
                "Europe/Riga",
                at("+0200", "2021-03-27 01:30"),
                3
            ),
            ["03-27 03:00+02", "03-28 04:00+03", "03-29 03:00+03"]
        );
    }

    #[test]
    fn a_daily_job_in_the_repeated_hour_runs_once() {
        assert_eq!(
            slots(
                "0 3 * * *",
                "Europe/Riga",
                at("+0300", "2021-10-31 01:30"),
                2
            ),
            ["10-31 03:00+03", "11-01 03:00+02"]
        );
    }

    #[test]
    fn fixed_minutes_in_the_repeated_hour_run_once() {
        assert_eq!(
            slots(
                "30 1,2,3,4,5 * * *",
                "Europe/Riga",
                at("+0300", "2021-10-31 01:30"),
                3
            ),
            ["10-31 02:30+03", "10-31 03:30+03", "10-31 04:30+02"]
        );
    }

    #[test]
    fn stepped_minutes_run_by_instant_through_the_repeated_hour() {
        assert_eq!(
            slots(
                "*/30 * * * *",
                "Europe/Riga",
                at("+0300", "2021-10-31 02:10"),
                6
            ),
            [
                "10-31 02:30+03",
                "10-31 03:00+03",
                "10-31 03:30+03",
                "10-31 03:00+02",
                "10-31 03:30+02",
                "10-31 04:00+02"
            ]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_follows_the_vixie_or_rule() {
        // 2024-04: days 1-7, plus every Monday (8, 15, 22, 29).
        let days: Vec<String> = slots("0 0 1-7 * 1", "UTC", at("+0000", "2024-03-31 12:00"), 11);
        let days: Vec<&str> = days.iter().map(|d| &d[3..5]).collect();
        assert_eq!(
            days,
            [
                "01", "02", "03", "04", "05", "06", "07", "08", "15", "22", "29"
            ]
        );
    }

    #[test]
    fn refuses_what_cannot_be_watched_with_a_message_that_says_why() {
        let err = |expr: &str, tz: &str| Schedule::cron(expr, tz).unwrap_err().to_string();
        assert!(err("0 * * * *", "Mars/Olympus").contains("unknown time zone \"Mars/Olympus\""));
        assert!(err("0 0 * * * *", "UTC").contains("has 6 fields: write five"));
        assert!(err("@reboot", "UTC").contains("@reboot"));
        assert!(err("61 * * * *", "UTC").starts_with("invalid cron expression"));
        assert!(err("0 0 31 2 *", "UTC").contains("never matches"));
        assert!(Schedule::every(Duration::from_millis(500)).is_err());
        assert!(Schedule::cron("@hourly", "UTC").is_ok());
    }
}
