//! The alert budget: at most `SPLAT_MAX_ALERTS_PER_PROJECT_HOUR` alerts per project and clock hour. Past
//! it, alerts are held back and counted, and one digest per project and hour says how many ("N more
//! alerts suppressed this hour") instead of one alert per issue: a flood of new issues (a leaked DSN,
//! a thousand monitors) cannot flood the people on call.
//!
//! The counts live in `alert_budget`, claimed by single statements, so a restarted process or a second
//! Lambda instance shares them.

use super::{Store, StoreError};
use crate::model::time::HOUR_US;

use super::bursts::execute_yielding;

/// Rows older than this are of no further use.
const KEEP_US: i64 = 2 * 24 * HOUR_US;

/// Whether an alert may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Suppress,
}

/// A digest to send: `suppressed` alerts of the project held back in the hour starting at `hour`
/// (Unix seconds); `issue_id` is the latest of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub project_id: i64,
    pub hour: i64,
    pub suppressed: i64,
    pub issue_id: i64,
}

impl Store {
    /// Takes one of the project's `cap` alerts of the current hour, or counts the alert about `issue_id` as
    /// suppressed when none is left.
    pub async fn claim_alert(
        &self,
        project_id: i64,
        issue_id: i64,
        cap: u64,
        now_us: i64,
    ) -> Result<Verdict, StoreError> {
        let conn = &self.conn();
        let hour = now_us.div_euclid(HOUR_US) * 3_600;
        let key = || vec![libsql::Value::from(project_id), libsql::Value::from(hour)];
        execute_yielding(
            conn,
            "INSERT INTO alert_budget (project_id, hour) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            key(),
        )
        .await?;
        let mut params = key();
        params.push(libsql::Value::from(cap as i64));
        let taken = execute_yielding(
        conn,
        "UPDATE alert_budget SET sent = sent + 1 WHERE project_id = ?1 AND hour = ?2 AND sent < ?3",
        params,
    )
    .await?;
        if taken > 0 {
            return Ok(Verdict::Send);
        }
        let mut params = key();
        params.push(libsql::Value::from(issue_id));
        execute_yielding(
        conn,
        "UPDATE alert_budget SET suppressed = suppressed + 1, last_suppressed = ?3 WHERE project_id = ?1 AND hour = ?2",
        params,
    )
    .await?;
        Ok(Verdict::Suppress)
    }

    /// The digests due (suppressed alerts, no digest yet for that project and hour), each claimed so that
    /// it goes out once; forgets rows older than two days.
    pub async fn claim_digests(&self, now_us: i64) -> Result<Vec<Digest>, StoreError> {
        let conn = &self.conn();
        let mut rows = conn
            .query(
                "SELECT project_id, hour, suppressed, last_suppressed FROM alert_budget
             WHERE suppressed > 0 AND digest_sent_at IS NULL AND last_suppressed IS NOT NULL",
                (),
            )
            .await?;
        let mut due = Vec::new();
        while let Some(row) = rows.next().await? {
            due.push(Digest {
                project_id: row.get(0)?,
                hour: row.get(1)?,
                suppressed: row.get(2)?,
                issue_id: row.get(3)?,
            });
        }
        drop(rows);
        let mut claimed = Vec::new();
        for digest in due {
            let n = execute_yielding(
            conn,
            "UPDATE alert_budget SET digest_sent_at = ?3 WHERE project_id = ?1 AND hour = ?2 AND digest_sent_at IS NULL",
            vec![
                digest.project_id.into(),
                digest.hour.into(),
                now_us.into(),
            ],
        )
        .await?;
            if n > 0 {
                claimed.push(digest);
            }
        }
        execute_yielding(
            conn,
            "DELETE FROM alert_budget WHERE hour < ?1",
            vec![libsql::Value::from((now_us - KEEP_US) / 1_000_000)],
        )
        .await?;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_cap_alerts_are_counted_and_digested_once_per_hour() {
        let store = Store::open_in_memory().await.unwrap();
        let p = store.create_project("p").await.unwrap().id.value();
        let q = store.create_project("q").await.unwrap().id.value();
        let ten = 1_700_000_000 / 3_600 * 3_600;
        let now = ten * 1_000_000 + 60_000_000;
        let mut verdicts = Vec::new();
        for issue in 1..=5 {
            verdicts.push(store.claim_alert(p, issue, 2, now).await.unwrap());
        }
        use Verdict::{Send, Suppress};
        assert_eq!(verdicts, [Send, Send, Suppress, Suppress, Suppress]);
        assert_eq!(
            store.claim_alert(q, 9, 2, now).await.unwrap(),
            Send,
            "each project has its own budget"
        );
        let digests = store.claim_digests(now).await.unwrap();
        assert_eq!(
            digests,
            vec![Digest {
                project_id: p,
                hour: ten,
                suppressed: 3,
                issue_id: 5
            }]
        );
        assert_eq!(store.claim_alert(p, 6, 2, now).await.unwrap(), Suppress);
        assert!(
            store.claim_digests(now).await.unwrap().is_empty(),
            "one digest per project and hour"
        );
        let next_hour = now + HOUR_US;
        assert_eq!(store.claim_alert(p, 7, 2, next_hour).await.unwrap(), Send);
    }
}
