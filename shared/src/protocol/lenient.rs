//! Serde helpers that never fail on an odd value: SDKs send numbers where strings belong and the other way
//! round, and a field of the wrong type must not cost the user their event.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::EventId;

/// Serde reads a struct from a JSON array too (field by field); payloads must be objects, so callers
/// check the first byte before deserializing a struct.
pub fn starts_as_object(payload: &[u8]) -> bool {
    payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A string, or a number or bool rendered as one; anything else is `None`.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// An event id in either form; a malformed one is treated as absent.
pub fn event_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EventId>, D::Error> {
    Ok(string(d)?.and_then(|s| s.parse().ok()))
}

/// A number, or a numeric string; anything else is `None`.
pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A timestamp as Sentry sends it, RFC 3339 or float seconds, as microseconds since the Unix epoch (UTC).
pub fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().and_then(seconds_to_micros),
        Value::String(s) => parse_timestamp(&s),
        _ => None,
    })
}

fn seconds_to_micros(secs: f64) -> Option<i64> {
    // Anything outside years 0..9999 is garbage; refuse it rather than overflow.
    (secs.is_finite() && (-62_135_596_800.0..253_402_300_800.0).contains(&secs))
        .then(|| (secs * 1_000_000.0).round() as i64)
}

/// RFC 3339, or the same without a zone (taken as UTC, as Relay does), or float seconds in a string.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_micros());
    }
    s.parse::<f64>().ok().and_then(seconds_to_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form() {
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05Z"),
            Some(1_704_164_645_000_000)
        );
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05.5+00:00"),
            Some(1_704_164_645_500_000)
        );
        assert_eq!(
            parse_timestamp("2024-01-02T03:04:05.25"),
            Some(1_704_164_645_250_000)
        );
        assert_eq!(parse_timestamp("1704164645.5"), Some(1_704_164_645_500_000));
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("1e300"), None);
    }
}
