//! The logs page over a large project. Run: `cargo bench -p splat-tests --bench logs_page` (options
//! `--records N`, default 10,000,000; `--keep` keeps the data directory; `--reuse DIR` times the pages over
//! a directory kept before instead of storing again).
//!
//! Stores N records spread evenly over the last 7 days through the processor's own commit path (the
//! store's writers, the text index's triggers; the lake left out), shaped as `infra/bench/logs_rate.py`
//! sends them: seven levels in the SDKs' proportions, eight typed attributes, a trace for every ten records
//! and, once in 100,000 records, a body with a rare word; in items of 100 records from ten hosts at once
//! (the database keeps an item's records in blocks, so ten blocks overlap at any time). Then requests the logs page through the web
//! router for each filter and window, warm, and prints p50/p95 and the CPU time per request.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use splat::lake::LogFact;
use splat::queue::LocalQueue;
use splat::store::{LogRow, Store, WriteBatch};

mod common;
use common::{arg, cpu_seconds, data_dir, peak_rss_mb, percentile, time_page};

const WEEK_US: i64 = 7 * 86_400_000_000;
const LEVELS: [&str; 7] = ["trace", "debug", "info", "info", "info", "warn", "error"];

/// A cheap deterministic mix of `i`.
fn mix(i: u64) -> u64 {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 16
}

fn trace_of(i: u64) -> String {
    format!("{:016x}{:016x}", mix(i / 10), mix(i / 10 + 1))
}

fn record(project: i64, i: u64, n: u64, now_us: i64) -> LogRow {
    let r = mix(i);
    let user = r % 10_000;
    let body = if i % 100_000 == 50_000 {
        format!("Payment declined for order {i}")
    } else {
        format!("User {user} checked out {} items", 1 + r % 8)
    };
    let attributes = serde_json::json!({
        "sentry.environment": {"type": "string", "value": "production"},
        "sentry.release": {"type": "string", "value": "shop@2.4.1"},
        "sentry.sdk.name": {"type": "string", "value": "sentry.python"},
        "sentry.message.template": {"type": "string", "value": "User {user_id} checked out"},
        "user.id": {"type": "integer", "value": user},
        "cart.total": {"type": "double", "value": (r % 10_000) as f64 / 100.0},
        "cart.express": {"type": "boolean", "value": r.is_multiple_of(2)},
        "http.route": {"type": "string", "value": format!("/checkout/{}", r % 20)},
    });
    let log = LogFact {
        project_id: project,
        // Oldest first, as they arrive; the newest a second ago.
        timestamp_us: now_us - 1_000_000 - ((n - 1 - i) as i64 * WEEK_US) / n as i64,
        log_id: String::new(),
        trace_id: Some(trace_of(i)),
        span_id: None,
        level: LEVELS[(r % 7) as usize].into(),
        severity_number: None,
        body,
        environment: Some("production".into()),
        release: Some("shop@2.4.1".into()),
        sdk_name: Some("sentry.python".into()),
        attributes: attributes.to_string(),
    };
    // Items of 100 records, as the SDKs send them, from ten hosts at once: each item's records are
    // interleaved with nine others' over the same time.
    LogRow::new(log, now_us, (i / 1_000) * 10 + i % 10)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let reuse = std::env::args()
            .skip_while(|a| a != "--reuse")
            .nth(1)
            .map(std::path::PathBuf::from);
        let (dir, _guard) = match reuse.clone() {
            Some(dir) => (dir, None),
            None => data_dir(),
        };
        let store = Store::open(&dir.join("splat.db")).await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        let n = arg("--records", 10_000_000) as u64;
        let now_us = chrono::Utc::now().timestamp_micros();
        if reuse.is_none() {
            let (start, cpu) = (Instant::now(), cpu_seconds());
            for from in (0..n).step_by(10_000) {
                let batch = WriteBatch {
                    logs: (from..(from + 10_000).min(n))
                        .map(|i| record(project.id.value(), i, n, now_us))
                        .collect(),
                    ..WriteBatch::default()
                };
                splat::process::batch::commit(&store, &batch, None)
                    .await
                    .unwrap();
            }
            println!(
                "data set: {} records in {:.0} s ({:.0} records per CPU-second); database {:.0} B/record",
                n,
                start.elapsed().as_secs_f64(),
                n as f64 / (cpu_seconds() - cpu),
                std::fs::metadata(dir.join("splat.db")).unwrap().len() as f64 / n as f64
            );
        }
        let queue = LocalQueue::open(&dir.join("queue.db"), Duration::from_secs(60), 5)
            .await
            .unwrap();
        let web = splat::web::router(splat::web::WebState::new(store.clone(), Arc::new(queue), None, None));
        let slug = &project.slug;
        // A trace of the last hour's records.
        let trace = trace_of(n - 1_000);
        let mut pages = Vec::new();
        for (window, hours) in [("1 h", 1), ("24 h", 24), ("7 d", 168)] {
            for (filter, query) in [
                ("no filter", String::new()),
                ("level ≥ warn", "&level=warn".into()),
                ("level ≥ error", "&level=error".into()),
                ("level fatal (none stored)", "&level=fatal".into()),
                ("text, every record (\"checked\")", "&q=checked".into()),
                ("text, 1 in 100,000 (\"declined\")", "&q=declined".into()),
                ("text, 1 in 20 (\"checkout/7\")", "&q=checkout%2F7".into()),
                ("text, 2 characters (\"7 \")", "&q=7%20".into()),
                ("text absent (\"refund\")", "&q=refund".into()),
                ("trace", format!("&trace={trace}")),
            ] {
                pages.push((format!("{window}, {filter}"), format!("/projects/{slug}/logs?hours={hours}{query}")));
            }
        }
        println!("| page | p50 | p95 | CPU per request |\n|---|---:|---:|---:|");
        for (name, path) in pages {
            // The first three warm the caches; the budget is for warm requests.
            let (times, cpu) = time_page(&web, &path, 3, 20).await;
            println!(
                "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.95).as_secs_f64() * 1e3,
                cpu * 1e3 / times.len() as f64
            );
        }
        println!("peak RSS of the bench process: {:.0} MB", peak_rss_mb());
    });
}
