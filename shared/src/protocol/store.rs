//! The legacy `/store/` endpoint's body: one JSON event, sent raw or as base64(zlib(JSON)) by old SDKs.
//! It is turned into an envelope so that everything after the endpoint handles one shape.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::decode::{inflate_zlib, DecodeError};
use super::{Envelope, EnvelopeHeaders, EventId, Item, ItemHeaders, ItemType};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreBodyError {
    #[error("store body is neither JSON nor base64-encoded zlib JSON")]
    NotJson,
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

#[derive(Deserialize)]
struct EventHead {
    #[serde(default, deserialize_with = "super::lenient::event_id")]
    event_id: Option<EventId>,
    #[serde(default, rename = "type", deserialize_with = "super::lenient::string")]
    ty: Option<String>,
}

/// Wraps a store body in an envelope with a single `event` (or `transaction`) item.
pub fn envelope_from_store_body(body: Bytes, limit: usize) -> Result<Envelope, StoreBodyError> {
    let json = if super::lenient::starts_as_object(&body) {
        body
    } else {
        let compact: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let zipped = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|_| StoreBodyError::NotJson)?;
        Bytes::from(inflate_zlib(&zipped, limit)?)
    };
    if !super::lenient::starts_as_object(&json) {
        return Err(StoreBodyError::NotJson);
    }
    let head: EventHead = serde_json::from_slice(&json).map_err(|_| StoreBodyError::NotJson)?;
    let ty = if head.ty.as_deref() == Some("transaction") {
        ItemType::Transaction
    } else {
        ItemType::Event
    };
    let headers = EnvelopeHeaders {
        event_id: Some(head.event_id.unwrap_or_else(EventId::random)),
        ..Default::default()
    };
    let item = Item {
        headers: ItemHeaders {
            ty,
            length: Some(json.len()),
            content_type: Some("application/json".into()),
            item_count: None,
            other: Default::default(),
        },
        payload: json,
    };
    Ok(Envelope {
        headers,
        items: vec![item],
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn raw_json_keeps_its_event_id() {
        let env = envelope_from_store_body(
            Bytes::from_static(
                b" {\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"message\":\"m\"}",
            ),
            1 << 20,
        )
        .unwrap();
        assert_eq!(
            env.headers.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(env.items[0].ty(), &ItemType::Event);
    }

    #[test]
    fn base64_zlib_is_unpacked_and_transactions_recognised() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(br#"{"type":"transaction","transaction":"/x"}"#)
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        let env = envelope_from_store_body(Bytes::from(b64), 1 << 20).unwrap();
        assert_eq!(env.items[0].ty(), &ItemType::Transaction);
        assert!(env.headers.event_id.is_some());
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            envelope_from_store_body(Bytes::from_static(b"hello"), 1 << 20).unwrap_err(),
            StoreBodyError::NotJson
        );
        assert_eq!(
            envelope_from_store_body(Bytes::from_static(b"{not json"), 1 << 20).unwrap_err(),
            StoreBodyError::NotJson
        );
    }
}
