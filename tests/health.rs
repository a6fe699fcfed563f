//! `GET /_health` over a real local queue and database: the seed's fields, the queue thresholds turning
//! the status to warning and then degraded (503), counts once the processor has run, and a database that
//! cannot be read.

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use http::Request;
use serde_json::{json, Value};
use splat::queue::Queue;
use splat::store::Store;
use splat::web::health::{self, HealthState, QueueThresholds};
use splat_tests::{event_envelope, event_id, Reply, TestApp};
use tower::ServiceExt;

const THRESHOLDS: QueueThresholds = QueueThresholds {
    warning: 2,
    critical: 3,
};

/// A fresh health router each time (its counts are cached for a few seconds).
fn health_router(store: Store, queue: Arc<dyn Queue>) -> Router {
    health::router(HealthState::new(store, queue, THRESHOLDS))
}

async fn get_health(router: Router) -> Reply {
    let response = router
        .oneshot(Request::get("/_health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    Reply::read(response).await
}

async fn check(app: &TestApp) -> Reply {
    get_health(health_router(app.store.clone(), app.queue.clone())).await
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn send_error(app: &TestApp, n: u32) {
    let event = json!({"timestamp": now_secs(), "level": "error", "platform": "python",
        "exception": {"values": [{"type": "ValueError", "value": format!("bad input {n}"),
            "stacktrace": {"frames": [{"function": format!("handler_{n}"), "module": "app.views", "in_app": true}]}}]}});
    let reply = app
        .post_envelope(event_envelope(&event_id(n), &event), &[])
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

async fn send_transaction(app: &TestApp, n: u32) {
    let end = now_secs();
    let tx = json!({"type": "transaction", "transaction": "GET /health-test", "start_timestamp": end - 0.2, "timestamp": end,
        "contexts": {"trace": {"trace_id": format!("{n:032x}"), "span_id": format!("{n:016x}"), "op": "http.server", "status": "ok"}}});
    let payload = tx.to_string();
    let body = format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        event_id(1000 + n),
        payload.len()
    );
    assert_eq!(app.post_envelope(body, &[]).await.status, 200);
}

fn field<'a>(reply: &'a Reply, name: &str) -> &'a Value {
    reply
        .body
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {}", reply.body))
}

#[tokio::test]
async fn health_reports_the_seeds_fields_and_the_queue_thresholds() {
    let app = TestApp::new().await;

    let idle = check(&app).await;
    assert_eq!(idle.status, 200);
    assert_eq!(idle.header("cache-control"), Some("no-store"));
    let timestamp = field(&idle, "timestamp").as_str().unwrap();
    assert!(
        chrono_like(timestamp),
        "RFC 3339 UTC timestamp, got {timestamp}"
    );
    for (name, want) in [
        ("status", json!("ok")),
        ("queue_depth", json!(0)),
        ("queue_status", json!("healthy")),
        ("queue_warning_threshold", json!(2)),
        ("queue_critical_threshold", json!(3)),
        ("database", json!("ok")),
        ("event_count", json!(0)),
        ("event_count_window", json!("24h")),
        ("issue_count", json!(0)),
        ("transaction_count", json!(0)),
        ("transaction_count_window", json!("24h")),
        ("transactions_per_second", json!(0.0)),
        ("transactions_per_minute", json!(0.0)),
    ] {
        assert_eq!(field(&idle, name), &want, "{name}");
    }

    // Two messages waiting: at the warning threshold, still 200.
    send_error(&app, 1).await;
    send_error(&app, 2).await;
    let warning = check(&app).await;
    assert_eq!(
        (
            warning.status,
            field(&warning, "status"),
            field(&warning, "queue_status"),
            field(&warning, "queue_depth")
        ),
        (200, &json!("warning"), &json!("warning"), &json!(2))
    );

    // A third: at the critical threshold the service is degraded and says so with a 503.
    send_transaction(&app, 1).await;
    let critical = check(&app).await;
    assert_eq!(
        (
            critical.status,
            field(&critical, "status"),
            field(&critical, "queue_status"),
            field(&critical, "queue_depth")
        ),
        (503, &json!("degraded"), &json!("critical"), &json!(3))
    );

    // Processed: the queue is empty again and the counts show what arrived.
    app.process().await;
    let after = check(&app).await;
    assert_eq!(after.status, 200, "{}", after.body);
    for (name, want) in [
        ("status", json!("ok")),
        ("queue_depth", json!(0)),
        ("event_count", json!(2)),
        ("issue_count", json!(2)),
        ("transaction_count", json!(1)),
        // One transaction in the last minute (1/60 per second) and in the last hour (1/60 per minute).
        ("transactions_per_second", json!(0.02)),
        ("transactions_per_minute", json!(0.02)),
    ] {
        assert_eq!(field(&after, name), &want, "{name}");
    }

    // Resolved issues are not counted as open.
    let filter = splat::store::IssueFilter {
        per_page: 10,
        ..Default::default()
    };
    let (issues, _) = app
        .store
        .list_issues(app.project.id, &filter)
        .await
        .unwrap();
    let first = issues.first().map(|i| i.id).unwrap();
    app.store
        .set_issue_status(first, splat::store::IssueStatus::Resolved)
        .await
        .unwrap();
    assert_eq!(field(&check(&app).await, "issue_count"), &json!(1));
}

#[tokio::test]
async fn an_unreadable_database_is_degraded() {
    let app = TestApp::new().await;
    // A database file without Splat's tables: every count fails.
    let path = app.dir.path().join("empty.db");
    let db = libsql::Builder::new_local(&path).build().await.unwrap();
    db.connect()
        .unwrap()
        .execute("CREATE TABLE unrelated (x)", ())
        .await
        .unwrap();
    let store = Store::open_reader(&path).await.unwrap();
    let reply = get_health(health_router(store, app.queue.clone())).await;
    assert_eq!(reply.status, 503);
    assert_eq!(field(&reply, "status"), &json!("degraded"));
    assert_eq!(field(&reply, "database"), &json!("unavailable"));
    assert_eq!(field(&reply, "event_count"), &Value::Null);
    assert_eq!(
        field(&reply, "queue_status"),
        &json!("healthy"),
        "the queue is still read"
    );
}

#[tokio::test]
async fn health_is_served_next_to_the_ui_without_its_csrf_or_pages() {
    let app = TestApp::new().await;
    let router = health_router(app.store.clone(), app.queue.clone()).merge(app.web());
    let reply = get_health(router.clone()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(field(&reply, "status"), &json!("ok"));
    let ui = router
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ui.status(), 200, "the UI is still there");
}

/// `2026-11-25T11:00:00Z`.
fn chrono_like(s: &str) -> bool {
    s.len() == 20
        && s.ends_with('Z')
        && s.as_bytes()[10] == b'T'
        && s[..4].parse::<u32>().is_ok_and(|y| y >= 2024)
}

/// Polls `done` every 20 ms for up to 20 s.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_panicking_processor_is_restarted_reported_and_loses_nothing() {
    use splat::process::runner::{self, RunnerOptions};
    use splat::process::supervisor::ProcessorHealth;

    let app = TestApp::with_config(|c| c.queue_max_receives = 2).await;
    let poison = json!({"level": "error", "message": "POISON-MARKER in a message"});
    assert_eq!(
        app.post_envelope(event_envelope(&event_id(1), &poison), &[])
            .await
            .status,
        200
    );
    send_error(&app, 2).await;

    let health = ProcessorHealth::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let options = RunnerOptions {
        batch_size: 10,
        wait: std::time::Duration::from_millis(50),
        ..RunnerOptions::default()
    };
    let processor = app
        .processor
        .clone()
        .with_panic_marker(Some("POISON-MARKER"));
    let task = tokio::spawn(runner::run(
        processor,
        app.queue.clone(),
        options,
        health.clone(),
        stopped,
    ));
    let router = |health: &ProcessorHealth| {
        health::router(
            HealthState::new(app.store.clone(), app.queue.clone(), THRESHOLDS)
                .with_processor(health.clone()),
        )
    };

    // Both arrive in one batch, which panics: the loop stops, and health says so until it restarts.
    eventually("a restart", async || health.report().restarts == 1).await;
    let down = get_health(router(&health)).await;
    assert_eq!(
        (down.status, field(&down, "status")),
        (503, &json!("degraded"))
    );
    assert_eq!(field(&down, "processor")["state"], json!("restarting"));

    // Redelivered, each is processed alone: the good event is stored, the poison panics alone (caught)
    // and, past the receive limit, ends in the dead letters with the reason.
    eventually("the good event", async || app.count("events").await == 1).await;
    eventually("the dead letter", async || {
        app.queue.dead_letter_count().await.unwrap() == 1
    })
    .await;
    let letters = app.queue.dead_letters().await.unwrap();
    assert!(
        letters[0]
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("panicked"),
        "{letters:?}"
    );
    let up = get_health(router(&health)).await;
    assert_eq!(up.status, 200, "{}", up.body);
    let report = field(&up, "processor");
    assert_eq!(report["state"], json!("running"));
    assert_eq!(report["restarts"], json!(1));
    assert!(report["panics"].as_u64().unwrap() >= 2, "{report}");
    assert!(report["last_panic"]
        .as_str()
        .unwrap()
        .contains("SPLAT_TEST_PANIC_ON_MARKER"));
    assert!(report["last_batch_at"].is_string());
    let _ = stop.send(true);
    task.await.unwrap();
    assert_eq!(
        health.report().state,
        splat::process::supervisor::LoopState::Stopped
    );

    // Redriven to a processor without the hook, the acknowledged envelope is stored after all.
    assert_eq!(app.queue.redrive(None).await.unwrap(), 1);
    app.process().await;
    assert_eq!(app.count("events").await, 2);
    assert_eq!(app.queue.dead_letter_count().await.unwrap(), 0);
}
