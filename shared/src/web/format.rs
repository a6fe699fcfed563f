//! How the UI writes times and numbers. Templates call these as methods (`{{ issue.last_seen.ago() }}`),
//! so every page words a time the same way.

use std::fmt;

/// A time as the store keeps it: microseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ts(pub i64);

impl Ts {
    pub fn now() -> Self {
        Self(chrono::Utc::now().timestamp_micros())
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

    /// RFC 3339, for `<time datetime>`.
    pub fn iso(&self) -> String {
        self.datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// The payload's processing notes (`splat.processing_notes`, written by [`crate::process::time`]) as
/// sentences; a note of a kind this version does not know is left out.
pub fn processing_notes(payload: Option<&serde_json::Value>) -> Vec<String> {
    let notes = payload
        .and_then(|p| p.get("splat")?.get("processing_notes")?.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    notes.iter().filter_map(note_sentence).collect()
}

fn note_sentence(note: &serde_json::Value) -> Option<String> {
    let text = |key: &str| note.get(key).and_then(serde_json::Value::as_str);
    let time = |key: &str| {
        let us = crate::protocol::lenient::parse_timestamp(text(key)?)?;
        Some(Ts(us).utc())
    };
    let field = text("field").unwrap_or("timestamp");
    let (sent, stored) = (time("sdk_time"), time("stored_time"));
    let changed = |why: &str| {
        Some(format!(
            "{field} {why}: the SDK sent {}, stored as {}.",
            sent.clone()?,
            stored.clone()?
        ))
    };
    match text("kind")? {
        "future_timestamp" => changed("was more than 60 s in the future"),
        "past_timestamp" => changed("was older than the retention horizon"),
        "clock_drift" => {
            changed("corrected for the SDK's clock (its sent_at against the time received)")
        }
        "spans_clamped" => Some(format!(
            "{} spans lay outside their transaction's start and end and were moved into them.",
            note.get("count")?.as_u64()?
        )),
        _ => None,
    }
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

/// A count with thousands separators: `12,345`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.unsigned_abs().to_string();
        if self.0 < 0 {
            f.write_str("-")?;
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                f.write_str(",")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A JSON value as a short line of text: strings as they are, everything else as compact JSON.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A JSON value for a `<pre>`: strings as they are, everything else pretty-printed.
pub fn json_block(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
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
    fn counts_have_separators() {
        assert_eq!(Count(0).to_string(), "0");
        assert_eq!(Count(999).to_string(), "999");
        assert_eq!(Count(1_000).to_string(), "1,000");
        assert_eq!(Count(-1_234_567).to_string(), "-1,234,567");
    }

    #[test]
    fn processing_notes_read_as_sentences() {
        let payload = serde_json::json!({"splat": {"processing_notes": [
            {"kind": "future_timestamp", "field": "timestamp", "sdk_time": "9999-12-31T23:59:59.000000Z",
             "stored_time": "2026-12-05T18:00:00.000000Z"},
            {"kind": "spans_clamped", "field": "spans", "count": 998},
            {"kind": "from_a_later_version"},
        ]}});
        assert_eq!(
            processing_notes(Some(&payload)),
            [
                "timestamp was more than 60 s in the future: the SDK sent 9999-12-31 23:59:59 UTC, stored as 2026-12-05 18:00:00 UTC.",
                "998 spans lay outside their transaction's start and end and were moved into them.",
            ]
        );
        assert!(processing_notes(None).is_empty());
        assert!(processing_notes(Some(&serde_json::json!({"splat": 1}))).is_empty());
    }
}
