//! Slowest-first transaction lists, read hour by hour.
//!
//! Durations are indexed after the hour a transaction ended (migration 36), so that new transactions land
//! together in the index instead of on a page each. A list of the window's slowest therefore cannot walk
//! one index in duration order; it reads hours, each in duration order, and needs only the hours that may
//! hold one of the `offset + limit` slowest. The same index tells each hour's slowest in one seek: hours
//! are read slowest first, and the reading stops at the first whose slowest is faster than the last
//! transaction the page needs. That reads the hours holding the page's transactions and the few whose
//! slowest comes close.

use std::cmp::Ordering;

use crate::protocol::ProjectId;

use super::perf_reads::{TransactionQuery, TransactionSummary};
use super::{Result, Store};

/// How deep a slowest-first list goes: the 10,000 slowest transactions of a window (400 pages of 25).
pub const MAX_SLOWEST_DEPTH: usize = 10_000;

/// Each hour of the window, as the statement's `(hour, slowest duration in µs)`: one seek to the end of
/// the hour's run in the index of durations by hour, so a 30-day window costs 720 seeks. The
/// hours are clipped to the project's first and last transactions, as a window may start at zero (and
/// a project without any has none).
fn hours_sql(by_endpoint: bool) -> String {
    let endpoint = if by_endpoint { "AND name = ?4" } else { "" };
    format!(
        "WITH RECURSIVE hours (h) AS (
             SELECT max(?2, (SELECT min(end_time) FROM transactions WHERE project_id = ?1) / 3600000000)
             UNION ALL
             SELECT h + 1 FROM hours
             WHERE h < min(?3, (SELECT max(end_time) FROM transactions WHERE project_id = ?1) / 3600000000)
         )
         SELECT h, (SELECT max(duration_us) FROM transactions
                    WHERE project_id = ?1 AND end_time / 3600000000 = h {endpoint})
         FROM hours WHERE h IS NOT NULL"
    )
}

impl Store {
    /// The page `q` asks for, slowest first (then the newest row first), the same as reading every
    /// transaction of the window in that order. Hours are read slowest first (each its slowest
    /// `offset + limit`), until the next hour's slowest is faster than the last transaction the page needs.
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
        let mut hours = self.slowest_per_hour(project, q).await?;
        // Slowest first; hours without a duration (or without transactions) last.
        hours.sort_by_key(|&(_, slowest)| std::cmp::Reverse(slowest));
        let mut found: Vec<TransactionSummary> = Vec::new();
        for (hour, slowest_us) in hours {
            // The page is full with transactions slower than any of this hour (and so of the rest).
            let last_needed = found.get(want - 1).and_then(|t| t.duration_ms);
            let slowest_ms = slowest_us.map(|us| us as f64 / 1000.0);
            if last_needed.is_some_and(|d| slowest_ms.is_none_or(|s| d > s)) {
                break;
            }
            let rows = self.transaction_rows(project, q, want as i64, 0, Some(hour));
            found.extend(rows.await?);
            found.sort_by(slowest_first);
            found.truncate(want);
        }
        Ok(found.split_off(offset.min(found.len())))
    }

    /// The window's hours (numbers of `end_time / 3600000000`), each with the slowest duration of `q`'s
    /// endpoint (or project) in it: an upper bound for `q`'s other filters.
    async fn slowest_per_hour(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
    ) -> Result<Vec<(i64, Option<i64>)>> {
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
            hours.push((row.get(0)?, row.get(1)?));
        }
        Ok(hours)
    }
}

/// Slowest first, transactions without a duration last; then the newest row first (what the statement
/// orders by within an hour).
fn slowest_first(a: &TransactionSummary, b: &TransactionSummary) -> Ordering {
    let duration = |t: &TransactionSummary| t.duration_ms.unwrap_or(f64::NEG_INFINITY);
    duration(b)
        .total_cmp(&duration(a))
        .then_with(|| b.id.cmp(&a.id))
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
                !plan.iter().any(|l| l.contains("SCAN transactions")),
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
