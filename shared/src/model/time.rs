//! Microsecond timestamps, as the store and the lake keep them: microseconds since the Unix epoch, UTC.
//! The units, the hour and day a time falls in (the rollups' and the lake's buckets), and the ways a
//! time is written (ISO 8601, UTC, relative).

pub const SECOND_US: i64 = 1_000_000;
pub const MINUTE_US: i64 = 60 * SECOND_US;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// A time as the store keeps it: microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub i64);

impl Ts {
    pub fn now() -> Self {
        Self(chrono::Utc::now().timestamp_micros())
    }

    /// The start of the hour this time falls in, in Unix seconds: the key of the hourly rollups.
    pub fn hour_secs(self) -> i64 {
        self.0.div_euclid(HOUR_US) * 3_600
    }

    /// The start of the hour this time falls in.
    pub fn hour_start(self) -> Self {
        Self(self.0.div_euclid(HOUR_US) * HOUR_US)
    }

    fn datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// `3 min ago`, `2 h ago`, `5 days ago`; `in 4 min` for clocks running ahead.
    pub fn ago(&self) -> String {
        ago_at(self.0, Self::now().0)
    }

    /// `2026-11-25 07:57:03 UTC`.
    pub fn utc(&self) -> String {
        self.datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }

    /// `07:57:03.120`: breadcrumbs, where the date is the event's.
    pub fn clock(&self) -> String {
        self.datetime().format("%H:%M:%S%.3f").to_string()
    }

    /// ISO 8601 (RFC 3339) to the second: `2026-11-25T07:57:03Z`, for `<time datetime>` and the API.
    pub fn iso(&self) -> String {
        self.datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// A span of microseconds in milliseconds, the unit durations are shown and stored in.
pub fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn ago_at(then_us: i64, now_us: i64) -> String {
    let secs = (now_us - then_us) / 1_000_000;
    let (future, secs) = (secs < 0, secs.unsigned_abs());
    let text = match secs {
        0..=59 => {
            return if future {
                "in a moment".into()
            } else {
                "just now".into()
            }
        }
        60..=3_599 => format!("{} min", secs / 60),
        3_600..=86_399 => format!("{} h", secs / 3_600),
        86_400..=172_799 => "1 day".into(),
        _ if secs < 60 * 86_400 => format!("{} days", secs / 86_400),
        _ if secs < 730 * 86_400 => format!("{} months", secs / (30 * 86_400)),
        _ => format!("{} years", secs / (365 * 86_400)),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = 1_800_000_000_000_000;
        let s = 1_000_000;
        assert_eq!(ago_at(now - 5 * s, now), "just now");
        assert_eq!(ago_at(now - 125 * s, now), "2 min ago");
        assert_eq!(ago_at(now - 7_300 * s, now), "2 h ago");
        assert_eq!(ago_at(now - 90_000 * s, now), "1 day ago");
        assert_eq!(ago_at(now - 10 * 86_400 * s, now), "10 days ago");
        assert_eq!(ago_at(now + 300 * s, now), "in 5 min");
        assert_eq!(Ts(0).utc(), "1970-01-01 00:00:00 UTC");
        assert_eq!(Ts(1_500_000).clock(), "00:00:01.500");
    }

    #[test]
    fn hours_and_units() {
        let t = Ts(100 * HOUR_US + 1_234);
        assert_eq!(
            (t.hour_secs(), t.hour_start()),
            (100 * 3_600, Ts(100 * HOUR_US))
        );
        assert_eq!(Ts(-1).hour_secs(), -3_600);
        assert_eq!(DAY_US, 86_400_000_000);
        assert_eq!(Ts(1_500_000).iso(), "1970-01-01T00:00:01Z");
        assert_eq!(us_to_ms(2_500), 2.5);
    }
}
