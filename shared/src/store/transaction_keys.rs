//! How transactions are found by their SDK-chosen ids (trace id, span id) without an index that scatters.
//!
//! As for events (store/event_keys.rs), the random ids are keyed after the hour: since migration 37 the
//! unique key is `(project_id, end_time / 3600000000, trace_id, span_id)`, so a batch's new keys land
//! together in the hour being written instead of on a page each. The processor knows a new transaction's
//! hour (a retry carries the same end); a late child of a streamed segment finds it in the segment's span
//! row, whose end is the transaction's (`Clock::streamed_span`); the transactions of a trace, and one of
//! them by id within its trace, are found by probing the hours the project's transactions span, newest
//! first: one index seek each.
//!
//! The statements spell the hour exactly as the index does, or SQLite would not use it; the test below
//! checks each statement's plan.

use futures_util::future::BoxFuture;

use super::event_keys::project_hours;
use super::Result;

/// The columns migration 37 copies: all of them.
const COLUMNS: &str = "id, project_id, event_id, trace_id, span_id, parent_span_id, name, op, status, start_time,
    end_time, duration_us, environment, release, platform, sdk_name, source, received_at, payload, server_name,
    http_method, http_url, http_status, db_time_ms, view_time_ms, query_count, has_n_plus_one,
    n_plus_one_wasted_ms, span_count, spans_truncated, query_patterns";

/// A part of migration 37: the next `rows` transactions in id order into the table keyed by hour (its
/// largest id says how far the copy has come; before the first part, it starts below the smallest id);
/// whether more may remain.
pub(super) fn copy_keys_by_hour(
    conn: &libsql::Connection,
    rows: i64,
) -> BoxFuture<'_, Result<bool>> {
    Box::pin(async move {
        let copy = format!(
            "INSERT INTO transactions_by_hour ({COLUMNS}) SELECT {COLUMNS} FROM transactions
             WHERE id > coalesce((SELECT max(id) FROM transactions_by_hour), (SELECT min(id) - 1 FROM transactions))
             ORDER BY id LIMIT ?1"
        );
        let copied = conn.execute(&copy, [rows]).await?;
        Ok(copied as i64 >= rows)
    })
}

/// Migration 37's end, once every transaction is copied: the table keyed by hour replaces the old one,
/// unless the old one still holds a row below or above the ids copied (parts copy runs of ids in order
/// and nothing writes meanwhile, so that would be a row left behind): then the migration fails with
/// nothing dropped. Two seeks, where counting both tables would read them whole.
pub(super) fn finish_keys_by_hour(conn: &libsql::Connection) -> BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let left_behind = "SELECT EXISTS (SELECT 1 FROM transactions WHERE id < coalesce(
                (SELECT min(id) FROM transactions_by_hour), 9223372036854775807))
            OR EXISTS (SELECT 1 FROM transactions WHERE id > coalesce(
                (SELECT max(id) FROM transactions_by_hour), -9223372036854775808))";
        // The statement ends (row and all) before the tables change: an open one locks them.
        let left_behind = {
            let mut rows = conn.query(left_behind, ()).await?;
            match rows.next().await? {
                Some(row) => row.get::<i64>(0)? != 0,
                None => false,
            }
        };
        if left_behind {
            return Err(super::StoreError::Invalid(
                "migration 37 left transactions behind; the old table is kept".into(),
            ));
        }
        conn.execute_batch(
            "DROP TABLE transactions; ALTER TABLE transactions_by_hour RENAME TO transactions;",
        )
        .await?;
        Ok(())
    })
}

/// Which of a batch's transactions are stored: `?1` is a JSON array of `[project, hour, trace id, span id]`.
pub(super) const STORED_TRANSACTIONS: &str =
    "SELECT t.project_id, t.trace_id, t.span_id FROM json_each(?1) j
    JOIN transactions t ON t.project_id = json_extract(j.value, '$[0]')
    AND t.end_time / 3600000000 = json_extract(j.value, '$[1]')
    AND t.trace_id = json_extract(j.value, '$[2]') AND t.span_id = json_extract(j.value, '$[3]')";

/// The transactions of trace `?2` in project `?1` with `columns`, earliest first, at most `?3`.
pub(super) fn trace_transactions(columns: &str) -> String {
    format!(
        "{} SELECT {columns} FROM hours CROSS JOIN transactions t
         ON t.project_id = ?1 AND t.end_time / 3600000000 = hours.h AND t.trace_id = ?2
         ORDER BY coalesce(t.start_time, t.end_time), t.id LIMIT ?3",
        project_hours!("transactions", "end_time")
    )
}

/// The row id of the transaction of trace `?2` in project `?1` whose event id or root span id is `?3`.
pub(super) const ID_IN_TRACE: &str = concat!(
    project_hours!("transactions", "end_time"),
    "SELECT t.id FROM hours CROSS JOIN transactions t
     ON t.project_id = ?1 AND t.end_time / 3600000000 = hours.h AND t.trace_id = ?2
     AND (t.event_id = ?3 OR t.span_id = ?3) LIMIT 1"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Every statement reaches transactions by their ids through a seek on the hour in the unique key,
    /// never a walk of the project's transactions: a plan that lost the index would still answer, only
    /// slowly on a large database.
    #[tokio::test]
    async fn each_statement_seeks_the_key_by_hour() {
        let store = Store::open_in_memory().await.unwrap();
        let trace = trace_transactions("t.id");
        for sql in [
            STORED_TRANSACTIONS,
            &trace,
            ID_IN_TRACE,
            super::super::segments::FIGURES,
            super::super::segments::CORRECT_FIGURES,
        ] {
            let plan = store.query_plan(sql, ()).await;
            let seek = "USING INDEX transactions_key (project_id=? AND <expr>=? AND trace_id=?";
            assert!(
                plan.iter()
                    .any(|line| line.starts_with("SEARCH ") && line.contains(seek)),
                "{sql}\n{plan:#?}"
            );
            let walk = |line: &String| line.starts_with("SCAN t ") || line == "SCAN t";
            assert!(!plan.iter().any(walk), "{sql}\n{plan:#?}");
        }
    }

    /// A database from before migration 37 keeps every transaction (one with a negative id too), its row
    /// id and every column, keeps its indexes, and still refuses a second copy of one.
    #[tokio::test]
    async fn migration_37_keeps_every_transaction() {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let conn = db.connect().unwrap();
        let schema = crate::store::migrations::MIGRATIONS;
        for m in schema.iter().filter(|m| m.version < 37) {
            m.apply(&conn).await.unwrap();
        }
        conn.execute_batch(
            "INSERT INTO projects (id, name, slug, created_at) VALUES (1, 'p', 'p', 0);
             INSERT INTO transactions (id, project_id, event_id, trace_id, span_id, name, end_time, duration_us,
                     source, received_at, payload, http_status, db_time_ms, query_patterns)
                 VALUES (-7, 1, 'e0', 'tr', 's0', 'GET /', 3600000000, 1, 'transaction', 1, NULL, NULL, NULL, NULL),
                        (5, 1, 'e1', 'tr', 'sa', 'GET /', 7200000000, 30, 'transaction', 1, x'01', 200, 1.5, '[]'),
                        (9, 1, NULL, 'tr', 'sb', 'GET /b', 3600000000, NULL, 'span', 2, NULL, NULL, NULL, NULL);",
        )
        .await
        .unwrap();
        let everything = "SELECT * FROM transactions ORDER BY id";
        let before = rows(&conn, everything).await;
        let v37 = schema.iter().find(|m| m.version == 37).unwrap();
        v37.apply(&conn).await.unwrap();

        assert_eq!(rows(&conn, everything).await, before);
        assert_eq!(
            rows(&conn, "SELECT name FROM sqlite_schema WHERE tbl_name = 'transactions' AND type = 'index' ORDER BY name").await,
            [
                "Text(\"transactions_endpoint_hour_duration\")",
                "Text(\"transactions_endpoint_time\")",
                "Text(\"transactions_hour_duration\")",
                "Text(\"transactions_key\")",
                "Text(\"transactions_project_time\")",
            ]
        );
        let copy = |end: i64| {
            let conn = conn.clone();
            async move {
                conn.execute(
                    "INSERT INTO transactions (project_id, trace_id, span_id, name, end_time, source, received_at)
                     VALUES (1, 'tr', 'sa', 'GET /', ?1, 'transaction', 3)",
                    [end],
                )
                .await
            }
        };
        assert!(
            copy(7_200_000_001).await.is_err(),
            "the same transaction in the same hour is refused"
        );
        assert!(
            copy(10_800_000_000).await.is_ok(),
            "another hour is another key"
        );
    }

    /// Migration 37 in parts, as the migrate job runs it on a large database: each run past its deadline
    /// stops after one part, with the schema still behind (so the processor still holds), and the next
    /// run goes on from the last committed part until the tables swap, every transaction as it was.
    #[tokio::test]
    async fn migration_37_goes_on_where_the_last_run_stopped() {
        use crate::retention::Deadline;
        use crate::store::migrations::MIGRATIONS;
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let store = Store::connect(db, None).await.unwrap();
        let v37 = MIGRATIONS.iter().position(|m| m.version == 37).unwrap();
        let (before_37, to_37) = (&MIGRATIONS[..v37], &MIGRATIONS[..=v37]);
        store
            .apply_migrations(before_37, true, Deadline::NONE, 2)
            .await
            .unwrap();
        let conn = &store.conn();
        conn.execute_batch(
            "INSERT INTO projects (id, name, slug, created_at) VALUES (1, 'p', 'p', 0);
             INSERT INTO transactions (id, project_id, trace_id, span_id, name, end_time, duration_us, source,
                     received_at)
                 WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5)
                 SELECT i * 3, 1, 'tr' || i, 's', 'GET /', i * 3600000000, i, 'transaction', 0 FROM n;",
        )
        .await
        .unwrap();
        let everything = "SELECT * FROM transactions ORDER BY id";
        let before = rows(conn, everything).await;
        let copied = "SELECT count(*) FROM transactions_by_hour";

        let past = Deadline::at(std::time::Instant::now());
        for expected in ["2", "4"] {
            store.apply_migrations(to_37, true, past, 2).await.unwrap();
            assert_eq!(rows(conn, copied).await, [format!("Integer({expected})")]);
            assert_eq!(
                rows(conn, everything).await,
                before,
                "the old table is whole"
            );
            assert!(
                store.ensure_migrated().await.is_err(),
                "37 is still pending"
            );
        }
        store.apply_migrations(to_37, true, past, 2).await.unwrap();
        assert_eq!(rows(conn, everything).await, before);
        assert_eq!(
            rows(
                conn,
                "SELECT count(*) FROM sqlite_schema WHERE name = 'transactions_by_hour'"
            )
            .await,
            ["Integer(0)"]
        );
        assert_eq!(
            rows(conn, "SELECT count(*) FROM schema_migrations_started").await,
            ["Integer(0)"]
        );
        // The migrations after 37, then nothing is pending.
        store
            .apply_migrations(MIGRATIONS, true, Deadline::NONE, 2)
            .await
            .unwrap();
        store.ensure_migrated().await.unwrap();
    }

    /// Each row of `sql`, its columns' values joined by `|`.
    async fn rows(conn: &libsql::Connection, sql: &str) -> Vec<String> {
        let mut rows = conn.query(sql, ()).await.unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            let values: Vec<String> = (0..row.column_count())
                .map(|i| format!("{:?}", row.get_value(i).unwrap()))
                .collect();
            out.push(values.join("|"));
        }
        out
    }
}
