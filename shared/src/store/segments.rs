//! Streamed transactions (span-v2 segments) in the database: a segment's spans arrive in several envelopes
//! and batches, before and after the segment span itself, so the processor computes its figures from the
//! children read here (`crate::process::batch`), and corrects a stored transaction row and its rollups
//! when more children arrive after it. (Its lake row keeps the figures it had when first written: the lake
//! is append-only.)
//!
//! The rows wait only until their segment settles: once none of a segment's rows arrived within the settle
//! window (`SPLAT_SPAN_SETTLE_SECS`, an hour by default), each batch sweeps a bounded number of settled
//! segments ([`BatchTx::sweep_settled_spans`]) and the lake alone holds their spans. A child arriving after
//! that still goes to the lake, but finds no segment to correct: its transaction keeps the figures it has.
//! A segment is swept whole, never child by child, so that a late child is figured with all its siblings.

use crate::model::{SpanRecord, TransactionRecord};
use crate::perf::transaction::TransactionPerf;

use std::collections::{BTreeSet, HashSet};

use super::batch::BatchTx;
use super::rows::RowKey;
use super::{Result, StoreError};

/// A span as the database keeps it: its description normalized (`name`), without its attributes.
fn stored_span(row: &[libsql::Value]) -> Result<SpanRecord> {
    let [trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start, end] =
        row
    else {
        return Err(StoreError::Invalid("a stored span row".into()));
    };
    Ok(SpanRecord {
        trace_id: text(trace_id).unwrap_or_default(),
        span_id: text(span_id).unwrap_or_default(),
        parent_span_id: text(parent_span_id),
        // '' stands for no segment in the table's key.
        segment_id: text(segment_id).filter(|s| !s.is_empty()),
        is_segment: int(is_segment).unwrap_or(0) != 0,
        name: text(name),
        op: text(op),
        status: text(status),
        start_us: int(start),
        end_us: int(end),
        data: None,
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

/// A span's segment as the table files it: '' for none (a key column is never NULL).
pub(super) fn segment_of(span: &SpanRecord) -> &str {
    span.segment_id.as_deref().unwrap_or_default()
}

/// Rows of settled segments read per batch, at most (every row of a segment listed goes): a batch rarely
/// carries more, so the table keeps up with the traffic, and a backlog (after an outage) drains over a few
/// batches.
const SWEEP_ROWS: i64 = 5000;

/// The segments of rows none of whose segment's rows arrived at or after `?1`, oldest first along
/// `spans_received` (a segment with a recent arrival is passed over, whatever the age of its other rows);
/// one row per span, at most `?2`.
const SETTLED: &str = "SELECT project_id, trace_id, segment_id FROM spans s WHERE received_at < ?1
    AND NOT EXISTS (SELECT 1 FROM spans n WHERE n.project_id = s.project_id AND n.trace_id = s.trace_id
        AND n.segment_id = s.segment_id AND n.received_at >= ?1)
    ORDER BY received_at LIMIT ?2";

/// The read of the segments settled before `cutoff_us` (read ahead with the batch's other reads).
pub(super) fn settled_read(cutoff_us: i64) -> (&'static str, Vec<libsql::Value>) {
    (SETTLED, vec![cutoff_us.into(), SWEEP_ROWS.into()])
}

/// The children of a segment (project, trace id, segment span id) in the database.
const CHILDREN: &str = "SELECT trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start_time, end_time
    FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND segment_id = ?3 AND is_segment = 0";
/// A segment's own span.
const SEGMENT_SPAN: &str = "SELECT trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status, start_time, end_time
    FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND span_id = ?3 AND is_segment = 1";
/// A streamed transaction's figures now, when it ended, and its name and environment (its rollup cells):
/// found in the hour its segment's span row ended, which is its own (store/transaction_keys.rs).
pub(super) const FIGURES: &str = "SELECT t.db_time_ms, t.view_time_ms, t.query_count, t.has_n_plus_one,
        t.n_plus_one_wasted_ms, t.end_time, t.name, t.environment
    FROM spans s CROSS JOIN transactions t ON t.project_id = s.project_id
        AND t.end_time / 3600000000 = s.end_time / 3600000000 AND t.trace_id = s.trace_id AND t.span_id = s.span_id
    WHERE s.project_id = ?1 AND s.trace_id = ?2 AND s.span_id = ?3 AND s.is_segment = 1 AND t.source = 'span'";

/// Sets the figures of streamed transaction `?3` of trace `?2` in project `?1`, which ended in hour `?4`.
pub(super) const CORRECT_FIGURES: &str = "UPDATE transactions SET db_time_ms = ?5, view_time_ms = ?6,
        query_count = ?7, has_n_plus_one = ?8, n_plus_one_wasted_ms = ?9, span_count = ?10, spans_truncated = ?11,
        query_patterns = ?12
    WHERE project_id = ?1 AND end_time / 3600000000 = ?4 AND trace_id = ?2 AND span_id = ?3";

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
    /// The transaction as the processor figures it: its segment span, with the name and environment its
    /// row has (its rollup cells; the segment's other attributes are not kept, and not needed here).
    pub record: TransactionRecord,
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
            let (figures, end_us, name, environment) = stored_figures(figures)?;
            let record = TransactionRecord {
                name,
                environment,
                ..crate::model::transaction_from_segment(&stored_span(span)?)
            };
            let segment = StoredSegment {
                record,
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

    /// Deletes the rows of settled segments: those whose last row arrived before `cutoff_us` (the segments
    /// of at most [`SWEEP_ROWS`] rows), less the segments of `batch_spans`, which just received a span (on
    /// a server the read was answered ahead of the batch's writes). Their spans are in the lake since they
    /// arrived. One delete per segment, along the table's key.
    pub async fn sweep_settled_spans(
        &mut self,
        cutoff_us: i64,
        batch_spans: &[super::SpanRow],
    ) -> Result<()> {
        let fresh: HashSet<(i64, &str, &str)> = batch_spans
            .iter()
            .map(|r| {
                (
                    r.project_id.value(),
                    r.span.trace_id.as_str(),
                    segment_of(&r.span),
                )
            })
            .collect();
        let rows = self.cached.reads(vec![settled_read(cutoff_us)]).await?;
        let mut settled = BTreeSet::new();
        for row in rows.into_iter().flatten() {
            if let [libsql::Value::Integer(p), libsql::Value::Text(t), libsql::Value::Text(s)] =
                &row[..]
            {
                if !fresh.contains(&(*p, t.as_str(), s.as_str())) {
                    settled.insert((*p, t.clone(), s.clone()));
                }
            }
        }
        for (project, trace, segment) in settled {
            self.cached
                .write(
                    "DELETE FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND segment_id = ?3",
                    libsql::params![project, trace, segment],
                )
                .await?;
        }
        Ok(())
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
                CORRECT_FIGURES,
                libsql::params![
                    key.0,
                    key.1.as_str(),
                    key.2.as_str(),
                    super::event_keys::hour(end_us),
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

/// The figures of a [`FIGURES`] row, when the transaction ended, its name and its environment.
fn stored_figures(row: &[libsql::Value]) -> Result<(TransactionPerf, i64, String, Option<String>)> {
    let [db, view, queries, n_plus_one, wasted, end, name, environment] = row else {
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
    let name = text(name).unwrap_or_default();
    Ok((perf, int(end).unwrap_or_default(), name, text(environment)))
}
