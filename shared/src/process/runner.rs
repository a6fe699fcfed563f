//! Drives a [`Processor`] from a queue by polling it, the way the Lambda SQS event source would: used by
//! `splat serve` for the local queue and for SQS when it runs against AWS or an emulator.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{BatchOutcome, Processor};
use crate::notify::NotifyHandle;
use crate::queue::{Delivery, Queue};

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Most messages handled in one batch (one transaction).
    pub batch_size: usize,
    /// How long one receive waits for the first message.
    pub wait: Duration,
    /// How long a batch that is not full waits for more messages after its first, as the SQS trigger's
    /// batching window does: under a steady trickle every batch would otherwise hold a message or two and
    /// pay alone for its lake files (one per table) and its commit. Keep it well under the queue's
    /// visibility timeout, or the first messages come back while their batch is still filling.
    pub window: Duration,
    /// Where each batch's new and regressed issues go, without waiting (see [`NotifyHandle::offer`]).
    pub notify: Option<NotifyHandle>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 100,
            wait: Duration::from_secs(1),
            window: Duration::ZERO,
            notify: None,
        }
    }
}

/// Polls until `shutdown` turns true. Errors are logged and retried after a pause; they never stop it.
pub async fn run(
    processor: Processor,
    queue: Arc<dyn Queue>,
    options: RunnerOptions,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let step = tokio::select! {
            step = run_once(&processor, queue.as_ref(), &options) => step,
            _ = shutdown.changed() => break,
        };
        if let Err(e) = step {
            tracing::error!(error = %e, "processor step failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// How often a batch inside its window looks for more messages.
const WINDOW_POLL: Duration = Duration::from_millis(20);

/// Receives one batch (up to `batch_size`, gathering several receives for queues that hand out fewer,
/// for up to `window` after the first message), processes it and deletes what is done.
pub async fn run_once(
    processor: &Processor,
    queue: &dyn Queue,
    options: &RunnerOptions,
) -> anyhow::Result<BatchOutcome> {
    let mut deliveries: Vec<Delivery> = queue.receive(options.batch_size, options.wait).await?;
    let window_ends = tokio::time::Instant::now() + options.window;
    while !deliveries.is_empty() && deliveries.len() < options.batch_size {
        let more = queue
            .receive(options.batch_size - deliveries.len(), Duration::ZERO)
            .await?;
        if more.is_empty() {
            let now = tokio::time::Instant::now();
            if now >= window_ends {
                break;
            }
            tokio::time::sleep((window_ends - now).min(WINDOW_POLL)).await;
        }
        deliveries.extend(more);
    }
    if deliveries.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let outcome = match processor.process_batch(&deliveries).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // Nothing committed: the storage failed (a full disk, an unusable volume), not these messages.
            // Counted as deliveries, an outage longer than the receive limit would dead-letter them all.
            // (A message whose rows alone cannot commit is told apart once it shares a batch: then the
            // others commit, it fails on its own and counts.)
            let receipts: Vec<String> = deliveries.iter().map(|d| d.receipt.clone()).collect();
            if let Err(release) = queue.release(&receipts).await {
                tracing::warn!(error = %release, "could not hand the batch back to the queue");
            }
            return Err(anyhow::anyhow!(
                "storage failed; the batch goes back to the queue: {e}"
            ));
        }
    };
    let receipts: Vec<String> = deliveries
        .iter()
        .filter(|d| outcome.done.contains(&d.message_id))
        .map(|d| d.receipt.clone())
        .collect();
    queue.delete(&receipts).await?;
    if let Some(notify) = &options.notify {
        notify.offer(&outcome.issue_changes);
    }
    tracing::debug!(
        done = outcome.done.len(),
        failed = outcome.failed.len(),
        "processed a batch"
    );
    Ok(outcome)
}

/// Processes until the queue has nothing visible: for tests, benchmarks and one-shot CLI runs. Failed
/// messages are invisible until their visibility timeout, so they do not keep it looping.
pub async fn drain(
    processor: &Processor,
    queue: &dyn Queue,
    batch_size: usize,
) -> anyhow::Result<BatchOutcome> {
    let options = RunnerOptions {
        batch_size,
        wait: Duration::ZERO,
        window: Duration::ZERO,
        notify: None,
    };
    let mut total = BatchOutcome::default();
    loop {
        let outcome = run_once(processor, queue, &options).await?;
        if outcome.done.is_empty() && outcome.failed.is_empty() {
            return Ok(total);
        }
        total.done.extend(outcome.done);
        total.failed.extend(outcome.failed);
        total.issue_changes.extend(outcome.issue_changes);
    }
}
