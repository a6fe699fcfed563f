//! `Envelope::parse` over arbitrary bytes (the body ingest sees after decoding).
//!
//! Invariants, beyond not panicking:
//! - at most `MAX_ITEMS` items; every payload is a slice of the body, in order, never overlapping;
//! - an item with a `length` header has a payload of exactly that length;
//! - `to_bytes` frames the same envelope again: parsing it gives the same headers, item types, headers
//!   and payloads (unknown header values compared by key, since their JSON numbers need not round-trip
//!   bit for bit), and framing that a second time gives the same bytes;
//! - the size limits check is total.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use splat::protocol::envelope::MAX_ITEMS;
use splat::protocol::{Envelope, Limits};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let Ok(env) = Envelope::parse(body.clone()) else {
        return;
    };
    assert!(env.items.len() <= MAX_ITEMS);
    let base = body.as_ptr() as usize;
    let mut previous_end = 0usize;
    for item in &env.items {
        let start = item.payload.as_ptr() as usize - base;
        if !item.payload.is_empty() {
            assert!(start >= previous_end, "payloads overlap or go backwards");
            assert!(start + item.payload.len() <= body.len());
            assert_eq!(&body[start..start + item.payload.len()], &item.payload[..]);
            previous_end = start + item.payload.len();
        }
        if let Some(length) = item.headers.length {
            assert_eq!(item.payload.len(), length);
        }
        assert!(item.headers.other.get("type").is_none());
        assert!(item.headers.other.get("length").is_none());
    }
    let _ = Limits::default().check(&env);
    let _ = env.event_item();

    let framed = env.to_bytes();
    let again = Envelope::parse(Bytes::from(framed.clone())).expect("to_bytes output must parse");
    assert_eq!(env.headers.event_id, again.headers.event_id);
    assert_eq!(env.headers.dsn, again.headers.dsn);
    assert_eq!(env.headers.sent_at, again.headers.sent_at);
    assert!(env.headers.other.keys().eq(again.headers.other.keys()));
    assert_eq!(env.items.len(), again.items.len());
    for (a, b) in env.items.iter().zip(&again.items) {
        assert_eq!(a.ty(), b.ty());
        assert_eq!(a.payload, b.payload);
        assert_eq!(b.headers.length, Some(a.payload.len()));
        assert_eq!(a.headers.content_type, b.headers.content_type);
        assert_eq!(a.headers.item_count, b.headers.item_count);
        assert!(a.headers.other.keys().eq(b.headers.other.keys()));
    }
    let reframed = again.to_bytes();
    let third = Envelope::parse(Bytes::from(reframed.clone())).expect("to_bytes output must parse");
    assert_eq!(third.to_bytes(), reframed, "framing must reach a fixed point");
});
