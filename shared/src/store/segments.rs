//! Streamed transactions (span-v2 segments) in the database: a segment's spans arrive in several envelopes
//! and batches, before and after the segment span itself, so the processor computes its figures from the
//! children read here (`crate::process::batch`), and corrects a stored transaction row and its rollups
//! when more children arrive after it. (Its lake row keeps the figures it had when first written: the lake
//! is append-only.)

use crate::model::{SpanRecord, TransactionRecord};
use crate::perf::transaction::TransactionPerf;

use super::batch::BatchTx;
use super::rows::RowKey;
use super::Result;

/// A span as the database keeps it: its description normalized (`name`), its data as JSON.
fn stored_span(row: &libsql::Row) -> Result<SpanRecord> {
    Ok(SpanRecord {
        trace_id: row.get(0)?,
        span_id: row.get(1)?,
        parent_span_id: row.get(2)?,
        segment_id: row.get(3)?,
        is_segment: row.get::<i64>(4)? != 0,
        name: row.get(5)?,
        op: row.get(6)?,
        status: row.get(7)?,
        start_us: row.get(8)?,
        end_us: row.get(9)?,
        data: row.get(10)?,
        db_system: None,
    })
}

const SPAN_COLUMNS: &str =
    "trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start_time, end_time, data";

/// A streamed transaction stored earlier, as the processor needs it to correct its figures.
pub struct StoredSegment {
    /// Its segment span.
    pub span: SpanRecord,
    /// Its figures now, and when it ended.
    pub figures: TransactionPerf,
    pub end_us: i64,
    /// Its children in the database.
    pub children: Vec<SpanRecord>,
}

impl BatchTx {
    /// The children of the segment `key` (project, trace id, segment span id) already in the database.
    /// (They need none of the writes still waiting: a batch's spans are written after its transactions.)
    pub async fn stored_children(&mut self, key: &RowKey) -> Result<Vec<SpanRecord>> {
        let mut rows = self
            .tx
            .query(
                &format!(
                    "SELECT {SPAN_COLUMNS} FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND segment_id = ?3 AND is_segment = 0"
                ),
                (key.0, key.1.as_str(), key.2.as_str()),
            )
            .await?;
        let mut spans = Vec::new();
        while let Some(row) = rows.next().await? {
            spans.push(stored_span(&row)?);
        }
        Ok(spans)
    }

    /// A segment stored earlier with its transaction row and its children, the batch's rows included;
    /// `None` while its segment span or transaction has not arrived (it will count every child when it
    /// does).
    pub async fn stored_segment(&mut self, key: &RowKey) -> Result<Option<StoredSegment>> {
        // The reads go straight to the transaction: the rows written so far first.
        self.cached.flush().await?;
        let mut rows = self
            .tx
            .query(
                &format!("SELECT {SPAN_COLUMNS} FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND is_segment = 1"),
                (key.0, key.1.as_str(), key.2.as_str()),
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let span = stored_span(&row)?;
        drop(rows);
        let Some((figures, end_us)) = stored_figures(&self.tx, key).await? else {
            return Ok(None);
        };
        let children = self.stored_children(key).await?;
        Ok(Some(StoredSegment {
            span,
            figures,
            end_us,
            children,
        }))
    }

    /// Sets a stored streamed transaction's figures from `old` to `new`, correcting its rollups.
    pub async fn correct_figures(
        &mut self,
        key: &RowKey,
        record: &TransactionRecord,
        end_us: i64,
        old: &TransactionPerf,
        new: &TransactionPerf,
    ) -> Result<()> {
        self.tx
            .execute(
                "UPDATE transactions SET db_time_ms = ?4, view_time_ms = ?5, query_count = ?6, has_n_plus_one = ?7,
                n_plus_one_wasted_ms = ?8, span_count = ?9, spans_truncated = ?10, query_patterns = ?11
             WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3",
                libsql::params![
                    key.0,
                    key.1.as_str(),
                    key.2.as_str(),
                    new.db_time_ms,
                    new.view_time_ms,
                    new.query_count,
                    new.has_n_plus_one.map(i64::from),
                    new.n_plus_one_wasted_ms,
                    new.span_count,
                    new.spans_truncated.map(i64::from),
                    new.patterns_json(),
                ],
            )
            .await?;
        self.rollups.correct(key.0, record, end_us, old, new);
        Ok(())
    }
}

/// The figures a stored streamed transaction has now, and when it ended.
async fn stored_figures(
    tx: &libsql::Transaction,
    key: &RowKey,
) -> Result<Option<(TransactionPerf, i64)>> {
    let mut rows = tx
        .query(
            "SELECT db_time_ms, view_time_ms, query_count, has_n_plus_one, n_plus_one_wasted_ms, end_time
             FROM transactions WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND source = 'span'",
            (key.0, key.1.as_str(), key.2.as_str()),
        )
        .await?;
    let Some(row) = rows.next().await? else {
        return Ok(None);
    };
    let perf = TransactionPerf {
        db_time_ms: row.get(0)?,
        view_time_ms: row.get(1)?,
        query_count: row.get::<Option<i64>>(2)?.map(|n| n as i32),
        has_n_plus_one: row.get::<Option<i64>>(3)?.map(|n| n != 0),
        n_plus_one_wasted_ms: row.get(4)?,
        ..TransactionPerf::default()
    };
    Ok(Some((perf, row.get(5)?)))
}
