//! The durable queue between ingest and the processor: SQS in AWS, a SQLite table locally.
//!
//! The queue moves opaque message bodies ([`QueueMessage::encode`]). Delivery is at least once: the processor
//! acknowledges a message only after its rows are committed, and the ledger in the database makes a second
//! delivery harmless. A message that keeps failing is moved to a dead-letter queue after `max_receives`.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::protocol::{EventId, ProjectId};

pub mod dead_letters;
pub mod gauge;
pub mod local;
#[cfg(feature = "aws")]
pub mod sqs;

pub use dead_letters::DeadLetter;
pub use gauge::QueueGauge;
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
    /// When the queue took the message, in milliseconds (SQS's `SentTimestamp`; the local queue keeps none,
    /// its depth is free to count): the processor's queue lag (see [`gauge`]).
    pub sent_at_ms: Option<i64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// No room for the message: the disk, or the cap set on the local queue, is full. Ingest says so
    /// (503); the same send succeeds once the processor has made room.
    #[error("queue full: {0}")]
    Full(String),
    #[error("queue: {0}")]
    Failed(String),
}

impl QueueError {
    pub fn new(e: impl std::fmt::Display) -> Self {
        Self::Failed(e.to_string())
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
    /// Hands delivered messages back without counting the delivery toward the dead-letter limit: the
    /// processor's storage failed, not these messages. SQS cannot undo a receive count, so there the
    /// visibility timeout brings them back and the redrive policy stays in charge.
    async fn release(&self, receipts: &[String]) -> Result<(), QueueError> {
        let _ = receipts;
        Ok(())
    }
    /// Records why a delivered message failed, shown with it if it ends in the dead letters. Best
    /// effort, and nothing where the queue keeps no such note (SQS: the processor's log has it).
    async fn note_failure(&self, receipt: &str, reason: &str) -> Result<(), QueueError> {
        let _ = (receipt, reason);
        Ok(())
    }
    /// Messages waiting (visible or in flight), for health and the UI.
    async fn depth(&self) -> Result<u64, QueueError>;
    /// Whether [`Queue::depth`] costs nothing. SQS's is an API call, which from inside the VPC needs an
    /// interface endpoint billed by the hour: the UI shows the processor's recorded lag instead
    /// ([`gauge`]).
    fn depth_is_free(&self) -> bool {
        true
    }
    /// Largest encoded message the queue takes; bigger envelopes travel through the blob store.
    fn max_message_bytes(&self) -> usize;
}

/// How long the queue and its dead-letter queue keep a message by age; `None`: until it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub messages: Option<Duration>,
    pub dead_letters: Option<Duration>,
}

const DAY_SECS: u64 = 86_400;

impl Retention {
    /// The local queue deletes nothing by age, dead letters included.
    pub const LOCAL: Self = Self {
        messages: None,
        dead_letters: None,
    };
    /// The SQS queues of `infra/template.yaml` (`MessageRetentionPeriod`): 4 days, and 14 (the most SQS
    /// allows) for the dead-letter queue.
    pub const SQS: Self = Self {
        messages: Some(Duration::from_secs(4 * DAY_SECS)),
        dead_letters: Some(Duration::from_secs(14 * DAY_SECS)),
    };

    /// The queue a configuration uses: SQS when it names an SQS queue's URL.
    pub fn of(sqs_queue_url: Option<&str>) -> Self {
        if sqs_queue_url.is_some() {
            Self::SQS
        } else {
            Self::LOCAL
        }
    }

    /// The shortest life a claim-checked body (`ingest/<day>/<uuid>.envelope`) may be given: its message
    /// can wait out the queue's retention, then the dead-letter queue's (SQS counts a dead letter's age
    /// from its first enqueue, but a redrive enqueues it anew), so never less than both together.
    /// `None`: the body must stay until the processor deletes it after its commit, which is the local
    /// rule (nothing else removes local claim-checked bodies). On AWS the bucket's lifecycle rule
    /// (`ExpireClaimChecks` in `infra/template.yaml`, 18 days) must be at least this.
    pub fn claim_check_life(self) -> Option<Duration> {
        Some(self.messages? + self.dead_letters?)
    }
}

/// Where the envelope is: inline, or in the blob store when it is too large for a queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeRef {
    Inline(Bytes),
    /// Claim-checked: the blob's key and the envelope's length.
    Blob {
        key: String,
        bytes: u64,
    },
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

/// The header line of an encoded message; the envelope bytes follow it raw.
#[derive(Serialize, Deserialize)]
struct Header {
    v: u8,
    project_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    received_at_us: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
    /// The inline envelope is zstd-compressed (wire version 3 only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    zstd: bool,
    /// The envelope's length when the body does not show it (compressed or claim-checked), so that the
    /// processor can size its batches before reading them. Absent in messages of older builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed queue message: {0}")]
pub struct MessageError(String);

/// Version 2 carries the envelope as it is; version 3 the same header with the envelope zstd-compressed. An
/// uncompressed message is still written as version 2, so a processor from before version 3 (one deploy
/// behind) reads every message it can.
const WIRE_VERSION: u8 = 2;
const WIRE_VERSION_ZSTD: u8 = 3;

/// Inline envelopes from this size on travel zstd-compressed. SQS bills each started 64 KiB of a message,
/// 48 KiB once base64-encoded: below that compressing spends ingest's CPU (tens of microseconds per 10 KiB,
/// against its budget of 40 per envelope) and saves nothing, above it a JSON envelope shrinks several-fold
/// into fewer units, and one past SQS's 256 KiB often no longer needs a claim check (an S3 PUT and GET).
const COMPRESS_FROM_BYTES: usize = 48 * 1024;
/// zstd's fast end: ingest compresses on the request's thread.
const COMPRESS_LEVEL: i32 = 1;
/// A compressed envelope never inflates past this (the largest envelope ingest accepts is 100 MiB by
/// default); a message that would is malformed, not a reason to exhaust the processor's memory.
const MAX_INFLATED_BYTES: u64 = 256 << 20;

impl QueueMessage {
    /// One JSON header line, then the envelope as it is (nothing when it is claim-checked). Binary: a
    /// queue that carries only text (SQS) encodes it itself.
    pub fn encode(&self) -> Vec<u8> {
        let (inline, blob, claimed) = match &self.envelope {
            EnvelopeRef::Inline(bytes) => (&bytes[..], None, None),
            EnvelopeRef::Blob { key, bytes } => (&[][..], Some(key.clone()), Some(*bytes)),
        };
        let compressed = (inline.len() >= COMPRESS_FROM_BYTES)
            .then(|| zstd::bulk::compress(inline, COMPRESS_LEVEL).ok())
            .flatten()
            .filter(|c| c.len() < inline.len());
        let bytes = match &compressed {
            Some(_) => Some(inline.len() as u64),
            None => claimed,
        };
        let header = Header {
            v: if compressed.is_some() {
                WIRE_VERSION_ZSTD
            } else {
                WIRE_VERSION
            },
            project_id: self.project_id.value(),
            event_id: self.event_id.map(|id| id.to_string()),
            received_at_us: self.received_at_us,
            blob,
            zstd: compressed.is_some(),
            bytes,
        };
        let payload = compressed.as_deref().unwrap_or(inline);
        let mut out = serde_json::to_vec(&header).expect("plain struct serializes");
        out.reserve(payload.len() + 1);
        out.push(b'\n');
        out.extend_from_slice(payload);
        out
    }

    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        let (header, head, rest) = split(body)?;
        let envelope = match header.blob {
            None if header.zstd => EnvelopeRef::Inline(inflate(rest, MAX_INFLATED_BYTES)?),
            None => EnvelopeRef::Inline(Bytes::copy_from_slice(rest)),
            Some(key) if rest.is_empty() => EnvelopeRef::Blob {
                key,
                bytes: header.bytes.unwrap_or(0),
            },
            Some(_) => {
                return Err(MessageError(
                    "a claim-checked message carries no envelope".into(),
                ))
            }
        };
        Ok(Self {
            project_id: head.project_id,
            event_id: head.event_id,
            received_at_us: head.received_at_us,
            envelope,
        })
    }

    /// What the header line says, without reading (or inflating) the envelope: for listings.
    pub fn decode_head(body: &[u8]) -> Result<MessageHead, MessageError> {
        split(body).map(|(_, head, _)| head)
    }

    /// How long the envelope of a message body is once read, from its header line alone: `None` for a
    /// claim-checked message of an older build, which did not say, or a body that is not a message.
    pub fn envelope_bytes(body: &[u8]) -> Option<u64> {
        let (header, _, rest) = split(body).ok()?;
        match (header.bytes, &header.blob) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(_)) => None,
            (None, None) => Some(rest.len() as u64),
        }
    }
}

/// A queue message's header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHead {
    pub project_id: ProjectId,
    pub event_id: Option<EventId>,
    pub received_at_us: i64,
}

/// The checked header line, its fields, and the bytes after it.
fn split(body: &[u8]) -> Result<(Header, MessageHead, &[u8]), MessageError> {
    let newline = body
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| MessageError("no header line".into()))?;
    let header: Header =
        serde_json::from_slice(&body[..newline]).map_err(|e| MessageError(e.to_string()))?;
    match (header.v, header.zstd) {
        (WIRE_VERSION, false) | (WIRE_VERSION_ZSTD, true) => {}
        (v, _) => return Err(MessageError(format!("unknown version {v}"))),
    }
    let event_id = match &header.event_id {
        Some(s) => Some(
            s.parse()
                .map_err(|_| MessageError(format!("bad event id {s:?}")))?,
        ),
        None => None,
    };
    let head = MessageHead {
        project_id: ProjectId::new(header.project_id),
        event_id,
        received_at_us: header.received_at_us,
    };
    Ok((header, head, &body[newline + 1..]))
}

/// A compressed envelope, inflated up to `limit` bytes.
fn inflate(compressed: &[u8], limit: u64) -> Result<Bytes, MessageError> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(compressed)
        .map_err(|e| MessageError(format!("zstd: {e}")))?;
    let mut out = Vec::with_capacity(compressed.len() * 4);
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| MessageError(format!("zstd: {e}")))?;
    if out.len() as u64 > limit {
        return Err(MessageError(format!(
            "the envelope inflates past {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

/// Waits helper shared by pollers: how long to sleep before asking an empty queue again.
pub(crate) const EMPTY_POLL_BACKOFF: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_envelopes_travel_compressed_and_small_ones_as_before() {
        let message = |envelope: Vec<u8>| QueueMessage {
            project_id: ProjectId::new(1),
            event_id: None,
            received_at_us: 1,
            envelope: EnvelopeRef::Inline(Bytes::from(envelope)),
        };
        let small = message(b"{}\n{\"type\":\"event\"}\n{\"message\":\"hi\"}\n".to_vec());
        let encoded = small.encode();
        assert!(
            encoded.starts_with(br#"{"v":2,"#),
            "small messages keep version 2"
        );
        assert_eq!(QueueMessage::decode(&encoded).unwrap(), small);

        let frames: String = (0..2_000)
            .map(|i| {
                format!(
                    r#"{{"function":"handler_{}","lineno":{i},"in_app":true}},"#,
                    i % 40
                )
            })
            .collect();
        let large = message(format!("{{}}\n{{\"type\":\"event\"}}\n[{frames}]\n").into_bytes());
        let encoded = large.encode();
        assert!(encoded.starts_with(br#"{"v":3,"#));
        // Listings read the header line alone, never inflating.
        let head = QueueMessage::decode_head(
            &encoded[..encoded.iter().position(|b| *b == b'\n').unwrap() + 1],
        );
        assert_eq!(head.unwrap().project_id, ProjectId::new(1));
        assert!(
            encoded.len() * 4 < frames.len(),
            "{} of {}",
            encoded.len(),
            frames.len()
        );
        assert_eq!(QueueMessage::decode(&encoded).unwrap(), large);

        // Random bytes do not shrink: sent as they are.
        let noise: Vec<u8> = (0..COMPRESS_FROM_BYTES).map(|_| rand::random()).collect();
        assert!(message(noise).encode().starts_with(br#"{"v":2,"#));
    }

    #[test]
    fn a_compressed_message_is_checked_like_any_other() {
        let bomb = zstd::bulk::compress(&[b'x'; 4096], 3).unwrap();
        let err = inflate(&bomb, 4095).unwrap_err().to_string();
        assert!(err.contains("inflates past 4095 bytes"), "{err}");
        assert_eq!(inflate(&bomb, 4096).unwrap().len(), 4096);
        for bad in [
            &br#"{"v":3,"project_id":1,"received_at_us":0,"zstd":true}"#[..],
            b"{\"v\":3,\"project_id\":1,\"received_at_us\":0,\"zstd\":true}\nnot zstd",
            b"{\"v\":3,\"project_id\":1,\"received_at_us\":0}\n{}",
            b"{\"v\":2,\"project_id\":1,\"received_at_us\":0,\"zstd\":true}\n{}",
        ] {
            assert!(QueueMessage::decode(bad).is_err());
        }
    }

    #[test]
    fn claim_checks_outlive_the_queue_and_its_dead_letters() {
        assert_eq!(Retention::LOCAL.claim_check_life(), None);
        assert_eq!(
            Retention::SQS.claim_check_life(),
            Some(Duration::from_secs(18 * 86_400))
        );
        let mut config = crate::config::Config::from_lookup(|_| None).unwrap();
        assert_eq!(Retention::of(config.queue_url.as_deref()), Retention::LOCAL);
        config.queue_url = Some("https://sqs.example/q".into());
        assert_eq!(Retention::of(config.queue_url.as_deref()), Retention::SQS);
    }

    #[test]
    fn messages_round_trip_and_garbage_is_an_error() {
        let msg = QueueMessage {
            project_id: ProjectId::new(3),
            event_id: Some(EventId::random()),
            received_at_us: 1_700_000_000_000_000,
            envelope: EnvelopeRef::Inline(Bytes::from_static(b"{}\n\xff\x00binary")),
        };
        assert_eq!(QueueMessage::decode(&msg.encode()).unwrap(), msg);
        assert_eq!(QueueMessage::envelope_bytes(&msg.encode()), Some(11));
        let blob = QueueMessage {
            envelope: EnvelopeRef::Blob {
                key: "ingest/x".into(),
                bytes: 700_000,
            },
            event_id: None,
            ..msg.clone()
        };
        assert_eq!(QueueMessage::decode(&blob.encode()).unwrap(), blob);
        assert_eq!(QueueMessage::envelope_bytes(&blob.encode()), Some(700_000));
        // A large envelope is compressed; its header still says how long it is.
        let large = QueueMessage {
            envelope: EnvelopeRef::Inline(Bytes::from(vec![b'a'; 100_000])),
            ..msg
        };
        assert!(large.encode().len() < 10_000);
        assert_eq!(QueueMessage::envelope_bytes(&large.encode()), Some(100_000));
        // An older build's claim-checked message does not say.
        let older = b"{\"v\":2,\"project_id\":1,\"received_at_us\":0,\"blob\":\"k\"}\n";
        assert_eq!(QueueMessage::envelope_bytes(older), None);
        assert_eq!(QueueMessage::envelope_bytes(b"garbage"), None);
        for bad in [
            &b"not json"[..],
            b"{\"v\":2}",
            b"{\"v\":1,\"project_id\":1,\"received_at_us\":0}\n{}",
            b"{\"v\":2,\"project_id\":1,\"received_at_us\":0,\"blob\":\"k\"}\nextra",
        ] {
            assert!(QueueMessage::decode(bad).is_err());
        }
    }
}
