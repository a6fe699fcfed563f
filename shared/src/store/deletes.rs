//! Deleting an event or an issue by hand (the UI's Delete buttons), with the bookkeeping the rest of the
//! database keeps about it, in one write transaction:
//!
//! - An event: its issue's count, hour and tag counts, the project's hourly event count and its release's
//!   event count go down by one; if it was the issue's latest event, the issue's latest event (and last
//!   seen) become the newest left. An issue left with no event goes as retention deletes one. The users
//!   count stays (whether that user sent other events is not known).
//! - An issue: its events with it (hashes, tags, hours, users, sent alerts by `ON DELETE CASCADE`), the
//!   project's hourly event counts and its releases' event counts less its events, its search entry.
//!   A later event with the same fingerprint opens a new issue, under a new id.
//!
//! Either way each deleted event's id is kept (`deleted_events`) so that a redelivered message or an SDK's
//! retry is taken for a duplicate and not stored again, and a deleted issue's id is never reused. The
//! lake keeps its rows (files are immutable; analytics over them still count what happened); every page
//! and tool reads events from this database, where they are gone.

use crate::model::time::Ts;
use crate::model::{Event, EventSummary};
use crate::protocol::ProjectId;

use super::issues::recorded_tags;
use super::{now_us, Result, Store, StoreError};

impl Store {
    /// Deletes event `event_id` of `project`. Returns its issue, `Some(None)` if that issue was left with
    /// no event and went too, or `None` when there is no such event.
    pub async fn delete_event(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Option<Option<i64>>> {
        let Some(event) = self.event(project, event_id).await? else {
            return Ok(None);
        };
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let p = project.value();
        let hour_us = event.timestamp / crate::model::time::HOUR_US;
        // The columns, not the payload, say the release, environment and level: retention may have
        // emptied the payload already.
        let mut rows = tx
            .query(
                "DELETE FROM events WHERE project_id = ?1 AND timestamp / 3600000000 = ?2 AND event_id = ?3
                 RETURNING release, environment, level",
                (p, hour_us, event_id),
            )
            .await?;
        let Some(row) = rows.next().await? else {
            // Deleted in the meantime.
            return Ok(None);
        };
        let parsed = Event::from_value(&event.payload);
        let summary = EventSummary {
            release: row.get(0)?,
            environment: row.get(1)?,
            level: row.get(2)?,
            ..EventSummary::from_event(&parsed)
        };
        // Stepped to its end: a statement left in progress would keep the transaction from committing.
        while rows.next().await?.is_some() {}
        drop(rows);
        let tags = summary.issue_tags(&parsed);
        tx.execute(
            "INSERT OR IGNORE INTO deleted_events (project_id, hour, event_id, deleted_at) VALUES (?1, ?2, ?3, ?4)",
            libsql::params![p, hour_us, event_id, now_us()],
        )
        .await?;
        let hour = Ts(event.timestamp).hour_secs();
        tx.execute(
            "UPDATE item_counts SET count = max(count - 1, 0) WHERE project_id = ?1 AND item_type = 'event' AND hour = ?2",
            (p, hour),
        )
        .await?;
        if let Some(release) = &summary.release {
            tx.execute(
                "UPDATE releases SET event_count = max(event_count - 1, 0) WHERE project_id = ?1 AND version = ?2",
                (p, release.as_str()),
            )
            .await?;
        }
        let Some(issue) = event.issue_id else {
            tx.commit().await?;
            return Ok(Some(None));
        };
        for (key, value) in recorded_tags(&tags) {
            tx.execute(
                "UPDATE issue_tags SET count = count - 1 WHERE issue_id = ?1 AND key = ?2 AND value = ?3",
                (issue, key.as_str(), value.as_str()),
            )
            .await?;
        }
        tx.execute(
            "DELETE FROM issue_tags WHERE issue_id = ?1 AND count <= 0",
            [issue],
        )
        .await?;
        tx.execute(
            "UPDATE issue_hours SET count = count - 1 WHERE issue_id = ?1 AND hour = ?2",
            (issue, hour),
        )
        .await?;
        tx.execute(
            "DELETE FROM issue_hours WHERE issue_id = ?1 AND hour = ?2 AND count <= 0",
            (issue, hour),
        )
        .await?;
        // The newest event left takes the deleted one's place as the latest (with its time as last seen).
        tx.execute(
            "UPDATE issues SET times_seen = max(times_seen - 1, 0),
                last_event_id = coalesce((SELECT event_id FROM events WHERE issue_id = ?1 ORDER BY timestamp DESC, id DESC LIMIT 1), last_event_id),
                last_seen = CASE WHEN last_event_id = ?2
                    THEN coalesce((SELECT max(timestamp) FROM events WHERE issue_id = ?1), last_seen) ELSE last_seen END
             WHERE id = ?1",
            (issue, event_id),
        )
        .await?;
        let left = {
            let mut rows = tx
                .query("SELECT 1 FROM events WHERE issue_id = ?1 LIMIT 1", [issue])
                .await?;
            rows.next().await?.is_some()
        };
        if !left {
            delete_issue_rows(&tx, p, issue).await?;
            tx.commit().await?;
            return Ok(Some(None));
        }
        tx.commit().await?;
        Ok(Some(Some(issue)))
    }

    /// Deletes issue `issue` of `project` with its events. Returns how many events went with it, or
    /// `None` when there is no such issue.
    pub async fn delete_issue(&self, project: ProjectId, issue: i64) -> Result<Option<u64>> {
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let p = project.value();
        let exists = {
            let mut rows = tx
                .query(
                    "SELECT 1 FROM issues WHERE id = ?1 AND project_id = ?2",
                    (issue, p),
                )
                .await?;
            rows.next().await?.is_some()
        };
        if !exists {
            return Ok(None);
        }
        let events = tx
            .execute(
                "INSERT OR IGNORE INTO deleted_events (project_id, hour, event_id, deleted_at)
                 SELECT project_id, timestamp / 3600000000, event_id, ?2 FROM events WHERE issue_id = ?1",
                (issue, now_us()),
            )
            .await?;
        // The project's hourly and per-release event counts, less this issue's (its own hours and its
        // release tag counts say how many).
        tx.execute(
            "UPDATE item_counts SET count = max(count - (SELECT h.count FROM issue_hours h WHERE h.issue_id = ?2 AND h.hour = item_counts.hour), 0)
             WHERE project_id = ?1 AND item_type = 'event' AND hour IN (SELECT hour FROM issue_hours WHERE issue_id = ?2)",
            (p, issue),
        )
        .await?;
        tx.execute(
            "UPDATE releases SET event_count = max(event_count - (SELECT t.count FROM issue_tags t
                 WHERE t.issue_id = ?2 AND t.key = 'release' AND t.value = releases.version), 0)
             WHERE project_id = ?1 AND version IN (SELECT value FROM issue_tags WHERE issue_id = ?2 AND key = 'release')",
            (p, issue),
        )
        .await?;
        delete_issue_rows(&tx, p, issue).await?;
        tx.commit().await?;
        Ok(Some(events))
    }
}

/// The issue's own rows (its events, hashes, tags, hours, users and sent alerts by cascade), its search
/// entry, and its id kept as used.
async fn delete_issue_rows(tx: &libsql::Transaction, project: i64, issue: i64) -> Result<()> {
    tx.execute("DELETE FROM issues_fts WHERE rowid = ?1", [issue])
        .await?;
    let n = tx
        .execute("DELETE FROM issues WHERE id = ?1", [issue])
        .await?;
    if n == 0 {
        return Err(StoreError::Invalid(format!("issue {issue} vanished")));
    }
    tx.execute(
        "INSERT OR IGNORE INTO deleted_issues (id, project_id, deleted_at) VALUES (?1, ?2, ?3)",
        (issue, project, now_us()),
    )
    .await?;
    Ok(())
}
