//! Retention: keeps the database and the lake within their horizons, so that Splat can run for months
//! without growing without bound. One [`run`] deletes what is past each horizon from the database (in
//! small write transactions), ends the lake's files past theirs, compacts each past day's small files,
//! expires old lake snapshots and deletes the files nothing can see any more.
//!
//! It is idempotent and safe at any time: every step is its own short transaction, serialised with the
//! processor by SQLite's write lock, and a step interrupted halfway is simply done again by the next run.
//! A run given a [`Deadline`] (the retention Lambda's remaining time, `splat retention run --budget`)
//! starts no merge or deletion round after it and says so in its report; the next run goes on from there.
//! It runs daily from the retention Lambda (EventBridge), on a timer inside `splat serve`, and on demand
//! with `splat retention run`.

use std::sync::Arc;

use crate::blob::BlobStore;
pub use crate::lake::maintenance::Deadline;
use crate::lake::maintenance::{self, LakeReport};
use crate::lake::tables;
use crate::model::time::DAY_US;
use crate::store::{OltpReport, Store};

/// How long each kind of data is kept, in days (the seed's defaults; see `Horizons::from_lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Horizons {
    /// `SPLAT_MAX_EVENT_LIFE_DAYS` (90): error events in the database; issues left empty go with them.
    pub event_days: u32,
    /// `SPLAT_MAX_PAYLOAD_LIFE_DAYS` (30): an event's full payload (stack trace, breadcrumbs, request);
    /// the event row stays until `event_days`.
    pub payload_days: u32,
    /// `SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS` (90): transactions in the database.
    pub transaction_days: u32,
    /// `SPLAT_MAX_FILE_LIFE_DAYS` (90): the lake's files of events and transactions.
    pub lake_days: u32,
    /// `SPLAT_MAX_SPAN_LIFE_DAYS` (30): spans, in the lake and waiting in the database.
    pub span_days: u32,
    /// `SPLAT_MAX_ROLLUP_LIFE_DAYS` (540): hourly performance rollups behind the charts and rankings.
    pub rollup_days: u32,
    /// `SPLAT_MAX_LOG_LIFE_DAYS` (30): log records in the database (the lake's follow `lake_days`).
    pub log_days: u32,
}

impl Default for Horizons {
    fn default() -> Self {
        Self {
            event_days: 90,
            payload_days: 30,
            transaction_days: 90,
            lake_days: 90,
            span_days: 30,
            rollup_days: 540,
            log_days: 30,
        }
    }
}

impl Horizons {
    /// Reads the horizons from variables; each must be a whole number of days, at least 1.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let d = Self::default();
        let days = |name: &str, default: u32| -> anyhow::Result<u32> {
            match get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if n >= 1 => Ok(n),
                    _ => anyhow::bail!(
                        "{name} must be a whole number of days (1 or more), got {v:?}"
                    ),
                },
            }
        };
        Ok(Self {
            event_days: days("SPLAT_MAX_EVENT_LIFE_DAYS", d.event_days)?,
            payload_days: days("SPLAT_MAX_PAYLOAD_LIFE_DAYS", d.payload_days)?,
            transaction_days: days("SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS", d.transaction_days)?,
            lake_days: days("SPLAT_MAX_FILE_LIFE_DAYS", d.lake_days)?,
            span_days: days("SPLAT_MAX_SPAN_LIFE_DAYS", d.span_days)?,
            rollup_days: days("SPLAT_MAX_ROLLUP_LIFE_DAYS", d.rollup_days)?,
            log_days: days("SPLAT_MAX_LOG_LIFE_DAYS", d.log_days)?,
        })
    }
}

/// Settings-page overrides are saved under the variable's name with this prefix.
pub const SETTING_PREFIX: &str = "retention.";

impl Horizons {
    /// Each horizon with its variable and what it removes, in the order the settings page lists them.
    pub fn fields(&self) -> [(&'static str, &'static str, u32); 7] {
        [
            (
                "SPLAT_MAX_EVENT_LIFE_DAYS",
                "error events (issues left empty go too)",
                self.event_days,
            ),
            (
                "SPLAT_MAX_PAYLOAD_LIFE_DAYS",
                "event payloads (stack traces, breadcrumbs)",
                self.payload_days,
            ),
            (
                "SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS",
                "transactions",
                self.transaction_days,
            ),
            (
                "SPLAT_MAX_FILE_LIFE_DAYS",
                "the lake's event and transaction files",
                self.lake_days,
            ),
            (
                "SPLAT_MAX_SPAN_LIFE_DAYS",
                "spans (lake files, and streamed spans waiting)",
                self.span_days,
            ),
            (
                "SPLAT_MAX_ROLLUP_LIFE_DAYS",
                "hourly performance rollups",
                self.rollup_days,
            ),
            (
                "SPLAT_MAX_LOG_LIFE_DAYS",
                "log records in the database",
                self.log_days,
            ),
        ]
    }

    /// These horizons with the settings page's saved values (`retention.<VARIABLE>`) in their place.
    pub fn with_saved(&self, saved: &[(String, String)]) -> Self {
        let mine = self.fields();
        Self::from_lookup(|name| {
            saved
                .iter()
                .find(|(k, _)| k.strip_prefix(SETTING_PREFIX) == Some(name))
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    mine.iter()
                        .find(|(n, _, _)| *n == name)
                        .map(|(_, _, d)| d.to_string())
                })
        })
        // A saved value is checked when saved; one that is not a valid number is ignored.
        .unwrap_or(*self)
    }

    /// The horizons in force: the environment's (or the defaults), overridden by the settings page.
    pub async fn in_force(&self, store: &Store) -> anyhow::Result<Self> {
        Ok(self.with_saved(&store.settings_with_prefix(SETTING_PREFIX).await?))
    }
}

/// How long lake snapshots stay readable for time travel before they expire.
pub const SNAPSHOT_LIFE_US: i64 = DAY_US;

/// SQS keeps a message at most 14 days, so a ledger entry older than that can never be needed again.
const LEDGER_LIFE_US: i64 = 14 * DAY_US;

/// What one run removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub database: OltpReport,
    pub lake: LakeReport,
    /// The run stopped at its deadline with work left (merges, deletions); the next run does it.
    pub stopped_at_deadline: bool,
}

/// One full retention pass as of `now_us`.
pub async fn run(
    store: &Store,
    blobs: &Arc<dyn BlobStore>,
    horizons: &Horizons,
    now_us: i64,
) -> anyhow::Result<RetentionReport> {
    run_until(store, blobs, horizons, now_us, Deadline::NONE).await
}

/// [`run`], starting no lake merge or deletion round once `deadline` has passed. The database's
/// deletions (short transactions, cheap) and snapshot expiry always run.
pub async fn run_until(
    store: &Store,
    blobs: &Arc<dyn BlobStore>,
    horizons: &Horizons,
    now_us: i64,
    deadline: Deadline,
) -> anyhow::Result<RetentionReport> {
    let before = |days: u32| now_us - i64::from(days) * DAY_US;
    let mut report = RetentionReport::default();

    let db = &mut report.database;
    db.payloads_dropped = store
        .drop_payloads_before(before(horizons.payload_days))
        .await?;
    (db.events_deleted, db.issues_deleted) = store
        .delete_events_before(before(horizons.event_days))
        .await?;
    db.transactions_deleted = store
        .delete_transactions_before(before(horizons.transaction_days))
        .await?;
    db.spans_deleted = store
        .delete_spans_before(before(horizons.span_days))
        .await?;
    db.rollups_deleted = store
        .delete_rollups_before(before(horizons.rollup_days))
        .await?;
    db.artifact_bundles_deleted =
        crate::artifacts::expire_bundles(store, blobs.as_ref(), before(horizons.event_days))
            .await?;
    db.artifact_chunks_deleted = crate::artifacts::assemble::sweep_chunks(
        blobs.as_ref(),
        now_us - crate::artifacts::assemble::CHUNK_LIFE_US,
    )
    .await?;
    db.logs_deleted = store.delete_logs_before(before(horizons.log_days)).await?;
    db.bookkeeping_deleted = store
        .delete_bookkeeping(now_us - LEDGER_LIFE_US, before(horizons.event_days))
        .await?;

    let lake = &mut report.lake;
    for (table, days) in [
        (&tables::EVENTS, horizons.lake_days),
        (&tables::TRANSACTIONS, horizons.lake_days),
        (&tables::SPANS, horizons.span_days),
        (&tables::LOGS, horizons.lake_days),
    ] {
        tracing::debug!(
            table = table.name,
            "retention: ending and compacting lake files"
        );
        let (files, rows) = maintenance::end_files_before(store, table, before(days)).await?;
        lake.files_ended += files;
        lake.rows_ended += rows;
        // Pass after pass until nothing merges: a day of many small files leaves, after one pass, a
        // file per thousand of them, which the next pass merges further.
        loop {
            let (merged, written) =
                maintenance::compact(store, blobs, table, now_us, deadline).await?;
            lake.files_compacted += merged;
            lake.files_compacted_into += written;
            if merged == 0 {
                break;
            }
        }
        lake.columns_retired += maintenance::retire_columns(store, table).await?;
    }
    tracing::debug!("retention: expiring snapshots, deleting scheduled files");
    let snapshot_cutoff = crate::lake::columns::format_timestamp(now_us - SNAPSHOT_LIFE_US);
    lake.snapshots_expired = maintenance::expire_snapshots(store, &snapshot_cutoff).await?;
    lake.files_deleted = maintenance::delete_scheduled(store, blobs.as_ref(), deadline).await?;
    if deadline.passed() {
        // Orphans and reclaiming space wait for a run with time left: they list or rewrite a lot.
        report.stopped_at_deadline = true;
        return Ok(report);
    }
    tracing::debug!("retention: deleting orphans");
    // Objects are dated by the clock, whatever day `now_us` stands for.
    let orphans_before = chrono::Utc::now().timestamp_micros() - maintenance::ORPHAN_MIN_AGE_US;
    lake.orphans_deleted =
        maintenance::delete_orphans(store, blobs.as_ref(), orphans_before, deadline).await?;
    lake.scratch_deleted = blobs.delete_abandoned_scratch(orphans_before).await?;
    tracing::debug!("retention: reclaiming space");

    store.reclaim_space().await?;
    Ok(report)
}

/// [`run_until`] with the horizons in force (the settings page's over `horizons`), then logs the report
/// and records it for the settings page.
pub async fn run_and_record(
    store: &Store,
    blobs: &Arc<dyn BlobStore>,
    horizons: &Horizons,
    deadline: Deadline,
) -> anyhow::Result<RetentionReport> {
    let started = chrono::Utc::now().timestamp_micros();
    let horizons = horizons.in_force(store).await?;
    let report = run_until(store, blobs, &horizons, started, deadline).await?;
    let json = serde_json::to_string(&report)?;
    tracing::info!(report = %json, "retention run finished");
    store.record_retention_run(started, &json).await?;
    Ok(report)
}

/// How often `splat serve` runs retention, and how long after starting it runs first (long enough for
/// a burst of queued work to drain first, short enough that frequent restarts never skip it).
pub const SERVE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
pub const SERVE_FIRST_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// `splat serve`'s retention timer: runs until `stopped` turns true. A failed run is logged and tried
/// again at the next tick; nothing it half-did is lost, since every step is its own transaction.
pub fn spawn_timer(
    store: Store,
    blobs: Arc<dyn BlobStore>,
    horizons: Horizons,
    first_after: std::time::Duration,
    every: std::time::Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first_after, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if let Err(e) = run_and_record(&store, &blobs, &horizons, Deadline::NONE).await {
                        tracing::error!(error = %e, "retention run failed; trying again at the next tick");
                    }
                }
                _ = stopped.changed() => return,
            }
        }
    })
}
