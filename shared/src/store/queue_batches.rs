//! What the processor saw of the SQS queue at its last batch: when it ran and how long the batch's
//! oldest message had waited. The UI's queue pill and `/_health` read it instead of asking SQS for its
//! depth (`GetQueueAttributes`), which from inside the VPC would need an interface endpoint billed by the
//! hour. One row, replaced per batch.

use super::{Result, Store};

/// The processor's last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBatch {
    /// When the batch was handed to the processor, in microseconds.
    pub at_us: i64,
    /// How long its oldest message had waited in the queue by then.
    pub lag_ms: i64,
}

impl Store {
    /// Records a batch (a later batch replaces it; an out-of-order earlier one does not).
    pub async fn record_queue_batch(&self, batch: QueueBatch) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO queue_batches (id, batch_at, lag_ms) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET batch_at = excluded.batch_at, lag_ms = excluded.lag_ms
                 WHERE excluded.batch_at >= queue_batches.batch_at",
                (batch.at_us, batch.lag_ms.max(0)),
            )
            .await?;
        Ok(())
    }

    /// The last batch recorded, if any.
    pub async fn last_queue_batch(&self) -> Result<Option<QueueBatch>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT batch_at, lag_ms FROM queue_batches WHERE id = 1",
                (),
            )
            .await?;
        Ok(match rows.next().await? {
            Some(row) => Some(QueueBatch {
                at_us: row.get(0)?,
                lag_ms: row.get(1)?,
            }),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_latest_batch_wins() {
        let store = Store::open_in_memory().await.unwrap();
        assert_eq!(store.last_queue_batch().await.unwrap(), None);
        let later = QueueBatch {
            at_us: 2_000,
            lag_ms: 40,
        };
        store.record_queue_batch(later).await.unwrap();
        // A slower instance finishing an earlier batch after it does not turn the clock back.
        store
            .record_queue_batch(QueueBatch {
                at_us: 1_000,
                lag_ms: 9_000,
            })
            .await
            .unwrap();
        assert_eq!(store.last_queue_batch().await.unwrap(), Some(later));
    }
}
