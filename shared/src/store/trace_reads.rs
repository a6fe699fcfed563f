//! What else happened in one trace: the error events that carry a transaction's trace id, for the
//! transaction page's "errors in this request", and the transactions of a trace (the MCP `get_trace`).

use crate::protocol::ProjectId;

use super::perf_reads::{summary, SUMMARY_COLUMNS};
use super::{RecentEvent, Result, Store, TransactionSummary};

impl Store {
    /// Error events of one trace, newest first (at most `limit`).
    pub async fn trace_events(
        &self,
        project: ProjectId,
        trace_id: &str,
        limit: u32,
    ) -> Result<Vec<RecentEvent>> {
        let mut rows = self
            .conn()
            .query(
                super::event_keys::TRACE_EVENTS,
                libsql::params![project.value(), trace_id, i64::from(limit.clamp(1, 100))],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(RecentEvent {
                event_id: row.get(0)?,
                issue_id: row.get(1)?,
                timestamp: row.get(2)?,
                title: row.get(3)?,
                level: row.get(4)?,
                environment: row.get(5)?,
                release: row.get(6)?,
            });
        }
        Ok(out)
    }

    /// Transactions of one trace (classic or streamed segments), earliest first (at most `limit`), found
    /// hour by hour in the unique key (store/transaction_keys.rs).
    pub async fn trace_transactions(
        &self,
        project: ProjectId,
        trace_id: &str,
        limit: u32,
    ) -> Result<Vec<TransactionSummary>> {
        let sql = super::transaction_keys::trace_transactions(SUMMARY_COLUMNS);
        let mut rows = self
            .conn()
            .query(
                &sql,
                libsql::params![project.value(), trace_id, i64::from(limit.clamp(1, 1000))],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(summary(&row)?);
        }
        Ok(out)
    }
}
