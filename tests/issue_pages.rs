//! An issue's page at scale: the reads it makes over an issue's events and tags keep to bounded walks
//! (see `store::issue_events` and `store::tag_breakdown`), and give the answers the full reads gave.

use http_body_util::BodyExt;
use serde_json::json;
use splat::store::IssueFilter;
use splat_tests::*;
use tower::ServiceExt;

/// A day ago: the processor takes much older times for a wrong clock.
fn base() -> i64 {
    chrono::Utc::now().timestamp() - 86_400
}

/// Events of one issue at `seconds` past [`base`] (several share a second: ties broken by arrival),
/// with a browser, a user and a release each, sent and processed.
async fn issue_with_events(app: &TestApp, seconds: &[i64]) -> i64 {
    let base = base();
    for (n, s) in seconds.iter().enumerate() {
        let n = n as u32 + 1;
        let browser = ["Firefox", "Chrome", "Chrome", "Safari"][n as usize % 4];
        let event = json!({
            "platform": "python", "level": "error", "timestamp": base + s,
            "exception": {"values": [{"type": "KeyError", "value": "'a'", "stacktrace": {"frames": [
                {"module": "app.views", "function": "show", "lineno": 10, "in_app": true, "filename": "app/views.py"}]}}]},
            "tags": {"browser": browser},
            "user": {"id": format!("u{}", n % 7)}, "release": format!("1.{}", n % 3)
        });
        let reply = app
            .post_envelope(event_envelope(&event_id(n), &event), &[])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.error());
    }
    app.process().await;
    let (list, _) = app
        .store
        .list_issues(app.project.id, &IssueFilter::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    list[0].id
}

#[tokio::test]
async fn neighbours_found_by_time_are_those_found_by_id() {
    let app = TestApp::new().await;
    let seconds = [5, 1, 3, 3, 3, 9, 1, 7, 3, 2];
    let issue = issue_with_events(&app, &seconds).await;
    for n in 1..=seconds.len() as u32 {
        let event = app
            .store
            .event(app.project.id, &event_id(n))
            .await
            .unwrap()
            .unwrap();
        let by_id = app
            .store
            .event_neighbours(issue, &event_id(n))
            .await
            .unwrap();
        let by_time = app.store.event_neighbours_of(&event).await.unwrap();
        assert_eq!(by_time, by_id, "event {n}");
    }
    // The walk through an issue, oldest to newest, by its links: every event once, in time order.
    let mut at = app.store.event(app.project.id, &event_id(2)).await.unwrap();
    let mut walked = Vec::new();
    while let Some(event) = at {
        walked.push(event.timestamp / 1_000_000);
        let (_, newer) = app.store.event_neighbours_of(&event).await.unwrap();
        at = match newer {
            Some(id) => app.store.event(app.project.id, &id).await.unwrap(),
            None => None,
        };
    }
    let first = walked[0] - 1;
    let walked: Vec<i64> = walked.iter().map(|s| s - first).collect();
    assert_eq!(walked, [1, 1, 2, 3, 3, 3, 3, 5, 7, 9]);
}

#[tokio::test]
async fn tag_breakdown_is_what_every_value_adds_up_to() {
    let app = TestApp::new().await;
    let issue = issue_with_events(&app, &(0..40).collect::<Vec<_>>()).await;
    app.store
        .delete_event(app.project.id, &event_id(3))
        .await
        .unwrap();
    let every = app.store.issue_tags(issue).await.unwrap();
    let breakdown = app.store.issue_tag_breakdown(issue, 3).await.unwrap();
    let keys: Vec<&str> = breakdown.iter().map(|k| k.key.as_str()).collect();
    for key in ["browser", "release", "user.id"] {
        assert!(keys.contains(&key), "{keys:?}");
    }
    for key in &breakdown {
        let values: Vec<(String, i64)> = every
            .iter()
            .filter(|(k, _, _)| *k == key.key)
            .map(|(_, v, n)| (v.clone(), *n))
            .collect();
        assert_eq!(key.values, values.len() as i64, "{}", key.key);
        assert_eq!(key.events, values.iter().map(|(_, n)| n).sum::<i64>());
        assert_eq!(key.top, values[..values.len().min(3)], "{}", key.key);
    }
    assert_eq!(breakdown[0].events, 39, "one of 40 events deleted");

    // The page: the shares of the top values and how many more the key has.
    let page = app
        .web()
        .oneshot(
            http::Request::get(format!("/projects/default/issues/{issue}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let body = page.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("and 2 more"), "user.id has 7 values, 5 shown");
    assert!(body.contains("seen in 3 releases"));
}
