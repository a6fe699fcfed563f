//! The legacy `/store/` body: raw JSON, or base64(zlib(JSON)), wrapped into a one-item envelope.
//!
//! The first input byte picks the cap; the rest is the body. Invariants, beyond not panicking:
//! - an accepted body becomes exactly one `event` or `transaction` item, with an event id, whose payload
//!   starts as a JSON object and is one the processor reads (`Event::from_payload` or
//!   `transaction_from_payload`): the endpoint only reads `event_id` and `type`, so invalid UTF-8, a lone
//!   surrogate escape, a number beyond f64 or nesting past 128 levels elsewhere passes, and the processor
//!   reads those too (README.md, findings 1, 5 and 6);
//! - a base64+zlib body never inflates past the cap;
//! - the envelope frames (`to_bytes`) and parses back to the same item, as ingest queues it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use splat::model::{transaction_from_payload, Event};
use splat::protocol::store::envelope_from_store_body;
use splat::protocol::{Envelope, ItemType};

const CAPS: &[usize] = &[0, 16, 1000, 65_536, 1 << 20];


fuzz_target!(|data: &[u8]| {
    let [cap, rest @ ..] = data else {
        return;
    };
    let cap = CAPS[usize::from(*cap) % CAPS.len()];
    let body = Bytes::copy_from_slice(rest);
    let Ok(env) = envelope_from_store_body(body.clone(), cap) else {
        return;
    };
    assert_eq!(env.items.len(), 1);
    let item = &env.items[0];
    assert!(matches!(item.ty(), ItemType::Event | ItemType::Transaction));
    assert!(env.headers.event_id.is_some());
    assert_eq!(item.headers.length, Some(item.payload.len()));
    if item.payload != body {
        // It came out of base64+zlib: capped.
        assert!(item.payload.len() <= cap, "inflated {} bytes past the cap {cap}", item.payload.len());
    }
    assert_eq!(item.payload.iter().find(|b| !b.is_ascii_whitespace()), Some(&b'{'));
    let read = match item.ty() {
        ItemType::Transaction => transaction_from_payload(&item.payload, "e").map(|_| ()),
        _ => Event::from_payload(&item.payload).map(|_| ()),
    };
    if let Err(e) = read {
        panic!("the processor cannot read an accepted store body: {e}");
    }

    let again = Envelope::parse(Bytes::from(env.to_bytes())).expect("to_bytes output must parse");
    assert_eq!(again.headers.event_id, env.headers.event_id);
    assert_eq!(again.items.len(), 1);
    assert_eq!(again.items[0].ty(), item.ty());
    assert_eq!(again.items[0].payload, item.payload);
});
