//! The queue on Amazon SQS (or any emulator speaking its API).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use base64::Engine;

use super::{Delivery, Queue, QueueError};

/// SQS caps a message at 256 KiB of text; bodies are base64 (4 chars per 3 bytes), with a margin.
pub const SQS_MAX_MESSAGE_BYTES: usize = 250 * 1024 / 4 * 3;

/// SQS answers in milliseconds. An endpoint that accepts connections but stops answering (a stalled
/// emulator, a network partition) must not hold an ingest request forever: past these a call fails, and
/// ingest answers 503 so the SDK keeps the event. The SDK's default has no such bound.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The bounds above, stretched by `wait` for a long poll that may rightly take that long.
fn timeouts(wait: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_attempt_timeout(ATTEMPT_TIMEOUT + wait)
        .operation_timeout(OPERATION_TIMEOUT + wait)
        .build()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        let config = client
            .config()
            .to_builder()
            .timeout_config(timeouts(Duration::ZERO))
            .build();
        Self {
            client: aws_sdk_sqs::Client::from_conf(config),
            url: url.into(),
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: Vec<u8>) -> Result<(), QueueError> {
        // SQS bodies are text; ours are binary.
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(b64().encode(body))
            .send()
            .await
            .map_err(|e| QueueError::Failed(format!("{e:?}")))?;
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let wait = wait.min(Duration::from_secs(20));
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .customize()
            .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts(wait)))
            .send()
            .await
            .map_err(|e| QueueError::Failed(format!("{e:?}")))?;
        Ok(out
            .messages()
            .iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                Some(Delivery {
                    message_id: m.message_id()?.to_owned(),
                    receipt: m.receipt_handle()?.to_owned(),
                    receive_count,
                    // A body that is not base64 was not sent by us: pass it on raw, to fail as malformed.
                    body: m
                        .body()
                        .map(|b| b64().decode(b).unwrap_or_else(|_| b.as_bytes().to_vec()))
                        .unwrap_or_default(),
                    sent_at_ms: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|n| n.parse().ok()),
                })
            })
            .collect())
    }

    async fn delete(&self, receipts: &[String]) -> Result<(), QueueError> {
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .map_err(QueueError::new)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Failed(format!("{e:?}")))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError::Failed(format!(
                    "delete failed: {}",
                    failed.message().unwrap_or(failed.code())
                )));
            }
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| QueueError::Failed(format!("{e:?}")))?;
        let attrs = out.attributes();
        let get = |name| {
            attrs
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(get(QueueAttributeName::ApproximateNumberOfMessages)
            + get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    fn depth_is_free(&self) -> bool {
        false
    }

    fn max_message_bytes(&self) -> usize {
        SQS_MAX_MESSAGE_BYTES
    }
}
