//! What `/_health` knows about `splat serve`'s processor loop, kept by the loop itself: whether it runs,
//! how often a panic restarted it, the last panic, and when it last finished a batch.
//!
//! A panic must never stop processing silently while ingest keeps answering 200: [`super::runner::run`]
//! restarts the loop after a backoff that doubles with each panic in a row, and health reports
//! `degraded` (503) while it waits. The messages of the batch that panicked are not lost: the queue's
//! visibility timeout brings them back, each is then processed alone, and one that panics every time ends
//! in the dead letters after the queue's receive limit (`splat queue dead-letters list|redrive`).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;

/// The first restart waits this long; each panic in a row doubles it, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LoopState {
    #[default]
    Running,
    /// A panic stopped the loop; it starts again after its backoff.
    Restarting,
    /// Shut down (or never started).
    Stopped,
}

/// The processor's part of `/_health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessorReport {
    pub state: LoopState,
    /// Times a panic stopped the loop and it was started again.
    pub restarts: u64,
    /// Panics in all, those caught around one redelivered message included (that message stays on the
    /// queue; the loop goes on).
    pub panics: u64,
    pub last_panic: Option<String>,
    /// RFC 3339, UTC.
    pub last_panic_at: Option<String>,
    /// When the loop last finished a batch, RFC 3339, UTC.
    pub last_batch_at: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    report: ProcessorReport,
    /// Panics since the last batch that finished: what the backoff grows with.
    in_a_row: u32,
    /// Receipts of the batch being processed, so a panic can be noted on its messages.
    in_flight: Vec<String>,
}

/// Shared between the loop and `/_health`; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ProcessorHealth(Arc<Mutex<Inner>>);

impl ProcessorHealth {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic elsewhere never leaves this state half-written: recover it rather than propagate.
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut inner)
    }

    pub fn report(&self) -> ProcessorReport {
        self.with(|i| i.report.clone())
    }

    /// Whether the loop is up; `/_health` is degraded when it is not.
    pub fn is_running(&self) -> bool {
        self.report().state == LoopState::Running
    }

    pub(crate) fn set_state(&self, state: LoopState) {
        self.with(|i| i.report.state = state);
    }

    pub(crate) fn set_in_flight(&self, receipts: Vec<String>) {
        self.with(|i| i.in_flight = receipts);
    }

    /// A batch finished: the loop works, whatever panicked before.
    pub(crate) fn batch_done(&self) {
        self.with(|i| {
            i.report.last_batch_at = Some(now_rfc3339());
            i.in_a_row = 0;
            i.in_flight.clear();
        });
    }

    /// Records a panic; returns the receipts that were in flight.
    pub(crate) fn panicked(&self, message: &str) -> Vec<String> {
        self.with(|i| {
            i.report.panics += 1;
            i.report.last_panic = Some(message.to_owned());
            i.report.last_panic_at = Some(now_rfc3339());
            i.in_a_row += 1;
            std::mem::take(&mut i.in_flight)
        })
    }

    /// The loop stopped on a panic: counts the restart and says how long to wait before it.
    pub(crate) fn restarting(&self) -> Duration {
        self.with(|i| {
            i.report.state = LoopState::Restarting;
            i.report.restarts += 1;
            backoff(i.in_a_row)
        })
    }
}

/// `FIRST_BACKOFF` doubled for each panic in a row after the first, capped at `MAX_BACKOFF`.
fn backoff(in_a_row: u32) -> Duration {
    let doublings = in_a_row.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// Runs `future`, a panic in it becoming `Err` with the panic's text. For a redelivered message processed
/// alone: its panic fails only it, and the code around goes on (nothing it shares is left half-written:
/// a transaction a panic abandons is rolled back when it is dropped).
pub async fn catching<F: Future>(future: F) -> Result<F::Output, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|payload| panic_message(&*payload))
}

/// The text a panic was raised with (`panic!("…")` carries a `&str` or a `String`).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    crate::model::clip(&text, 1024)
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_panic_in_a_row_and_resets_after_a_batch() {
        let health = ProcessorHealth::default();
        assert!(health.is_running());
        health.set_in_flight(vec!["1:1".into()]);
        assert_eq!(health.panicked("boom"), vec!["1:1".to_owned()]);
        assert_eq!(health.restarting(), Duration::from_secs(1));
        assert!(!health.is_running());
        health.panicked("boom");
        assert_eq!(health.restarting(), Duration::from_secs(2));
        for _ in 0..10 {
            health.panicked("boom");
        }
        assert_eq!(health.restarting(), MAX_BACKOFF);
        health.set_state(LoopState::Running);
        health.batch_done();
        health.panicked("again");
        assert_eq!(health.restarting(), FIRST_BACKOFF);
        let report = health.report();
        assert_eq!((report.restarts, report.panics), (4, 13));
        assert_eq!(report.last_panic.as_deref(), Some("again"));
        assert!(report.last_batch_at.is_some());
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&String::from("owned")), "owned");
    }
}
