//! The pieces of answers several tools share: a transaction as lists show it, an error event of a trace.

use serde_json::{json, Value};

use crate::mcp::format::{code, iso, line};
use crate::store::{RecentEvent, TransactionSummary};

pub(super) fn tx_id(t: &TransactionSummary) -> &str {
    t.event_id.as_deref().unwrap_or(&t.span_id)
}

pub(super) fn tx_json(t: &TransactionSummary) -> Value {
    json!({
        "id": tx_id(t),
        "row_id": t.id,
        "event_id": t.event_id,
        "trace_id": t.trace_id,
        "span_id": t.span_id,
        "name": t.name,
        "op": t.op,
        "status": t.status,
        "http_method": t.http_method,
        "http_status": t.http_status,
        "duration_ms": t.duration_ms,
        "timestamp": iso(t.end_us),
        "start": t.start_us.map(iso),
        "environment": t.environment,
        "release": t.release,
        "db_time_ms": t.db_time_ms,
        "query_count": t.query_count,
        "has_n_plus_one": t.has_n_plus_one,
        "source": t.source,
    })
}

/// An error event of a trace as a list line.
pub(super) fn trace_event_line(e: &RecentEvent) -> String {
    format!(
        "{} · {} · {} — event `{}`{}",
        iso(e.timestamp),
        e.level,
        code(&line(&e.title, 200)),
        e.event_id,
        e.issue_id
            .map(|i| format!(" · issue #{i}"))
            .unwrap_or_default()
    )
}

pub(super) fn trace_event_json(e: &RecentEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "issue_id": e.issue_id,
        "timestamp": iso(e.timestamp),
        "title": e.title,
        "level": e.level,
        "environment": e.environment,
        "release": e.release,
    })
}
