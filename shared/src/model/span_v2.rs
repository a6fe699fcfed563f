//! Streamed span-v2 items, and a streamed segment span seen as a transaction.

use serde::Deserialize;
use serde_json::Value;

use super::payload::parse;
use super::transaction::{status_code, RawSpan};
use super::{owned, url_without_query, HttpFacts, PayloadError, SpanRecord, TransactionRecord};

/// A span-v2 item: `{"items": [span, …]}` with typed attributes (`{"type": "string", "value": …}`).
pub fn spans_from_v2_payload(payload: &[u8]) -> Result<Vec<SpanRecord>, PayloadError> {
    #[derive(Deserialize)]
    struct Container {
        #[serde(default)]
        items: Value,
    }
    let container: Container = parse(payload)?;
    Ok(spans_of(&container.items))
}

/// The same from a payload already read as a JSON value (the processor reads each payload once, to
/// scrub it).
pub fn spans_from_v2_value(value: &Value) -> Vec<SpanRecord> {
    spans_of(value.get("items").unwrap_or(&Value::Null))
}

fn spans_of(items: &Value) -> Vec<SpanRecord> {
    let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(v2_span).collect()
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
    fn streamed_spans_and_their_segment() {
        let payload = br#"{"items":[
            {"trace_id":"t","span_id":"s","name":"GET /x","is_segment":true,"status":"ok","start_timestamp":1700000000.0,"end_timestamp":1700000001.0,
             "attributes":{"sentry.op":{"type":"string","value":"http.server"},"sentry.environment":{"type":"string","value":"prod"},"sentry.release":{"type":"string","value":"1.0"},"sentry.segment.name":{"type":"string","value":"GET /x"}}},
            {"trace_id":"t","span_id":"c","parent_span_id":"s","name":"SELECT","start_timestamp":1700000000.1,"end_timestamp":1700000000.2,
             "attributes":{"sentry.op":{"type":"string","value":"db"},"sentry.segment.id":{"type":"string","value":"s"}}},
            {"span_id":"missing trace id"}]}"#;
        let spans = spans_from_v2_payload(payload).unwrap();
        let value = crate::model::payload_value(payload).unwrap();
        assert_eq!(spans_from_v2_value(&value), spans);
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
