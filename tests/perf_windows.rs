//! Long windows read whole days from the daily rollups and the hours at their ends from the hourly ones:
//! the figures must be the same as if every transaction were counted one by one (counts and sums exactly,
//! percentiles within the sketch's 1%), for windows that start and end mid-day, for the endpoints' cells
//! and the project's, and for daily and project rollups filled from older ones when a database is
//! upgraded.

use splat::store::{PerfWindow, Store, TransactionRow, WriteBatch};
use splat_tests::stored::stored_transaction;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// 20 days of transactions every 37 minutes ending 3 h 20 min before `now`, durations 1..1000 ms.
fn data(now: i64, project: splat::protocol::ProjectId) -> Vec<TransactionRow> {
    (0..(20 * 24 * 60 / 37))
        .map(|i| {
            let end = now - 200 * 60_000_000 - i * 37 * 60_000_000;
            let ms = 1 + (i * 7_919) % 1000;
            let name = format!("GET /e{}", i % 2);
            stored_transaction(project, i as u64, &name, "production", end, ms * 1000)
        })
        .collect()
}

/// Count, sum and nearest-rank p95 of one endpoint's durations (every endpoint's with `None`) in the hours
/// a window touches.
fn exact(rows: &[TransactionRow], name: Option<&str>, window: &PerfWindow) -> (i64, f64, f64) {
    let (first, last) = (
        window.from_us.div_euclid(HOUR_US),
        window.to_us.div_euclid(HOUR_US),
    );
    let mut ms: Vec<f64> = rows
        .iter()
        .filter(|t| name.is_none_or(|n| t.record.name == n))
        .filter(|t| (first..=last).contains(&t.end_us.div_euclid(HOUR_US)))
        .map(|t| (t.record.root.end_us.unwrap() - t.record.root.start_us.unwrap()) as f64 / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let rank = (0.95 * ms.len() as f64).ceil() as usize;
    (ms.len() as i64, ms.iter().sum(), ms[rank - 1])
}

async fn check(
    store: &Store,
    rows: &[TransactionRow],
    project: splat::protocol::ProjectId,
    window: &PerfWindow,
) {
    let overview = store.perf_overview(project, window).await.unwrap();
    assert_eq!(overview.endpoints.len(), 2);
    let names: Vec<String> = overview.endpoints.iter().map(|s| s.name.clone()).collect();
    let cells = store.endpoint_cells(project, window, &names).await.unwrap();
    for ranked in &overview.endpoints {
        let stats = cells.stats(&ranked.name);
        let (count, sum, p95) = exact(rows, Some(&stats.name), window);
        // Ranked by its sums, then its figures from its own cells: the same counts and time.
        for (count_got, sum_got) in [
            (ranked.count, ranked.total_ms),
            (stats.count, stats.total_ms),
        ] {
            assert_eq!(count_got, count, "{}", stats.name);
            assert!(
                (sum_got - sum).abs() < 1e-6 * sum,
                "{} {sum_got} vs {sum}",
                stats.name
            );
        }
        assert_within_a_percent(stats.p95_ms, p95, &stats.name);
        // Its chart's series: every transaction once, a long window's whole days a point each.
        let series = store
            .perf_series(project, window, Some(&stats.name))
            .await
            .unwrap();
        assert_eq!(series.iter().map(|s| s.stats.count).sum::<i64>(), count);
        if window.to_us - window.from_us > splat::store::DAILY_AFTER_US {
            let hours = (window.to_us - window.from_us) / HOUR_US;
            assert!(series.len() < hours as usize / 4, "{} points", series.len());
        }
    }
    // The project's own cells: every transaction of the window, percentiles over all of them.
    let (count, sum, p95) = exact(rows, None, window);
    let totals = store.perf_totals(project, window, None).await.unwrap();
    assert_eq!(overview.totals, totals);
    assert_eq!(totals.count, count);
    assert!(
        (totals.total_ms - sum).abs() < 1e-6 * sum,
        "{} vs {sum}",
        totals.total_ms
    );
    assert_within_a_percent(totals.p95_ms, p95, "the project");
    let hours = store.perf_hours(project, window, None).await.unwrap();
    assert_eq!(hours.iter().map(|h| h.stats.count).sum::<i64>(), count);
}

fn assert_within_a_percent(got: Option<f64>, exact: f64, what: &str) {
    let got = got.unwrap();
    assert!(
        (got - exact).abs() <= 0.01 * exact,
        "{what}: p95 {got} vs exact {exact}"
    );
}

#[tokio::test]
async fn long_windows_from_daily_cells_agree_with_every_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("splat.db");
    let store = Store::open(&path).await.unwrap();
    let project = store.ensure_default_project().await.unwrap().id;
    // Mid-day, so that windows start and end inside days.
    let now = 1_767_225_600_000_000 + 14 * HOUR_US + 25 * 60_000_000;
    let rows = data(now, project);
    for chunk in rows.chunks(500) {
        let batch = WriteBatch {
            transactions: chunk.to_vec(),
            ..WriteBatch::default()
        };
        splat::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
    }
    let midnight = now.div_euclid(DAY_US) * DAY_US;
    let windows = [
        PerfWindow {
            from_us: now - 30 * DAY_US,
            to_us: now,
            ..PerfWindow::default()
        },
        PerfWindow {
            from_us: now - 10 * DAY_US - 5 * HOUR_US,
            to_us: now - 2 * DAY_US,
            ..PerfWindow::default()
        },
        PerfWindow {
            from_us: now - 6 * DAY_US,
            to_us: now,
            ..PerfWindow::default()
        },
        // Starting at midnight and ending in the first hour of a day: the edges of the daily cover.
        PerfWindow {
            from_us: midnight - 12 * DAY_US,
            to_us: midnight - DAY_US + 30 * 60_000_000,
            ..PerfWindow::default()
        },
        PerfWindow {
            from_us: midnight - 12 * DAY_US - HOUR_US,
            to_us: midnight - DAY_US - 1,
            ..PerfWindow::default()
        },
    ];
    for window in &windows {
        check(&store, &rows, project, window).await;
    }
    let daily = libsql::Builder::new_local(&path)
        .build()
        .await
        .unwrap()
        .connect()
        .unwrap();
    let mut n = daily
        .query("SELECT count(*) FROM transaction_rollups_daily", ())
        .await
        .unwrap();
    assert_eq!(
        n.next().await.unwrap().unwrap().get::<i64>(0).unwrap(),
        2 * 21,
        "a cell per endpoint and day"
    );
    drop(n);

    // A database from before daily rollups: the upgrade fills them from the hourly cells. And one from
    // before project rollups: the upgrade fills them from the endpoints' cells.
    let mut store = store;
    for undo in [
        "DROP TABLE transaction_rollups_daily; DELETE FROM schema_migrations WHERE version = 14;",
        "DROP TABLE project_rollups; DROP TABLE project_rollups_daily;
         DELETE FROM schema_migrations WHERE version = 38;",
    ] {
        daily.execute_batch(undo).await.unwrap();
        drop(store);
        store = Store::open(&path).await.unwrap();
        for window in &windows {
            check(&store, &rows, project, window).await;
        }
    }
}
