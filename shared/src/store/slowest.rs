//! Slowest-first transaction lists, read hour by hour.
//!
//! Durations are indexed after the hour a transaction ended (migration 36), so that new transactions land
//! together in the index instead of on a page each. A list of the window's slowest therefore cannot walk
//! one index in duration order; it reads hours, each in duration order, and needs only the hours that may
//! hold one of the `offset + limit` slowest. The same index tells each hour's first row in list order
//! (slowest, then newest) in one seek: hours are read in the order of their first rows, and the reading
//! stops at the first whose first row comes after the last one the page needs. So no more hours are read
//! than the list needs rows (the page's and those before it), also when durations tie (SDKs that time in whole milliseconds make
//! thousands of transactions an endpoint share the slowest duration; comparing durations alone read every
//! hour holding one of them: 50 of 720 at 10 M transactions, most of them at 100 M).

use std::cmp::Ordering;

use crate::protocol::ProjectId;

use super::perf_reads::{TransactionQuery, TransactionSummary};
use super::{Result, Store};

/// How deep a slowest-first list goes: the 10,000 slowest transactions of a window (400 pages of 25).
pub const MAX_SLOWEST_DEPTH: usize = 10_000;

/// Each hour of the window with its first row in list order, as the statement's `(hour, slowest duration
/// in µs, id of the newest row of that duration)`: two seeks to the end of the hour's run in the index of
/// durations by hour (the index ends with the row id), so a 30-day window costs 1,440 seeks. The hours are
/// clipped to the project's first and last transactions, as a window may start at zero (and a project
/// without any has none).
fn hours_sql(by_endpoint: bool) -> String {
    let endpoint = if by_endpoint { "AND name = ?4" } else { "" };
    let in_hour =
        format!("FROM transactions WHERE project_id = ?1 AND end_time / 3600000000 = h {endpoint}");
    format!(
        "WITH RECURSIVE hours (h) AS (
             SELECT max(?2, (SELECT min(end_time) FROM transactions WHERE project_id = ?1) / 3600000000)
             UNION ALL
             SELECT h + 1 FROM hours
             WHERE h < min(?3, (SELECT max(end_time) FROM transactions WHERE project_id = ?1) / 3600000000)
         )
         SELECT h, (SELECT max(duration_us) {in_hour}),
                (SELECT id {in_hour} ORDER BY duration_us DESC, id DESC LIMIT 1)
         FROM hours WHERE h IS NOT NULL"
    )
}

/// A row's place in a slowest-first list: its duration in milliseconds (none: last) and its id.
type ListPlace = (Option<f64>, i64);

impl Store {
    /// The page `q` asks for, slowest first (then the newest row first), the same as reading every
    /// transaction of the window in that order.
    pub(super) async fn slowest_transactions(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
    ) -> Result<Vec<TransactionSummary>> {
        // The page's rows and all before it are held here (a statement's OFFSET held none), so a
        // client's offset is bounded: past the slowest `MAX_SLOWEST_DEPTH` the list ends.
        let offset = (q.offset as usize).min(MAX_SLOWEST_DEPTH);
        let want = (offset + q.limit.clamp(1, 1000) as usize).min(MAX_SLOWEST_DEPTH);
        if offset == want {
            return Ok(Vec::new());
        }
        let (mut found, _) = self.slowest_rows(project, q, want).await?;
        Ok(found.split_off(offset.min(found.len())))
    }

    /// The first `want` rows of the list and how many hours were read for them. Hours are read in the
    /// order of their first rows (each its first `want`), until the next hour's first row comes after
    /// the `want`-th found: then so do all its rows, and all of the hours after it.
    async fn slowest_rows(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
        want: usize,
    ) -> Result<(Vec<TransactionSummary>, usize)> {
        let mut hours = self.first_row_per_hour(project, q).await?;
        hours.sort_by(|a, b| in_list_order(a.1, b.1));
        let mut found: Vec<TransactionSummary> = Vec::new();
        let mut hours_read = 0;
        for (hour, first) in hours {
            let last_needed = found.get(want - 1).map(place);
            if last_needed.is_some_and(|last| in_list_order(last, first).is_lt()) {
                break;
            }
            let rows = self.transaction_rows(project, q, want as i64, 0, Some(hour));
            found.extend(rows.await?);
            found.sort_by(|a, b| in_list_order(place(a), place(b)));
            found.truncate(want);
            hours_read += 1;
        }
        Ok((found, hours_read))
    }

    /// The window's hours that hold a transaction of `q`'s endpoint (or project), each with its first
    /// row in list order: a bound for `q`'s other filters.
    async fn first_row_per_hour(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
    ) -> Result<Vec<(i64, ListPlace)>> {
        let hour_us = crate::model::time::HOUR_US;
        let mut params = vec![
            project.value().into(),
            (q.window.from_us / hour_us).into(),
            (q.window.to_us / hour_us).into(),
        ];
        params.extend(q.endpoint.clone().map(libsql::Value::from));
        let mut rows = self
            .conn()
            .query(
                &hours_sql(q.endpoint.is_some()),
                libsql::params::Params::Positional(params),
            )
            .await?;
        let mut hours = Vec::new();
        while let Some(row) = rows.next().await? {
            let slowest_us: Option<i64> = row.get(1)?;
            // No id: the hour holds none of them.
            if let Some(id) = row.get::<Option<i64>>(2)? {
                hours.push((row.get(0)?, (slowest_us.map(|us| us as f64 / 1000.0), id)));
            }
        }
        Ok(hours)
    }
}

fn place(t: &TransactionSummary) -> ListPlace {
    (t.duration_ms, t.id)
}

/// Slowest first, rows without a duration last; then the newest row first (what the statement orders by
/// within an hour).
fn in_list_order(a: ListPlace, b: ListPlace) -> Ordering {
    let duration = |d: Option<f64>| d.unwrap_or(f64::NEG_INFINITY);
    duration(b.0)
        .total_cmp(&duration(a.0))
        .then_with(|| b.1.cmp(&a.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::perf_reads::{PerfWindow, TransactionSort};

    /// Hour `h` of the test data: a fixed day, far enough from zero that hour numbers are positive.
    const BASE_HOUR: i64 = 490_000;

    /// Transactions over three days (two endpoints, two environments, some without a duration, ties):
    /// every page of every shape of slowest-first list equals the same page of all of them sorted,
    /// whatever the window (one starting at zero among them).
    #[tokio::test]
    async fn every_page_equals_the_window_sorted() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        let empty = TransactionQuery {
            sort: TransactionSort::Slowest,
            limit: 25,
            ..TransactionQuery::default()
        };
        assert!(store
            .transactions(project.id, &empty)
            .await
            .unwrap()
            .is_empty());
        let mut rows = Vec::new();
        for n in 0..400_i64 {
            let hour = BASE_HOUR + (n * 7919) % 72;
            let end_us = hour * crate::model::time::HOUR_US + (n * 104_729) % 3_600_000_000;
            // Durations repeat (ties), a few are missing, one hour holds the slowest few.
            let duration_us = match n % 23 {
                0 => None,
                _ if hour == BASE_HOUR + 50 => Some(9_000_000 + n),
                _ => Some((n * 37) % 500 * 1_000),
            };
            let name = if n % 3 == 0 { "GET /a" } else { "GET /b" };
            let environment = if n % 2 == 0 { "prod" } else { "dev" };
            rows.push((n, name, environment, end_us, duration_us));
        }
        insert(&store, project.id, &rows).await;
        let windows = [
            (BASE_HOUR, BASE_HOUR + 72),
            (BASE_HOUR + 30, BASE_HOUR + 60),
            (BASE_HOUR + 51, BASE_HOUR + 51),
            (0, BASE_HOUR + 100),
        ];
        for (first, last) in windows {
            // The window's ends inside hours, so partial hours and days are clipped.
            let window = PerfWindow {
                from_us: first * crate::model::time::HOUR_US + 1_000_000_000,
                to_us: last * crate::model::time::HOUR_US + 2_000_000_000,
                ..PerfWindow::default()
            };
            for (endpoint, environment) in
                [(None, None), (Some("GET /a"), None), (None, Some("prod"))]
            {
                for (limit, offset) in [(1, 0), (25, 0), (25, 25), (10, 395), (1000, 0)] {
                    let q = TransactionQuery {
                        window: PerfWindow {
                            environment: environment.map(str::to_owned),
                            ..window.clone()
                        },
                        endpoint: endpoint.map(str::to_owned),
                        sort: TransactionSort::Slowest,
                        limit,
                        offset,
                        ..TransactionQuery::default()
                    };
                    let got: Vec<i64> = store
                        .transactions(project.id, &q)
                        .await
                        .unwrap()
                        .iter()
                        .map(|t| t.id)
                        .collect();
                    let mut want: Vec<&(i64, &str, &str, i64, Option<i64>)> = rows
                        .iter()
                        .filter(|r| (q.window.from_us..=q.window.to_us).contains(&r.3))
                        .filter(|r| endpoint.is_none_or(|e| e == r.1))
                        .filter(|r| environment.is_none_or(|e| e == r.2))
                        .collect();
                    want.sort_by(|a, b| {
                        b.4.unwrap_or(-1)
                            .cmp(&a.4.unwrap_or(-1))
                            .then(b.0.cmp(&a.0))
                    });
                    let want: Vec<i64> = want
                        .iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .map(|r| r.0 + 1)
                        .collect();
                    assert_eq!(
                        got, want,
                        "{first}..{last} {endpoint:?} {environment:?} {limit} {offset}"
                    );
                }
            }
        }
    }

    /// When every hour's slowest duration is the same (durations in whole milliseconds), a page reads the
    /// hours holding its rows, not every hour holding that duration.
    #[tokio::test]
    async fn tied_durations_read_only_the_hours_of_the_page() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        // 100 hours of three rows of 900 ms, with ids spread over the hours: the newest 25 are the
        // third row of the last 25 hours.
        let mut rows = Vec::new();
        for k in 0..3_i64 {
            for hour in 0..100_i64 {
                let end_us = (BASE_HOUR + hour) * crate::model::time::HOUR_US + k;
                rows.push((k * 100 + hour, "GET /", "prod", end_us, Some(900_000)));
            }
        }
        insert(&store, project.id, &rows).await;
        let q = TransactionQuery {
            window: PerfWindow {
                from_us: 0,
                to_us: (BASE_HOUR + 100) * crate::model::time::HOUR_US,
                ..PerfWindow::default()
            },
            sort: TransactionSort::Slowest,
            limit: 25,
            ..TransactionQuery::default()
        };
        let (found, hours_read) = store.slowest_rows(project.id, &q, 25).await.unwrap();
        let ids: Vec<i64> = found.iter().map(|t| t.id).collect();
        assert_eq!(ids, (276..=300).rev().collect::<Vec<_>>());
        assert_eq!(hours_read, 25);
    }

    /// A client's offset cannot make the list hold more than the slowest `MAX_SLOWEST_DEPTH` rows: the
    /// list ends there, however far the page asks.
    #[tokio::test]
    async fn the_list_ends_at_its_depth_whatever_the_offset() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        let end_us = BASE_HOUR * crate::model::time::HOUR_US;
        store
            .execute_raw(&format!(
                "INSERT INTO transactions (project_id, trace_id, span_id, name, end_time, duration_us, source, received_at)
                 WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
                 SELECT {}, printf('%032x', i), printf('%016x', i), 'GET /', {end_us} + i, i, 'transaction', 0 FROM n",
                MAX_SLOWEST_DEPTH + 5,
                project.id.value()
            ))
            .await;
        let page = |offset: u32| TransactionQuery {
            window: PerfWindow {
                from_us: 0,
                to_us: end_us + 1_000_000_000,
                ..PerfWindow::default()
            },
            sort: TransactionSort::Slowest,
            limit: 25,
            offset,
            ..TransactionQuery::default()
        };
        let last = store
            .transactions(project.id, &page(MAX_SLOWEST_DEPTH as u32 - 10))
            .await
            .unwrap();
        assert_eq!(last.len(), 10);
        assert_eq!(last[9].duration_ms, Some(0.006), "the 10,000th slowest");
        for offset in [MAX_SLOWEST_DEPTH as u32, u32::MAX] {
            assert!(store
                .transactions(project.id, &page(offset))
                .await
                .unwrap()
                .is_empty());
        }
    }

    /// Each hour is read through the index of durations by hour, in its order, and its slowest found in
    /// the same index: no sort, no scan.
    #[tokio::test]
    async fn an_hour_is_read_in_duration_order_through_its_index() {
        let store = Store::open_in_memory().await.unwrap();
        for (by_endpoint, index) in [
            (
                false,
                "transactions_hour_duration (project_id=? AND <expr>=?)",
            ),
            (
                true,
                "transactions_endpoint_hour_duration (project_id=? AND name=? AND <expr>=?)",
            ),
        ] {
            let sql =
                super::super::perf_reads::transactions_sql(TransactionSort::Slowest, by_endpoint);
            let mut params = super::super::perf_reads::list_params();
            params.push(BASE_HOUR.into());
            let params = libsql::params::Params::Positional(params);
            let plan = store.query_plan(&sql, params).await;
            assert_eq!(
                plan,
                [format!("SEARCH transactions USING INDEX {index}")],
                "{by_endpoint}"
            );
            let mut params: Vec<libsql::Value> = vec![1.into(), 0.into(), BASE_HOUR.into()];
            params.extend(by_endpoint.then(|| "GET /".into()));
            let params = libsql::params::Params::Positional(params);
            let plan = store.query_plan(&hours_sql(by_endpoint), params).await;
            let seek = format!("INDEX {index}");
            assert!(
                plan.iter().any(|l| l.ends_with(&seek)),
                "{by_endpoint} {plan:#?}"
            );
            assert!(
                !plan
                    .iter()
                    .any(|l| l.contains("SCAN transactions") || l.contains("TEMP B-TREE")),
                "{by_endpoint} {plan:#?}"
            );
        }
    }

    /// The rows, as the columns the lists read.
    async fn insert(
        store: &Store,
        project: ProjectId,
        rows: &[(i64, &str, &str, i64, Option<i64>)],
    ) {
        let conn = store.conn();
        for (n, name, environment, end_us, duration_us) in rows {
            conn.execute(
                "INSERT INTO transactions (id, project_id, trace_id, span_id, name, environment, start_time,
                     end_time, duration_us, source, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'transaction', 0)",
                libsql::params![
                    n + 1,
                    project.value(),
                    format!("{n:032x}"),
                    format!("{n:016x}"),
                    *name,
                    *environment,
                    duration_us.map(|d| end_us - d),
                    *end_us,
                    *duration_us
                ],
            )
            .await
            .unwrap();
        }
    }
}
