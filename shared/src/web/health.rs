//! `GET /_health`, for uptime monitors and load balancers: the seed's JSON (status, timestamp, queue
//! depth and status, 24-hour event and transaction counts, open issues, transaction rates).
//!
//! `status` is `ok`; `warning` when the queue holds at least `QUEUE_WARNING_THRESHOLD` messages; and
//! `degraded` (the seed's word) when it holds at least `QUEUE_CRITICAL_THRESHOLD`, or when the database or
//! the queue cannot be read. On SQS the depth is not asked for (see [`crate::queue::gauge`]): the
//! processor's last batch is reported instead (`queue_lag_seconds`, `queue_last_batch_at`), `warning` from
//! a minute's lag and `degraded` from five. Degraded answers 503, the others 200, so a monitor needs only the status
//! code. The route has its own router, merged outside the UI's: no sign-in ever stands in front of it.
//!
//! Where the processor runs in the same process (`splat serve`), `processor` reports its loop (see
//! [`crate::process::supervisor`]): `degraded` while a panic has it stopped, waiting to restart.
//!
//! Counts are cached for a few seconds, so a monitor polling often costs the database nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::process::supervisor::{LoopState, ProcessorHealth, ProcessorReport};
use crate::queue::gauge::Level;
use crate::queue::{Queue, QueueGauge};
use crate::store::{HealthCounts as Counts, Store, StoreError};

/// How long counts are reused before the database is asked again.
const COUNTS_TTL: Duration = Duration::from_secs(10);

/// What `/_health` reads, built once per process.
#[derive(Clone)]
pub struct HealthState {
    store: Store,
    queue: Arc<dyn Queue>,
    thresholds: QueueThresholds,
    counts: Arc<Mutex<Option<(Instant, Counts)>>>,
    processor: Option<ProcessorHealth>,
}

/// Queue depths at which the queue is `warning`, then `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueThresholds {
    pub warning: u64,
    pub critical: u64,
}

impl QueueThresholds {
    /// `healthy`, `warning` or `critical` for a depth (at or above a threshold counts), or for a lag by
    /// its own thresholds; `unavailable` when neither could be read.
    pub fn status(self, gauge: QueueGauge) -> QueueStatus {
        match gauge.level(self.warning, self.critical) {
            Level::Calm => QueueStatus::Healthy,
            Level::Busy => QueueStatus::Warning,
            Level::Behind => QueueStatus::Critical,
            Level::Unknown => QueueStatus::Unavailable,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    Healthy,
    Warning,
    Critical,
    /// The queue could not say how deep it is.
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Degraded,
}

/// The JSON body.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub status: Status,
    /// RFC 3339, UTC.
    pub timestamp: String,
    /// Messages waiting (the local queue; `null` on SQS).
    pub queue_depth: Option<u64>,
    /// On SQS: how long the oldest message of the processor's last batch had waited, and when that was.
    pub queue_lag_seconds: Option<f64>,
    pub queue_last_batch_at: Option<String>,
    pub queue_status: QueueStatus,
    pub queue_warning_threshold: u64,
    pub queue_critical_threshold: u64,
    /// `ok`, or `unavailable` when it could not be read (the counts are then null).
    pub database: &'static str,
    pub event_count: Option<i64>,
    pub event_count_window: &'static str,
    /// Open issues.
    pub issue_count: Option<i64>,
    pub transaction_count: Option<i64>,
    pub transaction_count_window: &'static str,
    /// Transactions that ended in the last minute, per second.
    pub transactions_per_second: Option<f64>,
    /// Transactions that ended in the last hour, per minute.
    pub transactions_per_minute: Option<f64>,
    /// The processor loop, where it runs in this process (`splat serve`); `null` elsewhere.
    pub processor: Option<ProcessorReport>,
}

impl HealthState {
    pub fn new(store: Store, queue: Arc<dyn Queue>, thresholds: QueueThresholds) -> Self {
        Self {
            store,
            queue,
            thresholds,
            counts: Arc::default(),
            processor: None,
        }
    }

    /// Reports this processor loop too, and is degraded while it is down.
    pub fn with_processor(mut self, processor: ProcessorHealth) -> Self {
        self.processor = Some(processor);
        self
    }

    /// Reads everything and decides the status.
    pub async fn check(&self) -> Health {
        let gauge = QueueGauge::read(&*self.queue, &self.store).await;
        let queue_status = self.thresholds.status(gauge);
        let counts = match self.counts().await {
            Ok(counts) => Some(counts),
            Err(e) => {
                tracing::error!(error = %e, "health: database unreadable");
                None
            }
        };
        let processor = self.processor.as_ref().map(ProcessorHealth::report);
        let processor_up = processor
            .as_ref()
            .is_none_or(|p| p.state == LoopState::Running);
        let status = match (queue_status, counts.is_some() && processor_up) {
            (_, false) | (QueueStatus::Critical | QueueStatus::Unavailable, _) => Status::Degraded,
            (QueueStatus::Warning, true) => Status::Warning,
            (QueueStatus::Healthy, true) => Status::Ok,
        };
        Health {
            status,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            queue_depth: gauge.depth(),
            queue_lag_seconds: gauge.lag().map(|lag| lag.as_secs_f64()),
            queue_last_batch_at: gauge.last_batch_at(),
            queue_status,
            queue_warning_threshold: self.thresholds.warning,
            queue_critical_threshold: self.thresholds.critical,
            database: if counts.is_some() {
                "ok"
            } else {
                "unavailable"
            },
            event_count: counts.map(|c| c.events_24h),
            event_count_window: "24h",
            issue_count: counts.map(|c| c.open_issues),
            transaction_count: counts.map(|c| c.transactions_24h),
            transaction_count_window: "24h",
            transactions_per_second: counts.map(|c| rate(c.transactions_last_minute, 60.0)),
            transactions_per_minute: counts.map(|c| rate(c.transactions_last_hour, 60.0)),
            processor,
        }
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        if let Some((at, counts)) = *self.counts.lock().expect("not poisoned") {
            if at.elapsed() < COUNTS_TTL {
                return Ok(counts);
            }
        }
        let counts = self
            .store
            .health_counts(chrono::Utc::now().timestamp_micros())
            .await?;
        *self.counts.lock().expect("not poisoned") = Some((Instant::now(), counts));
        Ok(counts)
    }
}

/// Per second or per minute, to two decimals.
fn rate(count: i64, per: f64) -> f64 {
    (count as f64 / per * 100.0).round() / 100.0
}

/// `GET /_health`. Merge it next to the UI; it needs no state from it.
pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/_health", get(health))
        .with_state(state)
}

async fn health(State(state): State<HealthState>) -> Response {
    let health = state.check().await;
    let code = match health.status {
        Status::Ok | Status::Warning => StatusCode::OK,
        Status::Degraded => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, [(header::CACHE_CONTROL, "no-store")], Json(health)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_inclusive() {
        let t = QueueThresholds {
            warning: 50,
            critical: 100,
        };
        assert_eq!(
            [0, 49, 50, 99, 100, 5000].map(|d| t.status(QueueGauge::Depth(d))),
            [
                QueueStatus::Healthy,
                QueueStatus::Healthy,
                QueueStatus::Warning,
                QueueStatus::Warning,
                QueueStatus::Critical,
                QueueStatus::Critical
            ]
        );
        assert_eq!(rate(90, 60.0), 1.5);
        assert_eq!(rate(1, 60.0), 0.02);
    }
}
