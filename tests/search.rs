//! The issue search syntax on a corpus of issues with known answers: each query lists exactly the issues
//! it should, through the store (as the UI and MCP call it) and the issue list page, and a malformed query
//! says what is wrong instead of listing anything.

use std::collections::BTreeSet;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use splat::store::{IssueFilter, IssueQuery, IssueStatus, IssueTotal};
use splat_tests::*;
use tower::ServiceExt;

const HOUR: f64 = 3_600.0;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An error of type `ty` (its title `ty: value`) sent `hours_ago`, with `extra` fields.
fn error(ty: &str, value: &str, hours_ago: f64, extra: Value) -> Value {
    let mut e = json!({
        "platform": "python", "level": "error", "timestamp": now() - hours_ago * HOUR,
        "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"function": ty.to_lowercase(), "filename": "app/views.py", "lineno": 1, "in_app": true}]}}]}
    });
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    e
}

struct Corpus {
    app: TestApp,
    next: u32,
}

impl Corpus {
    async fn send(&mut self, event: Value) {
        self.next += 1;
        let reply = self
            .app
            .post_envelope(event_envelope(&event_id(self.next), &event), &[])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.error());
        self.app.process().await;
    }

    async fn id_of(&self, title_start: &str) -> i64 {
        let (all, _) = self
            .app
            .store
            .list_issues(
                self.app.project.id,
                &IssueFilter {
                    per_page: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        all.iter()
            .find(|i| i.title.starts_with(title_start))
            .unwrap()
            .id
    }

    /// The exception types (the titles' first word) of the issues `query` lists.
    async fn search(&self, query: &str) -> BTreeSet<String> {
        let filter = IssueFilter {
            query: IssueQuery::parse(query).unwrap(),
            per_page: 100,
            ..Default::default()
        };
        let (list, total) = self
            .app
            .store
            .list_issues(self.app.project.id, &filter)
            .await
            .unwrap();
        assert_eq!(total, IssueTotal::Exact(list.len() as i64), "{query}");
        list.into_iter()
            .map(|i| i.title.split(':').next().unwrap().to_owned())
            .collect()
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

async fn corpus() -> Corpus {
    let mut c = Corpus {
        app: TestApp::new().await,
        next: 0,
    };
    c.send(error(
        "KeyError",
        "checkout timeout",
        1.0,
        json!({
        "environment": "production", "release": "1.4.2", "user": {"id": "42", "email": "x@y.z"},
        "tags": {"browser": "Firefox"}}),
    ))
    .await;
    c.send(error("ValueError", "bad quantity", 72.0, json!({
        "environment": "staging", "release": "1.4.1", "level": "warning", "tags": {"browser": "Chrome"}}))).await;
    c.send(error(
        "PaymentTimeout",
        "provider timed out",
        2.0,
        json!({
        "environment": "production", "level": "info", "tags": {"browser": "Mobile Safari"}}),
    ))
    .await;
    c.send(error(
        "TypeError",
        "connection reset by peer",
        120.0,
        json!({
        "environment": "production", "release": "1.4.2", "user": {"email": "other@y.z"}}),
    ))
    .await;
    c.send(error(
        "ZeroDivisionError",
        "division by zero",
        0.2,
        json!({
        "environment": "production", "level": "fatal"}),
    ))
    .await;
    c.send(error(
        "RuntimeError",
        "came back",
        0.5,
        json!({"environment": "production"}),
    ))
    .await;
    let id = c.id_of("TypeError").await;
    c.app
        .store
        .set_issue_status(id, IssueStatus::Resolved)
        .await
        .unwrap();
    let id = c.id_of("ZeroDivisionError").await;
    c.app
        .store
        .set_issue_status(id, IssueStatus::Ignored)
        .await
        .unwrap();
    // Resolved, then seen again: a regression.
    let id = c.id_of("RuntimeError").await;
    c.app
        .store
        .set_issue_status(id, IssueStatus::Resolved)
        .await
        .unwrap();
    c.send(error(
        "RuntimeError",
        "came back",
        0.4,
        json!({"environment": "production"}),
    ))
    .await;
    c
}

#[tokio::test]
async fn each_query_lists_exactly_its_issues() {
    let c = corpus().await;
    for (query, expected) in [
        (
            "is:unresolved level:error environment:production release:1.4.2 user.email:x@y.z browser:Firefox timeout",
            &["KeyError"][..],
        ),
        ("is:unresolved", &["KeyError", "ValueError", "PaymentTimeout", "RuntimeError"]),
        ("is:resolved", &["TypeError"]),
        ("is:ignored", &["ZeroDivisionError"]),
        ("is:regressed", &["RuntimeError"]),
        ("!is:unresolved", &["TypeError", "ZeroDivisionError"]),
        ("is:unresolved !level:info", &["KeyError", "ValueError", "RuntimeError"]),
        ("browser:\"Mobile Safari\"", &["PaymentTimeout"]),
        ("user.id:42", &["KeyError"]),
        ("user.email:other@y.z", &["TypeError"]),
        ("release:[1.4.1,1.4.2]", &["KeyError", "ValueError", "TypeError"]),
        ("level:[warning,fatal]", &["ValueError", "ZeroDivisionError"]),
        ("level:error !browser:Firefox", &["TypeError", "RuntimeError"]),
        ("environment:production !timed", &["KeyError", "TypeError", "ZeroDivisionError", "RuntimeError"]),
        ("firstSeen:-24h", &["KeyError", "PaymentTimeout", "ZeroDivisionError", "RuntimeError"]),
        ("firstSeen:>24h", &["KeyError", "PaymentTimeout", "ZeroDivisionError", "RuntimeError"]),
        ("firstSeen:+2d", &["ValueError", "TypeError"]),
        ("lastSeen:<4d", &["TypeError"]),
        ("!lastSeen:-90m", &["PaymentTimeout", "ValueError", "TypeError"]),
        ("\"connection reset\"", &["TypeError"]),
        ("\"reset connection\"", &[]),
        ("timeout checkout", &["KeyError"]),
        ("tim", &["KeyError", "PaymentTimeout"]),
        ("browser:Opera", &[]),
    ] {
        assert_eq!(c.search(query).await, set(expected), "{query}");
    }
    // The status tab and dropdowns narrow a query further, as terms of their own.
    let filter = IssueFilter {
        query: IssueQuery::parse("environment:production").unwrap(),
        status: Some(IssueStatus::Open),
        level: Some("info".into()),
        per_page: 100,
        ..Default::default()
    };
    let (list, _) = c
        .app
        .store
        .list_issues(c.app.project.id, &filter)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].title.starts_with("PaymentTimeout"));
}

async fn page(app: &TestApp, q: &str) -> String {
    page_n(app, q, 1).await
}

async fn page_n(app: &TestApp, q: &str, n: u32) -> String {
    let url = format!(
        "/projects/{}/issues?status=open&page={n}&q={}",
        app.project.slug,
        form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let response = app
        .web()
        .oneshot(Request::get(url).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_issue_list_searches_and_shows_what_it_cannot_read() {
    let c = corpus().await;
    // `is:` overrides the Open tab the list was on.
    let body = page(&c.app, "is:resolved reset").await;
    assert!(
        body.contains("TypeError: connection reset by peer"),
        "{body}"
    );
    assert!(!body.contains("KeyError"), "{body}");
    for (q, says) in [
        ("level:loud", "`level:loud` is not a level"),
        ("is:open", "`is:open` is not a status"),
        ("browser:\"Firefox", "a quote is not closed"),
        ("lastSeen:soon", "`lastSeen:soon` is not a time"),
    ] {
        let body = page(&c.app, q).await;
        let shown = html_escape(says);
        assert!(body.contains("role=\"alert\""), "{q}: {body}");
        assert!(body.contains(&shown), "{q}: {shown} in {body}");
        assert!(!body.contains("KeyError: checkout timeout"), "{q}");
    }
}

/// At more issues than a count reads, a broad search's total is a floor ("2,987+") with pages after
/// it, each exact; a narrow one, read through its own index, is counted exactly.
#[tokio::test]
async fn a_broad_search_shows_a_floor_and_a_narrow_one_its_exact_count() {
    let app = TestApp::new().await;
    // 8,000 open issues, every other an error, every 100th regressed, all in production.
    app.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)
         INSERT INTO issues (project_id, title, level, first_seen, last_seen, grouping_config, regressed_at)
           SELECT {p}, 'issue ' || i, CASE i % 2 WHEN 0 THEN 'error' ELSE 'warning' END, i, i, 't',
                  CASE WHEN i % 100 = 0 THEN i END FROM n;
         INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
           SELECT id, 'environment', 'production', 1, 0, 0 FROM issues WHERE project_id = {p};",
        p = app.project.id.value()
    ))
    .await;
    let broad = "level:error environment:production";
    let first = page_n(&app, broad, 1).await;
    let total = first
        .split("1–25 of ")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned();
    assert!(total.ends_with('+'), "a floor: {total}");
    let floor: i64 = total
        .trim_end_matches('+')
        .replace(',', "")
        .parse()
        .unwrap();
    assert!((25..4_000).contains(&floor), "{total}");
    assert!(first.contains("rel=\"next\""));
    assert!(first.contains("issue 8000<") && !first.contains("issue 7999<"));
    let second = page_n(&app, broad, 2).await;
    assert!(second.contains("26–50 of ") && second.contains("rel=\"next\""));
    assert!(second.contains("issue 7950<") && !second.contains("issue 8000<"));
    let regressed = page(&app, "is:regressed").await;
    assert!(regressed.contains("1–25 of 80<"), "{regressed}");
}

/// The text as askama escapes it into a page.
fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
