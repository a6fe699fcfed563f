//! Drives a [`Processor`] from a queue by polling it, the way the Lambda SQS event source would: used by
//! `splat serve` for the local queue and for SQS when it runs against AWS or an emulator.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::supervisor::{catching, panic_message, LoopState, ProcessorHealth};
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

/// Polls until `shutdown` turns true, under supervision: errors are logged and retried after a pause; a
/// panic stops the polling loop, which is started again after a backoff (see [`super::supervisor`]).
pub async fn run(
    processor: Processor,
    queue: Arc<dyn Queue>,
    options: RunnerOptions,
    health: ProcessorHealth,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        health.set_state(LoopState::Running);
        // A task of its own, so that its panic ends only it (on the same runtime and thread).
        let task = tokio::spawn(poll(
            processor.clone(),
            queue.clone(),
            options.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        let panic = match task.await {
            Ok(()) => break,
            Err(e) if e.is_panic() => panic_message(&*e.into_panic()),
            Err(_) => break,
        };
        note_panic(&health, queue.as_ref(), &panic).await;
        let backoff = health.restarting();
        tracing::error!(panic = %panic, backoff_secs = backoff.as_secs_f64(), "the processor panicked; restarting it");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => break,
        }
    }
    health.set_state(LoopState::Stopped);
}

/// Records a panic, and on each message that was in flight says why it will come back.
async fn note_panic(health: &ProcessorHealth, queue: &dyn Queue, panic: &str) {
    note_panicked(queue, &health.panicked(panic), panic).await;
}

/// Notes on each message why it will come back (a note is best effort: it only explains).
async fn note_panicked(queue: &dyn Queue, receipts: &[String], panic: &str) {
    let reason = format!("the processor panicked: {panic}");
    for receipt in receipts {
        if let Err(e) = queue.note_failure(receipt, &reason).await {
            tracing::warn!(error = %e, "could not record why a message failed");
        }
    }
}

/// The polling loop itself; ends when `shutdown` turns true.
async fn poll(
    processor: Processor,
    queue: Arc<dyn Queue>,
    options: RunnerOptions,
    health: ProcessorHealth,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let step = tokio::select! {
            step = step(&processor, queue.as_ref(), &options, Some(&health)) => step,
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
    step(processor, queue, options, None).await
}

/// [`run_once`], telling `health` what is in flight and when a batch is done.
///
/// A message delivered before (a receive count above 1) was in a batch that never finished: a panic, a
/// crash, a storage failure, or a message that failed on its own. Such messages are processed one at a
/// time, each with its panics caught, before the rest: one that panics every time fails alone, its
/// batch-mates go through, and the queue moves it to the dead letters after its receive limit. The rest
/// are committed in batches bounded by their envelopes' bytes ([`Processor::batches`]).
async fn step(
    processor: &Processor,
    queue: &dyn Queue,
    options: &RunnerOptions,
    health: Option<&ProcessorHealth>,
) -> anyhow::Result<BatchOutcome> {
    // Each batch's deliveries (their bodies) are dropped once it is done.
    let received = receive_batch(queue, options, processor.batch_bytes()).await?;
    let mut groups = processor.batches(received).into_iter();
    let mut total = BatchOutcome::default();
    while let Some(group) = groups.next() {
        let processed = process(processor, queue, options, health, &group);
        let result = if group[0].receive_count > 1 {
            catching(processed).await
        } else {
            // A panic here ends the loop, and `run` starts it again.
            Ok(processed.await)
        };
        match result {
            Ok(Ok(outcome)) => total.absorb(outcome),
            Ok(Err(e)) => {
                // The storage failed: what was not tried yet goes back uncounted too.
                let rest: Vec<String> = groups.flatten().map(|d| d.receipt).collect();
                if let Err(release) = queue.release(&rest).await {
                    tracing::warn!(error = %release, "could not hand the batch back to the queue");
                }
                return Err(e);
            }
            Err(panic) => {
                let suspect = &group[0];
                tracing::error!(message_id = %suspect.message_id, receive_count = suspect.receive_count, panic = %panic,
                    "a redelivered message panicked the processor; it stays on the queue");
                if let Some(health) = health {
                    health.panicked(&panic);
                }
                note_panicked(queue, std::slice::from_ref(&suspect.receipt), &panic).await;
                total.failed.push(suspect.message_id.clone());
            }
        }
    }
    Ok(total)
}

/// Up to `batch_size` deliveries, gathered for up to `window` after the first, or until their envelopes
/// fill a batch's `bytes` (the rest wait on the queue rather than in memory).
async fn receive_batch(
    queue: &dyn Queue,
    options: &RunnerOptions,
    bytes: u64,
) -> anyhow::Result<Vec<Delivery>> {
    let mut deliveries: Vec<Delivery> = queue.receive(options.batch_size, options.wait).await?;
    let window_ends = tokio::time::Instant::now() + options.window;
    while !deliveries.is_empty()
        && deliveries.len() < options.batch_size
        && super::sizing::envelope_bytes(&deliveries) < bytes
    {
        let more = match queue
            .receive(options.batch_size - deliveries.len(), Duration::ZERO)
            .await
        {
            Ok(more) => more,
            // Those received already are in flight: processed now, not left to wait out their visibility
            // timeout with a receive spent. The next batch asks the queue again.
            Err(e) => {
                tracing::warn!(error = %e, received = deliveries.len(), "receiving more for a batch failed; processing what it has");
                break;
            }
        };
        if more.is_empty() {
            let now = tokio::time::Instant::now();
            if now >= window_ends {
                break;
            }
            tokio::time::sleep((window_ends - now).min(WINDOW_POLL)).await;
        }
        deliveries.extend(more);
    }
    Ok(deliveries)
}

/// Processes one batch, deletes what is done, notes why the rest failed, and hands out notifications.
async fn process(
    processor: &Processor,
    queue: &dyn Queue,
    options: &RunnerOptions,
    health: Option<&ProcessorHealth>,
    deliveries: &[Delivery],
) -> anyhow::Result<BatchOutcome> {
    let receipt = |id: &String| {
        deliveries
            .iter()
            .find(|d| &d.message_id == id)
            .map(|d| d.receipt.clone())
    };
    if let Some(health) = health {
        health.set_in_flight(deliveries.iter().map(|d| d.receipt.clone()).collect());
    }
    let outcome = match processor.process_batch(deliveries).await {
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
    let done: Vec<String> = outcome.done.iter().filter_map(receipt).collect();
    queue.delete(&done).await?;
    processor.note_queue_lag(deliveries).await;
    for (id, reason) in &outcome.reasons {
        if let Some(receipt) = receipt(id) {
            queue.note_failure(&receipt, reason).await?;
        }
    }
    if let Some(health) = health {
        health.batch_done();
    }
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
        total.absorb(outcome);
    }
}
