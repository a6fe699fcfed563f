//! Performance pages over a large project. Run: `cargo bench -p splat-tests --bench perf_pages`
//! (option `--transactions N`, default 1,000,000).
//!
//! For the curves over data sizes: `--data DIR` keeps the data set in DIR and reuses it when it already
//! holds N transactions (building 10 M takes a while; the timing can then run alone on a quiet machine),
//! and `--build-only` stops after building it. `--defer-indexes` drops the [`DEFERRED`] indexes while the
//! rows are written and builds them once at the end (how the 100 M set was made; see there why).
//! `--written B` then measures, instead of the pages, the bytes the commit path writes per transaction at
//! this data size in batches of B ([`bytes_written_per_transaction`]).
//! `--keep-transactions K` builds the rollups of all N transactions but keeps only the K newest rows
//! (each batch is committed whole, then its rows past the K-th deleted): the rollup pages of a data size
//! whose rows would not fit on the disk. The pages that read rows are then skipped ([`ROW_PAGES`]), except
//! the performance pages' list of the newest 50, which the kept rows serve as the whole table would.
//!
//! Stores N transactions spread over the last 30 days (50 endpoints, 3 environments, figures that vary,
//! an N+1 on some endpoints) through the processor's own commit path, which also fills the hourly rollups,
//! then requests each performance page through the web router, warm, and prints p50/p95 per page and
//! the CPU time per request.
//! Payloads are left out (the pages never read them), so the database is smaller than a real one.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use splat::model::HttpFacts;
use splat::perf::transaction::TransactionPerf;
use splat::protocol::ProjectId;
use splat::store::{Store, TransactionRow, WriteBatch};
use splat_tests::stored::stored_transaction;

mod common;
use common::{arg, data_set_dir, peak_rss_mb, print_page_times, web_router};

const DAY_US: i64 = 86_400_000_000;

/// The indexes of durations. Before migration 36 their keys (durations) arrived in no order: each commit
/// of 10,000 rows dirtied a page of each per row, and the log and its checkpoints rewrote them all
/// (measured at 8 M rows: 20 KB written per transaction, 13,000 transactions/s, falling, so 100 M would
/// have taken hours). Now they are by hour, but built at the end they are still written once, sorted, and
/// their pages packed.
const DEFERRED: [&str; 2] = [
    "transactions_hour_duration",
    "transactions_endpoint_hour_duration",
];

/// The pages that read transactions beyond the newest few, skipped under `--keep-transactions`.
const ROW_PAGES: [&str; 3] = ["endpoint", "N+1", "dashboard"];

fn transaction(project: ProjectId, i: usize, n: usize, now_us: i64) -> TransactionRow {
    let endpoint = i % 50;
    // Deterministic spread: a skewed duration per endpoint and request, times over 30 days.
    let duration_us = 5_000 + ((i * 7_919) % 200_000) as i64 * (1 + endpoint as i64 % 4);
    // In i128: i × 30 days in µs passes i64 at 3.5 M transactions.
    let end_us = now_us - (i as i128 * 30 * DAY_US as i128 / n as i128) as i64;
    let name = format!("GET /api/endpoint-{endpoint}");
    let environment = ["production", "staging", "dev"][i % 3];
    let mut t = stored_transaction(project, i as u64, &name, environment, end_us, duration_us);
    let r = &mut t.record;
    r.release = Some(format!("shop@1.{}", i * 10 / n));
    r.platform = Some("python".into());
    r.sdk_name = Some("sentry.python".into());
    r.server_name = Some("web-1".into());
    r.http = HttpFacts {
        method: Some("GET".into()),
        url: Some(format!("https://shop.example/api/endpoint-{endpoint}")),
        status: Some(if i.is_multiple_of(97) { 500 } else { 200 }),
    };
    let n_plus_one = endpoint % 10 == 3 && i.is_multiple_of(3);
    t.perf = TransactionPerf {
        db_time_ms: Some(duration_us as f64 / 3000.0),
        view_time_ms: Some(duration_us as f64 / 5000.0),
        query_count: Some(3 + (i % 20) as i32),
        has_n_plus_one: Some(n_plus_one),
        n_plus_one_wasted_ms: Some(if n_plus_one { 40.0 } else { 0.0 }),
        span_count: Some(30),
        spans_truncated: Some(false),
        query_patterns: Vec::new(),
    };
    t
}

/// Bytes written to the database file and its journal per transaction, over [`WRITTEN_BATCHES`] batches
/// of `batch` new transactions (after one more, uncounted): the delete journal, as on EFS; ending now, one
/// a millisecond, as traffic arrives; with ids of full entropy, which land anywhere in the id index, where
/// the data set's own (sequential) ids all sort together. Counted by the kernel: `wchar` of
/// `/proc/self/io`, every byte passed to `write`/`pwrite`, which is what EFS bills.
async fn bytes_written_per_transaction(
    path: &std::path::Path,
    project: ProjectId,
    n: usize,
    batch: usize,
) -> f64 {
    let store = Store::open_writer(
        path,
        Some(splat::store::Journal::Delete),
        splat::store::Migrate::All,
    )
    .await
    .unwrap();
    let now_us = chrono::Utc::now().timestamp_micros();
    let mut written = 0;
    for round in 0..=WRITTEN_BATCHES {
        let transactions = (0..batch)
            .map(|k| {
                let seq = round * batch + k;
                let mut t = transaction(project, n + seq, n, now_us);
                let shift =
                    now_us - ((WRITTEN_BATCHES + 1) * batch - seq) as i64 * 1_000 - t.end_us;
                let root = &mut t.record.root;
                (root.start_us, root.end_us) = (
                    root.start_us.map(|s| s + shift),
                    root.end_us.map(|e| e + shift),
                );
                t.end_us += shift;
                t.received_at_us += shift;
                let id = |salt: u64| {
                    format!(
                        "{:016x}{:016x}",
                        mix(now_us as u64 ^ salt ^ seq as u64),
                        mix(seq as u64 ^ !salt)
                    )
                };
                t.event_id = Some(id(1));
                t.record.root.trace_id = id(2);
                t.record.root.span_id = id(3)[..16].to_owned();
                t
            })
            .collect();
        let batch = WriteBatch {
            transactions,
            ..WriteBatch::default()
        };
        let before = written_bytes();
        splat::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
        if round > 0 {
            written += written_bytes() - before;
        }
    }
    written as f64 / (WRITTEN_BATCHES * batch) as f64
}

const WRITTEN_BATCHES: usize = 10;

/// SplitMix64's finalizer: spreads a counter over all 64 bits.
fn mix(x: u64) -> u64 {
    let x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A plain connection beside the store's, for the schema changes the store has no call for.
async fn connect(db: &std::path::Path) -> libsql::Connection {
    libsql::Builder::new_local(db)
        .build()
        .await
        .unwrap()
        .connect()
        .unwrap()
}

/// How many transactions the daily rollups count: the data set's size, also when rows were not kept.
async fn rolled_up(db: &std::path::Path) -> usize {
    let conn = connect(db).await;
    let mut rows = conn
        .query(
            "SELECT coalesce(sum(count), 0) FROM transaction_rollups_daily",
            (),
        )
        .await
        .unwrap();
    let row = rows.next().await.unwrap().unwrap();
    row.get::<i64>(0).unwrap() as usize
}

/// The rows kept under `--keep-transactions`: the first `keep` stored (the newest of the data set, which
/// is built newest first).
struct Kept {
    conn: libsql::Connection,
    last_id: i64,
}

impl Kept {
    async fn after(db: &std::path::Path, keep: usize) -> Kept {
        let conn = connect(db).await;
        let mut rows = conn
            .query(
                "SELECT id FROM transactions ORDER BY id LIMIT 1 OFFSET ?1",
                [keep as i64 - 1],
            )
            .await
            .unwrap();
        let last_id = rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap();
        drop(rows);
        Kept { conn, last_id }
    }

    /// Deletes every row stored after the kept ones, leaving their rollups.
    async fn forget_the_rest(&self) {
        self.conn
            .execute("DELETE FROM transactions WHERE id > ?1", [self.last_id])
            .await
            .unwrap();
    }
}

/// Drops the [`DEFERRED`] indexes and returns the statements that make them again.
async fn drop_indexes(db: &std::path::Path) -> Vec<String> {
    let conn = connect(db).await;
    let mut statements = Vec::new();
    // Read to the end before dropping: a statement still open on the connection would lock the schema.
    let mut rows = conn
        .query(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name IN (?1, ?2)",
            DEFERRED,
        )
        .await
        .unwrap();
    while let Some(row) = rows.next().await.unwrap() {
        statements.push(row.get::<String>(0).unwrap());
    }
    drop(rows);
    assert_eq!(
        statements.len(),
        DEFERRED.len(),
        "a deferred index is missing: a deferred build was cut short; remove the data set and build again"
    );
    for name in DEFERRED {
        conn.execute(&format!("DROP INDEX {name}"), ())
            .await
            .unwrap();
    }
    statements
}

async fn create_indexes(db: &std::path::Path, statements: &[String]) {
    let conn = connect(db).await;
    for sql in statements {
        conn.execute(sql, ()).await.unwrap();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (dir, _guard) = data_set_dir();
        let store = Store::open(&dir.join("splat.db")).await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        let n = arg("--transactions", 1_000_000);
        let now_us = chrono::Utc::now().timestamp_micros();
        let start = Instant::now();
        let keep = arg("--keep-transactions", usize::MAX);
        let rolled_up = rolled_up(&dir.join("splat.db")).await;
        let to_build = if rolled_up >= n { 0 } else { n };
        let defer = to_build > 0 && std::env::args().any(|a| a == "--defer-indexes");
        let deferred = if defer {
            drop_indexes(&dir.join("splat.db")).await
        } else {
            Vec::new()
        };
        let mut kept = None;
        // Ranges, not a list of every index: 100 M of those held 800 MB.
        for first in (0..to_build).step_by(10_000) {
            let batch = WriteBatch {
                transactions: (first..(first + 10_000).min(to_build))
                    .map(|i| transaction(project.id, i, n, now_us))
                    .collect(),
                ..WriteBatch::default()
            };
            splat::process::batch::commit(&store, &batch, None)
                .await
                .unwrap();
            if first + 10_000 > keep {
                let kept = match &kept {
                    Some(kept) => kept,
                    None => kept.insert(Kept::after(&dir.join("splat.db"), keep).await),
                };
                kept.forget_the_rest().await;
            }
        }
        if defer {
            let index_start = Instant::now();
            create_indexes(&dir.join("splat.db"), &deferred).await;
            println!(
                "deferred indexes built in {:.0} s",
                index_start.elapsed().as_secs_f64()
            );
        }
        println!(
            "data set: {} transactions, {} rollup cells in {:.0} s; database {:.0} MB",
            store.count("transactions").await.unwrap(),
            store.count("transaction_rollups").await.unwrap(),
            start.elapsed().as_secs_f64(),
            std::fs::metadata(dir.join("splat.db")).unwrap().len() as f64 / 1e6
        );
        if std::env::args().any(|a| a == "--build-only") {
            return;
        }
        if let Some(batch) = std::env::args().position(|a| a == "--written").map(|_| arg("--written", 100)) {
            let path = dir.join("splat.db");
            drop(store);
            let per_transaction = bytes_written_per_transaction(&path, project.id, n, batch).await;
            println!("bytes written per transaction in batches of {batch}: {per_transaction:.0}");
            return;
        }

        let web = web_router(&store, &dir).await;
        let slug = &project.slug;
        let pages = [
            ("performance, 24 h", format!("/projects/{slug}/performance?range=24h")),
            ("performance, 30 d", format!("/projects/{slug}/performance?range=30d")),
            ("performance, 7 d", format!("/projects/{slug}/performance?range=7d")),
            ("performance, 7 d, production", format!("/projects/{slug}/performance?range=7d&environment=production")),
            ("endpoint, 30 d", format!("/projects/{slug}/performance/endpoint?name=GET%20%2Fapi%2Fendpoint-3&range=30d")),
            ("endpoint, 30 d, slowest", format!("/projects/{slug}/performance/endpoint?name=GET%20%2Fapi%2Fendpoint-3&range=30d&sort=slowest")),
            ("endpoint, 24 h, slowest", format!("/projects/{slug}/performance/endpoint?name=GET%20%2Fapi%2Fendpoint-3&range=24h&sort=slowest")),
            ("N+1 worklist, 30 d", format!("/projects/{slug}/performance/n-plus-one?range=30d")),
            ("project dashboard", format!("/projects/{slug}")),
        ];
        // `--only TEXT`: just the pages whose name contains it (to profile one).
        let args: Vec<String> = std::env::args().collect();
        let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1));
        for (name, path) in pages {
            let rows_kept = keep >= n || !ROW_PAGES.iter().any(|p| name.contains(p));
            if rows_kept && only.is_none_or(|o| name.contains(o.as_str())) {
                print_page_times(&web, name, &path).await;
            }
        }
        println!("peak RSS of the bench process: {:.0} MB", peak_rss_mb());
    });
}
