//! Reads over one issue's events that stay bounded when an issue holds millions of them (one hot issue
//! can carry a fifth of a project's events): each walks the `(issue_id, timestamp)` index from a point it
//! seeks, never from the issue's first event.

use super::{EventListItem, Result, Store, StoredEvent};

/// Pages that start this deep or deeper skip whole hours by the issue's hourly counts.
const SEEK_FROM: i64 = 2_000;

impl Store {
    /// Page `page` (from 0) of an issue's events, newest first. A deep page does not step over every
    /// newer event (the last page of an issue of 2 M events stepped over 2 M): the issue's hourly counts,
    /// which the processor keeps with its events, say in which hour the page starts, and only that hour's
    /// newer events are stepped over. The same page as an OFFSET over all of them, as long as those counts
    /// match the events, which their writers keep so (the processor, event deletion; retention expires
    /// both by age, from the oldest).
    pub async fn issue_events_page(
        &self,
        issue_id: i64,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<EventListItem>> {
        let per_page = i64::from(per_page.clamp(1, 100));
        let offset = i64::from(page) * per_page;
        let (before_us, offset) = match offset < SEEK_FROM {
            true => (i64::MAX, offset),
            false => self.hour_of_offset(issue_id, offset).await?,
        };
        let rows = self
            .conn()
            .query(PAGE, (issue_id, before_us, per_page, offset))
            .await?;
        EventListItem::read_all(rows).await
    }

    /// Where the `offset`-th newest event of an issue is: the end of its hour (µs) and its offset among
    /// the events before that end. Reads the issue's hourly counts, newest first (one row per hour it
    /// was seen in, 720 for a month at most).
    async fn hour_of_offset(&self, issue_id: i64, offset: i64) -> Result<(i64, i64)> {
        let mut rows = self.conn().query(HOURS_NEWEST_FIRST, [issue_id]).await?;
        let mut newer = 0;
        while let Some(row) = rows.next().await? {
            let (hour, count): (i64, i64) = (row.get(0)?, row.get(1)?);
            if newer + count > offset {
                return Ok(((hour + 3_600) * 1_000_000, offset - newer));
            }
            newer += count;
        }
        Ok((i64::MAX, offset))
    }

    /// The events just older and just newer than `event` within its issue, for previous/next links.
    /// The event is found again by its issue and timestamp (a seek, then the few events of that same
    /// microsecond) rather than by its id among all of the issue's events, which read every one of them:
    /// the event page took 66 ms for an issue of 200,000 events (0.5 ms now).
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

const PAGE: &str = "SELECT event_id, timestamp, title, level, release, environment FROM events
    WHERE issue_id = ?1 AND timestamp < ?2 ORDER BY timestamp DESC, id DESC LIMIT ?3 OFFSET ?4";
const HOURS_NEWEST_FIRST: &str =
    "SELECT hour, count FROM issue_hours WHERE issue_id = ?1 ORDER BY hour DESC";

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

    /// A page walks the issue's index backwards from its start: no sort, whatever its depth.
    #[tokio::test]
    async fn pages_and_hours_walk_their_index_in_order() {
        let store = Store::open_in_memory().await.unwrap();
        for (sql, params, index) in [
            (
                PAGE,
                vec![1, 2, 3, 4],
                "INDEX events_issue_time (issue_id=? AND timestamp<?)",
            ),
            (HOURS_NEWEST_FIRST, vec![1], "PRIMARY KEY (issue_id=?)"),
        ] {
            let plan = store.query_plan(sql, params).await;
            assert!(plan.iter().any(|l| l.contains(index)), "{plan:#?}");
            assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
        }
    }

    /// Deep pages found through the hourly counts are the pages an OFFSET over every event gives, events
    /// of the same microsecond and pages across hours included.
    #[tokio::test]
    async fn deep_pages_are_the_offset_pages() {
        let store = Store::open_in_memory().await.unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO projects (id, slug, name, created_at) VALUES (1, 'p', 'p', 0);
                 INSERT INTO issues (id, project_id, title, level, first_seen, last_seen, grouping_config)
                    VALUES (1, 1, 't', 'error', 0, 0, 'c'), (2, 1, 't', 'error', 0, 0, 'c');
                 WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 4999)
                 INSERT INTO events (project_id, event_id, issue_id, timestamp, received_at, level, title, payload)
                    SELECT 1, printf('%032x', i), 1 + (i % 7 = 0), 1700000000000000 + (i * 7919 % 5000) / 3 * 40000000,
                        0, 'error', 't', x'' FROM n;
                 INSERT INTO issue_hours (issue_id, hour, count)
                    SELECT issue_id, timestamp / 3600000000 * 3600, count(*) FROM events GROUP BY 1, 2;",
            )
            .await
            .unwrap();
        for per_page in [25, 100] {
            for page in (0..5_000 / per_page + 2).step_by(3) {
                let expected = store.issue_events(1, page, per_page).await.unwrap();
                let found = store.issue_events_page(1, page, per_page).await.unwrap();
                let ids = |e: &[super::EventListItem]| {
                    e.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>()
                };
                assert_eq!(ids(&found), ids(&expected), "page {page} of {per_page}");
            }
        }
    }

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
