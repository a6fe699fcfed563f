//! What the UI's queue pill, `/_health` and MCP's `get_status` say about the queue. The local queue counts
//! its messages for free. SQS's count is an API call (`GetQueueAttributes`) that functions in the VPC
//! could make only through an interface endpoint billed by the hour, so there the processor's record of
//! its last batch stands in: when it ran, and how long its oldest message had waited (its lag).
//!
//! A processor that falls behind shows as a growing lag, and one that keeps failing as well (SQS hands
//! the same old messages back). What the lag cannot show is a processor that is never invoked at all; the
//! dead-letter alarm and the last batch's time are there for that.

use std::time::Duration;

use super::{Delivery, Queue};
use crate::store::{QueueBatch, Store};

/// A lag at which the queue is `warning` (a minute: past the trigger's longest batching window).
pub const LAG_WARNING: Duration = Duration::from_secs(60);
/// A lag at which it is `critical` (five minutes: batches are failing or far behind).
pub const LAG_CRITICAL: Duration = Duration::from_secs(300);

/// A batch as the processor records it: now, and how long its oldest message had waited (`None` when the
/// queue says nothing of when it took them).
pub fn batch_of<'d>(deliveries: impl IntoIterator<Item = &'d Delivery>) -> Option<QueueBatch> {
    let oldest_sent_ms = deliveries.into_iter().filter_map(|d| d.sent_at_ms).min()?;
    let now = chrono::Utc::now();
    Some(QueueBatch {
        at_us: now.timestamp_micros(),
        lag_ms: (now.timestamp_millis() - oldest_sent_ms).max(0),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueGauge {
    /// Messages waiting (the local queue).
    Depth(u64),
    /// The processor's last batch (SQS).
    Lag(QueueBatch),
    /// SQS, and the processor has recorded no batch yet.
    NoBatchYet,
    /// Neither could be read.
    Unavailable,
}

/// How worried to be about the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Calm,
    Busy,
    Behind,
    Unknown,
}

impl QueueGauge {
    /// Reads the queue's own count when that is free, else the processor's record in `store`.
    pub async fn read(queue: &dyn Queue, store: &Store) -> Self {
        if queue.depth_is_free() {
            return match queue.depth().await {
                Ok(depth) => Self::Depth(depth),
                Err(e) => {
                    tracing::warn!(error = %e, "queue depth unavailable");
                    Self::Unavailable
                }
            };
        }
        match store.last_queue_batch().await {
            Ok(Some(batch)) => Self::Lag(batch),
            Ok(None) => Self::NoBatchYet,
            Err(e) => {
                tracing::warn!(error = %e, "the processor's last batch is unavailable");
                Self::Unavailable
            }
        }
    }

    pub fn depth(self) -> Option<u64> {
        match self {
            Self::Depth(depth) => Some(depth),
            _ => None,
        }
    }

    pub fn lag(self) -> Option<Duration> {
        match self {
            Self::Lag(batch) => Some(Duration::from_millis(batch.lag_ms.max(0) as u64)),
            _ => None,
        }
    }

    /// When the processor's last batch ran, RFC 3339 (UTC).
    pub fn last_batch_at(self) -> Option<String> {
        match self {
            Self::Lag(batch) => chrono::DateTime::from_timestamp_micros(batch.at_us)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            _ => None,
        }
    }

    /// For a depth, `busy` and `behind` are the caller's thresholds; a lag has its own.
    pub fn level(self, busy_depth: u64, behind_depth: u64) -> Level {
        fn by<T: PartialOrd>(value: T, busy: T, behind: T) -> Level {
            if value >= behind {
                Level::Behind
            } else if value >= busy {
                Level::Busy
            } else {
                Level::Calm
            }
        }
        match self {
            Self::Depth(depth) => by(depth, busy_depth, behind_depth),
            Self::Lag(_) => by(self.lag().unwrap_or_default(), LAG_WARNING, LAG_CRITICAL),
            Self::NoBatchYet => Level::Calm,
            Self::Unavailable => Level::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_waited_as_long_as_its_oldest_message() {
        let delivery = |sent_at_ms| Delivery {
            message_id: "m".into(),
            receipt: "r".into(),
            receive_count: 1,
            body: Vec::new(),
            sent_at_ms,
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let batch = batch_of(&[
            delivery(Some(now_ms - 1_000)),
            delivery(None),
            delivery(Some(now_ms - 90_000)),
        ])
        .unwrap();
        assert!((90_000..95_000).contains(&batch.lag_ms), "{batch:?}");
        assert!(batch.at_us / 1_000 >= now_ms);
        // The local queue says nothing of when it took a message: nothing to record.
        assert_eq!(batch_of(&[delivery(None)]), None);
        // A clock ahead of ours is no lag, not a negative one.
        assert_eq!(
            batch_of(&[delivery(Some(now_ms + 60_000))]).unwrap().lag_ms,
            0
        );
    }

    #[test]
    fn levels_by_depth_and_by_lag() {
        let lag = |ms| {
            QueueGauge::Lag(QueueBatch {
                at_us: 1_700_000_000_000_000,
                lag_ms: ms,
            })
        };
        assert_eq!(QueueGauge::Depth(49).level(50, 100), Level::Calm);
        assert_eq!(QueueGauge::Depth(50).level(50, 100), Level::Busy);
        assert_eq!(QueueGauge::Depth(100).level(50, 100), Level::Behind);
        assert_eq!(lag(2_000).level(50, 100), Level::Calm);
        assert_eq!(lag(60_000).level(50, 100), Level::Busy);
        assert_eq!(lag(300_000).level(0, 0), Level::Behind);
        assert_eq!(QueueGauge::NoBatchYet.level(0, 0), Level::Calm);
        assert_eq!(QueueGauge::Unavailable.level(50, 100), Level::Unknown);
        assert_eq!(
            lag(1).last_batch_at().as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        assert_eq!(QueueGauge::Depth(3).depth(), Some(3));
        assert_eq!(lag(1_500).depth(), None);
    }
}
