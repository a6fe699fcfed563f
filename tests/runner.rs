//! The processor's polling loop against a queue that fails part-way through gathering a batch.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use splat::process::runner::{run_once, RunnerOptions};
use splat::queue::{Delivery, Queue, QueueError};
use splat_tests::{event_envelope, event_id, TestApp};

/// The test app's local queue, whose receives after the first fail (as a locked SQLite file did).
struct FailsAfterFirstReceive<'a> {
    inner: &'a dyn Queue,
    receives: AtomicU32,
}

#[async_trait]
impl Queue for FailsAfterFirstReceive<'_> {
    async fn send(&self, body: Vec<u8>) -> Result<(), QueueError> {
        self.inner.send(body).await
    }
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        if self.receives.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(QueueError::Failed("database is locked".into()));
        }
        self.inner.receive(max, wait).await
    }
    async fn delete(&self, receipts: &[String]) -> Result<(), QueueError> {
        self.inner.delete(receipts).await
    }
    async fn depth(&self) -> Result<u64, QueueError> {
        self.inner.depth().await
    }
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }
}

/// Messages received before a later receive of the same batch failed are processed and deleted, not left
/// in flight until their visibility timeout (a receive spent towards the dead letters).
#[tokio::test]
async fn a_failed_receive_while_gathering_a_batch_keeps_what_was_received() {
    let app = TestApp::new().await;
    for n in 1..=2 {
        let event = json!({"level": "error", "message": format!("gathered {n}")});
        let reply = app
            .post_envelope(event_envelope(&event_id(n), &event), &[])
            .await;
        assert_eq!(reply.status, 200);
    }
    let queue = FailsAfterFirstReceive {
        inner: app.queue.as_ref(),
        receives: AtomicU32::new(0),
    };
    let options = RunnerOptions {
        batch_size: 10,
        wait: Duration::ZERO,
        window: Duration::from_millis(200),
        ..RunnerOptions::default()
    };
    run_once(&app.processor, &queue, &options).await.unwrap();
    assert!(
        queue.receives.load(Ordering::SeqCst) >= 2,
        "the batch asked for more"
    );
    assert_eq!(app.count("events").await, 2);
    assert_eq!(
        app.queue.depth().await.unwrap(),
        0,
        "both deleted, none left in flight"
    );
}
