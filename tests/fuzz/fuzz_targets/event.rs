//! The event model over an arbitrary payload: `Event::from_payload`, `EventSummary::from_payload`,
//! `transaction_from_payload` and `spans_from_v2_payload`, as the processor calls them on every item.
//!
//! Invariants, beyond not panicking:
//! - a payload that is a JSON object is read by all four (a field of the wrong type never fails an item),
//!   one that does not start as an object fails all four, and all four accept exactly the same payloads
//!   (ingest skips fields it does not read without a full read's checks, so the readers repair what it
//!   lets through: invalid UTF-8, lone surrogate escapes, numbers beyond f64, nesting past serde_json's
//!   limit of 128 levels; README.md, findings 1, 5 and 6);
//! - the summary's columns stay within their clips (title 1,024 bytes, type 512, value and message 4,096,
//!   each plus the 3-byte ellipsis);
//! - reading is deterministic, and `from_payload` agrees with `from_value` on the parsed JSON;
//! - every span of a transaction belongs to its trace and has a span id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::model::{payload_value, spans_from_v2_payload, transaction_from_payload, Event, EventSummary};

const ELLIPSIS: usize = '…'.len_utf8();


fuzz_target!(|data: &[u8]| {
    // Invalid UTF-8 is read as U+FFFD (ingest never sees bytes in fields it does not read), so "an object"
    // means an object once decoded that way.
    let is_object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && serde_json::from_str::<serde_json::Value>(&String::from_utf8_lossy(data))
            .is_ok_and(|v| v.is_object());

    let event = Event::from_payload(data);
    let summary = EventSummary::from_payload(data);
    let transaction = transaction_from_payload(data, "9ec79c33ec9942ab8353589fcb2e04dc");
    let spans = spans_from_v2_payload(data);
    let starts_as_object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_object {
        assert!(event.is_ok(), "Event::from_payload refused a JSON object");
    }
    if !starts_as_object {
        assert!(event.is_err(), "Event::from_payload took a payload that is not an object");
    }
    assert_eq!(summary.is_ok(), event.is_ok(), "EventSummary::from_payload");
    // Findings 3 to 6 (README.md) are fixed: the readers agree.
    for (ok, name) in [(transaction.is_ok(), "transaction_from_payload"), (spans.is_ok(), "spans_from_v2_payload")] {
        if is_object {
            assert!(ok, "{name} refused a JSON object");
        }
        if !starts_as_object {
            assert!(!ok, "{name} took a payload that is not an object");
        }
        assert_eq!(ok, event.is_ok(), "{name} and Event::from_payload disagree");
    }
    let (Ok(event), Ok(summary), Ok((transaction, children)), Ok(_spans)) =
        (event, summary, transaction, spans)
    else {
        return;
    };

    assert!(summary.title.len() <= 1024 + ELLIPSIS);
    assert!(summary.exception_type.as_ref().is_none_or(|s| s.len() <= 512 + ELLIPSIS));
    assert!(summary.exception_value.as_ref().is_none_or(|s| s.len() <= 4096 + ELLIPSIS));
    assert!(summary.message.as_ref().is_none_or(|s| s.len() <= 4096 + ELLIPSIS));
    assert_eq!(summary, EventSummary::from_event(&event));

    let value = payload_value(data).expect("Event::from_payload read it");
    assert_eq!(Event::from_value(&value), event);
    assert_eq!(Event::from_payload(data).unwrap(), event);

    let _ = transaction;
    for span in &children {
        assert!(!span.span_id.is_empty());
    }
});
