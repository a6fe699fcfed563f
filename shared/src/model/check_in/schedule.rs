//! When a monitor's job is expected: a crontab (five fields, evaluated in the monitor's IANA timezone, so
//! `0 3 * * *` in `Europe/Berlin` follows daylight saving) or an interval after the previous run.
//!
//! Crontabs are read by `croner` (standard five fields, names, ranges, steps, `L`/`W`/`#`, `@daily`
//! aliases; a seconds field is accepted too) and timezones by `chrono-tz`. Pure: no storage, no clock.

use std::str::FromStr;

use chrono::{DateTime, Months, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

/// The unit of an interval schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().trim_end_matches('s') {
            "minute" => Some(Self::Minute),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Crontab { expr: String, timezone: Tz },
    Interval { every: u32, unit: IntervalUnit },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule type {0:?} is not crontab or interval")]
    UnknownType(String),
    #[error("crontab {expr:?}: {reason}")]
    Crontab { expr: String, reason: String },
    #[error("unknown timezone {0:?}")]
    Timezone(String),
    #[error("interval {0:?} is not a whole number from 1")]
    Interval(String),
    #[error("interval unit {0:?} is not minute, hour, day, week, month or year")]
    Unit(String),
}

impl Schedule {
    /// From the stored or sent parts: `("crontab", "0 3 * * *", _, Some("Europe/Berlin"))` or
    /// `("interval", "10", Some("minute"), _)`. A crontab without a timezone runs in UTC.
    pub fn parse(
        ty: &str,
        value: &str,
        unit: Option<&str>,
        timezone: Option<&str>,
    ) -> Result<Self, ScheduleError> {
        match ty.trim() {
            "crontab" => {
                let expr = value.split_whitespace().collect::<Vec<_>>().join(" ");
                croner::Cron::from_str(&expr).map_err(|e| ScheduleError::Crontab {
                    expr: expr.clone(),
                    reason: e.to_string(),
                })?;
                let timezone = match timezone.map(str::trim).filter(|t| !t.is_empty()) {
                    Some(name) => name
                        .parse::<Tz>()
                        .map_err(|_| ScheduleError::Timezone(name.to_owned()))?,
                    None => Tz::UTC,
                };
                Ok(Self::Crontab { expr, timezone })
            }
            "interval" => {
                let every = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| ScheduleError::Interval(value.to_owned()))?;
                let unit = unit.unwrap_or("");
                let unit = IntervalUnit::parse(unit)
                    .ok_or_else(|| ScheduleError::Unit(unit.to_owned()))?;
                Ok(Self::Interval { every, unit })
            }
            other => Err(ScheduleError::UnknownType(other.to_owned())),
        }
    }

    /// The stored parts: `(type, value, unit, timezone)`.
    pub fn parts(&self) -> (&'static str, String, Option<&'static str>, Option<String>) {
        match self {
            Self::Crontab { expr, timezone } => (
                "crontab",
                expr.clone(),
                None,
                Some(timezone.name().to_owned()),
            ),
            Self::Interval { every, unit } => {
                ("interval", every.to_string(), Some(unit.as_str()), None)
            }
        }
    }

    /// The first expected run strictly after `after_us` (µs since the epoch), `None` when there is
    /// none (a crontab such as `0 0 31 2 *`).
    pub fn next_after(&self, after_us: i64) -> Option<i64> {
        let after = DateTime::<Utc>::from_timestamp_micros(after_us)?;
        match self {
            Self::Crontab { expr, timezone } => {
                let cron = croner::Cron::from_str(expr).ok()?;
                let local = timezone.from_utc_datetime(&after.naive_utc());
                let next = cron.find_next_occurrence(&local, false).ok()?;
                Some(next.with_timezone(&Utc).timestamp_micros())
            }
            Self::Interval { every, unit } => {
                let n = i64::from(*every);
                // Checked: an interval of four billion weeks is valid input, a panic is not an answer.
                let step = |d: Option<TimeDelta>| d.and_then(|d| after.checked_add_signed(d));
                let next = match unit {
                    IntervalUnit::Minute => step(TimeDelta::try_minutes(n)),
                    IntervalUnit::Hour => step(TimeDelta::try_hours(n)),
                    IntervalUnit::Day => step(TimeDelta::try_days(n)),
                    IntervalUnit::Week => step(TimeDelta::try_weeks(n)),
                    IntervalUnit::Month => after.checked_add_months(Months::new(*every)),
                    IntervalUnit::Year => {
                        after.checked_add_months(Months::new(every.checked_mul(12)?))
                    }
                }?;
                Some(next.timestamp_micros())
            }
        }
    }

    /// For people: `every 10 minutes`, `0 3 * * * (Europe/Berlin)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Crontab { expr, timezone } => format!("{expr} ({})", timezone.name()),
            Self::Interval { every: 1, unit } => format!("every {}", unit.as_str()),
            Self::Interval { every, unit } => format!("every {every} {}s", unit.as_str()),
        }
    }

    /// The crontab in words (`At 03:00.`), for tooltips; `None` for intervals.
    pub fn explain(&self) -> Option<String> {
        match self {
            Self::Crontab { expr, .. } => croner::Cron::from_str(expr).ok().map(|c| c.describe()),
            Self::Interval { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn crontab_runs_in_its_timezone_across_daylight_saving() {
        let s = Schedule::parse("crontab", "0  3 * * *", None, Some("Europe/Berlin")).unwrap();
        // 03:00 Berlin is 02:00 UTC in winter …
        assert_eq!(
            s.next_after(us("2026-01-10T12:00:00Z")),
            Some(us("2026-01-11T02:00:00Z"))
        );
        // … and 01:00 UTC in summer.
        assert_eq!(
            s.next_after(us("2026-07-10T12:00:00Z")),
            Some(us("2026-07-11T01:00:00Z"))
        );
        // Strictly after: a run at the tick itself expects the next one.
        assert_eq!(
            s.next_after(us("2026-07-11T01:00:00Z")),
            Some(us("2026-07-12T01:00:00Z"))
        );
        assert_eq!(s.describe(), "0 3 * * * (Europe/Berlin)");
        let utc = Schedule::parse("crontab", "*/15 * * * *", None, None).unwrap();
        assert_eq!(
            utc.next_after(us("2026-01-10T12:07:30Z")),
            Some(us("2026-01-10T12:15:00Z"))
        );
        assert_eq!(utc.parts().3.as_deref(), Some("UTC"));
    }

    #[test]
    fn intervals_count_from_the_previous_run() {
        let s = Schedule::parse("interval", "10", Some("minute"), None).unwrap();
        assert_eq!(
            s.next_after(us("2026-01-10T12:07:30Z")),
            Some(us("2026-01-10T12:17:30Z"))
        );
        assert_eq!(s.describe(), "every 10 minutes");
        let m = Schedule::parse("interval", "1", Some("months"), None).unwrap();
        assert_eq!(
            m.next_after(us("2026-01-31T00:00:00Z")),
            Some(us("2026-02-28T00:00:00Z"))
        );
        assert_eq!(m.describe(), "every month");
        // Far past the calendar's end: no next run, and no panic.
        for unit in ["minute", "hour", "day", "week", "month", "year"] {
            let huge =
                Schedule::parse("interval", &u32::MAX.to_string(), Some(unit), None).unwrap();
            let next = huge.next_after(us("2026-01-10T12:07:30Z"));
            assert!(
                next.is_none_or(|n| n > us("2026-01-10T12:07:30Z")),
                "{unit}"
            );
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        let err = |t, v, u, tz| Schedule::parse(t, v, u, tz).unwrap_err().to_string();
        assert!(err("crontab", "61 * * * *", None, None).contains("61 * * * *"));
        assert_eq!(
            err("crontab", "* * * * *", None, Some("Nowhere")),
            "unknown timezone \"Nowhere\""
        );
        assert!(err("interval", "0", Some("minute"), None).contains("from 1"));
        assert!(err("interval", "5", Some("fortnight"), None).contains("fortnight"));
        assert!(err("interval", "5", None, None).contains("unit"));
        assert!(err("solar", "x", None, None).contains("solar"));
        let never = Schedule::parse("crontab", "0 0 31 2 *", None, None).unwrap();
        assert_eq!(never.next_after(us("2026-01-10T12:00:00Z")), None);
    }
}
