//! The Lambda side: the processor's SQS handler with partial batch responses. (The ingest function needs
//! no glue: `lambda_http::run` serves the same axum router as `splat serve`.)

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;

use crate::notify::Notifier;
use crate::process::supervisor::catching;
use crate::process::{BatchOutcome, ProcessError, Processor};
use crate::queue::Delivery;

/// The longest a batch's alerts may hold the processor function after its commit.
pub const NOTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn delivery(message: &SqsMessage) -> Option<Delivery> {
    Some(Delivery {
        message_id: message.message_id.clone()?,
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        // The SQS adapter sends base64 (queue bodies are binary); anything else is passed on to fail as malformed.
        body: message
            .body
            .as_deref()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .unwrap_or_else(|_| b.as_bytes().to_vec())
            })
            .unwrap_or_default(),
        sent_at_ms: message
            .attributes
            .get("SentTimestamp")
            .and_then(|n| n.parse().ok()),
    })
}

/// Handles one SQS batch. Failed messages are returned as `batchItemFailures` (the trigger must enable
/// `ReportBatchItemFailures`); SQS deletes the rest. If the batch cannot be committed at all, every message
/// is reported so that none is lost.
///
/// Records SQS delivered before (`ApproximateReceiveCount` above 1) were in an invocation that did not
/// finish, a panic among the possible causes: each is processed alone first, its panic caught and only it
/// reported, so a record that panics every time reaches the dead-letter queue alone instead of taking its
/// batch-mates with it. (A panic among first deliveries fails the invocation; SQS redelivers them all.)
///
/// After the commit, alerts for the batch's new and regressed issues (and any burst) are sent right here,
/// within [`NOTIFY_DEADLINE`]: nothing runs between invocations. Their failures are logged and never fail
/// the batch.
pub async fn handle_sqs_event(
    processor: &Processor,
    notifier: Option<&Notifier>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let (redelivered, fresh): (Vec<Delivery>, Vec<Delivery>) = event
        .records
        .iter()
        .filter_map(delivery)
        .partition(|d| d.receive_count > 1);
    let mut outcome = BatchOutcome::default();
    for suspect in &redelivered {
        let one = std::slice::from_ref(suspect);
        match catching(processor.process_batch(one)).await {
            Ok(result) => outcome.absorb(committed_or_all_failed(result, one)),
            Err(panic) => {
                tracing::error!(message_id = %suspect.message_id, panic = %panic, "a redelivered message panicked the processor");
                outcome.failed.push(suspect.message_id.clone());
            }
        }
    }
    if !fresh.is_empty() {
        let result = processor.process_batch(&fresh).await;
        outcome.absorb(committed_or_all_failed(result, &fresh));
    }
    processor
        .note_queue_lag(redelivered.iter().chain(&fresh))
        .await;
    if let Some(notifier) = notifier {
        notifier
            .deliver_changes(&outcome.issue_changes, NOTIFY_DEADLINE)
            .await;
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome
        .failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// A batch's outcome; when nothing could be committed, every one of its messages failed.
fn committed_or_all_failed(
    result: Result<BatchOutcome, ProcessError>,
    deliveries: &[Delivery],
) -> BatchOutcome {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "batch commit failed; returning every message to the queue");
        BatchOutcome {
            failed: deliveries.iter().map(|d| d.message_id.clone()).collect(),
            ..BatchOutcome::default()
        }
    })
}

/// What a scheduled invocation asks for: the input's `job` (an EventBridge target's constant input), or
/// the `job` in a scheduled event's `detail`; a plain scheduled event means retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledJob {
    /// Daily: the database and the lake back within their horizons.
    Retention,
    /// Every minute: cron monitors whose check-in is missed, failed or overrunning become issues, and a
    /// stale key snapshot is published again ([`crate::ingest::snapshot::repair`]).
    Monitors,
}

impl ScheduledJob {
    pub fn of(event: &serde_json::Value) -> Result<Self, String> {
        let job = event
            .get("job")
            .or_else(|| event.get("detail").and_then(|d| d.get("job")));
        match job.map(|j| j.as_str()) {
            None | Some(Some("retention")) => Ok(Self::Retention),
            Some(Some("monitors")) => Ok(Self::Monitors),
            Some(Some(other)) => Err(format!("unknown scheduled job {other:?}")),
            Some(None) => Err("the scheduled job must be a string".into()),
        }
    }
}

/// What the scheduled function works with.
pub struct ScheduledContext<'a> {
    pub store: &'a crate::store::Store,
    pub blobs: &'a std::sync::Arc<dyn crate::blob::BlobStore>,
    pub horizons: &'a crate::retention::Horizons,
    /// Where alerts about monitor issues go, when any channel is configured.
    pub notifier: Option<&'a Notifier>,
}

/// Handles one scheduled invocation; the answer (what the run did) lands in the function's log and in
/// the invocation result.
pub async fn handle_scheduled_event(
    cx: &ScheduledContext<'_>,
    event: &serde_json::Value,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    match ScheduledJob::of(event)? {
        ScheduledJob::Retention => {
            let report = crate::retention::run_and_record(cx.store, cx.blobs, cx.horizons).await?;
            Ok(serde_json::json!({ "job": "retention", "report": report }))
        }
        ScheduledJob::Monitors => {
            // The tick is also the repair of a key snapshot whose publish failed after its commit.
            let keys_republished = crate::ingest::snapshot::repair(cx.store, &**cx.blobs)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not check the key snapshot");
                    false
                });
            let lake = crate::lake::LakeWriter::new(cx.blobs.clone());
            let now = chrono::Utc::now().timestamp_micros();
            let outcome = crate::monitors::evaluate(cx.store, Some(&lake), now).await?;
            if let Some(notifier) = cx.notifier {
                notifier
                    .deliver_changes(&outcome.issue_changes, NOTIFY_DEADLINE)
                    .await;
            }
            Ok(serde_json::json!({
                "job": "monitors",
                "missed": outcome.missed,
                "failed": outcome.failed,
                "overrun": outcome.overrun,
                "recovered": outcome.recovered,
                "keys_republished": keys_republished,
            }))
        }
    }
}

/// The notifier of a Lambda that alerts (the processor after each batch, the scheduled function after each
/// monitor evaluation), or `None` when no channel is configured. Its retries are short: the invocation's
/// time is the batch's or the tick's, and nothing runs between invocations.
pub async fn lambda_notifier(config: &crate::config::Config) -> anyhow::Result<Option<Notifier>> {
    let ui_base = config.public_url.clone().unwrap_or_default();
    let store = crate::wiring::open_store(config).await?;
    Ok(
        Notifier::from_config(&config.notify, store, &ui_base)?.map(|n| {
            n.with_retry(crate::notify::RetryPolicy {
                attempts: 3,
                backoff: std::time::Duration::from_millis(300),
                timeout: std::time::Duration::from_secs(3),
            })
        }),
    )
}
