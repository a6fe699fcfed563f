//! Streamed transactions (span-v2 segments) in the database: a segment's spans arrive in several envelopes
//! and batches, before and after the segment span itself, so the processor computes its figures from the
//! children read here (`crate::process::batch`), and corrects a stored transaction row and its rollups
//! when more children arrive after it. (Its lake row keeps the figures it had when first written: the lake
//! is append-only.)

use crate::model::{SpanRecord, TransactionRecord};
use crate::perf::transaction::TransactionPerf;

use std::collections::BTreeSet;

use super::batch::BatchTx;
use super::rows::RowKey;
use super::{Result, StoreError};

/// A span as the database keeps it: its description normalized (`name`), its data as JSON.
fn stored_span(row: &[libsql::Value]) -> Result<SpanRecord> {
    let [trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start, end, data] =
        row
    else {
        return Err(StoreError::Invalid("a stored span row".into()));
    };
    Ok(SpanRecord {
        trace_id: text(trace_id).unwrap_or_default(),
        span_id: text(span_id).unwrap_or_default(),
        parent_span_id: text(parent_span_id),
        segment_id: text(segment_id),
        is_segment: int(is_segment).unwrap_or(0) != 0,
        name: text(name),
        op: text(op),
        status: text(status),
        start_us: int(start),
        end_us: int(end),
        data: text(data),
        db_system: None,
    })
}

fn text(value: &libsql::Value) -> Option<String> {
    match value {
        libsql::Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(value: &libsql::Value) -> Option<i64> {
    match value {
        libsql::Value::Integer(n) => Some(*n),
        _ => None,
    }
}

/// The children of a segment (project, trace id, segment span id) in the database.
const CHILDREN: &str = "SELECT trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start_time, end_time, data
    FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND segment_id = ?3 AND is_segment = 0";
/// A segment's own span.
const SEGMENT_SPAN: &str = "SELECT trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start_time, end_time, data
    FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND is_segment = 1";
/// A streamed transaction's figures now, and when it ended.
const FIGURES: &str =
    "SELECT db_time_ms, view_time_ms, query_count, has_n_plus_one, n_plus_one_wasted_ms, end_time
    FROM transactions WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND source = 'span'";

/// A read of `sql` for one segment.
fn read(sql: &'static str, key: &RowKey) -> (&'static str, Vec<libsql::Value>) {
    let (project, trace, span) = key;
    let values = vec![
        (*project).into(),
        trace.as_str().into(),
        span.as_str().into(),
    ];
    (sql, values)
}

/// The reads of [`BatchTx::stored_children`] for the segments of these streamed transactions (to read
/// ahead: the children a batch's transactions are figured from are written before it).
pub(super) fn children_reads(
    keys: impl Iterator<Item = RowKey>,
) -> Vec<(&'static str, Vec<libsql::Value>)> {
    keys.map(|key| read(CHILDREN, &key)).collect()
}

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
        let rows = self.cached.reads(vec![read(CHILDREN, key)]).await?;
        rows.into_iter()
            .flatten()
            .map(|row| stored_span(&row))
            .collect()
    }

    /// The segments stored earlier, each with its transaction row and its children (the batch's rows
    /// included, since the waiting writes go first), read at once; a segment whose span or transaction
    /// has not arrived is left out (it will count every child when it does).
    pub async fn stored_segments(
        &mut self,
        keys: &BTreeSet<RowKey>,
    ) -> Result<Vec<(RowKey, StoredSegment)>> {
        let reads = keys
            .iter()
            .flat_map(|key| {
                [
                    read(SEGMENT_SPAN, key),
                    read(FIGURES, key),
                    read(CHILDREN, key),
                ]
            })
            .collect();
        let mut found = self.cached.reads(reads).await?.into_iter();
        let mut segments = Vec::new();
        for key in keys {
            let (span, figures, children) = (
                found.next().unwrap_or_default(),
                found.next().unwrap_or_default(),
                found.next().unwrap_or_default(),
            );
            let (Some(span), Some(figures)) = (span.first(), figures.first()) else {
                continue;
            };
            let (figures, end_us) = stored_figures(figures)?;
            let segment = StoredSegment {
                span: stored_span(span)?,
                figures,
                end_us,
                children: children
                    .iter()
                    .map(|row| stored_span(row))
                    .collect::<Result<_>>()?,
            };
            segments.push((key.clone(), segment));
        }
        Ok(segments)
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
        self.cached
            .write(
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

/// The figures of a [`FIGURES`] row, and when the transaction ended.
fn stored_figures(row: &[libsql::Value]) -> Result<(TransactionPerf, i64)> {
    let [db, view, queries, n_plus_one, wasted, end] = row else {
        return Err(StoreError::Invalid("a stored transaction's figures".into()));
    };
    let real = |v: &libsql::Value| match v {
        libsql::Value::Real(f) => Some(*f),
        libsql::Value::Integer(n) => Some(*n as f64),
        _ => None,
    };
    let perf = TransactionPerf {
        db_time_ms: real(db),
        view_time_ms: real(view),
        query_count: int(queries).map(|n| n as i32),
        has_n_plus_one: int(n_plus_one).map(|n| n != 0),
        n_plus_one_wasted_ms: real(wasted),
        ..TransactionPerf::default()
    };
    Ok((perf, int(end).unwrap_or_default()))
}
