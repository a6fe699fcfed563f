//! A lake of 30 days at scale for stock DuckDB: `--transactions` transactions (3,300,000: ~100 M spans) of
//! 30 spans each, spread evenly over the 30 days before today, written straight through the processor's lake
//! writer (`LakeWriter::write` and `catalog::register`, files of 5,000 transactions as a busy processor's
//! window would leave them) — going through the processor would take hours on 2 cores — then the daily
//! compaction, snapshot expiry and deletion, as `splat retention run` does them. Prints files and bytes per
//! table and day; `--keep` leaves the data folder for DuckDB (`tests/bench/lake_scale_duckdb.py`). Run:
//! `cargo bench -p splat-tests --bench lake_scale -- --transactions 3300000 --keep`
//!
//! Retention at scale (issue 21, item 5): `--days 1 --spans 10` puts the transactions in yesterday with 10
//! spans each (the root, its middleware, view and template, six queries), `--per-file` sets how small the
//! written files are (2: the soak's hundreds of thousands of tiny files), and `--no-compact --keep` leaves
//! the lake uncompacted for `splat retention run --data-dir <the kept folder>` to compact and expire.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use splat::blob::{BlobStore, LocalBlobStore};
use splat::lake::maintenance::Deadline;
use splat::lake::{catalog::CatalogDb, LakeFacts, LakeWriter, SpanFact, TransactionFact};
use splat::model::time::DAY_US;
use splat::store::Store;

mod common;
use common::{arg, cpu_seconds, data_dir, peak_rss_mb};

const ENDPOINTS: [&str; 8] = [
    "GET /api/orders",
    "GET /api/orders/{id}",
    "GET /api/users/{id}",
    "POST /checkout",
    "GET /search",
    "GET /",
    "GET /api/cart",
    "POST /login",
];

/// What the 30 spans of a transaction do, per endpoint: (op, normalized description), the root first.
fn span_shapes(endpoint: usize) -> Vec<(&'static str, String)> {
    let table = [
        "orders", "users", "items", "carts", "sessions", "stock", "prices", "reviews",
    ][endpoint];
    let mut shapes = vec![
        ("http.server", ENDPOINTS[endpoint].to_owned()),
        (
            "middleware.django",
            "django.middleware.common.CommonMiddleware".to_owned(),
        ),
        ("view.render", format!("{table}_view")),
        ("template.render", format!("{table}/list.html")),
    ];
    for i in 0..20 {
        // 12 repeats of one query (an N+1) and 8 distinct ones.
        let q = if i < 12 {
            format!("SELECT * FROM {table}_items WHERE {table}_id = %s")
        } else {
            format!(
                "SELECT id, c{i} FROM {table} WHERE owner_id = %s ORDER BY created DESC LIMIT %s"
            )
        };
        shapes.push(("db", q));
    }
    shapes.push((
        "http.client",
        format!("GET https://api.example.com/{table}/*"),
    ));
    for i in 0..3 {
        shapes.push(("cache.get", format!("{table}:*:{i}")));
    }
    shapes.push(("db.redis", "GET session:*".to_owned()));
    shapes.push(("db.redis", "SET session:*".to_owned()));
    shapes
}

/// A deterministic pseudo-random stream (splitmix64), so runs are comparable.
fn mix(n: u64) -> u64 {
    let mut x = n ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Transaction `n` of the run and its spans (one per shape), at `start_us`; ids of real entropy (uuid4, 64-bit span ids).
fn transaction(
    n: u64,
    start_us: i64,
    shapes: &[Vec<(&'static str, String)>],
) -> (TransactionFact, Vec<SpanFact>) {
    let endpoint = (mix(n) % ENDPOINTS.len() as u64) as usize;
    let trace = format!("{:016x}{:016x}", mix(n << 8 | 1), mix(n << 8 | 2));
    let id = |i: u64| format!("{:016x}", mix(n << 8 | (i + 3)));
    let shapes = &shapes[endpoint];
    // A skewed latency: most requests 20–200 ms, a tail to seconds.
    let r = mix(n << 8 | 200);
    let total_ms = 20.0
        + (r % 180) as f64
        + if r.is_multiple_of(50) {
            (r % 3000) as f64
        } else {
            0.0
        };
    let mut spans = Vec::with_capacity(shapes.len());
    let mut t = start_us;
    for (i, (op, description)) in shapes.iter().enumerate() {
        let parent = match i {
            0 => None,
            1 => Some(id(0)),
            2 => Some(id(1)),
            _ => Some(id(2)),
        };
        let duration_ms = if i == 0 {
            total_ms
        } else {
            0.2 + (mix(n << 8 | (i as u64 + 100)) % 4000) as f64 / 1000.0
        };
        spans.push(SpanFact {
            project_id: 1,
            start_us: t,
            trace_id: trace.clone(),
            transaction_id: Some(id(0)),
            span_id: id(i as u64),
            parent_span_id: parent,
            op: Some((*op).to_owned()),
            description: Some(description.clone()),
            group_hash: Some(splat::perf::transaction::group_hash(Some(op), description)),
            status: Some("ok".to_owned()),
            duration_ms: Some(duration_ms),
            depth: Some(i.min(3) as i32),
            sequence: Some(i as i32),
        });
        t += 100;
    }
    let tx = TransactionFact {
        project_id: 1,
        timestamp_us: start_us + (total_ms * 1000.0) as i64,
        start_us: Some(start_us),
        trace_id: trace,
        span_id: id(0),
        name: ENDPOINTS[endpoint].to_owned(),
        op: Some("http.server".to_owned()),
        status: Some("ok".to_owned()),
        duration_ms: Some(total_ms),
        environment: Some("production".to_owned()),
        release: Some(format!("shop@1.{}", n / 500_000)),
        server_name: Some(format!("web-{}", n % 4)),
        platform: Some("python".to_owned()),
        sdk_name: Some("sentry.python".to_owned()),
        http_method: Some(
            ENDPOINTS[endpoint]
                .split(' ')
                .next()
                .unwrap_or("GET")
                .to_owned(),
        ),
        http_url: Some(
            ENDPOINTS[endpoint]
                .split(' ')
                .nth(1)
                .unwrap_or("/")
                .to_owned(),
        ),
        http_status: Some(if r.is_multiple_of(100) { 500 } else { 200 }),
        db_time_ms: Some(total_ms * 0.6),
        view_time_ms: Some(total_ms * 0.3),
        query_count: Some(20),
        has_n_plus_one: Some(true),
        n_plus_one_wasted_ms: Some(total_ms * 0.2),
        span_count: Some(shapes.len() as i32),
        spans_truncated: Some(false),
        source: "transaction",
    };
    (tx, spans)
}

/// Live files, rows and bytes of a table, and files per day.
async fn layout(store: &Store, table: &splat::lake::TableDef) -> (usize, i64, i64, f64) {
    let mut rows = store
        .catalog_connection()
        .query(
            "SELECT count(*), sum(record_count), sum(file_size_bytes), count(DISTINCT substr(path, 1, instr(path, '.') - 34))
             FROM ducklake_data_file WHERE table_id = ?1 AND end_snapshot IS NULL",
            [table.id],
        )
        .await
        .unwrap();
    let row = rows.next().await.unwrap().unwrap();
    let (files, records, bytes, days): (i64, i64, i64, i64) = (
        row.get(0).unwrap(),
        row.get(1).unwrap(),
        row.get(2).unwrap(),
        row.get(3).unwrap(),
    );
    (
        files as usize,
        records,
        bytes,
        files as f64 / days.max(1) as f64,
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (dir, _guard) = data_dir();
        let store = Store::open(&dir.join("splat.db")).await.unwrap();
        store.set_lake_data_path(&format!("{}/lake/", dir.display())).await.unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(&dir));
        let writer = LakeWriter::new(blobs.clone());
        let n = arg("--transactions", 3_300_000) as u64;
        let per_file = arg("--per-file", 5_000) as u64;
        let days = arg("--days", 30) as i64;
        let per_transaction = arg("--spans", 30);
        let today = chrono::Utc::now().timestamp_micros().div_euclid(DAY_US) * DAY_US;
        let first_day = today - days * DAY_US;
        let shapes: Vec<_> = (0..ENDPOINTS.len())
            .map(|e| span_shapes(e).into_iter().take(per_transaction).collect::<Vec<_>>())
            .collect();
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let mut done = 0;
        while done < n {
            let count = per_file.min(n - done);
            let mut facts = LakeFacts::default();
            for k in done..done + count {
                // Evenly over the 30 days, in time order.
                let at = first_day + (k as i128 * (days * DAY_US) as i128 / n as i128) as i64;
                let (tx, spans) = transaction(k, at, &shapes);
                facts.transactions.push(tx);
                facts.spans.extend(spans);
            }
            let files = writer.write(&facts).await.unwrap();
            let conn = store.catalog_connection();
            let mut tx = conn
                .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
                .await
                .unwrap();
            splat::lake::catalog::register(&mut tx, &files).await.unwrap();
            tx.commit().await.unwrap();
            done += count;
        }
        let spans: u64 = (0..n).map(|k| shapes[(mix(k) % ENDPOINTS.len() as u64) as usize].len() as u64).sum();
        println!(
            "written: {n} transactions, {spans} spans in {:.0} s wall, {:.0} s CPU; peak RSS {:.0} MB",
            start.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            peak_rss_mb()
        );
        if std::env::args().any(|a| a == "--no-compact") {
            return;
        }
        let (start, cpu) = (Instant::now(), cpu_seconds());
        for table in [&splat::lake::tables::TRANSACTIONS, &splat::lake::tables::SPANS] {
            // Compaction runs until nothing is left to merge, as daily runs would.
            while splat::lake::maintenance::compact(&store, &blobs, table, today, Deadline::NONE).await.unwrap().0 > 0 {}
        }
        let cutoff = splat::lake::columns::format_timestamp(chrono::Utc::now().timestamp_micros() + 1_000_000);
        splat::lake::maintenance::expire_snapshots(&store, &cutoff).await.unwrap();
        let deleted = splat::lake::maintenance::delete_scheduled(&store, blobs.as_ref(), Deadline::NONE).await.unwrap();
        println!(
            "compacted in {:.0} s wall, {:.0} s CPU ({deleted} files deleted); peak RSS {:.0} MB",
            start.elapsed().as_secs_f64(),
            cpu_seconds() - cpu,
            peak_rss_mb()
        );
        for (table, rows) in [(&splat::lake::tables::TRANSACTIONS, n), (&splat::lake::tables::SPANS, spans)] {
            let (files, records, bytes, per_day) = layout(&store, table).await;
            assert_eq!(records as u64, rows);
            println!(
                "  {}: {files} files ({per_day:.1} per day), {:.1} MB, {:.1} B per row",
                table.name,
                bytes as f64 / 1e6,
                bytes as f64 / rows as f64
            );
        }
    });
}
