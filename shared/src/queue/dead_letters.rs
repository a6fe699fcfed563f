//! Dead letters: messages the processor failed `max_receives` times. Locally they sit in `queue.db`'s
//! `dead_letters` table, and `splat queue dead-letters list|show|redrive` reads and moves them; on AWS the
//! dead-letter queue is SQS's, redriven with SQS's own move task ([`SQS_REDRIVE`]).

use std::fmt::Write;

use bytes::Bytes;

use super::{EnvelopeRef, MessageHead, QueueMessage};
use crate::blob::BlobStore;
use crate::protocol::Envelope;

/// How a dead letter is redriven on AWS, where the queue is SQS (printed by the CLI, and in the README).
pub const SQS_REDRIVE: &str = "\
The dead-letter queue is SQS's: redrive it with SQS's message move task (messages go back to the queue
they came from, with their receive count reset; the processor skips any it already committed):

  DLQ_ARN=$(aws sqs get-queue-attributes --queue-url \"$DEAD_LETTER_QUEUE_URL\" \\
      --attribute-names QueueArn --query Attributes.QueueArn --output text)
  aws sqs start-message-move-task --source-arn \"$DLQ_ARN\" --max-number-of-messages-per-second 10
  aws sqs list-message-move-tasks --source-arn \"$DLQ_ARN\"     # progress

(DeadLetterQueueUrl is a stack output. The SQS console's \"Start DLQ redrive\" does the same.)";

/// Bytes of a body read for the list: the queue message's header line fits many times over.
pub(super) const HEAD_BYTES: i64 = 4096;
/// Item payloads are never printed; an envelope header line is printed up to this many bytes.
const SHOWN_HEADER_BYTES: usize = 2048;

/// One dead letter as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message id it had on the queue (and keeps when redriven).
    pub id: i64,
    pub enqueued_at_ms: i64,
    pub died_at_ms: i64,
    pub receive_count: u32,
    /// Why its last delivery failed, when the processor said.
    pub reason: Option<String>,
    /// The queue message's size in bytes.
    pub size: u64,
    /// The first [`HEAD_BYTES`] of the body (its header line: project, event id, time received), or the
    /// whole body when read by [`super::LocalQueue::dead_letter`].
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// The queue message's header fields; `None` for a body that is not a queue message at all.
    pub fn message(&self) -> Option<MessageHead> {
        QueueMessage::decode_head(&self.body).ok()
    }
}

fn utc_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A table: id, project, received, receives, size, reason.
pub fn list_text(letters: &[DeadLetter]) -> String {
    let mut out = format!(
        "{:<8} {:<8} {:<24} {:<8} {:>10}  reason\n",
        "id", "project", "received", "receives", "bytes"
    );
    for letter in letters {
        let message = letter.message();
        let project = message
            .as_ref()
            .map_or("?".to_owned(), |m| m.project_id.to_string());
        let received = message.as_ref().map_or_else(
            || utc_ms(letter.enqueued_at_ms),
            |m| utc_ms(m.received_at_us / 1000),
        );
        let reason = letter.reason.as_deref().unwrap_or("-").replace('\n', " ");
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<24} {:<8} {:>10}  {}",
            letter.id,
            project,
            received,
            letter.receive_count,
            letter.size,
            crate::model::clip(&reason, 200)
        );
    }
    out
}

/// One dead letter in full, but never its payloads: the queue message's fields, the envelope's header
/// line and each item's headers with its size. A claim-checked envelope is read from the blob store.
pub async fn show_text(letter: &DeadLetter, blobs: &dyn BlobStore) -> String {
    let mut out = list_text(std::slice::from_ref(letter));
    let _ = writeln!(out, "died at: {}", utc_ms(letter.died_at_ms));
    let Ok(message) = QueueMessage::decode(&letter.body) else {
        out.push_str("not a queue message Splat can read\n");
        return out;
    };
    if let Some(id) = message.event_id {
        let _ = writeln!(out, "event id: {id}");
    }
    let bytes: Bytes = match &message.envelope {
        EnvelopeRef::Inline(bytes) => bytes.clone(),
        EnvelopeRef::Blob { key, .. } => {
            let _ = writeln!(out, "claim-checked body: {key}");
            match blobs.get(key).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    let _ = writeln!(out, "  unavailable: {e}");
                    return out;
                }
            }
        }
    };
    let header_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let shown = &header_line[..header_line.len().min(SHOWN_HEADER_BYTES)];
    let _ = writeln!(
        out,
        "envelope header: {}",
        String::from_utf8_lossy(shown).escape_debug()
    );
    match Envelope::parse(bytes) {
        Ok(envelope) => {
            for (i, item) in envelope.items.iter().enumerate() {
                let h = &item.headers;
                let _ = write!(
                    out,
                    "item {i}: type={} bytes={}",
                    h.ty.as_str(),
                    item.payload.len()
                );
                if let Some(ct) = &h.content_type {
                    let _ = write!(out, " content_type={}", ct.escape_debug());
                }
                if let Some(n) = h.item_count {
                    let _ = write!(out, " item_count={n}");
                }
                out.push('\n');
            }
        }
        Err(e) => {
            let _ = writeln!(out, "envelope unreadable: {e}");
        }
    }
    out
}

/// What `splat queue dead-letters …` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    List,
    Show(i64),
    /// One dead letter, or every one (`None`).
    Redrive(Option<i64>),
}

/// Runs a dead-letter command against a local queue; returns what to print. `blobs` (the store of
/// claim-checked bodies) is awaited only to show one letter.
pub async fn run(
    queue: &super::LocalQueue,
    command: Command,
    blobs: impl std::future::Future<Output = anyhow::Result<std::sync::Arc<dyn BlobStore>>>,
) -> anyhow::Result<String> {
    Ok(match command {
        Command::List => list_text(&queue.dead_letters().await?),
        Command::Show(id) => {
            let letter = queue
                .dead_letter(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no dead letter {id}"))?;
            show_text(&letter, blobs.await?.as_ref()).await
        }
        Command::Redrive(id) => {
            let moved = queue.redrive(id).await?;
            if let (0, Some(id)) = (moved, id) {
                anyhow::bail!("no dead letter {id}");
            }
            format!("{moved} message(s) back on the queue\n")
        }
    })
}
