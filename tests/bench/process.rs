//! Processing throughput and issue-list latency. Run: `cargo bench -p splat-tests --bench process`
//! (options: `--events N` for the throughput run, `--issues N --per-issue M` for the list-latency data set,
//! `--sourcemaps` for Node errors symbolicated against an uploaded bundle instead of Python errors).
//!
//! 1. Error events processed per second on one core: envelopes in the Python SDK's shape (a stack of 12
//!    frames with context, breadcrumbs, tags, user; about 4 KB) are queued, then the processor drains them
//!    in batches of 500 (grouping, issue upsert, facets, FTS, compressed payloads, one transaction per batch).
//!    With `--sourcemaps`, Node errors of 12 frames in one minified file instead, whose ~5 MB map is uploaded
//!    first as sentry-cli's chunks: every frame is symbolicated (original file, line, function, context).
//!    The map is parsed once before the clock starts; its cold cost is measured on its own, beside the warm
//!    cost of symbolication alone.
//! 2. Issue-list queries over a large project: p50/p95 of `list_issues` for the pages the UI serves.

// The function binaries use mimalloc too; measure what they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use splat::process::runner::drain;
use splat::process::Processor;
use splat::protocol::{EventId, ProjectId};
use splat::queue::{EnvelopeRef, LocalQueue, Queue, QueueMessage};
use splat::store::{IssueFilter, IssueQuery, IssueSort, IssueStatus, Store};
use tower::ServiceExt;

mod common;
mod sourcemaps;
use common::{arg, cpu_seconds, data_dir, peak_rss_mb};

fn event(bug: usize, n: usize) -> serde_json::Value {
    let frames: Vec<_> = (0..12)
        .map(|f| {
            json!({"filename": format!("app/module_{f}.py"), "module": format!("app.module_{f}"), "function": if f == 11 { format!("handler_{bug}") } else { format!("step_{f}") },
                   "lineno": 10 + f + n % 7, "context_line": format!("    result = step_{}(request)", f + 1),
                   "pre_context": ["", "def step(request):", "    # validate"], "post_context": ["    return result", ""],
                   "in_app": f > 3, "vars": {"request": "<Request>", "n": n}})
        })
        .collect();
    json!({
        "event_id": EventId::random().to_string(), "timestamp": 1_764_000_000.0 + n as f64, "platform": "python", "level": "error",
        "release": format!("shop@1.{}", n % 5), "environment": if n.is_multiple_of(3) { "staging" } else { "production" }, "server_name": "web-1",
        "transaction": format!("/orders/{}", bug % 50),
        "exception": {"values": [{"type": format!("Error{}", bug % 17), "value": format!("order {n} failed for user {}", n % 1000),
                                   "mechanism": {"type": "generic", "handled": false}, "stacktrace": {"frames": frames}}]},
        "breadcrumbs": {"values": (0..8).map(|b| json!({"timestamp": 1_764_000_000.0, "category": "query", "message": format!("SELECT * FROM t WHERE id = {b}")})).collect::<Vec<_>>()},
        "tags": {"browser": "Firefox", "customer": format!("c{}", n % 20)}, "user": {"id": (n % 1000).to_string(), "email": format!("u{}@example.com", n % 1000)},
        "sdk": {"name": "sentry.python", "version": "2.75.0"}
    })
}

fn message(project: ProjectId, e: &serde_json::Value) -> Vec<u8> {
    let payload = e.to_string();
    let envelope = format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        e["event_id"].as_str().unwrap(),
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

/// Queues `events` errors over `issues` distinct stacks: Python ones, or with `--sourcemaps` Node ones.
async fn fill(queue: &LocalQueue, project: ProjectId, events: usize, issues: usize, offset: usize) {
    let make = if std::env::args().any(|a| a == "--sourcemaps") {
        sourcemaps::event
    } else {
        event
    };
    for n in 0..events {
        queue
            .send(message(project, &make((n + offset) % issues, n + offset)))
            .await
            .unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
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
        let blobs: Arc<dyn splat::blob::BlobStore> = Arc::new(splat::blob::LocalBlobStore::new(&dir));
        let processor = Processor::new(store.clone(), blobs.clone());

        let symbolicated = std::env::args().any(|a| a == "--sourcemaps");
        if symbolicated {
            let map_bytes = sourcemaps::upload(&store, blobs.as_ref(), project).await;
            sourcemaps::measure_alone(&store, blobs.clone(), project, map_bytes).await;
            // The processor's own cache warmed by one event, so the run below times warm symbolication.
            fill(&queue, project, 1, 1, 0).await;
            drain(&processor, &queue, 500).await.unwrap();
        }
        let events = arg("--events", 20_000);
        fill(&queue, project, events, 200, 0).await;
        let (start, cpu) = (Instant::now(), cpu_seconds());
        let outcome = drain(&processor, &queue, 500).await.unwrap();
        let (elapsed, cpu) = (start.elapsed(), cpu_seconds() - cpu);
        assert_eq!(outcome.done.len(), events);
        println!(
            "processing: {events} {} error events into {} issues in {:.2} s wall, {cpu:.2} s CPU = {:.0} events/s wall, {:.0} events per CPU-second",
            if symbolicated { "symbolicated Node" } else { "Python" },
            store.count("issues").await.unwrap(),
            elapsed.as_secs_f64(),
            events as f64 / elapsed.as_secs_f64(),
            events as f64 / cpu
        );
        println!("peak RSS after processing: {:.0} MB", peak_rss_mb());

        // A large project for the list queries: many issues, many events each.
        let issues = arg("--issues", 100_000);
        let per_issue = arg("--per-issue", 10);
        let total = issues * per_issue;
        let start = Instant::now();
        let chunk = 50_000;
        for offset in (0..total).step_by(chunk) {
            fill(&queue, project, chunk.min(total - offset), issues, 1_000_000 + offset).await;
            drain(&processor, &queue, 1000).await.unwrap();
        }
        println!(
            "data set: {} issues, {} events in {:.0} s; database {:.0} MB",
            store.count("issues").await.unwrap(),
            store.count("events").await.unwrap(),
            start.elapsed().as_secs_f64(),
            std::fs::metadata(dir.join("splat.db")).unwrap().len() as f64 / 1e6
        );
        let filters = [
            ("open, last seen, page 1", IssueFilter { status: Some(IssueStatus::Open), ..Default::default() }),
            ("open, by count, page 40", IssueFilter { status: Some(IssueStatus::Open), sort: IssueSort::Count, page: 40, ..Default::default() }),
            ("search 'handler_4242'", IssueFilter { query: IssueQuery::parse("handler_4242").unwrap(), ..Default::default() }),
            ("search syntax, common tag and level", IssueFilter { query: IssueQuery::parse("is:unresolved level:error environment:production !browser:Opera").unwrap(), ..Default::default() }),
            ("search syntax, rare tag and time", IssueFilter { query: IssueQuery::parse("release:[nope,1.0] firstSeen:-7d handler").unwrap(), ..Default::default() }),
            ("environment staging", IssueFilter { environment: Some("staging".into()), ..Default::default() }),
        ];
        for (name, filter) in filters {
            let filter = IssueFilter { per_page: 25, ..filter };
            let mut times = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                let (page, _) = store.list_issues(project, &filter).await.unwrap();
                let ids: Vec<i64> = page.iter().map(|i| i.id).collect();
                store.issue_hours(&ids, 0).await.unwrap();
                times.push(t.elapsed());
            }
            times.sort();
            println!("list issues [{name}] with sparklines: p50 {:.1} ms, p95 {:.1} ms", percentile(&times, 0.5).as_secs_f64() * 1e3, percentile(&times, 0.95).as_secs_f64() * 1e3);
        }

        // Whole pages through the web router, warm: what a person waits for, less the network.
        let web = splat::web::router(splat::web::WebState::new(store.clone(), Arc::new(queue.clone()), None, None));
        let slug = store.project(project).await.unwrap().unwrap().slug;
        let (busiest, _) = store.list_issues(project, &IssueFilter { per_page: 1, sort: IssueSort::Count, ..Default::default() }).await.unwrap();
        let pages = [
            ("issues list", format!("/projects/{slug}/issues")),
            ("issues list, by count, page 40", format!("/projects/{slug}/issues?sort=count&page=40")),
            ("issues list, search", format!("/projects/{slug}/issues?q=handler_4242")),
            ("issues list, search syntax", format!("/projects/{slug}/issues?q=is%3Aunresolved+level%3Aerror+environment%3Aproduction+lastSeen%3A-24h")),
            ("issues list, environment staging", format!("/projects/{slug}/issues?environment=staging")),
            ("issue page", format!("/projects/{slug}/issues/{}", busiest[0].id)),
            ("project dashboard", format!("/projects/{slug}")),
        ];
        for (name, path) in pages {
            let mut times = Vec::new();
            for _ in 0..50 {
                let t = Instant::now();
                let response = web.clone().oneshot(http::Request::get(&path).body(axum::body::Body::empty()).unwrap()).await.unwrap();
                assert_eq!(response.status(), 200, "{path}");
                http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
                times.push(t.elapsed());
            }
            times.sort();
            println!("page [{name}]: p50 {:.1} ms, p95 {:.1} ms", percentile(&times, 0.5).as_secs_f64() * 1e3, percentile(&times, 0.95).as_secs_f64() * 1e3);
        }
    });
}
