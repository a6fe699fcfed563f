//! What else happened in one trace: the error events that carry a transaction's trace id, for the
//! transaction page's "errors in this request".

use crate::protocol::ProjectId;

use super::{RecentEvent, Result, Store};

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
                "SELECT event_id, issue_id, timestamp, title, level, environment, release FROM events
                 WHERE project_id = ?1 AND trace_id = ?2 ORDER BY timestamp DESC, id DESC LIMIT ?3",
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
}
