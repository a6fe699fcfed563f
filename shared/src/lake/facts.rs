//! The rows of the lake tables, as the processor hands them over: only rows the database did not have
//! before this batch (a transaction or event sent twice lands once).

use super::columns::{Cell, LakeRow};
use super::tables::{TableDef, EVENTS, LOGS, SPANS, TRANSACTIONS};

/// One batch's new lake rows.
#[derive(Debug, Default, Clone)]
pub struct LakeFacts {
    pub transactions: Vec<TransactionFact>,
    pub spans: Vec<SpanFact>,
    pub events: Vec<EventFact>,
    pub logs: Vec<LogFact>,
}

impl LakeFacts {
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
            && self.spans.is_empty()
            && self.events.is_empty()
            && self.logs.is_empty()
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TransactionFact {
    pub project_id: i64,
    pub timestamp_us: i64,
    pub start_us: Option<i64>,
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub duration_ms: Option<f64>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub server_name: Option<String>,
    pub platform: Option<String>,
    pub sdk_name: Option<String>,
    pub http_method: Option<String>,
    pub http_url: Option<String>,
    pub http_status: Option<i32>,
    pub db_time_ms: Option<f64>,
    pub view_time_ms: Option<f64>,
    pub query_count: Option<i32>,
    pub has_n_plus_one: Option<bool>,
    pub n_plus_one_wasted_ms: Option<f64>,
    pub span_count: Option<i32>,
    pub spans_truncated: Option<bool>,
    pub source: &'static str,
}

impl LakeRow for TransactionFact {
    fn table() -> &'static TableDef {
        &TRANSACTIONS
    }
    fn project_id(&self) -> i64 {
        self.project_id
    }
    fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            Cell::I32(Some(self.project_id as i32)),
            Cell::Ts(Some(self.timestamp_us)),
            Cell::Ts(self.start_us),
            Cell::uuid(Some(&self.trace_id)),
            Cell::span_id(Some(&self.span_id)),
            Cell::Str(Some(&self.name)),
            Cell::Str(self.op.as_deref()),
            Cell::Str(self.status.as_deref()),
            Cell::F64(self.duration_ms),
            Cell::Str(self.environment.as_deref()),
            Cell::Str(self.release.as_deref()),
            Cell::Str(self.server_name.as_deref()),
            Cell::Str(self.platform.as_deref()),
            Cell::Str(self.sdk_name.as_deref()),
            Cell::Str(self.http_method.as_deref()),
            Cell::Str(self.http_url.as_deref()),
            Cell::I32(self.http_status),
            Cell::F64(self.db_time_ms),
            Cell::F64(self.view_time_ms),
            Cell::I32(self.query_count),
            Cell::Bool(self.has_n_plus_one),
            Cell::F64(self.n_plus_one_wasted_ms),
            Cell::I32(self.span_count),
            Cell::Bool(self.spans_truncated),
            Cell::Str(Some(self.source)),
        ]
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct SpanFact {
    pub project_id: i64,
    pub start_us: i64,
    pub trace_id: String,
    pub transaction_id: Option<String>,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub op: Option<String>,
    pub description: Option<String>,
    pub group_hash: Option<String>,
    pub status: Option<String>,
    pub duration_ms: Option<f64>,
    pub depth: Option<i32>,
    pub sequence: Option<i32>,
}

impl LakeRow for SpanFact {
    fn table() -> &'static TableDef {
        &SPANS
    }
    fn project_id(&self) -> i64 {
        self.project_id
    }
    fn timestamp_us(&self) -> i64 {
        self.start_us
    }
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            Cell::I32(Some(self.project_id as i32)),
            Cell::Ts(Some(self.start_us)),
            Cell::uuid(Some(&self.trace_id)),
            Cell::span_id(self.transaction_id.as_deref()),
            Cell::span_id(Some(&self.span_id)),
            Cell::span_id(self.parent_span_id.as_deref()),
            Cell::Str(self.op.as_deref()),
            Cell::Str(self.description.as_deref()),
            Cell::Str(self.group_hash.as_deref()),
            Cell::Str(self.status.as_deref()),
            Cell::F64(self.duration_ms),
            Cell::I32(self.depth),
            Cell::I32(self.sequence),
        ]
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct EventFact {
    pub project_id: i64,
    pub timestamp_us: i64,
    pub event_id: String,
    pub issue_id: i64,
    pub level: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub platform: Option<String>,
    pub exception_type: Option<String>,
    pub transaction: Option<String>,
    pub trace_id: Option<String>,
    pub server_name: Option<String>,
    pub sdk_name: Option<String>,
}

impl LakeRow for EventFact {
    fn table() -> &'static TableDef {
        &EVENTS
    }
    fn project_id(&self) -> i64 {
        self.project_id
    }
    fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            Cell::I32(Some(self.project_id as i32)),
            Cell::Ts(Some(self.timestamp_us)),
            Cell::uuid(Some(&self.event_id)),
            Cell::I64(Some(self.issue_id)),
            Cell::Str(Some(&self.level)),
            Cell::Str(self.environment.as_deref()),
            Cell::Str(self.release.as_deref()),
            Cell::Str(self.platform.as_deref()),
            Cell::Str(self.exception_type.as_deref()),
            Cell::Str(self.transaction.as_deref()),
            Cell::uuid(self.trace_id.as_deref()),
            Cell::Str(self.server_name.as_deref()),
            Cell::Str(self.sdk_name.as_deref()),
        ]
    }
}

/// A log record's lake row; `attributes` is the typed attributes' JSON text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogFact {
    pub project_id: i64,
    pub timestamp_us: i64,
    pub log_id: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub level: String,
    pub severity_number: Option<i32>,
    pub body: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub sdk_name: Option<String>,
    pub attributes: String,
}

impl LakeRow for LogFact {
    fn table() -> &'static TableDef {
        &LOGS
    }
    fn project_id(&self) -> i64 {
        self.project_id
    }
    fn timestamp_us(&self) -> i64 {
        self.timestamp_us
    }
    fn cells(&self) -> Vec<Cell<'_>> {
        vec![
            Cell::I32(Some(self.project_id as i32)),
            Cell::Ts(Some(self.timestamp_us)),
            Cell::uuid(Some(&self.log_id)),
            Cell::uuid(self.trace_id.as_deref()),
            Cell::span_id(self.span_id.as_deref()),
            Cell::Str(Some(&self.level)),
            Cell::I32(self.severity_number),
            Cell::Str(Some(&self.body)),
            Cell::Str(self.environment.as_deref()),
            Cell::Str(self.release.as_deref()),
            Cell::Str(self.sdk_name.as_deref()),
            Cell::Str(Some(&self.attributes)),
        ]
    }
}
