//! Reads over one issue's events that stay bounded when an issue holds millions of them (one hot issue
//! can carry a fifth of a project's events): each walks the `(issue_id, timestamp)` index from a point it
//! seeks, never from the issue's first event.

use super::{Result, Store, StoredEvent};

impl Store {
    /// The events just older and just newer than `event` within its issue, for previous/next links.
    /// The event is found again by its issue and timestamp (a seek, then the few events of that same
    /// microsecond) rather than by its id among all of the issue's events, which read every one of them:
    /// 1.5 s for an issue of 2 M events.
    pub async fn event_neighbours_of(
        &self,
        event: &StoredEvent,
    ) -> Result<(Option<String>, Option<String>)> {
        let Some(issue_id) = event.issue_id else {
            return Ok((None, None));
        };
        let (ts, event_id) = (event.timestamp, event.event_id.as_str());
        let pick = |sql: &'static str| async move {
            let mut rows = self.conn().query(sql, (issue_id, ts, event_id)).await?;
            Ok::<_, super::StoreError>(match rows.next().await? {
                Some(row) => Some(row.get::<String>(0)?),
                None => None,
            })
        };
        let older = pick(OLDER).await?;
        let newer = pick(NEWER).await?;
        Ok((older, newer))
    }
}

/// The row id of event `?3` at `?2` in issue `?1`, as a subquery: the tie-break among events of the same
/// microsecond.
macro_rules! row_of {
    () => {
        "(SELECT id FROM events WHERE issue_id = ?1 AND timestamp = ?2 AND event_id = ?3)"
    };
}

const OLDER: &str = concat!(
    "SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp, id) < (?2, ",
    row_of!(),
    ") ORDER BY timestamp DESC, id DESC LIMIT 1"
);
const NEWER: &str = concat!(
    "SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp, id) > (?2, ",
    row_of!(),
    ") ORDER BY timestamp, id LIMIT 1"
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement seeks the issue's index at the event's time, for the event and for its neighbour:
    /// no walk from one end of the issue's events.
    #[tokio::test]
    async fn neighbours_seek_the_event_by_issue_and_time() {
        let store = Store::open_in_memory().await.unwrap();
        for sql in [OLDER, NEWER] {
            let plan = store.query_plan(sql, (1, 2, "e")).await;
            let seeks = plan
                .iter()
                .filter(|l| l.contains("USING INDEX events_issue_time (issue_id=? AND timestamp"))
                .count();
            assert_eq!(seeks, 2, "{sql}\n{plan:#?}");
            assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
        }
    }
}
