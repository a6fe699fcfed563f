//! Streamed transactions (span-v2 segments). A segment's spans arrive in several envelopes and batches,
//! before and after the segment span itself, so its figures (db and view time, queries, N+1, span count)
//! are computed when the segment span arrives, from its children in the batch and those already waiting in
//! the database, and computed again whenever more children arrive after it: the transaction row and its
//! hourly rollup are corrected then. (Its lake row keeps the figures it had when first written: the lake
//! is append-only.)

use std::collections::HashMap;

use crate::model::{self, SpanRecord};
use crate::perf::transaction::{self, SpanTree, TransactionPerf};

use super::batch::{SpanRow, TransactionRow};
use super::rollups::RollupWriter;
use super::Result;

/// (project, trace id, segment span id).
pub(super) type SegmentKey = (i64, String, String);

fn key_of(project: i64, span: &SpanRecord, segment: &str) -> SegmentKey {
    (project, span.trace_id.clone(), segment.to_owned())
}

/// The batch's streamed children (not segment spans themselves), by segment.
pub(super) fn children_in_batch(spans: &[SpanRow]) -> HashMap<SegmentKey, Vec<&SpanRow>> {
    let mut by_segment: HashMap<SegmentKey, Vec<&SpanRow>> = HashMap::new();
    for row in spans.iter().filter(|r| !r.span.is_segment) {
        if let Some(segment) = row.span.segment_id.as_deref() {
            by_segment
                .entry(key_of(row.project_id.value(), &row.span, segment))
                .or_default()
                .push(row);
        }
    }
    by_segment
}

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

/// The segment's children already in the database.
async fn stored_children(tx: &libsql::Transaction, key: &SegmentKey) -> Result<Vec<SpanRecord>> {
    let mut rows = tx
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

/// A streamed transaction of the batch with its figures computed from every child known so far: the
/// batch's (as the SDK sent them) and the database's (for the ones that came earlier).
pub(super) async fn with_figures(
    tx: &libsql::Transaction,
    t: &TransactionRow,
    in_batch: &HashMap<SegmentKey, Vec<&SpanRow>>,
) -> Result<TransactionRow> {
    let root = &t.record.root;
    let key = key_of(t.project_id.value(), root, &root.span_id);
    let mut children: HashMap<String, SpanRecord> = stored_children(tx, &key)
        .await?
        .into_iter()
        .map(|s| (s.span_id.clone(), s))
        .collect();
    for row in in_batch.get(&key).into_iter().flatten() {
        children.insert(row.span.span_id.clone(), row.span.clone());
    }
    let tree = SpanTree::new(root, children.into_values().collect());
    let (perf, _) = transaction::analyze(&t.record, &tree);
    Ok(TransactionRow { perf, ..t.clone() })
}

/// Recomputes the figures of segments stored earlier that received new children in this batch
/// (`segments`), updating their transaction rows and correcting their rollups. Segments stored in this
/// very batch are left alone: [`with_figures`] already saw all their children.
pub(super) async fn correct_late(
    tx: &libsql::Transaction,
    segments: impl IntoIterator<Item = SegmentKey>,
    rollups: &mut RollupWriter,
) -> Result<()> {
    for key in segments {
        let mut rows = tx
            .query(
                &format!("SELECT {SPAN_COLUMNS} FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND is_segment = 1"),
                (key.0, key.1.as_str(), key.2.as_str()),
            )
            .await?;
        let Some(row) = rows.next().await? else {
            continue; // The segment span has not arrived yet: it will count every child when it does.
        };
        let segment = stored_span(&row)?;
        drop(rows);
        let Some((old, end_us)) = stored_figures(tx, &key).await? else {
            continue;
        };
        let record = model::transaction_from_segment(&segment);
        let tree = SpanTree::new(&record.root, stored_children(tx, &key).await?);
        let (new, _) = transaction::analyze(&record, &tree);
        tx.execute(
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
        rollups.correct(key.0, &record, end_us, &old, &new);
    }
    Ok(())
}

/// The figures a stored streamed transaction has now, and when it ended.
async fn stored_figures(
    tx: &libsql::Transaction,
    key: &SegmentKey,
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
