//! Transaction processing: throughput, memory and lake bytes. Run:
//! `cargo bench -p splat-tests --bench transactions -- --transactions 20000`
//!
//! Transactions in the Python SDK's shape with 30 spans each (a request span tree: middleware, view,
//! template, 20 SQL queries with literals of which 12 repeat per row — an N+1 —, HTTP and cache calls) are
//! queued, then drained in batches of 500: span tree, SQL normalization, N+1 detection, the database row,
//! hourly rollups with latency sketches, and the lake files (transactions and spans parquet) registered in
//! the catalog, one commit per batch.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use splat::process::runner::drain;
use splat::process::Processor;
use splat::protocol::ProjectId;
use splat::queue::{EnvelopeRef, LocalQueue, Queue, QueueMessage};
use splat::store::Store;

mod common;
use common::{arg, cpu_seconds, data_dir, peak_rss_mb};

const ENDPOINTS: [&str; 8] = [
    "/api/orders",
    "/api/orders/{id}",
    "/api/users/{id}",
    "/checkout",
    "/search",
    "/",
    "/api/cart",
    "/login",
];

/// A deterministic pseudo-random stream, so runs are comparable.
fn mix(n: usize) -> u64 {
    let mut x = n as u64 ^ 0x9e37_79b9_7f4a_7c15;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A uuid4 as an SDK sends it (32 hex digits, 122 random bits): ids of real entropy, since the lake's bytes
/// per row are mostly ids and a counter would compress better than real ids do.
fn uuid4(n: usize) -> String {
    let random = (u128::from(mix(n)) << 64) | u128::from(mix(n + (1 << 40)));
    let version_and_variant = (0x4 << 76) | (0x8 << 60);
    let masked = random & !((0xf << 76) | (0xc << 60));
    format!("{:032x}", masked | version_and_variant)
}

fn transaction(n: usize) -> Value {
    let r = mix(n);
    let start = 1_764_000_000.0 + n as f64 * 0.01;
    // Span ids are 64 random bits, as SDKs make them.
    let (trace, root) = (uuid4(n * 64 + 1), format!("{:016x}", mix(n * 64 + 2)));
    let total = 0.02 + (r % 400) as f64 / 1000.0;
    let mut spans = Vec::with_capacity(30);
    let mut t = start + 0.001;
    let mut span =
        |i: usize, parent: &str, op: &str, description: String, dur: f64, t: &mut f64| {
            let id = format!("{:016x}", mix(n * 64 + i + 3));
            spans.push(
                json!({"span_id": id, "parent_span_id": parent, "trace_id": trace, "op": op,
            "description": description, "start_timestamp": *t, "timestamp": *t + dur,
            "data": {"db.system": "postgresql"}}),
            );
            *t += dur;
            id
        };
    let middleware = span(
        0,
        &root,
        "middleware.django",
        "django.middleware.common.CommonMiddleware".into(),
        0.0005,
        &mut t,
    );
    let view = span(
        1,
        &middleware,
        "view.render",
        "OrderListView".into(),
        0.001,
        &mut t,
    );
    span(
        2,
        &view,
        "db",
        format!(
            "SELECT id, total FROM orders WHERE user_id = {} ORDER BY created DESC LIMIT 20",
            r % 5000
        ),
        0.002,
        &mut t,
    );
    for i in 0..12 {
        span(
            3 + i,
            &view,
            "db",
            format!(
                "SELECT * FROM order_items WHERE order_id = {}",
                r % 100_000 + i as u64
            ),
            0.0015,
            &mut t,
        );
    }
    for i in 0..7 {
        span(15 + i, &view, "db", format!("UPDATE stock SET reserved = reserved + {} WHERE sku = 'SKU-{}' AND warehouse IN (1, 2, 3)", i, r % 977), 0.001, &mut t);
    }
    span(
        22,
        &view,
        "cache.get",
        format!("user:{}:cart", r % 5000),
        0.0002,
        &mut t,
    );
    span(
        23,
        &view,
        "http.client",
        format!(
            "GET https://payments.example/v1/charges/{}?expand=customer",
            r % 90_000
        ),
        0.004,
        &mut t,
    );
    span(
        24,
        &view,
        "template.render",
        "orders/list.html".into(),
        0.002,
        &mut t,
    );
    for i in 0..5 {
        span(
            25 + i,
            &view,
            "db.redis",
            format!("GET session:{:x}", mix(i)),
            0.0001,
            &mut t,
        );
    }
    json!({
        "type": "transaction", "event_id": uuid4(n * 64 + 63),
        "transaction": ENDPOINTS[n % ENDPOINTS.len()], "platform": "python",
        "start_timestamp": start, "timestamp": start + total, "environment": "production",
        "release": format!("shop@1.{}", n / 5000), "server_name": "web-1",
        "request": {"method": "GET", "url": "https://shop.example/api/orders?page=2"},
        "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server", "status": "ok"},
                     "response": {"status_code": if r.is_multiple_of(50) { 500 } else { 200 }}},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
        "spans": spans,
    })
}

fn message(project: ProjectId, tx: &Value) -> Vec<u8> {
    let payload = tx.to_string();
    let envelope = format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        tx["event_id"].as_str().unwrap_or_default(),
        payload.len()
    );
    QueueMessage {
        project_id: project,
        event_id: None,
        received_at_us: 1_764_000_000_000_000,
        envelope: EnvelopeRef::Inline(envelope.into()),
    }
    .encode()
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            files.push(path);
        }
    }
    files
}

/// Compressed bytes per column over these parquet files, largest first, and what the rest of the files
/// (page-less headers, footers) takes.
fn column_bytes(files: &[std::path::PathBuf]) -> (Vec<(String, u64)>, u64) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut columns: Vec<(String, u64)> = Vec::new();
    let mut footers = 0;
    for path in files {
        let len = std::fs::metadata(path).unwrap().len();
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        let mut data = 0;
        for group in reader.metadata().row_groups() {
            for (i, column) in group.columns().iter().enumerate() {
                let size = column.compressed_size() as u64;
                data += size;
                match columns.get_mut(i) {
                    Some(c) => c.1 += size,
                    None => columns.push((column.column_descr().name().to_owned(), size)),
                }
            }
        }
        footers += len - data;
    }
    columns.sort_by_key(|c| std::cmp::Reverse(c.1));
    (columns, footers)
}

/// Bytes per row of a table's files, in all and by column.
fn print_bytes(table: &str, files: &[std::path::PathBuf], rows: usize) {
    let (columns, footers) = column_bytes(files);
    let per_row = |b: u64| b as f64 / rows as f64;
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let top: Vec<String> = columns
        .iter()
        .take(6)
        .map(|(name, b)| format!("{name} {:.1}", per_row(*b)))
        .collect();
    println!(
        "  {table}: {:.1} B per row in {} files; by column: {}, the other {} columns {:.1}; headers and footers {:.1}",
        per_row(total),
        files.len(),
        top.join(", "),
        columns.len().saturating_sub(6),
        per_row(columns.iter().skip(6).map(|c| c.1).sum()),
        per_row(footers)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (dir, _guard) = data_dir();
        let store = Store::open(&dir.join("splat.db")).await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        let queue = LocalQueue::open(&dir.join("queue.db"), Duration::from_secs(600), 5).await.unwrap();
        let processor = Processor::new(store.clone(), Arc::new(splat::blob::LocalBlobStore::new(&dir)));
        let n = arg("--transactions", 20_000);
        for i in 0..n {
            queue.send(message(project, &transaction(i))).await.unwrap();
        }
        let rss_before = peak_rss_mb();
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let outcome = drain(&processor, &queue, 500).await.unwrap();
        let (elapsed, cpu) = (start.elapsed(), cpu_seconds() - cpu);
        assert_eq!(outcome.done.len(), n);
        let spans = n * 31;
        println!(
            "processing: {n} transactions (30 spans each) in {:.2} s wall, {cpu:.2} s CPU = {:.0} transactions per CPU-second",
            elapsed.as_secs_f64(),
            n as f64 / cpu
        );
        println!("peak RSS: {:.0} MB (after queueing, before draining: {rss_before:.0} MB)", peak_rss_mb());
        let lake = dir.join("lake").join("main");
        println!("lake as written (one file per table and batch of 500):");
        print_bytes("transactions", &files_under(&lake.join("transactions")), n);
        print_bytes("spans", &files_under(&lake.join("spans")), spans);
        // What stays: maintenance merges each past day's files into one (the bench's day is in the past).
        let blobs: Arc<dyn splat::blob::BlobStore> = Arc::new(splat::blob::LocalBlobStore::new(&dir));
        let cpu = cpu_seconds();
        for table in [&splat::lake::tables::TRANSACTIONS, &splat::lake::tables::SPANS] {
            splat::lake::maintenance::compact(&store, &blobs, table, chrono::Utc::now().timestamp_micros(), splat::lake::maintenance::Deadline::NONE).await.unwrap();
        }
        println!("lake after the daily compaction ({:.2} s CPU):", cpu_seconds() - cpu);
        for (table, rows) in [(&splat::lake::tables::TRANSACTIONS, n), (&splat::lake::tables::SPANS, spans)] {
            let live = splat::lake::read::live_files(&store, table).await.unwrap();
            print_bytes(table.name, &live.iter().map(|key| dir.join(key)).collect::<Vec<_>>(), rows);
        }
        println!(
            "database: {:.1} MB ({} transactions, {} rollup cells)",
            std::fs::metadata(dir.join("splat.db")).unwrap().len() as f64 / 1e6,
            store.count("transactions").await.unwrap(),
            store.count("transaction_rollups").await.unwrap()
        );
    });
}
