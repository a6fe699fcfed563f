//! Reading a payload's bytes as JSON, leniently: what ingest acknowledged is never refused later.

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::lenient;

/// A payload that is not a JSON object: the one thing that fails an item.
#[derive(Debug, thiserror::Error)]
#[error("payload is not a JSON object: {0}")]
pub struct PayloadError(pub(super) String);

/// The payload as text: invalid UTF-8 (which ingest cannot see in fields it does not read) becomes U+FFFD
/// instead of failing an event that was already acknowledged. Borrowed, not copied, when valid.
fn json_text(payload: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(payload)
}

/// The payload as one JSON value, read as leniently as the item readers read it: [`Event::from_payload`](super::Event::from_payload)
/// reads this.
pub fn payload_value(payload: &[u8]) -> Result<Value, PayloadError> {
    if !lenient::starts_as_object(payload) {
        return Err(PayloadError("expected a JSON object".into()));
    }
    read_repaired(&json_text(payload), |text| {
        serde_json::from_str(text).map_err(|e| PayloadError(e.to_string()))
    })
}

pub(super) fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, PayloadError> {
    if !lenient::starts_as_object(payload) {
        return Err(PayloadError("expected a JSON object".into()));
    }
    read_repaired(&json_text(payload), |text| {
        serde_json::from_str(text).or_else(|typed| {
            // A key sent twice fails a typed read but not a generic one (the last value wins there, as it
            // does at ingest), so read it that way before giving up.
            let value: Value =
                serde_json::from_str(text).map_err(|e| PayloadError(e.to_string()))?;
            T::deserialize(value).map_err(|_| PayloadError(typed.to_string()))
        })
    })
}

/// Reads `text`, and if that fails, reads it again with what [`repair_json`] repairs. Ingest reads a few
/// fields into a struct and skips the rest without the checks a full read makes, so it acknowledges
/// payloads a full read refuses: a lone surrogate escape (`"\ud800"`, what Python's `json` writes for
/// a lone surrogate, as in a file name decoded with `surrogateescape`), a number beyond `f64`
/// (`1e400`), or values nested past serde_json's limit of 128 levels. Those are read rather than failing
/// an event that was already acknowledged; a well-formed payload is read once, as before.
fn read_repaired<T>(
    text: &str,
    read: impl Fn(&str) -> Result<T, PayloadError>,
) -> Result<T, PayloadError> {
    read(text).or_else(|e| match repair_json(text) {
        Some(repaired) => read(&repaired),
        None => Err(e),
    })
}

/// How deep a repaired payload nests at most: a value that would open a level deeper becomes `null`.
/// Below serde_json's limit of 128, and deeper than anything an SDK sends (they trim to a few levels).
const MAX_REPAIRED_DEPTH: usize = 100;

/// `\ud800` without its other half becomes `\ufffd`, a number beyond `f64` becomes `null`, and so does an
/// array or object that would nest deeper than [`MAX_REPAIRED_DEPTH`]; `None` when there is none of
/// these. Reads just enough JSON to know what is inside a string; anything else that is malformed stays
/// for serde_json to refuse.
fn repair_json(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut repaired = String::new();
    let mut copied = 0;
    let mut replace = |from: usize, to: usize, with: &str| {
        repaired.push_str(&text[copied..from]);
        repaired.push_str(with);
        copied = to;
    };
    let mut in_string = false;
    let mut depth = 0;
    let mut i = 0;
    while i < bytes.len() {
        match (in_string, bytes[i]) {
            (true, b'"') | (false, b'"') => {
                in_string = !in_string;
                i += 1;
            }
            (false, b'[' | b'{') if depth == MAX_REPAIRED_DEPTH => {
                // Unclosed: malformed, and left for serde_json to refuse.
                let Some(end) = value_end(bytes, i) else {
                    break;
                };
                replace(i, end, "null");
                i = end;
            }
            (false, b'[' | b'{') => {
                depth += 1;
                i += 1;
            }
            (false, b']' | b'}') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            (true, b'\\') => match hex_escape(bytes, i) {
                // A pair: a high surrogate and then a low one.
                Some(0xD800..=0xDBFF)
                    if hex_escape(bytes, i + 6)
                        .is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
                {
                    i += 12
                }
                Some(0xD800..=0xDFFF) => {
                    replace(i, i + 6, "\\ufffd");
                    i += 6;
                }
                Some(_) => i += 6,
                // Any other escape; the character after the backslash is never a quote that ends the string.
                None => i += 2,
            },
            (false, b'-' | b'0'..=b'9') => {
                let end = bytes[i + 1..]
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'))
                    .map_or(bytes.len(), |n| i + 1 + n);
                if text[i..end].parse::<f64>().is_ok_and(f64::is_infinite) {
                    replace(i, end, "null");
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        return None;
    }
    repaired.push_str(&text[copied..]);
    Some(repaired)
}

/// Where the array or object opening at `start` ends (one past its closing bracket), skipping strings.
fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => depth += 1,
            (false, b']' | b'}') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The code unit of a `\uXXXX` escape starting at `at`.
fn hex_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if !escape.starts_with(b"\\u") {
        return None;
    }
    u16::from_str_radix(std::str::from_utf8(&escape[2..]).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{spans_from_v2_payload, transaction_from_payload, Event};

    #[test]
    fn odd_bytes_and_keys_never_fail_an_acknowledged_item() {
        // Found by fuzzing: each of these passed ingest, then failed in the processor.
        let bad_utf8 = b"{\"transaction\":\"GET /\",\"sdk\":{\"name\":\"sentr\xb4y\"},\"contexts\":{\"trace\":{\"trace_id\":\"t\",\"span_id\":\"s\"}}}";
        assert!(transaction_from_payload(bad_utf8, "e").is_ok());
        assert!(Event::from_payload(bad_utf8).is_ok());
        let twice = br#"{"transaction":"GET /","release":"a","release":"b"}"#;
        assert_eq!(
            transaction_from_payload(twice, "e")
                .unwrap()
                .0
                .release
                .as_deref(),
            Some("b")
        );
        assert!(spans_from_v2_payload(br#"{"items":5}"#).unwrap().is_empty());
        assert!(spans_from_v2_payload(br#"{"items":null}"#)
            .unwrap()
            .is_empty());
        assert!(
            spans_from_v2_payload(b"[1]").is_err(),
            "only a non-object fails"
        );
    }

    #[test]
    fn lone_surrogates_and_huge_numbers_never_fail_an_acknowledged_item() {
        // Found by fuzzing (README finding 5): ingest skips these in fields it does not read, a full read
        // refused them.
        let lone = br#"{"message":"a\ud800b","extra":{"path":"\udcff","pair":"\ud83d\ude00","esc":"\\ud800"}}"#;
        let event = Event::from_payload(lone).unwrap();
        assert_eq!(event.message.as_deref(), Some("a\u{FFFD}b"));
        let extra = &payload_value(lone).unwrap()["extra"];
        assert_eq!(extra["path"], "\u{FFFD}");
        assert_eq!(extra["pair"], "😀");
        assert_eq!(extra["esc"], "\\ud800");
        let huge = br#"{"transaction":"GET /","extra":{"x":1e400,"y":-1E+999,"z":1.5},"contexts":{"trace":{"trace_id":"t","span_id":"s"}}}"#;
        assert!(transaction_from_payload(huge, "e").is_ok());
        let extra = &payload_value(huge).unwrap()["extra"];
        assert_eq!((extra["x"].is_null(), extra["y"].is_null()), (true, true));
        assert_eq!(extra["z"], 1.5);
        assert!(spans_from_v2_payload(br#"{"items":[],"x":"\udc00"}"#).is_ok());
        // Malformed JSON stays malformed.
        assert!(Event::from_payload(br#"{"a":"\ud800"#).is_err());
        assert!(Event::from_payload(br#"{"a":1e400 x}"#).is_err());
        assert_eq!(repair_json(r#"{"a":"\ud83d\ude00","b":12}"#), None);
    }

    #[test]
    fn values_nested_past_the_read_limit_become_null() {
        // Found by fuzzing (README finding 6): ingest skips a deep value it does not read, a full read
        // stops at 128 levels.
        let deep = |levels: usize, inner: &str| {
            format!(
                r#"{{"message":"m","extra":{{"x":{}{inner}{},"y":"a]\"{{"}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        let payload = deep(200, r#""]}\"""#);
        let event = Event::from_payload(payload.as_bytes()).unwrap();
        assert_eq!(event.message.as_deref(), Some("m"));
        let extra = &payload_value(payload.as_bytes()).unwrap()["extra"];
        assert_eq!(extra["y"], "a]\"{");
        // Kept down to the last level a repaired read keeps, then null.
        let mut x = &extra["x"];
        for _ in 0..MAX_REPAIRED_DEPTH - 2 {
            x = &x[0];
        }
        assert_eq!(x, &Value::Null);
        // A payload within the limit is read as it is; an unclosed one stays malformed.
        assert_eq!(repair_json(&deep(20, "1")), None);
        assert!(Event::from_payload(format!(r#"{{"a":{}"#, "[".repeat(300)).as_bytes()).is_err());
    }
}
