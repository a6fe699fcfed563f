//! Classic `transaction` items and their child spans, and the records both transaction shapes become.

use serde::Deserialize;
use serde_json::Value;

use super::payload::parse;
use super::{clip, owned, str_at, tag, PayloadError};
use crate::protocol::lenient;

/// A span as both transaction shapes describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// The span id of the segment (transaction root) this span belongs to, when known.
    pub segment_id: Option<String>,
    pub is_segment: bool,
    pub name: Option<String>,
    pub op: Option<String>,
    pub status: Option<String>,
    pub start_us: Option<i64>,
    pub end_us: Option<i64>,
    /// Span data, tags or attributes as compact JSON.
    pub data: Option<String>,
    /// `db.system` (`postgresql`, `sqlite` …): which SQL dialect the description is in.
    pub db_system: Option<String>,
}

/// A transaction row: from a classic `transaction` item, or from a streamed segment span.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRecord {
    pub root: SpanRecord,
    pub name: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub platform: Option<String>,
    pub sdk_name: Option<String>,
    pub server_name: Option<String>,
    pub http: HttpFacts,
    /// `measurements.db` and `measurements.view` in milliseconds, when the SDK measured them.
    pub measured_db_ms: Option<f64>,
    pub measured_view_ms: Option<f64>,
    /// The SQL of Rails' `sql.active_record` breadcrumbs, for the N+1 rule; held in memory only, never
    /// stored (the payload keeps it).
    pub sql_breadcrumbs: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawEvent {
    #[serde(default, deserialize_with = "lenient::timestamp")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    start_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    platform: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    release: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    environment: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    transaction: Option<String>,
    #[serde(default)]
    sdk: Value,
    #[serde(default)]
    contexts: Value,
    #[serde(default)]
    spans: Value,
    #[serde(default, deserialize_with = "lenient::string")]
    server_name: Option<String>,
    #[serde(default)]
    request: Value,
    #[serde(default)]
    measurements: Value,
    #[serde(default)]
    tags: Value,
    #[serde(default)]
    breadcrumbs: Value,
}

/// Rails' SDK records queries as breadcrumbs (`category: sql.active_record`, `data.sql`).
fn sql_breadcrumbs(breadcrumbs: &Value) -> Vec<String> {
    let list = breadcrumbs.get("values").unwrap_or(breadcrumbs).as_array();
    list.into_iter()
        .flatten()
        .filter(|b| b.get("category").and_then(Value::as_str) == Some("sql.active_record"))
        .filter_map(|b| b.get("data")?.get("sql")?.as_str())
        .take(10_000)
        .map(str::to_owned)
        .collect()
}

/// The request a transaction served, from wherever the SDK put it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpFacts {
    pub method: Option<String>,
    /// Scheme, host and path: the query string and fragment are dropped (tokens, personal data).
    pub url: Option<String>,
    pub status: Option<i32>,
}

/// `https://host/path?q#f` → `https://host/path`.
pub fn url_without_query(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    clip(&url[..end], 1024)
}

pub(super) fn status_code(v: Option<&Value>) -> Option<i32> {
    let v = v?;
    let n = v
        .as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str()?.trim().parse().ok())?;
    (100..=999).contains(&n).then_some(n as i32)
}

fn measurement_ms(measurements: &Value, key: &str) -> Option<f64> {
    let m = measurements.get(key)?;
    let value = m.get("value")?.as_f64()?;
    let factor = match m
        .get("unit")
        .and_then(Value::as_str)
        .unwrap_or("millisecond")
    {
        "second" => 1000.0,
        "microsecond" => 0.001,
        "nanosecond" => 0.000_001,
        _ => 1.0,
    };
    Some(value * factor).filter(|v| v.is_finite() && *v >= 0.0)
}

fn classic_http(raw: &RawEvent, trace: &Value) -> HttpFacts {
    let data = trace.get("data").unwrap_or(&Value::Null);
    let text = |v: Option<&Value>| owned(v.and_then(Value::as_str));
    HttpFacts {
        method: text(raw.request.get("method"))
            .or_else(|| text(tag(&raw.tags, "http.method")))
            .or_else(|| text(data.get("http.request.method")))
            .or_else(|| text(data.get("http.method")))
            .map(|m| m.to_ascii_uppercase()),
        url: text(raw.request.get("url")).map(|u| url_without_query(&u)),
        status: status_code(
            raw.contexts
                .get("response")
                .and_then(|r| r.get("status_code")),
        )
        .or_else(|| status_code(tag(&raw.tags, "http.status_code")))
        .or_else(|| status_code(data.get("http.response.status_code"))),
    }
}

/// A classic transaction event and its child spans.
pub fn transaction_from_payload(
    payload: &[u8],
    event_id: &str,
) -> Result<(TransactionRecord, Vec<SpanRecord>), PayloadError> {
    Ok(from_raw(parse(payload)?, event_id))
}

/// The same from a payload already read as a JSON value (the processor reads each payload once, to
/// scrub it).
pub fn transaction_from_value(
    value: &Value,
    event_id: &str,
) -> Result<(TransactionRecord, Vec<SpanRecord>), PayloadError> {
    let raw = RawEvent::deserialize(value).map_err(|e| PayloadError(e.to_string()))?;
    Ok(from_raw(raw, event_id))
}

fn from_raw(raw: RawEvent, event_id: &str) -> (TransactionRecord, Vec<SpanRecord>) {
    let trace = raw.contexts.get("trace").cloned().unwrap_or(Value::Null);
    let trace_id = owned(str_at(&trace, &["trace_id"])).unwrap_or_default();
    // Without a trace context the event id still identifies the transaction uniquely.
    let span_id = owned(str_at(&trace, &["span_id"])).unwrap_or_else(|| event_id.to_owned());
    let root = SpanRecord {
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        parent_span_id: owned(str_at(&trace, &["parent_span_id"])),
        segment_id: Some(span_id.clone()),
        is_segment: true,
        name: raw.transaction.clone(),
        op: owned(str_at(&trace, &["op"])),
        status: owned(str_at(&trace, &["status"])),
        start_us: raw.start_timestamp,
        end_us: raw.timestamp,
        data: trace
            .get("data")
            .filter(|d| !d.is_null())
            .map(Value::to_string),
        db_system: None,
    };
    let spans = raw
        .spans
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| classic_span(s, &trace_id, &span_id))
                .collect()
        })
        .unwrap_or_default();
    let http = classic_http(&raw, &trace);
    let record = TransactionRecord {
        name: raw
            .transaction
            .clone()
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "<unlabeled transaction>".into()),
        root,
        sdk_name: owned(str_at(&raw.sdk, &["name"])),
        server_name: raw.server_name.clone(),
        http,
        measured_db_ms: measurement_ms(&raw.measurements, "db"),
        measured_view_ms: measurement_ms(&raw.measurements, "view"),
        sql_breadcrumbs: sql_breadcrumbs(&raw.breadcrumbs),
        environment: raw.environment,
        release: raw.release,
        platform: raw.platform,
    };
    (record, spans)
}

/// A span as either shape sends it: an entry of a classic transaction's `spans`, or a span-v2 item.
#[derive(Deserialize)]
pub(super) struct RawSpan {
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) trace_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) span_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) parent_span_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) op: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) description: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(super) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub(super) start_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub(super) timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub(super) end_timestamp: Option<i64>,
    #[serde(default)]
    pub(super) is_segment: Option<bool>,
    #[serde(default)]
    pub(super) data: Value,
    #[serde(default)]
    pub(super) attributes: Value,
}

fn classic_span(value: &Value, trace_id: &str, segment_id: &str) -> Option<SpanRecord> {
    let raw: RawSpan = serde_json::from_value(value.clone()).ok()?;
    Some(SpanRecord {
        trace_id: raw.trace_id.unwrap_or_else(|| trace_id.to_owned()),
        span_id: raw.span_id?,
        parent_span_id: raw.parent_span_id,
        segment_id: Some(segment_id.to_owned()),
        is_segment: false,
        name: raw.description.or(raw.name),
        op: raw.op,
        status: raw.status,
        start_us: raw.start_timestamp,
        end_us: raw.timestamp.or(raw.end_timestamp),
        db_system: owned(raw.data.get("db.system").and_then(Value::as_str)),
        data: (!raw.data.is_null()).then(|| raw.data.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_transaction_with_spans() {
        let payload = br#"{"type":"transaction","transaction":"GET /users","start_timestamp":1700000000.0,"timestamp":1700000000.25,
            "contexts":{"trace":{"trace_id":"t1","span_id":"root","op":"http.server","status":"ok"}},
            "spans":[{"span_id":"c1","parent_span_id":"root","op":"db","description":"SELECT 1","start_timestamp":1700000000.1,"timestamp":1700000000.2},
                     {"no_span_id":true}]}"#;
        let (tx, spans) = transaction_from_payload(payload, "e1").unwrap();
        let value = crate::model::payload_value(payload).unwrap();
        assert_eq!(
            transaction_from_value(&value, "e1").unwrap(),
            (tx.clone(), spans.clone()),
            "read from bytes or from a value alike"
        );
        assert_eq!(
            (
                tx.name.as_str(),
                tx.root.span_id.as_str(),
                tx.root.op.as_deref()
            ),
            ("GET /users", "root", Some("http.server"))
        );
        assert_eq!(tx.root.end_us.unwrap() - tx.root.start_us.unwrap(), 250_000);
        assert_eq!(spans.len(), 1);
        assert_eq!(
            (
                spans[0].trace_id.as_str(),
                spans[0].segment_id.as_deref(),
                spans[0].name.as_deref()
            ),
            ("t1", Some("root"), Some("SELECT 1"))
        );
    }
}
