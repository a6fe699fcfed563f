//! OpenTelemetry logs as OTLP/HTTP sends them (`ExportLogsServiceRequest`, protobuf or its JSON mapping),
//! made into the same [`LogRecord`]s as Sentry's `log` items.
//!
//! The protobuf messages are declared here by hand, only the fields Splat reads (field numbers from
//! `opentelemetry/proto/logs/v1/logs.proto` and `common/v1/common.proto`); unknown fields are skipped by
//! the decoder. The JSON mapping is read into the same messages: camelCase names, 64-bit integers as
//! strings or numbers, trace and span ids as hex (OTLP's JSON differs from protobuf's canonical JSON there).
//!
//! A record becomes: its time (`timeUnixNano`, else `observedTimeUnixNano`, else the time received), its
//! level (`severityText` when it names one, else from `severityNumber`), its body as text, and its
//! attributes with the resource's (the record's win) and the scope's name and version as
//! `instrumentation.name` / `instrumentation.version`; `deployment.environment(.name)` and `service.version`
//! also become `sentry.environment` and `sentry.release`, which the pages filter by.

use prost::Message;
use serde_json::{Map, Value};

use super::log::{self, LogItem, LogRecord, LEVELS};

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<OtlpLogRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct OtlpLogRecord {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    #[prost(string, tag = "3")]
    pub severity_text: String,
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<any_value::Value>,
}

pub mod any_value {
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
        #[prost(double, tag = "4")]
        Double(f64),
        #[prost(message, tag = "5")]
        Array(super::ArrayValue),
        #[prost(message, tag = "6")]
        KvList(super::KeyValueList),
        #[prost(bytes = "vec", tag = "7")]
        Bytes(Vec<u8>),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// Why a request body could not be read at all (a 400).
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("invalid OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("invalid OTLP JSON: {0}")]
    Json(String),
}

/// A protobuf body.
pub fn from_protobuf(body: &[u8]) -> Result<ExportLogsServiceRequest, OtlpError> {
    Ok(ExportLogsServiceRequest::decode(body)?)
}

/// A JSON body (OTLP's JSON mapping). Values of the wrong shape are skipped, as unknown fields are.
pub fn from_json(body: &[u8]) -> Result<ExportLogsServiceRequest, OtlpError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string()))?;
    if !value.is_object() {
        return Err(OtlpError::Json("expected a JSON object".into()));
    }
    let list = |v: &Value, key: &str| -> Vec<Value> {
        v.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let resource_logs = list(&value, "resourceLogs")
        .iter()
        .map(|r| ResourceLogs {
            resource: r.get("resource").map(|res| Resource {
                attributes: json_attributes(res),
            }),
            scope_logs: list(r, "scopeLogs")
                .iter()
                .map(|s| ScopeLogs {
                    scope: s.get("scope").map(|scope| InstrumentationScope {
                        name: json_str(scope, "name"),
                        version: json_str(scope, "version"),
                    }),
                    log_records: list(s, "logRecords").iter().map(json_record).collect(),
                })
                .collect(),
        })
        .collect();
    Ok(ExportLogsServiceRequest { resource_logs })
}

fn json_str(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A 64-bit integer as the JSON mapping writes it: a string of digits, or a number.
fn json_u64(v: &Value, key: &str) -> u64 {
    match v.get(key) {
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

fn json_attributes(v: &Value) -> Vec<KeyValue> {
    let Some(list) = v.get("attributes").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter().filter_map(json_key_value).collect()
}

fn json_key_value(kv: &Value) -> Option<KeyValue> {
    Some(KeyValue {
        key: kv.get("key")?.as_str()?.to_owned(),
        value: kv.get("value").map(json_any),
    })
}

fn json_any(v: &Value) -> AnyValue {
    use any_value::Value as V;
    let value = if let Some(s) = v.get("stringValue").and_then(Value::as_str) {
        Some(V::String(s.to_owned()))
    } else if let Some(b) = v.get("boolValue").and_then(Value::as_bool) {
        Some(V::Bool(b))
    } else if let Some(i) = v.get("intValue") {
        match i {
            Value::String(s) => s.trim().parse().ok().map(V::Int),
            other => other.as_i64().map(V::Int),
        }
    } else if let Some(d) = v.get("doubleValue") {
        match d {
            Value::String(s) => s.trim().parse().ok().map(V::Double),
            other => other.as_f64().map(V::Double),
        }
    } else if let Some(a) = v.get("arrayValue") {
        let values = a.get("values").and_then(Value::as_array);
        Some(V::Array(ArrayValue {
            values: values.into_iter().flatten().map(json_any).collect(),
        }))
    } else if let Some(kv) = v.get("kvlistValue") {
        let values = kv.get("values").and_then(Value::as_array);
        Some(V::KvList(KeyValueList {
            values: values
                .into_iter()
                .flatten()
                .filter_map(json_key_value)
                .collect(),
        }))
    } else {
        // `bytesValue` (base64) is shown as sent.
        v.get("bytesValue")
            .and_then(Value::as_str)
            .map(|s| V::String(s.to_owned()))
    };
    AnyValue { value }
}

fn json_record(r: &Value) -> OtlpLogRecord {
    // Ids in the JSON mapping are hex; they are kept as their text's bytes and read as hex below.
    let id = |key: &str| json_str(r, key).into_bytes();
    OtlpLogRecord {
        time_unix_nano: json_u64(r, "timeUnixNano"),
        observed_time_unix_nano: json_u64(r, "observedTimeUnixNano"),
        severity_number: r
            .get("severityNumber")
            .and_then(|n| n.as_i64().or_else(|| severity_by_name(n.as_str()?)))
            .and_then(|n| i32::try_from(n).ok())
            .unwrap_or(0),
        severity_text: json_str(r, "severityText"),
        body: r.get("body").map(json_any),
        attributes: json_attributes(r),
        trace_id: id("traceId"),
        span_id: id("spanId"),
    }
}

/// `SEVERITY_NUMBER_WARN` → 13 (the enum written by name, which the JSON mapping allows).
fn severity_by_name(name: &str) -> Option<i64> {
    let level = name.strip_prefix("SEVERITY_NUMBER_")?.to_ascii_lowercase();
    let (base, n) = level.split_at(
        level
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(level.len()),
    );
    let (_, from) = LEVELS.iter().find(|(l, _)| *l == base)?;
    Some(i64::from(*from) + n.parse::<i64>().map_or(0, |n| n - 1))
}

/// The request's records, each checked as a `log` item's are, and why each refused one was refused.
/// `received_us` stands in for a record that gives no time.
pub fn records(request: ExportLogsServiceRequest, received_us: i64) -> LogItem {
    let mut item = LogItem::default();
    let mut index = 0;
    for resource_logs in request.resource_logs {
        let resource = resource_logs
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let resource = typed_map(resource);
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.unwrap_or_default();
            for record in scope_logs.log_records {
                if item.records.len() + item.refused.len() >= log::MAX_RECORDS_PER_ITEM {
                    item.refused.push(format!(
                        "more than {} records in one request",
                        log::MAX_RECORDS_PER_ITEM
                    ));
                    return item;
                }
                match record_of(record, &resource, &scope, received_us) {
                    Ok(r) => item.records.push(r),
                    Err(why) => item.refused.push(format!("record {index}: {why}")),
                }
                index += 1;
            }
        }
    }
    item
}

fn record_of(
    r: OtlpLogRecord,
    resource: &Map<String, Value>,
    scope: &InstrumentationScope,
    received_us: i64,
) -> Result<LogRecord, String> {
    let nanos = [r.time_unix_nano, r.observed_time_unix_nano]
        .into_iter()
        .find(|n| *n > 0);
    let timestamp_us = nanos.map_or(received_us, |n| {
        i64::try_from(n / 1_000).unwrap_or(i64::MAX)
    });
    let trace_id = id_hex(&r.trace_id, 16)?;
    let span_id = id_hex(&r.span_id, 8).ok().flatten();
    let known = |t: &str| LEVELS.iter().any(|(l, _)| *l == t);
    let text_level = log::normal_level(&r.severity_text);
    let level = if known(&text_level) {
        text_level
    } else {
        log::level_of_severity(r.severity_number).to_owned()
    };
    let mut attributes = resource.clone();
    attributes.extend(typed_map(r.attributes));
    let mut put = |key: &str, value: &str| {
        if !value.is_empty() && !attributes.contains_key(key) {
            attributes.insert(key.into(), typed_string(value));
        }
    };
    put("instrumentation.name", &scope.name);
    put("instrumentation.version", &scope.version);
    for (from, to) in [
        ("deployment.environment.name", "sentry.environment"),
        ("deployment.environment", "sentry.environment"),
        ("service.version", "sentry.release"),
    ] {
        if let Some(v) = resource
            .get(from)
            .and_then(|a| a["value"].as_str())
            .map(str::to_owned)
        {
            put(to, &v);
        }
    }
    put("sentry.origin", "auto.otlp.logs");
    let mut value = Map::with_capacity(7);
    value.insert("timestamp".into(), Value::from(timestamp_us as f64 / 1e6));
    value.insert("level".into(), Value::String(level));
    value.insert("body".into(), Value::String(body_text(r.body)));
    if let Some(t) = trace_id {
        value.insert("trace_id".into(), Value::String(t));
    }
    if let Some(s) = span_id {
        value.insert("span_id".into(), Value::String(s));
    }
    if r.severity_number > 0 {
        value.insert("severity_number".into(), Value::from(r.severity_number));
    }
    value.insert("attributes".into(), Value::Object(attributes));
    let mut record = LogRecord::from_value(Value::Object(value))?;
    // Exact to the microsecond: the float seconds above may round.
    record.timestamp_us = timestamp_us;
    Ok(record)
}

/// An id of `len` bytes as hex: protobuf sends the bytes, the JSON mapping their hex (kept as text).
/// Empty is no id; anything else is refused.
fn id_hex(raw: &[u8], len: usize) -> Result<Option<String>, String> {
    if raw.is_empty() || raw.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    if raw.len() == len {
        return Ok(Some(hex::encode(raw)));
    }
    let text = String::from_utf8_lossy(raw);
    log::hex_id(&Value::String(text.into_owned()), len * 2)
        .map(Some)
        .ok_or_else(|| format!("an id of {} bytes is not {len} bytes", raw.len()))
}

/// Attributes as typed values; nested lists and maps become JSON text (a log attribute is a scalar or a
/// list of scalars).
fn typed_map(attributes: Vec<KeyValue>) -> Map<String, Value> {
    attributes
        .into_iter()
        .filter_map(|kv| {
            let value = plain(kv.value?.value?);
            Some((kv.key, log::typed(value)?))
        })
        .collect()
}

fn typed_string(s: &str) -> Value {
    serde_json::json!({"type": "string", "value": s})
}

/// An OTLP value as plain JSON.
fn plain(v: any_value::Value) -> Value {
    use any_value::Value as V;
    match v {
        V::String(s) => Value::String(s),
        V::Bool(b) => Value::Bool(b),
        V::Int(i) => Value::from(i),
        V::Double(d) => Value::from(d),
        V::Array(a) => Value::Array(
            a.values
                .into_iter()
                .filter_map(|v| v.value.map(plain))
                .collect(),
        ),
        V::KvList(kv) => Value::String(
            Value::Object(
                kv.values
                    .into_iter()
                    .filter_map(|kv| Some((kv.key, plain(kv.value?.value?))))
                    .collect(),
            )
            .to_string(),
        ),
        V::Bytes(b) => Value::String(hex::encode(b)),
    }
}

/// A body as text: a string as is, anything else as JSON.
fn body_text(body: Option<AnyValue>) -> String {
    match body.and_then(|b| b.value).map(plain) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_780_000_000_000_000;

    fn request_json() -> Value {
        json!({"resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "checkout"}},
                {"key": "service.version", "value": {"stringValue": "2.1"}},
                {"key": "deployment.environment.name", "value": {"stringValue": "prod"}}
            ]},
            "scopeLogs": [{
                "scope": {"name": "shop.payments", "version": "1"},
                "logRecords": [
                    {"timeUnixNano": "1780000000123456000", "severityNumber": 17, "severityText": "ERROR",
                     "body": {"stringValue": "card declined"},
                     "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
                     "attributes": [
                        {"key": "amount", "value": {"doubleValue": 12.5}},
                        {"key": "tries", "value": {"intValue": "3"}},
                        {"key": "ok", "value": {"boolValue": false}},
                        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                        {"key": "service.name", "value": {"stringValue": "override"}}
                     ]},
                    {"observedTimeUnixNano": 1780000001000000000u64, "severityNumber": "SEVERITY_NUMBER_WARN2",
                     "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": 1}}]}}},
                    {"traceId": "abc"}
                ]
            }]
        }]})
    }

    #[test]
    fn json_records_become_log_records() {
        let req = from_json(request_json().to_string().as_bytes()).unwrap();
        let item = records(req, NOW);
        assert_eq!(item.refused.len(), 1, "{:?}", item.refused);
        assert!(item.refused[0].contains("record 2"));
        let [a, b] = &item.records[..] else {
            panic!("{:?}", item.records)
        };
        assert_eq!(a.timestamp_us, 1_780_000_000_123_456);
        assert_eq!((a.level.as_str(), a.severity_number), ("error", Some(17)));
        assert_eq!(a.body, "card declined");
        assert_eq!(
            a.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(a.span_id.as_deref(), Some("eee19b7ec3c1b174"));
        assert_eq!(
            a.attributes["amount"],
            json!({"type": "double", "value": 12.5})
        );
        assert_eq!(
            a.attributes["tries"],
            json!({"type": "integer", "value": 3})
        );
        assert_eq!(
            a.attributes["ok"],
            json!({"type": "boolean", "value": false})
        );
        assert_eq!(a.attributes["tags"]["type"], "array");
        assert_eq!(a.attribute_str("service.name"), Some("override"));
        assert_eq!(a.attribute_str("sentry.environment"), Some("prod"));
        assert_eq!(a.attribute_str("sentry.release"), Some("2.1"));
        assert_eq!(
            a.attribute_str("instrumentation.name"),
            Some("shop.payments")
        );
        assert_eq!(b.timestamp_us, 1_780_000_001_000_000);
        assert_eq!((b.level.as_str(), b.severity_number), ("warn", Some(14)));
        assert_eq!(b.body, r#"{"k":1}"#);
    }

    #[test]
    fn protobuf_records_become_the_same_records() {
        let json = records(
            from_json(request_json().to_string().as_bytes()).unwrap(),
            NOW,
        );
        // The same request as protobuf: ids as bytes.
        let mut req = from_json(request_json().to_string().as_bytes()).unwrap();
        let r = &mut req.resource_logs[0].scope_logs[0].log_records[0];
        r.trace_id = hex::decode("5b8efff798038103d269b633813fc60c").unwrap();
        r.span_id = hex::decode("eee19b7ec3c1b174").unwrap();
        let bytes = req.encode_to_vec();
        let proto = records(from_protobuf(&bytes).unwrap(), NOW);
        assert_eq!(proto.records, json.records);
        assert!(from_protobuf(b"\xff\xff\xff").is_err());
        assert!(from_json(b"[]").is_err());
    }

    #[test]
    fn a_record_without_time_is_stamped_when_received() {
        let req = from_json(
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}"#,
        )
        .unwrap();
        let item = records(req, NOW);
        assert_eq!(item.records[0].timestamp_us, NOW);
        assert_eq!(item.records[0].level, "info");
    }
}
