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
use common::{arg, cpu_seconds, peak_rss_mb};

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

fn transaction(n: usize) -> Value {
    let r = mix(n);
    let start = 1_764_000_000.0 + n as f64 * 0.01;
    let (trace, root) = (
        format!("{:032x}", mix(n + 1) as u128 * 7 + n as u128),
        format!("{:016x}", mix(n + 2)),
    );
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
        "type": "transaction", "event_id": format!("{:032x}", mix(n + 9) as u128 + n as u128),
        "transaction": ENDPOINTS[n % ENDPOINTS.len()], "platform": "python",
        "start_timestamp": start, "timestamp": start + total, "environment": "production",
        "release": format!("shop@1.{}", n / 5000), "server_name": "web-1",
        "request": {"method": "GET", "url": "https://shop.example/api/orders?page=2"},
        "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server", "status": "ok"},
                     "response": {"status_code": if r % 50 == 0 { 500 } else { 200 }}},
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

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("splat.db")).await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        let queue = LocalQueue::open(&dir.path().join("queue.db"), Duration::from_secs(600), 5).await.unwrap();
        let processor = Processor::new(store.clone(), Arc::new(splat::blob::LocalBlobStore::new(dir.path())));
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
        let lake = dir.path().join("lake").join("main");
        let (tx_bytes, span_bytes) = (dir_bytes(&lake.join("transactions")), dir_bytes(&lake.join("spans")));
        println!(
            "lake: transactions {:.1} B each ({tx_bytes} B), spans {:.1} B each ({span_bytes} B); rollup cells {}",
            tx_bytes as f64 / n as f64,
            span_bytes as f64 / spans as f64,
            store.count("transaction_rollups").await.unwrap()
        );
        println!(
            "database: {:.1} MB ({} transactions)",
            std::fs::metadata(dir.path().join("splat.db")).unwrap().len() as f64 / 1e6,
            store.count("transactions").await.unwrap()
        );
    });
}
