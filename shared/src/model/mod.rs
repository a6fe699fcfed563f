//! Lenient readers for what SDKs send: the promoted columns of an error event, a classic transaction and
//! its spans, and streamed span-v2 items. A missing or oddly typed field never fails an item; only a payload
//! that is not a JSON object does.

use serde::Deserialize;
use serde_json::Value;

use crate::protocol::lenient;

pub mod check_in;
mod event;
mod feedback;

pub use event::{
    Breadcrumb, Event, Exception, Frame, Mechanism, Request, Stacktrace, Thread, User,
};
pub use feedback::Feedback;

/// The columns promoted out of an error event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    pub timestamp_us: Option<i64>,
    pub level: String,
    pub platform: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub server_name: Option<String>,
    pub transaction: Option<String>,
    pub title: String,
    pub exception_type: Option<String>,
    pub exception_value: Option<String>,
    pub message: Option<String>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub trace_id: Option<String>,
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

/// A payload that is not a JSON object: the one thing that fails an item.
#[derive(Debug, thiserror::Error)]
#[error("payload is not a JSON object: {0}")]
pub struct PayloadError(String);

/// The payload as text: invalid UTF-8 (which ingest cannot see in fields it does not read) becomes U+FFFD
/// instead of failing an event that was already acknowledged. Borrowed, not copied, when valid.
pub(crate) fn json_text(payload: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(payload)
}

/// The payload as one JSON value, read as leniently as the item readers read it: [`Event::from_payload`]
/// reads this.
pub fn payload_value(payload: &[u8]) -> Result<Value, PayloadError> {
    if !lenient::starts_as_object(payload) {
        return Err(PayloadError("expected a JSON object".into()));
    }
    read_repaired(&json_text(payload), |text| {
        serde_json::from_str(text).map_err(|e| PayloadError(e.to_string()))
    })
}

fn parse<T: for<'de> Deserialize<'de>>(payload: &[u8]) -> Result<T, PayloadError> {
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

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned).filter(|s| !s.is_empty())
}

/// Clips a string at `max` bytes on a character boundary; columns stay small, the payload keeps everything.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
}

impl EventSummary {
    pub fn from_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        Ok(Self::from_event(&Event::from_payload(payload)?))
    }

    /// Title as Sentry shows it: `Type: first line of value` of the raised exception, else the message.
    pub fn from_event(e: &Event) -> Self {
        let main = e.main_exception();
        let exception_type = main.and_then(|x| x.ty.clone());
        let exception_value = main.and_then(|x| x.value.clone());
        let title = match (&exception_type, &exception_value, &e.message) {
            (Some(t), Some(v), _) => format!("{t}: {}", first_line(v)),
            (Some(t), None, _) => t.clone(),
            (None, Some(v), _) => first_line(v).to_owned(),
            (None, None, Some(m)) => first_line(m).to_owned(),
            (None, None, None) => "<unlabeled event>".to_owned(),
        };
        Self {
            timestamp_us: e.timestamp_us,
            level: e.level.clone().unwrap_or_else(|| "error".into()),
            platform: e.platform.clone(),
            release: e.release.clone(),
            environment: e.environment.clone(),
            server_name: e.server_name.clone(),
            transaction: e.transaction.clone(),
            title: clip(&title, 1024),
            exception_type: exception_type.map(|s| clip(&s, 512)),
            exception_value: exception_value.map(|s| clip(&s, 4096)),
            message: e.message.as_deref().map(|s| clip(s, 4096)),
            sdk_name: e.sdk_name.clone(),
            sdk_version: e.sdk_version.clone(),
            trace_id: e.trace_id.clone(),
        }
    }
}

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

fn status_code(v: Option<&Value>) -> Option<i32> {
    let v = v?;
    let n = v
        .as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str()?.trim().parse().ok())?;
    (100..=999).contains(&n).then_some(n as i32)
}

/// Tags as a map or as `[key, value]` pairs.
fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a Value> {
    match tags {
        Value::Object(map) => map.get(key),
        Value::Array(pairs) => pairs.iter().find_map(|p| {
            let pair = p.as_array()?;
            (pair.first()?.as_str()? == key).then(|| pair.get(1))?
        }),
        _ => None,
    }
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
    let raw: RawEvent = parse(payload)?;
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
    Ok((record, spans))
}

#[derive(Deserialize)]
struct RawSpan {
    #[serde(default, deserialize_with = "lenient::string")]
    trace_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    span_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    parent_span_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    op: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    start_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    end_timestamp: Option<i64>,
    #[serde(default)]
    is_segment: Option<bool>,
    #[serde(default)]
    data: Value,
    #[serde(default)]
    attributes: Value,
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

/// A span-v2 item: `{"items": [span, …]}` with typed attributes (`{"type": "string", "value": …}`).
pub fn spans_from_v2_payload(payload: &[u8]) -> Result<Vec<SpanRecord>, PayloadError> {
    #[derive(Deserialize)]
    struct Container {
        #[serde(default)]
        items: Value,
    }
    let container: Container = parse(payload)?;
    let items = container
        .items
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Ok(items.iter().filter_map(v2_span).collect())
}

/// The plain value of a typed attribute (`{"type": …, "value": v}`), or the attribute itself if untyped.
pub fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a Value> {
    let a = attributes.get(key)?;
    Some(a.get("value").unwrap_or(a))
}

fn attribute_str(attributes: &Value, key: &str) -> Option<String> {
    owned(attribute(attributes, key)?.as_str())
}

fn v2_span(value: &Value) -> Option<SpanRecord> {
    let raw: RawSpan = serde_json::from_value(value.clone()).ok()?;
    let attrs = &raw.attributes;
    let is_segment = raw.is_segment.unwrap_or(false);
    let span_id = raw.span_id?;
    let segment_id =
        attribute_str(attrs, "sentry.segment.id").or_else(|| is_segment.then(|| span_id.clone()));
    Some(SpanRecord {
        trace_id: raw.trace_id?,
        span_id,
        parent_span_id: raw.parent_span_id,
        segment_id,
        is_segment,
        name: raw.name.or(raw.description),
        op: attribute_str(attrs, "sentry.op").or(raw.op),
        status: raw.status,
        start_us: raw.start_timestamp,
        end_us: raw.end_timestamp.or(raw.timestamp),
        db_system: attribute_str(attrs, "db.system.name")
            .or_else(|| attribute_str(attrs, "db.system")),
        data: (!attrs.is_null()).then(|| attrs.to_string()),
    })
}

/// A streamed segment span seen as a transaction. Environment, release and segment name are attributes.
pub fn transaction_from_segment(span: &SpanRecord) -> TransactionRecord {
    let attrs: Value = span
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let name = attribute_str(&attrs, "sentry.segment.name")
        .or_else(|| span.name.clone())
        .unwrap_or_else(|| "<unlabeled transaction>".into());
    TransactionRecord {
        root: span.clone(),
        name,
        environment: attribute_str(&attrs, "sentry.environment"),
        release: attribute_str(&attrs, "sentry.release"),
        platform: attribute_str(&attrs, "sentry.platform"),
        sdk_name: attribute_str(&attrs, "sentry.sdk.name"),
        server_name: attribute_str(&attrs, "sentry.server_name")
            .or_else(|| attribute_str(&attrs, "server.address")),
        http: HttpFacts {
            method: attribute_str(&attrs, "http.request.method")
                .or_else(|| attribute_str(&attrs, "http.method"))
                .map(|m| m.to_ascii_uppercase()),
            url: attribute_str(&attrs, "url.full")
                .or_else(|| attribute_str(&attrs, "http.url"))
                .or_else(|| attribute_str(&attrs, "url.path"))
                .map(|u| url_without_query(&u)),
            status: status_code(attribute(&attrs, "http.response.status_code"))
                .or_else(|| status_code(attribute(&attrs, "http.status_code"))),
        },
        measured_db_ms: None,
        measured_view_ms: None,
        sql_breadcrumbs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn exception_as_values_or_list_and_messages() {
        let e = EventSummary::from_payload(br#"{"exception":{"values":[{"type":"KeyError","value":"a"},{"type":"ValueError","value":"bad\nsecond"}]},"level":"warning","timestamp":1700000000.5}"#).unwrap();
        assert_eq!(
            (e.title.as_str(), e.level.as_str(), e.timestamp_us),
            ("ValueError: bad", "warning", Some(1_700_000_000_500_000))
        );
        let e = EventSummary::from_payload(br#"{"exception":[{"type":"Error","value":"boom"}],"timestamp":"2024-01-02T03:04:05Z"}"#).unwrap();
        assert_eq!(e.title, "Error: boom");
        let e =
            EventSummary::from_payload(br#"{"logentry":{"message":"hi %s","formatted":"hi bob"}}"#)
                .unwrap();
        assert_eq!((e.title.as_str(), e.level.as_str()), ("hi bob", "error"));
        let e = EventSummary::from_payload(br#"{"message":"plain"}"#).unwrap();
        assert_eq!(e.title, "plain");
        assert_eq!(
            EventSummary::from_payload(b"{}").unwrap().title,
            "<unlabeled event>"
        );
    }

    #[test]
    fn odd_types_never_fail_an_event() {
        let e = EventSummary::from_payload(br#"{"level":5,"release":1.2,"environment":["x"],"exception":"nope","timestamp":"garbage","sdk":7,"contexts":null}"#).unwrap();
        assert_eq!(
            (
                e.level.as_str(),
                e.release.as_deref(),
                e.environment,
                e.timestamp_us
            ),
            ("5", Some("1.2"), None, None)
        );
        assert!(EventSummary::from_payload(b"[1,2]").is_err());
        assert!(EventSummary::from_payload(b"{").is_err());
    }

    #[test]
    fn classic_transaction_with_spans() {
        let payload = br#"{"type":"transaction","transaction":"GET /users","start_timestamp":1700000000.0,"timestamp":1700000000.25,
            "contexts":{"trace":{"trace_id":"t1","span_id":"root","op":"http.server","status":"ok"}},
            "spans":[{"span_id":"c1","parent_span_id":"root","op":"db","description":"SELECT 1","start_timestamp":1700000000.1,"timestamp":1700000000.2},
                     {"no_span_id":true}]}"#;
        let (tx, spans) = transaction_from_payload(payload, "e1").unwrap();
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

    #[test]
    fn streamed_spans_and_their_segment() {
        let payload = br#"{"items":[
            {"trace_id":"t","span_id":"s","name":"GET /x","is_segment":true,"status":"ok","start_timestamp":1700000000.0,"end_timestamp":1700000001.0,
             "attributes":{"sentry.op":{"type":"string","value":"http.server"},"sentry.environment":{"type":"string","value":"prod"},"sentry.release":{"type":"string","value":"1.0"},"sentry.segment.name":{"type":"string","value":"GET /x"}}},
            {"trace_id":"t","span_id":"c","parent_span_id":"s","name":"SELECT","start_timestamp":1700000000.1,"end_timestamp":1700000000.2,
             "attributes":{"sentry.op":{"type":"string","value":"db"},"sentry.segment.id":{"type":"string","value":"s"}}},
            {"span_id":"missing trace id"}]}"#;
        let spans = spans_from_v2_payload(payload).unwrap();
        assert_eq!(spans.len(), 2);
        assert!(spans[0].is_segment);
        assert_eq!(
            (spans[1].segment_id.as_deref(), spans[1].op.as_deref()),
            (Some("s"), Some("db"))
        );
        let tx = transaction_from_segment(&spans[0]);
        assert_eq!(
            (
                tx.name.as_str(),
                tx.environment.as_deref(),
                tx.release.as_deref(),
                tx.root.op.as_deref()
            ),
            ("GET /x", Some("prod"), Some("1.0"), Some("http.server"))
        );
    }
}
