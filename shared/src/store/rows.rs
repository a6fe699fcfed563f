//! The processor's unit of work: every row from one batch of queue messages, as the processor builds it
//! ([`WriteBatch`]); [`super::BatchTx`] writes it.

use std::collections::BTreeMap;

use crate::grouping::Grouping;
use crate::model::{EventSummary, SpanRecord, TransactionRecord};
use crate::perf::transaction::TransactionPerf;
use crate::protocol::ProjectId;

use super::feedback::FeedbackRow;
use super::monitors::{CheckInRow, MonitorMark};

#[derive(Debug, Clone)]
pub struct EventRow {
    pub project_id: ProjectId,
    pub event_id: String,
    pub timestamp_us: i64,
    pub received_at_us: i64,
    pub summary: EventSummary,
    pub grouping: Grouping,
    /// Tags as sent, plus environment and release; counted per issue.
    pub tags: Vec<(String, String)>,
    /// Who was affected (id, email, username or IP), for the users-affected count.
    pub user_key: Option<String>,
    /// Exception types and values, messages, frame functions and files: what full-text search matches.
    pub search_text: String,
    /// zstd-compressed JSON.
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct TransactionRow {
    pub project_id: ProjectId,
    pub event_id: Option<String>,
    pub record: TransactionRecord,
    pub end_us: i64,
    pub received_at_us: i64,
    /// `transaction` or `span`.
    pub source: &'static str,
    pub payload: Option<Vec<u8>>,
    pub perf: TransactionPerf,
    /// A classic transaction's spans, its root first; they go to the lake with it. (Streamed spans
    /// arrive on their own, in [`WriteBatch::spans`].)
    pub spans: Vec<SpanRow>,
}

#[derive(Debug, Clone)]
pub struct SpanRow {
    pub project_id: ProjectId,
    pub span: SpanRecord,
    /// The description normalized for storage (no SQL literal, no query string); the raw text is never
    /// written anywhere.
    pub description: Option<String>,
    pub depth: Option<i32>,
    pub sequence: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemCount {
    pub project_id: ProjectId,
    pub item_type: String,
    pub hour: i64,
}

#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub events: Vec<EventRow>,
    pub transactions: Vec<TransactionRow>,
    /// Streamed spans (span-v2): they wait in the database for the rest of their segment.
    pub spans: Vec<SpanRow>,
    pub item_counts: BTreeMap<ItemCount, i64>,
    /// The ledger's entries for the batch's messages.
    pub message_ids: Vec<super::LedgerKey>,
    /// Cron check-ins (from the processor) and the monitor evaluation's conclusions.
    pub check_ins: Vec<CheckInRow>,
    pub monitor_marks: Vec<MonitorMark>,
    /// User feedback and user reports.
    pub feedback: Vec<FeedbackRow>,
    /// Log records.
    pub logs: Vec<super::LogRow>,
    /// Streamed segments whose spans all arrived before this time are swept from the database with the
    /// batch (`BatchTx::sweep_settled_spans`); `None` sweeps nothing.
    pub spans_settled_before: Option<i64>,
}

impl WriteBatch {
    /// Adds another batch's rows to this one.
    pub fn absorb(&mut self, other: WriteBatch) {
        self.events.extend(other.events);
        self.transactions.extend(other.transactions);
        self.spans.extend(other.spans);
        for (key, n) in other.item_counts {
            *self.item_counts.entry(key).or_default() += n;
        }
        self.message_ids.extend(other.message_ids);
        self.check_ins.extend(other.check_ins);
        self.monitor_marks.extend(other.monitor_marks);
        self.feedback.extend(other.feedback);
        self.logs.extend(other.logs);
        self.spans_settled_before = self.spans_settled_before.max(other.spans_settled_before);
    }

    pub fn count_item(&mut self, project_id: ProjectId, item_type: &str, at_us: i64, n: i64) {
        let hour = crate::model::time::Ts(at_us).hour_secs();
        *self
            .item_counts
            .entry(ItemCount {
                project_id,
                item_type: item_type.to_owned(),
                hour,
            })
            .or_default() += n;
    }
}

/// How long a span or transaction took, when both ends are known and in order.
pub fn duration(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?).filter(|d| *d >= 0)
}

/// (project, trace id, span id): a transaction's (its root span's) or a span's key.
pub type RowKey = (i64, String, String);

/// A transaction's key: project, trace id and its root span's id.
pub fn transaction_key(t: &TransactionRow) -> RowKey {
    let root = &t.record.root;
    (
        t.project_id.value(),
        root.trace_id.clone(),
        root.span_id.clone(),
    )
}

/// A span's key: project, trace id and span id.
pub fn span_key(row: &SpanRow) -> RowKey {
    let s = &row.span;
    (
        row.project_id.value(),
        s.trace_id.clone(),
        s.span_id.clone(),
    )
}
