//! How events are found by their SDK-chosen ids (event id, trace id) without an index that scatters.
//!
//! Those ids are random, so an index led by them puts each new event on a leaf page of its own: on a grown
//! database a batch of 1,000 errors changed some 1,100 pages of the `(project_id, event_id)` index alone,
//! and on EFS every changed page is written twice (journal and file). Since migration 19 both ids are
//! indexed after the hour of the event's timestamp (`timestamp / 3600000000`), so a batch's entries land
//! together in the hour being written. The processor knows an event's hour (a retried event carries the
//! same timestamp); a lookup by id alone probes the hours the project's events span, newest first: one
//! index seek each (about 2,200 for 90 days; 3 ms on 300,000 events).
//!
//! The statements spell the hour exactly as the indexes do, or SQLite would not use them; the tests below
//! check each statement's plan.

/// The hours the events (or the rows of another table with `project_id` and a time column: the
/// transactions, by `end_time`) of project `?1` span, newest first, as the table `hours(h)`; joined by
/// `CROSS JOIN events e ON e.project_id = ?1 AND e.timestamp / 3600000000 = hours.h`, which keeps the hours
/// the outer loop (one index seek per hour) rather than a walk of the project's events.
macro_rules! project_hours {
    () => {
        project_hours!("events", "timestamp")
    };
    ($table:literal, $time:literal) => {
        concat!(
            "WITH RECURSIVE hours(h) AS (
            SELECT (SELECT max(",
            $time,
            ") FROM ",
            $table,
            " WHERE project_id = ?1) / 3600000000
            UNION ALL
            SELECT h - 1 FROM hours
            WHERE h > (SELECT min(",
            $time,
            ") FROM ",
            $table,
            " WHERE project_id = ?1) / 3600000000
        ) "
        )
    };
}
pub(super) use project_hours;

/// The hour an event is filed under, in Rust: SQLite's integer division truncates as Rust's does.
pub(super) fn hour(timestamp_us: i64) -> i64 {
    timestamp_us / crate::model::time::HOUR_US
}

/// Which of a batch's events are stored, or were and have been deleted (so that a redelivery or a retry of
/// a deleted event does not bring it back): `?1` is a JSON array of `[project, hour, event id]`.
pub(super) const STORED_EVENTS: &str = "SELECT e.project_id, e.event_id FROM json_each(?1) j JOIN events e
    ON e.project_id = json_extract(j.value, '$[0]') AND e.timestamp / 3600000000 = json_extract(j.value, '$[1]')
    AND e.event_id = json_extract(j.value, '$[2]')
    UNION ALL
    SELECT d.project_id, d.event_id FROM json_each(?1) j JOIN deleted_events d
    ON d.project_id = json_extract(j.value, '$[0]') AND d.hour = json_extract(j.value, '$[1]')
    AND d.event_id = json_extract(j.value, '$[2]')";

/// Event `?2` of project `?1`, the newest if a retry with another timestamp stored it twice.
pub(super) const EVENT_BY_ID: &str = concat!(
    project_hours!(),
    "SELECT e.issue_id, e.timestamp, e.received_at, e.title, e.level, e.payload FROM hours CROSS JOIN events e
     ON e.project_id = ?1 AND e.timestamp / 3600000000 = hours.h AND e.event_id = ?2 LIMIT 1"
);

/// The error events of trace `?2` in project `?1`, newest first, at most `?3`.
pub(super) const TRACE_EVENTS: &str = concat!(
    project_hours!(),
    "SELECT e.event_id, e.issue_id, e.timestamp, e.title, e.level, e.environment, e.release
     FROM hours CROSS JOIN events e ON e.project_id = ?1 AND e.timestamp / 3600000000 = hours.h AND e.trace_id = ?2
     ORDER BY e.timestamp DESC, e.id DESC LIMIT ?3"
);

/// Stores a feedback (parameters as in the statement) with the issue of the event it names, when that
/// event is stored already; an event stored later sets it ([`FEEDBACK_OF_EVENT`]).
pub(super) const INSERT_FEEDBACK: &str = concat!(
    "INSERT OR IGNORE INTO feedback (project_id, kind, feedback_id, event_id, name, email, message, url,
        timestamp, received_at, issue_id)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, (",
    project_hours!(),
    "SELECT e.issue_id FROM hours CROSS JOIN events e
     ON e.project_id = ?1 AND e.timestamp / 3600000000 = hours.h AND e.event_id = ?4 LIMIT 1))"
);

/// Files the feedback that arrived before its event (`?2` in project `?1`) under the event's issue `?3`.
pub(super) const FEEDBACK_OF_EVENT: &str =
    "UPDATE feedback SET issue_id = ?3 WHERE project_id = ?1 AND event_id = ?2 AND issue_id IS NULL";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Every statement reaches events through an index seek on the hour, never a walk of the project's
    /// events: a plan that lost the index would still answer, only slowly on a large database.
    #[tokio::test]
    async fn each_statement_seeks_the_hour_indexes() {
        let store = Store::open_in_memory().await.unwrap();
        for (sql, index) in [
            (STORED_EVENTS, "events_id"),
            (EVENT_BY_ID, "events_id"),
            (TRACE_EVENTS, "events_trace"),
            (INSERT_FEEDBACK, "events_id"),
        ] {
            let plan = store.query_plan(sql, ()).await;
            let seek = format!("SEARCH e USING INDEX {index} (project_id=? AND <expr>=? AND ");
            assert!(
                plan.iter().any(|line| line.starts_with(&seek)),
                "{sql}\n{plan:#?}"
            );
            assert!(
                !plan.iter().any(|line| line.starts_with("SCAN e")),
                "{sql}\n{plan:#?}"
            );
        }
    }

    /// A database from before migration 19 keeps every event, still refuses a second copy of one, and its
    /// feedback is filed under the issue of the event it names.
    #[tokio::test]
    async fn migration_19_keeps_every_event_and_files_feedback() {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let conn = db.connect().unwrap();
        let schema = crate::store::migrations::MIGRATIONS;
        for m in schema.iter().filter(|m| m.version < 19) {
            conn.execute_batch(m.sql).await.unwrap();
        }
        conn.execute_batch(
            "INSERT INTO projects (id, name, slug, created_at) VALUES (1, 'p', 'p', 0);
             INSERT INTO issues (id, project_id, title, level, first_seen, last_seen, times_seen, grouping_config)
                 VALUES (7, 1, 't', 'error', 0, 0, 2, 'x');
             INSERT INTO events (project_id, event_id, issue_id, timestamp, received_at, level, title, trace_id, payload)
                 VALUES (1, 'aa', 7, 1764979200000000, 1, 'error', 'a', 'tr', x''),
                        (1, 'bb', 7, 1765000000000000, 1, 'error', 'b', NULL, x'');
             INSERT INTO feedback (project_id, kind, feedback_id, event_id, message, timestamp, received_at)
                 VALUES (1, 'feedback', 'f1', 'aa', 'broken', 0, 0), (1, 'feedback', 'f2', 'zz', 'later', 0, 0);",
        )
        .await
        .unwrap();
        let v19 = schema.iter().find(|m| m.version == 19).unwrap();
        conn.execute_batch(v19.sql).await.unwrap();

        let rows = |sql: &'static str| {
            let conn = conn.clone();
            async move {
                let mut rows = conn.query(sql, ()).await.unwrap();
                let mut out = Vec::new();
                while let Some(row) = rows.next().await.unwrap() {
                    out.push(format!(
                        "{:?}|{:?}",
                        row.get_value(0).unwrap(),
                        row.get_value(1).unwrap()
                    ));
                }
                out
            }
        };
        assert_eq!(
            rows("SELECT event_id, trace_id FROM events ORDER BY id").await,
            ["Text(\"aa\")|Text(\"tr\")", "Text(\"bb\")|Null"]
        );
        assert_eq!(
            rows("SELECT feedback_id, issue_id FROM feedback ORDER BY id").await,
            ["Text(\"f1\")|Integer(7)", "Text(\"f2\")|Null"]
        );
        let again = conn
            .execute(
                "INSERT INTO events (project_id, event_id, issue_id, timestamp, received_at, level, title, payload)
                 VALUES (1, 'aa', 7, 1764979200000001, 1, 'error', 'a', x'')",
                (),
            )
            .await;
        assert!(again.is_err(), "the same event in the same hour is refused");
    }

    #[test]
    fn the_hour_is_sqlite_s() {
        assert_eq!(hour(7_199_999_999), 1);
        assert_eq!(hour(1_764_979_200_000_000), 490_272);
    }
}
