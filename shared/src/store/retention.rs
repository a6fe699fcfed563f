//! Deleting what is past its horizon from the database, a few hundred rows per write transaction so the
//! processor never waits long for the lock, and recording what each retention run did.

use std::collections::BTreeSet;

use super::rollups::Table;
use super::{now_us, Result, Store};

/// Rows deleted per write transaction.
const BATCH: i64 = 500;

/// A stored payload past its horizon is replaced by this marker (compressed like any payload), so that
/// pages and tools still open the event and say why its details are gone.
pub const EXPIRED_PAYLOAD: &str = r#"{"splat":{"payload_expired":true}}"#;

/// What the database part of a retention run removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OltpReport {
    pub payloads_dropped: u64,
    pub events_deleted: u64,
    pub issues_deleted: u64,
    pub transactions_deleted: u64,
    pub spans_deleted: u64,
    pub rollups_deleted: u64,
    #[serde(default)]
    pub logs_deleted: u64,
    /// Ledger entries, sent-alert records, hourly counters.
    pub bookkeeping_deleted: u64,
    /// Source map bundles older than the events' horizon (their blobs with them).
    pub artifact_bundles_deleted: u64,
    /// Chunks of source map uploads never assembled, a day after they came.
    #[serde(default)]
    pub artifact_chunks_deleted: u64,
}

impl Store {
    async fn project_id_list(&self) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = self.project_ids().await?.into_iter().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Runs `sql` (a statement deleting or updating at most `BATCH` rows chosen by its own subquery) in
    /// write transactions of its own until it touches nothing. Returns the rows touched.
    async fn in_batches(&self, sql: &str, params: &[libsql::Value]) -> Result<u64> {
        let mut total = 0;
        loop {
            let tx = self
                .conn()
                .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
                .await?;
            let n = tx.execute(sql, params.to_vec()).await?;
            tx.commit().await?;
            total += n;
            if n == 0 {
                return Ok(total);
            }
            // Lets the processor's waiting batch in between.
            tokio::task::yield_now().await;
        }
    }

    /// Replaces the payloads of events older than `cutoff_us` by [`EXPIRED_PAYLOAD`].
    pub async fn drop_payloads_before(&self, cutoff_us: i64) -> Result<u64> {
        let marker = zstd::bulk::compress(EXPIRED_PAYLOAD.as_bytes(), 3)
            .map_err(|e| super::StoreError::Invalid(format!("compressing: {e}")))?;
        let mut total = 0;
        for project in self.project_id_list().await? {
            total += self
                .in_batches(
                    "UPDATE events SET payload = ?3 WHERE id IN (
                         SELECT id FROM events WHERE project_id = ?1 AND timestamp < ?2 AND payload <> ?3
                         ORDER BY timestamp LIMIT 500)",
                    &[project.into(), cutoff_us.into(), marker.clone().into()],
                )
                .await?;
        }
        Ok(total)
    }

    /// Deletes events older than `cutoff_us`, recounts their issues, and deletes the issues left with no
    /// event. Returns (events, issues) deleted. Issues that never had events (a missed cron check-in) are
    /// not touched: only issues that lost events here are recounted.
    pub async fn delete_events_before(&self, cutoff_us: i64) -> Result<(u64, u64)> {
        let (mut events, mut issues) = (0, 0);
        for project in self.project_id_list().await? {
            loop {
                let (e, i) = self.delete_event_batch(project, cutoff_us).await?;
                events += e;
                issues += i;
                if e == 0 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            // What was deleted by hand before the cutoff could not come back now: its id may go too.
            self.conn()
                .execute(
                    "DELETE FROM deleted_events WHERE project_id = ?1 AND hour < ?2 / 3600000000",
                    (project, cutoff_us),
                )
                .await?;
        }
        Ok((events, issues))
    }

    async fn delete_event_batch(&self, project: i64, cutoff_us: i64) -> Result<(u64, u64)> {
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let mut rows = tx
            .query(
                "DELETE FROM events WHERE id IN (
                     SELECT id FROM events WHERE project_id = ?1 AND timestamp < ?2
                     ORDER BY timestamp LIMIT ?3)
                 RETURNING issue_id",
                (project, cutoff_us, BATCH),
            )
            .await?;
        let (mut deleted, mut touched) = (0, BTreeSet::new());
        while let Some(row) = rows.next().await? {
            deleted += 1;
            if let Some(issue) = row.get::<Option<i64>>(0)? {
                touched.insert(issue);
            }
        }
        drop(rows);
        let mut emptied = 0;
        for issue in touched {
            tx.execute(
                "UPDATE issues SET times_seen = (SELECT count(*) FROM events WHERE issue_id = ?1) WHERE id = ?1",
                [issue],
            )
            .await?;
            let mut count = tx
                .query("SELECT times_seen FROM issues WHERE id = ?1", [issue])
                .await?;
            let left = match count.next().await? {
                Some(row) => row.get::<i64>(0)?,
                None => continue,
            };
            drop(count);
            if left == 0 {
                tx.execute("DELETE FROM issues_fts WHERE rowid = ?1", [issue])
                    .await?;
                // Hashes, tags, users, hours and sent alerts go with it (ON DELETE CASCADE).
                tx.execute("DELETE FROM issues WHERE id = ?1", [issue])
                    .await?;
                emptied += 1;
            }
        }
        tx.commit().await?;
        Ok((deleted, emptied))
    }

    /// Deletes transactions that ended before `cutoff_us`.
    pub async fn delete_transactions_before(&self, cutoff_us: i64) -> Result<u64> {
        self.per_project_before(
            "DELETE FROM transactions WHERE id IN (
                 SELECT id FROM transactions WHERE project_id = ?1 AND end_time < ?2 LIMIT 500)",
            cutoff_us,
        )
        .await
    }

    /// Deletes the blocks of log records whose newest record is older than `cutoff_us`'s millisecond (a
    /// block's older records may outlive the cutoff by its span, a minute), along `log_blocks_project`, fifty blocks a
    /// transaction; returns the records deleted. Their text, levels and traces go with them (the blocks'
    /// delete trigger).
    pub async fn delete_logs_before(&self, cutoff_us: i64) -> Result<u64> {
        let mut total = 0;
        let below = super::logs::blocks_before(cutoff_us);
        for project in self.project_id_list().await? {
            let params = [project.into(), below.into()];
            let mut rows = self
                .conn()
                .query(
                    "SELECT total(count) FROM log_blocks WHERE project_id = ?1 AND id < ?2",
                    params.to_vec(),
                )
                .await?;
            let records: f64 = match rows.next().await? {
                Some(row) => row.get(0)?,
                None => 0.0,
            };
            self.in_batches(
                "DELETE FROM log_blocks WHERE id IN (SELECT id FROM log_blocks
                     WHERE project_id = ?1 AND id < ?2 LIMIT 50)",
                &params,
            )
            .await?;
            total += records as u64;
        }
        Ok(total)
    }

    /// Runs `sql` (`?1` a project, `?2` the cutoff) [`Store::in_batches`] for every project.
    async fn per_project_before(&self, sql: &str, cutoff_us: i64) -> Result<u64> {
        let mut total = 0;
        for project in self.project_id_list().await? {
            total += self
                .in_batches(sql, &[project.into(), cutoff_us.into()])
                .await?;
        }
        Ok(total)
    }

    /// Deletes streamed spans still waiting in the database that ended before `cutoff_us`.
    pub async fn delete_spans_before(&self, cutoff_us: i64) -> Result<u64> {
        self.in_batches(
            "DELETE FROM spans WHERE (project_id, trace_id, span_id) IN (
                 SELECT project_id, trace_id, span_id FROM spans WHERE coalesce(end_time, start_time, 0) < ?1 LIMIT 500)",
            &[cutoff_us.into()],
        )
        .await
    }

    /// Deletes the hourly and daily performance rollups, the endpoints' and the project's, of hours and
    /// days that ended before `cutoff_us`.
    pub async fn delete_rollups_before(&self, cutoff_us: i64) -> Result<u64> {
        let mut total = 0;
        for project in self.project_id_list().await? {
            for table in Table::ALL {
                // Cells whose whole hour or day lies before the cutoff.
                let before = table.grain.start(cutoff_us) - table.grain.seconds();
                let (name, key, column) = (table.name(), table.key_columns(), table.grain.column());
                let sql = format!(
                    "DELETE FROM {name} WHERE ({key}) IN (
                         SELECT {key} FROM {name} WHERE project_id = ?1 AND {column} <= ?2 LIMIT 500)"
                );
                total += self
                    .in_batches(&sql, &[project.into(), before.into()])
                    .await?;
            }
        }
        Ok(total)
    }

    /// Deletes bookkeeping nobody reads once it is old: ledger entries of messages the queue can no longer
    /// redeliver (`ledger_cutoff_us`), sent-alert records older than a day, and hourly item and issue
    /// counters from before `counters_cutoff_us`.
    pub async fn delete_bookkeeping(
        &self,
        ledger_cutoff_us: i64,
        counters_cutoff_us: i64,
    ) -> Result<u64> {
        let hour = counters_cutoff_us.div_euclid(1_000_000);
        let day_ago = now_us() - crate::model::time::DAY_US;
        let mut total = self
            .in_batches(
                "DELETE FROM processed_messages WHERE (sent_ms, message_id) IN (
                     SELECT sent_ms, message_id FROM processed_messages WHERE processed_at < ?1 LIMIT 500)",
                &[ledger_cutoff_us.into()],
            )
            .await?;
        total += self
            .in_batches(
                "DELETE FROM notifications_sent WHERE (issue_id, kind, hour) IN (
                     SELECT issue_id, kind, hour FROM notifications_sent WHERE sent_at < ?1 LIMIT 500)",
                &[day_ago.into()],
            )
            .await?;
        total += self
            .in_batches(
                "DELETE FROM item_counts WHERE (project_id, item_type, hour) IN (
                     SELECT project_id, item_type, hour FROM item_counts WHERE hour < ?1 LIMIT 500)",
                &[hour.into()],
            )
            .await?;
        total += self
            .in_batches(
                "DELETE FROM issue_hours WHERE (issue_id, hour) IN (
                     SELECT issue_id, hour FROM issue_hours WHERE hour < ?1 LIMIT 500)",
                &[hour.into()],
            )
            .await?;
        // User feedback (names, emails, what people wrote) goes with the events it is about.
        total += self
            .in_batches(
                "DELETE FROM feedback WHERE id IN (SELECT id FROM feedback WHERE received_at < ?1 LIMIT 500)",
                &[counters_cutoff_us.into()],
            )
            .await?;
        Ok(total)
    }

    /// Gives freed pages back to the file system (databases created with incremental auto-vacuum; in
    /// older ones freed pages are reused by new rows instead) and trims the write-ahead log.
    pub async fn reclaim_space(&self) -> Result<()> {
        if self.is_remote() {
            // A libSQL server manages its own file and log (sqld refuses both PRAGMAs).
            return Ok(());
        }
        let mut rows = self.conn().query("PRAGMA incremental_vacuum", ()).await?;
        while rows.next().await?.is_some() {}
        drop(rows);
        let mut rows = self
            .conn()
            .query("PRAGMA wal_checkpoint(TRUNCATE)", ())
            .await?;
        while rows.next().await?.is_some() {}
        Ok(())
    }

    /// Records a finished retention run (its report as JSON) for the settings page and `/_health`.
    pub async fn record_retention_run(&self, started_us: i64, report_json: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO retention_runs (started_at, finished_at, report) VALUES (?1, ?2, ?3)",
                (started_us, now_us(), report_json),
            )
            .await?;
        self.conn()
            .execute(
                "DELETE FROM retention_runs WHERE id NOT IN (SELECT id FROM retention_runs ORDER BY id DESC LIMIT 100)",
                (),
            )
            .await?;
        Ok(())
    }

    /// The newest retention runs: (started, finished, report JSON), newest first.
    pub async fn retention_runs(&self, limit: i64) -> Result<Vec<(i64, i64, String)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT started_at, finished_at, report FROM retention_runs ORDER BY id DESC LIMIT ?1",
                [limit],
            )
            .await?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next().await? {
            runs.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
        Ok(runs)
    }
}
