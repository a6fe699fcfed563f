//! How Splat words numbers, durations and JSON for people: the UI's pages and the MCP tools' text use
//! these, so both say a thing the same way. Times are written by [`Ts`] (in `model::time`), which
//! templates call as methods (`{{ issue.last_seen.ago() }}`).

use std::fmt;

use crate::model::time::Ts;

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
        "source_map" => text("message").map(str::to_owned),
        "spans_clamped" => Some(format!(
            "{} spans lay outside their transaction's start and end and were moved into them.",
            note.get("count")?.as_u64()?
        )),
        "scrubbed" => scrubbed_sentence(note),
        _ => None,
    }
}

/// A note of [`crate::scrub`]: the rule and the fields it scrubbed (never the values).
fn scrubbed_sentence(note: &serde_json::Value) -> Option<String> {
    let rule = note.get("rule")?.as_str()?;
    let fields: Vec<&str> = note
        .get("fields")?
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let count = note
        .get("count")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(fields.len() as u64);
    let more = count.saturating_sub(fields.len() as u64);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let what = match rule {
        "@password:filter" => "a sensitive key or key=value pair",
        "@bearer:filter" => "a bearer token",
        "@creditcard:filter" => "a card number",
        "@iban:filter" => "an IBAN",
        "@usssn:filter" => "a US social security number",
        "@pemkey:filter" => "a PEM key",
        "@urlauth:legacy" => "a password in a URL",
        "@ip:replace" => "an IP address",
        "@anything:remove" => "an IP address field",
        "strip-fields" => "the project's sensitive fields",
        _ => "a scrubbing rule",
    };
    Some(format!(
        "Scrubbed {count} field{} ({what}, {rule}): {}{more}.",
        if count == 1 { "" } else { "s" },
        fields.join(", ")
    ))
}

/// `0.42 ms`, `12.3 ms`, `184 ms`, `1.25 s`.
pub fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v < 1.0 {
        format!("{v:.2} ms")
    } else if v < 100.0 {
        format!("{v:.1} ms")
    } else if v < 1_000.0 {
        format!("{v:.0} ms")
    } else if v < 60_000.0 {
        format!("{:.2} s", v / 1_000.0)
    } else {
        format!("{:.1} min", v / 60_000.0)
    }
}

/// An optional latency: `–` when there were no transactions.
pub fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), ms)
}

/// Time spent in total (impact): `3.2 s`, `4.5 min`, `2.1 h`.
pub fn total_time(v: f64) -> String {
    if v >= 3_600_000.0 {
        format!("{:.1} h", v / 3_600_000.0)
    } else {
        ms(v)
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
            {"kind": "scrubbed", "rule": "@password:filter", "fields": ["extra.password", "request.cookies"], "count": 3},
        ]}});
        assert_eq!(
            processing_notes(Some(&payload)),
            [
                "timestamp was more than 60 s in the future: the SDK sent 9999-12-31 23:59:59 UTC, stored as 2026-12-05 18:00:00 UTC.",
                "998 spans lay outside their transaction's start and end and were moved into them.",
                "Scrubbed 3 fields (a sensitive key or key=value pair, @password:filter): extra.password, request.cookies and 1 more.",
            ]
        );
        assert!(processing_notes(None).is_empty());
        assert!(processing_notes(Some(&serde_json::json!({"splat": 1}))).is_empty());
    }
}
