//! The seed's leftovers: deleting an event or an issue keeps every count true and never lets the deleted
//! come back (a retry of the same event is taken for a duplicate); an event's trace id leads to its
//! transaction; a bursting issue wears a badge.

use axum::body::Body;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use splat::store::IssueFilter;
use splat_tests::*;
use tower::ServiceExt;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An error of the `checkout` issue (one fingerprint), with a release and a browser tag.
fn checkout_error(release: &str, browser: &str) -> Value {
    json!({
        "level": "error", "platform": "python", "timestamp": now(), "release": release,
        "environment": "production", "fingerprint": ["checkout"], "tags": {"browser": browser},
        "exception": {"values": [{"type": "CheckoutError", "value": "no price"}]}
    })
}

async fn send(app: &TestApp, n: u32, event: &Value) {
    let reply = app
        .post_envelope(event_envelope(&event_id(n), event), &[])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    app.process().await;
}

async fn number(app: &TestApp, sql: &str) -> i64 {
    app.query_strings(sql).await[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// Events the project's hourly counts hold, and those of release `version`.
async fn counted(app: &TestApp, version: &str) -> (i64, i64) {
    let hours = "SELECT sum(count) FROM item_counts WHERE item_type = 'event'";
    let release = format!("SELECT event_count FROM releases WHERE version = '{version}'");
    (number(app, hours).await, number(app, &release).await)
}

async fn page(router: &Router, path: &str) -> (u16, String) {
    let response = router
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_deleted_event_leaves_true_counts_and_never_comes_back() {
    let app = TestApp::new().await;
    let p = app.project.id;
    send(&app, 1, &checkout_error("1.0", "Firefox")).await;
    send(&app, 2, &checkout_error("1.0", "Firefox")).await;
    send(&app, 3, &checkout_error("1.0", "Chrome")).await;
    let issue = app.store.issue(1).await.unwrap().unwrap();
    assert_eq!(
        (issue.times_seen, issue.last_event_id.as_deref()),
        (3, Some(event_id(3).as_str()))
    );

    let left = app.store.delete_event(p, &event_id(3)).await.unwrap();
    assert_eq!(left, Some(Some(issue.id)));
    assert!(app.store.event(p, &event_id(3)).await.unwrap().is_none());
    let issue = app.store.issue(issue.id).await.unwrap().unwrap();
    assert_eq!(
        (issue.times_seen, issue.last_event_id.as_deref()),
        (2, Some(event_id(2).as_str()))
    );
    let tags: Vec<(String, String, i64)> = app.store.issue_tags(issue.id).await.unwrap();
    assert!(
        tags.contains(&("browser".into(), "Firefox".into(), 2)),
        "{tags:?}"
    );
    assert!(!tags.iter().any(|(_, v, _)| v == "Chrome"), "{tags:?}");
    assert!(
        tags.contains(&("release".into(), "1.0".into(), 2)),
        "{tags:?}"
    );
    assert_eq!(number(&app, "SELECT sum(count) FROM issue_hours").await, 2);
    assert_eq!(counted(&app, "1.0").await, (2, 2));
    // The search for the deleted tag value finds nothing now.
    let browser = |b: &str| IssueFilter {
        query: splat::store::IssueQuery::parse(&format!("browser:{b}")).unwrap(),
        per_page: 10,
        ..Default::default()
    };
    assert!(app
        .store
        .list_issues(p, &browser("Chrome"))
        .await
        .unwrap()
        .0
        .is_empty());

    // The SDK retries the same event (a new message, so not in the ledger): not stored again.
    send(&app, 3, &checkout_error("1.0", "Chrome")).await;
    assert!(app.store.event(p, &event_id(3)).await.unwrap().is_none());
    assert_eq!(
        app.store.issue(issue.id).await.unwrap().unwrap().times_seen,
        2
    );
    // The event page is gone; deleting it again finds nothing.
    let (status, _) = page(
        &app.web(),
        &format!("/projects/default/events/{}", event_id(3)),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(app.store.delete_event(p, &event_id(3)).await.unwrap(), None);

    // The last events of an issue take the issue with them, as retention does.
    app.store.delete_event(p, &event_id(1)).await.unwrap();
    assert_eq!(
        app.store.delete_event(p, &event_id(2)).await.unwrap(),
        Some(None)
    );
    assert!(app.store.issue(issue.id).await.unwrap().is_none());
    assert_eq!(app.count("issues").await, 0);
}

#[tokio::test]
async fn a_deleted_issue_takes_its_events_and_counts_and_its_id_is_not_reused() {
    let app = TestApp::new().await;
    let p = app.project.id;
    send(&app, 1, &checkout_error("1.0", "Firefox")).await;
    send(&app, 2, &checkout_error("2.0", "Firefox")).await;
    let other = json!({"level": "warning", "message": "disk almost full", "timestamp": now(), "release": "2.0"});
    send(&app, 3, &other).await;
    let (list, _) = app
        .store
        .list_issues(
            p,
            &IssueFilter {
                per_page: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let checkout = list
        .iter()
        .find(|i| i.title.starts_with("CheckoutError"))
        .unwrap()
        .id;
    let disk = list
        .iter()
        .find(|i| i.title.starts_with("disk"))
        .unwrap()
        .id;
    assert!(checkout < disk);

    assert_eq!(app.store.delete_issue(p, disk).await.unwrap(), Some(1));
    assert!(app.store.issue(disk).await.unwrap().is_none());
    assert!(app.store.event(p, &event_id(3)).await.unwrap().is_none());
    assert_eq!(counted(&app, "2.0").await, (2, 1));
    let counts = app.store.issue_status_counts(p).await.unwrap();
    assert_eq!(counts.values().sum::<i64>(), 1);
    // A redelivery of its event is a duplicate; a new event like it opens a new issue, under a new id.
    send(&app, 3, &other).await;
    assert!(app.store.event(p, &event_id(3)).await.unwrap().is_none());
    send(&app, 4, &other).await;
    let again = app.store.event(p, &event_id(4)).await.unwrap().unwrap();
    assert!(
        again.issue_id.unwrap() > disk,
        "{:?} reuses {disk}",
        again.issue_id
    );
    assert_eq!(app.store.delete_issue(p, disk).await.unwrap(), None);
    // The other issue is untouched.
    assert_eq!(
        app.store.issue(checkout).await.unwrap().unwrap().times_seen,
        2
    );
}

#[tokio::test]
async fn an_events_trace_leads_to_its_transaction() {
    let app = TestApp::new().await;
    let reply = app
        .post_envelope(timed_transaction(500, "GET /cart", 120.0), &[])
        .await;
    assert_eq!(reply.status, 200);
    let trace = format!("{:032x}", 500);
    let error = json!({"level": "error", "timestamp": 1_767_225_600.0 + 500.05, "message": "cart failed",
        "contexts": {"trace": {"trace_id": trace, "span_id": "00000000000001f4"}}});
    send(&app, 501, &error).await;
    send(
        &app,
        502,
        &json!({"level": "error", "timestamp": now(), "message": "no trace"}),
    )
    .await;
    let id = app
        .query_strings(&format!(
            "SELECT id FROM transactions WHERE trace_id = '{trace}'"
        ))
        .await[0][0]
        .clone()
        .unwrap();
    let link = format!("href=\"/projects/default/transactions/{id}\"");
    let (status, body) = page(
        &app.web(),
        &format!("/projects/default/events/{}", event_id(501)),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains(&link) && body.contains("View transaction GET /cart"),
        "{body}"
    );
    let (_, body) = page(
        &app.web(),
        &format!("/projects/default/events/{}", event_id(502)),
    )
    .await;
    assert!(!body.contains("View transaction"));
    // And the transaction lists the error of its trace.
    let (_, body) = page(&app.web(), &format!("/projects/default/transactions/{id}")).await;
    assert!(body.contains(&event_id(501)), "{body}");
}

#[tokio::test]
async fn a_bursting_issue_wears_a_badge() {
    let app = TestApp::new().await;
    for n in 1..=4 {
        send(&app, n, &checkout_error("1.0", "Firefox")).await;
    }
    let web = |threshold| {
        splat::web::router(
            splat::web::WebState::new(app.store.clone(), app.queue.clone(), None, None)
                .with_burst_threshold(threshold),
        )
    };
    let (_, list) = page(&web(3), "/projects/default/issues").await;
    assert!(list.contains("🔥 4/h"), "{list}");
    let (_, detail) = page(&web(2), "/projects/default/issues/1").await;
    assert!(detail.contains("🚨 4/h"), "{detail}");
    let (_, calm) = page(&web(5), "/projects/default/issues").await;
    assert!(!calm.contains("/h</span>"), "{calm}");
}
