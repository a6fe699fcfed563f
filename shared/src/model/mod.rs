//! Lenient readers for what SDKs send: the promoted columns of an error event, a classic transaction and
//! its spans, and streamed span-v2 items. A missing or oddly typed field never fails an item; only a payload
//! that is not a JSON object does.
//!
//! One file per shape: `payload` reads the bytes (and repairs what ingest acknowledged but a full read
//! refuses), `event` the error event, `summary` its promoted columns, `transaction` a classic
//! transaction and its spans, `span_v2` streamed span-v2 items, `feedback` user feedback, `log` log records and `otlp_logs` the OpenTelemetry logs that become them;
//! `tags` reads tags in either of the shapes SDKs send them; [`time`] holds the units of microsecond
//! timestamps, the hour a time falls in, and how a time is written.

use serde_json::Value;

pub mod check_in;
mod event;
mod feedback;
pub mod log;
pub mod otlp_logs;
mod payload;
mod span_v2;
mod summary;
mod tags;
pub mod time;
mod transaction;

pub use event::{
    Breadcrumb, Event, Exception, Frame, Mechanism, Request, Stacktrace, Thread, User,
};
pub use feedback::Feedback;
pub use payload::{payload_value, PayloadError};
pub use span_v2::{
    attribute, spans_from_v2_payload, spans_from_v2_value, transaction_from_segment,
};
pub use summary::EventSummary;
pub use tags::{tag, tag_pairs};
pub use transaction::{
    transaction_from_payload, transaction_from_value, url_without_query, HttpFacts, SpanRecord,
    TransactionRecord,
};

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
