//! Event bursts: which open issues were seen at least the threshold number of times in the current (or
//! the previous) clock hour, and the bookkeeping that makes it one alert per issue per hour.
//!
//! Counts come from `issue_hours` (kept by the processor). What was alerted goes to `notifications_sent`
//! in the same statement that decides it (`INSERT … WHERE NOT EXISTS` an alert in the last hour), so two
//! notifiers (a restarted process, two Lambda instances) cannot both claim the same alert.

use std::time::{Duration, Instant};

use super::{Store, StoreError};

/// The `notifications_sent.kind` of burst alerts.
const KIND: &str = "burst";
use crate::model::time::HOUR_US;
/// Rows older than this are of no further use (the one-hour rule looks back one hour).
const KEEP_US: i64 = 2 * 24 * HOUR_US;

/// An issue to alert about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    pub issue_id: i64,
    pub project_id: i64,
    /// Unix seconds at the start of the hour.
    pub hour: i64,
    pub events: i64,
}

impl Store {
    /// Finds bursting open issues and records an alert for each one that had none in the hour before
    /// `now_us`; returns those (the caller sends them). The previous hour is looked at too, so a burst at the
    /// end of an hour is not missed by a check that runs just after it.
    pub async fn claim_bursting(
        &self,
        threshold: u64,
        now_us: i64,
    ) -> Result<Vec<Burst>, StoreError> {
        let conn = &self.conn();
        let hour = now_us.div_euclid(HOUR_US) * 3_600;
        // Per project through `issues (project_id, last_seen)`: only issues seen since the previous hour began,
        // then their hour rows by primary key. `last_seen` is in microseconds, `hour` in seconds.
        let mut rows = conn
            .query(
                "SELECT h.issue_id, i.project_id, h.hour, h.count
             FROM projects p
             JOIN issues i ON i.project_id = p.id AND i.last_seen >= ?1 * 1000000
             JOIN issue_hours h ON h.issue_id = i.id AND h.hour IN (?1, ?2)
             WHERE i.status = 'open' AND h.count >= ?3
             ORDER BY h.hour DESC, h.count DESC",
                (hour - 3_600, hour, threshold as i64),
            )
            .await?;
        let mut candidates = Vec::new();
        while let Some(row) = rows.next().await? {
            candidates.push(Burst {
                issue_id: row.get(0)?,
                project_id: row.get(1)?,
                hour: row.get(2)?,
                events: row.get(3)?,
            });
        }
        drop(rows);
        let mut claimed = Vec::new();
        for burst in candidates {
            if claimed.iter().any(|b: &Burst| b.issue_id == burst.issue_id) {
                continue;
            }
            let inserted = execute_yielding(
                conn,
                "INSERT INTO notifications_sent (issue_id, kind, hour, sent_at)
             SELECT ?1, ?2, ?3, ?4
             WHERE NOT EXISTS (
                 SELECT 1 FROM notifications_sent
                 WHERE issue_id = ?1 AND kind = ?2 AND (hour = ?3 OR sent_at > ?4 - ?5))
             ON CONFLICT DO NOTHING",
                vec![
                    libsql::Value::from(burst.issue_id),
                    KIND.into(),
                    burst.hour.into(),
                    now_us.into(),
                    HOUR_US.into(),
                ],
            )
            .await?;
            if inserted > 0 {
                claimed.push(burst);
            }
        }
        execute_yielding(
            conn,
            "DELETE FROM notifications_sent WHERE sent_at < ?1",
            vec![libsql::Value::from(now_us - KEEP_US)],
        )
        .await?;
        Ok(claimed)
    }

    /// Makes this handle's connection give up at once on a locked database (see [`execute_yielding`]); for
    /// the notifier's own handle.
    pub fn never_wait_in_sqlite(&self) {
        if let Err(e) = self.conn().busy_timeout(Duration::ZERO) {
            tracing::warn!(error = %e, "could not clear the notifier connection's busy timeout");
        }
    }
}

/// Runs a write without waiting inside SQLite: the notifier's connection has no busy timeout, and a
/// busy database is retried after an async sleep. SQLite's own busy wait blocks the thread, and on a
/// one-thread runtime that thread may be the one the processor needs to finish the transaction that
/// holds the lock (a stall until the timeout).
pub(super) async fn execute_yielding(
    conn: &libsql::Connection,
    sql: &str,
    params: Vec<libsql::Value>,
) -> Result<u64, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match conn.execute(sql, params.clone()).await {
            Err(libsql::Error::SqliteFailure(code, _))
                if code & 0xff == SQLITE_BUSY && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => return Ok(other?),
        }
    }
}

const SQLITE_BUSY: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    async fn seed(store: &Store, issue: i64, project: i64, last_seen_us: i64, status: &str) {
        store
            .conn()
            .execute(
                "INSERT INTO issues (id, project_id, status, title, level, first_seen, last_seen, grouping_config)
                 VALUES (?1, ?2, ?3, 'Boom', 'error', ?4, ?4, 'test')",
                (issue, project, status, last_seen_us),
            )
            .await
            .unwrap();
    }

    async fn count(store: &Store, issue: i64, hour: i64, n: i64) {
        store
            .conn()
            .execute(
                "INSERT INTO issue_hours (issue_id, hour, count) VALUES (?1, ?2, ?3)
                 ON CONFLICT (issue_id, hour) DO UPDATE SET count = excluded.count",
                (issue, hour, n),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn one_alert_per_issue_per_hour_and_only_open_issues_at_the_threshold() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.create_project("p").await.unwrap().id.value();
        // 10:30 on some day.
        let ten = 1_700_000_000 / 3_600 * 3_600;
        let now = (ten + 1_800) * 1_000_000;
        seed(&store, 1, project, now, "open").await;
        seed(&store, 2, project, now, "open").await;
        seed(&store, 3, project, now, "ignored").await;
        seed(&store, 4, project, now - 3 * HOUR_US, "open").await;
        count(&store, 1, ten, 100).await;
        count(&store, 2, ten, 99).await;
        count(&store, 3, ten, 500).await;
        count(&store, 4, ten - 3 * 3_600, 500).await;

        let first = store.claim_bursting(100, now).await.unwrap();
        assert_eq!(
            first,
            vec![Burst {
                issue_id: 1,
                project_id: project,
                hour: ten,
                events: 100
            }],
            "at the threshold, open, this hour: alerted; below it, ignored or long ago: not"
        );
        assert!(
            store
                .claim_bursting(100, now + 60_000_000)
                .await
                .unwrap()
                .is_empty(),
            "the next check a minute later does not repeat it"
        );

        // Issue 2 crosses the threshold later in the hour: its own first alert.
        count(&store, 2, ten, 150).await;
        let later = store.claim_bursting(100, now + 120_000_000).await.unwrap();
        assert_eq!(later.iter().map(|b| b.issue_id).collect::<Vec<_>>(), [2]);

        // In the next hour issue 1 is still bursting: 40 minutes after its alert it waits...
        let eleven = ten + 3_600;
        count(&store, 1, eleven, 300).await;
        let at = |secs_after_eleven: i64| (eleven + secs_after_eleven) * 1_000_000;
        assert!(store.claim_bursting(100, at(600)).await.unwrap().is_empty());
        // ...and an hour after it, it is alerted again, about the new hour.
        let again = store.claim_bursting(100, at(1_900)).await.unwrap();
        assert_eq!(
            again
                .iter()
                .map(|b| (b.issue_id, b.hour, b.events))
                .collect::<Vec<_>>(),
            [(1, eleven, 300)]
        );
    }

    #[tokio::test]
    async fn a_burst_at_the_end_of_an_hour_is_caught_just_after_it() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.create_project("p").await.unwrap().id.value();
        let ten = 1_700_000_000 / 3_600 * 3_600;
        seed(&store, 1, project, (ten + 3_590) * 1_000_000, "open").await;
        count(&store, 1, ten, 120).await;
        let just_after = (ten + 3_600 + 20) * 1_000_000;
        let due = store.claim_bursting(100, just_after).await.unwrap();
        assert_eq!(
            due.iter().map(|b| (b.issue_id, b.hour)).collect::<Vec<_>>(),
            [(1, ten)]
        );
    }
}
