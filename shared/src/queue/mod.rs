//! The durable queue between ingest and the processor: SQS in AWS, a SQLite table locally.
//!
//! The queue moves opaque message bodies ([`QueueMessage::encode`]). Delivery is at least once: the processor
//! acknowledges a message only after its rows are committed, and the ledger in the database makes a second
//! delivery harmless. A message that keeps failing is moved to a dead-letter queue after `max_receives`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::protocol::{EventId, ProjectId};

pub mod local;
#[cfg(feature = "aws")]
pub mod sqs;

pub use local::LocalQueue;

/// A message as the queue hands it out.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Stable across redeliveries: the ledger key.
    pub message_id: String,
    /// Changes with every delivery: what `delete` needs.
    pub receipt: String,
    pub receive_count: u32,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

impl QueueError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self(e.to_string())
    }
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Returns only once the message is durably stored.
    async fn send(&self, body: Vec<u8>) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError>;
    /// Acknowledges delivered messages so they are never delivered again.
    async fn delete(&self, receipts: &[String]) -> Result<(), QueueError>;
    /// Messages waiting (visible or in flight), for health and the UI.
    async fn depth(&self) -> Result<u64, QueueError>;
    /// Largest encoded message the queue takes; bigger envelopes travel through the blob store.
    fn max_message_bytes(&self) -> usize;
}

/// Where the envelope is: inline, or in the blob store when it is too large for a queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeRef {
    Inline(Bytes),
    Blob(String),
}

/// What ingest hands the processor: one accepted envelope and what ingest learned about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub project_id: ProjectId,
    /// The id ingest answered with; the processor gives it to the event item.
    pub event_id: Option<EventId>,
    pub received_at_us: i64,
    pub envelope: EnvelopeRef,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    project_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    received_at_us: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    envelope_b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed queue message: {0}")]
pub struct MessageError(String);

const WIRE_VERSION: u8 = 1;

impl QueueMessage {
    /// JSON with the envelope in base64: SQS bodies must be text.
    pub fn encode(&self) -> Vec<u8> {
        let (envelope_b64, blob) = match &self.envelope {
            EnvelopeRef::Inline(bytes) => (Some(base64::engine::general_purpose::STANDARD.encode(bytes)), None),
            EnvelopeRef::Blob(key) => (None, Some(key.clone())),
        };
        let wire = Wire {
            v: WIRE_VERSION,
            project_id: self.project_id.value(),
            event_id: self.event_id.map(|id| id.to_string()),
            received_at_us: self.received_at_us,
            envelope_b64,
            blob,
        };
        serde_json::to_vec(&wire).expect("plain struct serializes")
    }

    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| MessageError(e.to_string()))?;
        if wire.v != WIRE_VERSION {
            return Err(MessageError(format!("unknown version {}", wire.v)));
        }
        let envelope = match (wire.envelope_b64, wire.blob) {
            (Some(b64), None) => EnvelopeRef::Inline(Bytes::from(
                base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| MessageError(e.to_string()))?,
            )),
            (None, Some(key)) => EnvelopeRef::Blob(key),
            _ => return Err(MessageError("needs exactly one of envelope_b64 and blob".into())),
        };
        let event_id = match wire.event_id {
            Some(s) => Some(s.parse().map_err(|_| MessageError(format!("bad event id {s:?}")))?),
            None => None,
        };
        let project_id = ProjectId::new(wire.project_id);
        Ok(Self { project_id, event_id, received_at_us: wire.received_at_us, envelope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let msg = QueueMessage {
            project_id: ProjectId::new(3),
            event_id: Some(EventId::random()),
            received_at_us: 1_700_000_000_000_000,
            envelope: EnvelopeRef::Inline(Bytes::from_static(b"{}\n\xff\x00binary")),
        };
        assert_eq!(QueueMessage::decode(&msg.encode()).unwrap(), msg);
        let blob = QueueMessage { envelope: EnvelopeRef::Blob("ingest/x".into()), event_id: None, ..msg };
        assert_eq!(QueueMessage::decode(&blob.encode()).unwrap(), blob);
        assert!(std::str::from_utf8(&blob.encode()).is_ok());
        for bad in [&b"not json"[..], br#"{"v":2,"project_id":1,"received_at_us":0,"blob":"k"}"#, br#"{"v":1,"project_id":1,"received_at_us":0}"#] {
            assert!(QueueMessage::decode(bad).is_err());
        }
    }
}

/// Waits helper shared by pollers: how long to sleep before asking an empty queue again.
pub(crate) const EMPTY_POLL_BACKOFF: Duration = Duration::from_millis(50);
