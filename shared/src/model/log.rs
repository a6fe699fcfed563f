//! Log records: Sentry's `log` items (`{"items": [record, …]}`, content type
//! `application/vnd.sentry.items.log+json`) as Relay's `OurLog` reads them, and the same records made from
//! OpenTelemetry logs ([`LogRecord`] is what both become).
//!
//! A record as the SDKs send it:
//! ```text
//! {"timestamp": 1544719860.0, "trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "eee19b7ec3c1b174",
//!  "level": "info", "body": "User logged in", "severity_number": 9,
//!  "attributes": {"user.id": {"type": "integer", "value": 42}, "sentry.release": {"type": "string", …}}}
//! ```
//! Relay requires `timestamp`, `level` and `body`; a record without them, or with a trace id that is not
//! one, is refused alone with its reason (the item's other records are kept). An attribute whose value
//! does not fit its type is dropped, as Relay drops it; integers sent as strings (the Python SDK's
//! `sentry.severity_number` once was) are read as integers.

use serde_json::{Map, Value};

use super::payload::parse;
use super::PayloadError;

/// Largest record, counted as its body and attributes' text (Relay's `max_log_size`, 2 MiB).
pub const MAX_RECORD_BYTES: usize = 2 << 20;

/// Most records one item may carry; past it the rest are refused (an SDK sends at most 100 at once).
pub const MAX_RECORDS_PER_ITEM: usize = 10_000;

/// Most attributes a record keeps; the rest are dropped.
pub const MAX_ATTRIBUTES: usize = 1_000;

/// The severity levels, lowest first, with the OpenTelemetry severity number each one starts at.
pub const LEVELS: [(&str, i32); 6] = [
    ("trace", 1),
    ("debug", 5),
    ("info", 9),
    ("warn", 13),
    ("error", 17),
    ("fatal", 21),
];

/// One log record, checked and normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// As sent; the processor clamps it as it clamps an event's.
    pub timestamp_us: i64,
    /// 32 lowercase hex digits, when the record names its trace.
    pub trace_id: Option<String>,
    /// 16 lowercase hex digits.
    pub span_id: Option<String>,
    /// One of [`LEVELS`], or what the SDK sent (lowercased, clipped) if it is none of them.
    pub level: String,
    pub severity_number: Option<i32>,
    pub body: String,
    /// Typed attributes, each `{"type": "string"|"integer"|"double"|"boolean"|"array", "value": …}`.
    pub attributes: Map<String, Value>,
}

/// What one item held: the records kept and why each refused one was refused.
#[derive(Debug, Default)]
pub struct LogItem {
    pub records: Vec<LogRecord>,
    pub refused: Vec<String>,
}

/// Reads a `log` item. `Err` only when the payload is not a JSON object.
pub fn logs_from_payload(payload: &[u8]) -> Result<LogItem, PayloadError> {
    #[derive(serde::Deserialize)]
    struct Container {
        #[serde(default)]
        items: Value,
    }
    let container: Container = parse(payload)?;
    let mut item = LogItem::default();
    let Value::Array(records) = container.items else {
        item.refused.push("the item has no `items` array".into());
        return Ok(item);
    };
    for (i, value) in records.into_iter().enumerate() {
        if i >= MAX_RECORDS_PER_ITEM {
            item.refused.push(format!(
                "more than {MAX_RECORDS_PER_ITEM} records in one item"
            ));
            break;
        }
        match LogRecord::from_value(value) {
            Ok(record) => item.records.push(record),
            Err(why) => item.refused.push(format!("record {i}: {why}")),
        }
    }
    Ok(item)
}

impl LogRecord {
    /// One record of a `log` item, or why it is refused.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut fields) = value else {
            return Err("not a JSON object".into());
        };
        let timestamp_us = fields
            .get("timestamp")
            .and_then(timestamp_us)
            .ok_or("no valid `timestamp`")?;
        let body = match fields.remove("body") {
            Some(Value::String(s)) => s,
            _ => return Err("no `body` string".into()),
        };
        let level = match fields.get("level") {
            Some(Value::String(s)) => normal_level(s),
            _ => return Err("no `level` string".into()),
        };
        let trace_id = match fields.get("trace_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(hex_id(v, 32).ok_or("`trace_id` is not 32 hex digits")?),
        };
        // An optional id that is not one is dropped, as Relay drops it.
        let span_id = fields.get("span_id").and_then(|v| hex_id(v, 16));
        let attributes = match fields.remove("attributes") {
            Some(Value::Object(map)) => typed_attributes(map),
            _ => Map::new(),
        };
        let severity_number = fields
            .get("severity_number")
            .or_else(|| {
                attributes
                    .get("sentry.severity_number")
                    .map(|a| &a["value"])
            })
            .and_then(integer)
            .and_then(|n| i32::try_from(n).ok());
        let record = Self {
            timestamp_us,
            trace_id,
            span_id,
            level,
            severity_number,
            body,
            attributes,
        };
        match record.size() {
            n if n > MAX_RECORD_BYTES => Err(format!(
                "{n} bytes of body and attributes exceed the {MAX_RECORD_BYTES}-byte limit"
            )),
            _ => Ok(record),
        }
    }

    /// Roughly the bytes the record takes: its body and its attributes' names and text.
    fn size(&self) -> usize {
        let value = |v: &Value| match v.get("value") {
            Some(Value::String(s)) => s.len(),
            Some(Value::Array(a)) => a.len() * 8,
            _ => 8,
        };
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + value(v))
                .sum::<usize>()
    }

    /// The plain value of attribute `key`, when it is a string.
    pub fn attribute_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key)?.get("value")?.as_str()
    }

    /// The record as a `log` item carries it (what OpenTelemetry logs are queued as).
    pub fn to_value(&self) -> Value {
        let mut v = Map::with_capacity(7);
        v.insert(
            "timestamp".into(),
            Value::from(self.timestamp_us as f64 / 1e6),
        );
        v.insert("level".into(), Value::String(self.level.clone()));
        v.insert("body".into(), Value::String(self.body.clone()));
        for (key, id) in [("trace_id", &self.trace_id), ("span_id", &self.span_id)] {
            if let Some(id) = id {
                v.insert(key.into(), Value::String(id.clone()));
            }
        }
        if let Some(n) = self.severity_number {
            v.insert("severity_number".into(), Value::from(n));
        }
        v.insert("attributes".into(), Value::Object(self.attributes.clone()));
        Value::Object(v)
    }

    /// The attributes as stored: a JSON object of typed values.
    pub fn attributes_json(&self) -> String {
        // A map of JSON values always serializes.
        serde_json::to_string(&self.attributes).unwrap_or_else(|_| "{}".into())
    }
}

/// What a logs search looks in: the body, then the value of each attribute but `sentry.*`'s (they repeat
/// the SDK's facts: the same few values in every record), a string as itself and any other value as its
/// JSON. The database indexes this text and checks what its index finds against it, so both agree.
pub fn searchable_text<'a>(
    body: &'a str,
    attributes: &'a Map<String, Value>,
) -> impl Iterator<Item = std::borrow::Cow<'a, str>> {
    let values = attributes
        .iter()
        .filter(|(key, _)| !key.starts_with("sentry."))
        .filter_map(|(_, attribute)| attribute.get("value"))
        .map(|value| match value {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        });
    std::iter::once(std::borrow::Cow::Borrowed(body)).chain(values)
}

/// A level as Sentry names it: OpenTelemetry's and loggers' spellings mapped onto [`LEVELS`].
pub fn normal_level(level: &str) -> String {
    let lower = level.trim().to_ascii_lowercase();
    let known = match lower.as_str() {
        "warning" => "warn",
        "critical" | "fatal" | "emergency" | "alert" => "fatal",
        "err" => "error",
        "information" | "notice" | "log" => "info",
        other => other,
    };
    super::clip(known, 32)
}

/// The level a severity number (1 to 24) falls in; `info` when it is out of range.
pub fn level_of_severity(number: i32) -> &'static str {
    LEVELS
        .iter()
        .rev()
        .find(|(_, from)| number >= *from)
        .filter(|_| (1..=24).contains(&number))
        .map_or("info", |(name, _)| name)
}

/// Float seconds or RFC 3339, as microseconds.
fn timestamp_us(v: &Value) -> Option<i64> {
    crate::protocol::lenient::timestamp(v).ok().flatten()
}

/// A hex id of `len` digits, lowercased; dashes (a UUID's form) are dropped.
pub fn hex_id(v: &Value, len: usize) -> Option<String> {
    let s: String = v.as_str()?.chars().filter(|c| *c != '-').collect();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| s.to_ascii_lowercase())
        .filter(|s| s.bytes().any(|b| b != b'0'))
}

/// An integer, or one written as a string.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The attributes that fit their declared type, at most [`MAX_ATTRIBUTES`]; an untyped value gets the
/// type its JSON has.
fn typed_attributes(raw: Map<String, Value>) -> Map<String, Value> {
    raw.into_iter()
        .filter_map(|(name, attribute)| Some((name, typed(attribute)?)))
        .take(MAX_ATTRIBUTES)
        .collect()
}

/// `{"type": t, "value": v}` with `v` of type `t`, or `None` when it cannot be.
pub fn typed(attribute: Value) -> Option<Value> {
    let (ty, value) = match attribute {
        Value::Object(mut a) if a.contains_key("value") => {
            let ty = a.get("type").and_then(Value::as_str).map(str::to_owned);
            (ty, a.remove("value")?)
        }
        plain => (None, plain),
    };
    let value = match (ty.as_deref(), value) {
        (_, Value::Null) => return None,
        (Some("string") | None, Value::String(s)) => ("string", Value::String(s)),
        (Some("boolean") | None, Value::Bool(b)) => ("boolean", Value::Bool(b)),
        (Some("integer"), v) => ("integer", Value::from(integer(&v)?)),
        (None, Value::Number(n)) if n.is_i64() || n.is_u64() => ("integer", Value::Number(n)),
        (Some("double") | None, Value::Number(n)) => ("double", Value::Number(n)),
        (Some("double"), Value::String(s)) => {
            let f: f64 = s.trim().parse().ok().filter(|f: &f64| f.is_finite())?;
            ("double", Value::from(f))
        }
        (Some("array") | None, Value::Array(a)) => ("array", Value::Array(a)),
        // A type this build does not know: kept as text, so nothing the SDK sent is lost.
        (Some(_), v) => ("string", Value::String(plain_text(v))),
        (None, v) => ("string", Value::String(plain_text(v))),
    };
    let mut out = Map::with_capacity(2);
    out.insert("type".into(), Value::String(value.0.into()));
    out.insert("value".into(), value.1);
    Some(Value::Object(out))
}

fn plain_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(records: Value) -> LogItem {
        logs_from_payload(json!({ "items": records }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_python_sdk_record_is_read_with_typed_attributes() {
        let got = item(json!([{
            "timestamp": 1_544_719_860.5, "trace_id": "5B8EFFF798038103D269B633813FC60C",
            "span_id": "eee19b7ec3c1b174", "level": "info", "body": "User 42 logged in",
            "attributes": {
                "user.id": {"type": "integer", "value": 42},
                "sentry.severity_number": {"type": "integer", "value": "9"},
                "ratio": {"type": "double", "value": 0.5},
                "admin": {"type": "boolean", "value": false},
                "tags": {"type": "array", "value": ["a", "b"]},
                "bad": {"type": "integer", "value": "x"},
                "sentry.release": {"type": "string", "value": "1.0"}
            }
        }]));
        assert!(got.refused.is_empty(), "{:?}", got.refused);
        let r = &got.records[0];
        assert_eq!(r.timestamp_us, 1_544_719_860_500_000);
        assert_eq!(
            r.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(r.severity_number, Some(9));
        assert_eq!(
            r.attributes["user.id"],
            json!({"type": "integer", "value": 42})
        );
        assert_eq!(
            r.attributes["sentry.severity_number"]["value"],
            json!(9),
            "integers sent as strings are read as integers"
        );
        assert!(
            !r.attributes.contains_key("bad"),
            "a value not of its type is dropped"
        );
        assert_eq!(r.attribute_str("sentry.release"), Some("1.0"));
        assert_eq!(r.attributes["tags"]["type"], "array");
    }

    #[test]
    fn malformed_records_are_refused_alone_with_a_reason() {
        let got = item(json!([
            {"timestamp": 1.0, "level": "warn", "body": "kept", "trace_id": null},
            "not an object",
            {"level": "info", "body": "no time"},
            {"timestamp": 1.0, "level": "info"},
            {"timestamp": 1.0, "body": "no level"},
            {"timestamp": "garbage", "level": "info", "body": "x"},
            {"timestamp": 1.0, "level": "info", "body": "x", "trace_id": "nope"},
            {"timestamp": 1.0, "level": "Warning", "body": "y", "span_id": "bad"}
        ]));
        assert_eq!(got.records.len(), 2);
        assert_eq!(got.records[1].level, "warn");
        assert_eq!(got.records[1].span_id, None);
        assert_eq!(got.refused.len(), 6, "{:?}", got.refused);
        assert!(got.refused[0].starts_with("record 1: not a JSON object"));
        assert!(got.refused[4].contains("timestamp"));
        assert!(got.refused[5].contains("trace_id"));
    }

    #[test]
    fn limits_refuse_oversized_records_and_items() {
        let big = "x".repeat(MAX_RECORD_BYTES + 1);
        let got = item(json!([{"timestamp": 1.0, "level": "info", "body": big}]));
        assert!(got.records.is_empty() && got.refused[0].contains("limit"));
        let many: Vec<Value> = (0..MAX_RECORDS_PER_ITEM + 5)
            .map(|_| json!({"timestamp": 1.0, "level": "info", "body": "b"}))
            .collect();
        let got = item(Value::Array(many));
        assert_eq!(got.records.len(), MAX_RECORDS_PER_ITEM);
        assert_eq!(got.refused.len(), 1);
        assert!(item(json!("nope")).refused[0].contains("items"));
        assert!(logs_from_payload(b"[1]").is_err());
    }

    #[test]
    fn severity_numbers_map_to_levels() {
        assert_eq!(level_of_severity(9), "info");
        assert_eq!(level_of_severity(13), "warn");
        assert_eq!(level_of_severity(24), "fatal");
        assert_eq!(level_of_severity(0), "info");
        assert_eq!(level_of_severity(1), "trace");
    }
}
