//! Issues end to end: events sent through ingest are grouped by the processor into issues whose counters,
//! facets, search and lifecycle are what the UI and MCP read.

use serde_json::{json, Value};
use splat::store::{IssueChange, IssueFilter, IssueQuery, IssueSort, IssueStatus, IssueTotal};
use splat_tests::*;

fn python_error(ty: &str, value: &str, function: &str, extra: Value) -> Value {
    let mut e = json!({
        "platform": "python", "level": "error", "timestamp": 1_700_000_000.0,
        "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"module": "app.views", "function": function, "lineno": 10, "context_line": "do_it()", "in_app": true, "filename": "app/views.py"}]}}]}
    });
    if let (Some(e), Some(extra)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(extra.clone());
    }
    e
}

async fn send(app: &TestApp, n: u32, event: &Value) {
    let reply = app
        .post_envelope(event_envelope(&event_id(n), event), &[])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
}

async fn issues(app: &TestApp, filter: IssueFilter) -> Vec<(String, i64)> {
    let filter = IssueFilter {
        per_page: 25,
        ..filter
    };
    let (list, _) = app
        .store
        .list_issues(app.project.id, &filter)
        .await
        .unwrap();
    list.into_iter().map(|i| (i.title, i.times_seen)).collect()
}

#[tokio::test]
async fn events_group_into_issues_with_counters_and_facets() {
    let app = TestApp::new().await;
    let user = |id: &str| json!({"user": {"id": id}, "environment": "prod", "release": "1.0", "tags": {"browser": "Firefox"}});
    send(
        &app,
        1,
        &python_error("KeyError", "'a'", "show", user("u1")),
    )
    .await;
    send(
        &app,
        2,
        &python_error("KeyError", "'b'", "show", user("u2")),
    )
    .await;
    send(
        &app,
        3,
        &python_error("KeyError", "'c'", "show", user("u1")),
    )
    .await;
    send(
        &app,
        4,
        &python_error(
            "ValueError",
            "bad",
            "edit",
            json!({"environment": "staging"}),
        ),
    )
    .await;
    let outcome = app.process().await;
    assert_eq!(
        outcome
            .issue_changes
            .iter()
            .filter(|c| matches!(c, IssueChange::Created { .. }))
            .count(),
        2
    );
    let (list, total) = app
        .store
        .list_issues(
            app.project.id,
            &IssueFilter {
                per_page: 25,
                sort: IssueSort::Count,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(total, IssueTotal::Exact(2));
    let key_error = &list[0];
    assert_eq!(
        (
            key_error.title.as_str(),
            key_error.times_seen,
            key_error.users_seen
        ),
        ("KeyError: 'a'", 3, 2)
    );
    assert_eq!(key_error.culprit.as_deref(), Some("app.views in show"));
    assert_eq!(
        (
            key_error.first_release.as_deref(),
            key_error.last_release.as_deref()
        ),
        (Some("1.0"), Some("1.0"))
    );
    assert_eq!(
        key_error.last_event_id.as_deref(),
        Some(event_id(3).as_str())
    );
    assert_eq!(key_error.grouping_config, splat::grouping::CONFIG);
    let tags = app.store.issue_tags(key_error.id).await.unwrap();
    assert!(tags.contains(&("browser".into(), "Firefox".into(), 3)));
    assert!(tags.contains(&("environment".into(), "prod".into(), 3)));
    let events = app.store.issue_events(key_error.id, 0, 10).await.unwrap();
    assert_eq!(events.len(), 3);
    let hours = app.store.issue_hours(&[key_error.id], 0).await.unwrap();
    assert_eq!(hours[&key_error.id], vec![(1_700_000_000 / 3600 * 3600, 3)]);
    let releases = app.store.releases(app.project.id).await.unwrap();
    assert_eq!(
        (releases[0].version.as_str(), releases[0].event_count),
        ("1.0", 3)
    );
}

#[tokio::test]
async fn a_duplicate_event_does_not_count_twice() {
    let app = TestApp::new().await;
    let event = python_error("KeyError", "'a'", "show", json!({}));
    send(&app, 1, &event).await;
    send(&app, 1, &event).await;
    app.process().await;
    assert_eq!(
        issues(&app, IssueFilter::default()).await,
        vec![("KeyError: 'a'".to_string(), 1)]
    );
}

#[tokio::test]
async fn a_resolved_issue_reopens_as_regressed_when_it_happens_again() {
    let app = TestApp::new().await;
    let event = python_error("KeyError", "'a'", "show", json!({}));
    send(&app, 1, &event).await;
    app.process().await;
    let (list, _) = app
        .store
        .list_issues(
            app.project.id,
            &IssueFilter {
                per_page: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = list[0].id;
    app.store
        .set_issue_status(id, IssueStatus::Resolved)
        .await
        .unwrap();
    assert_eq!(
        app.store.issue(id).await.unwrap().unwrap().status,
        IssueStatus::Resolved
    );
    send(&app, 2, &event).await;
    let outcome = app.process().await;
    assert_eq!(
        outcome.issue_changes,
        vec![IssueChange::Regressed {
            issue_id: id,
            project_id: app.project.id.value()
        }]
    );
    let issue = app.store.issue(id).await.unwrap().unwrap();
    assert_eq!(
        (issue.status, issue.times_seen, issue.resolved_at),
        (IssueStatus::Open, 2, None)
    );
    assert!(issue.regressed_at.is_some());
}

#[tokio::test]
async fn ignored_stays_ignored_and_next_release_waits_for_a_new_release() {
    let app = TestApp::new().await;
    let in_release = |r: &str| python_error("KeyError", "'a'", "show", json!({"release": r}));
    let other = python_error("TypeError", "t", "edit", json!({}));
    send(&app, 1, &in_release("1.0")).await;
    send(&app, 2, &other).await;
    app.process().await;
    let (list, _) = app
        .store
        .list_issues(
            app.project.id,
            &IssueFilter {
                per_page: 5,
                sort: IssueSort::FirstSeen,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let by_title = |t: &str| list.iter().find(|i| i.title.starts_with(t)).unwrap().id;
    let (next_release, ignored) = (by_title("KeyError"), by_title("TypeError"));
    app.store
        .set_issue_status(next_release, IssueStatus::ResolvedNextRelease)
        .await
        .unwrap();
    app.store
        .set_issue_status(ignored, IssueStatus::Ignored)
        .await
        .unwrap();

    send(&app, 3, &in_release("1.0")).await;
    send(&app, 4, &other).await;
    assert!(app.process().await.issue_changes.is_empty());
    assert_eq!(
        app.store.issue(next_release).await.unwrap().unwrap().status,
        IssueStatus::ResolvedNextRelease
    );
    let ignored_issue = app.store.issue(ignored).await.unwrap().unwrap();
    assert_eq!(
        (ignored_issue.status, ignored_issue.times_seen),
        (IssueStatus::Ignored, 2)
    );

    send(&app, 5, &in_release("1.1")).await;
    assert_eq!(app.process().await.issue_changes.len(), 1);
    assert_eq!(
        app.store.issue(next_release).await.unwrap().unwrap().status,
        IssueStatus::Open
    );
}

#[tokio::test]
async fn search_filters_and_status_counts() {
    let app = TestApp::new().await;
    send(
        &app,
        1,
        &python_error(
            "KeyError",
            "'missing_basket'",
            "checkout_cart",
            json!({"environment": "prod", "release": "2.0"}),
        ),
    )
    .await;
    send(
        &app,
        2,
        &python_error(
            "ValueError",
            "bad quantity",
            "parse_order",
            json!({"environment": "staging", "level": "warning"}),
        ),
    )
    .await;
    send(
        &app,
        3,
        &json!({"message": "Payment provider timed out", "level": "error"}),
    )
    .await;
    app.process().await;
    let titles = |v: Vec<(String, i64)>| v.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    let search = |q: &str| IssueFilter {
        query: IssueQuery::parse(q).unwrap(),
        ..Default::default()
    };
    // By frame function (prefix), exception value, message words, and type; every word must match.
    assert_eq!(
        titles(issues(&app, search("checkout")).await),
        vec!["KeyError: 'missing_basket'"]
    );
    // Identifiers are split into words, so a part of one finds it, but only from a word's start.
    assert_eq!(
        titles(issues(&app, search("basket")).await),
        vec!["KeyError: 'missing_basket'"]
    );
    assert!(issues(&app, search("asket")).await.is_empty());
    assert_eq!(
        titles(issues(&app, search("missing_bask")).await),
        vec!["KeyError: 'missing_basket'"]
    );
    assert_eq!(
        titles(issues(&app, search("payment timed")).await),
        vec!["Payment provider timed out"]
    );
    assert_eq!(
        titles(issues(&app, search("valueerror quantity")).await),
        vec!["ValueError: bad quantity"]
    );
    assert!(
        issues(&app, search("OR * NEAR(")).await.is_empty(),
        "FTS syntax in the input is only data"
    );
    let env = IssueFilter {
        environment: Some("staging".into()),
        ..Default::default()
    };
    assert_eq!(
        titles(issues(&app, env).await),
        vec!["ValueError: bad quantity"]
    );
    let release = IssueFilter {
        release: Some("2.0".into()),
        ..Default::default()
    };
    assert_eq!(issues(&app, release).await.len(), 1);
    let level = IssueFilter {
        level: Some("warning".into()),
        ..Default::default()
    };
    assert_eq!(issues(&app, level).await.len(), 1);

    let (list, _) = app
        .store
        .list_issues(
            app.project.id,
            &IssueFilter {
                per_page: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    app.store
        .set_issue_status(list[0].id, IssueStatus::Resolved)
        .await
        .unwrap();
    let counts = app.store.issue_status_counts(app.project.id).await.unwrap();
    assert_eq!(
        (
            counts[&IssueStatus::Open],
            counts[&IssueStatus::Resolved],
            counts[&IssueStatus::Ignored]
        ),
        (2, 1, 0)
    );
    let open = IssueFilter {
        status: Some(IssueStatus::Open),
        per_page: 1,
        ..Default::default()
    };
    let (page, total) = app.store.list_issues(app.project.id, &open).await.unwrap();
    assert_eq!((page.len(), total), (1, IssueTotal::Exact(2)));
}

#[tokio::test]
async fn events_read_back_with_payload_and_neighbours() {
    let app = TestApp::new().await;
    for n in 1..=3 {
        let mut e = python_error("KeyError", "'a'", "show", json!({}));
        e["timestamp"] = json!(1_700_000_000 + n as i64);
        send(&app, n, &e).await;
    }
    app.process().await;
    let stored = app
        .store
        .event(app.project.id, &event_id(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payload["exception"]["values"][0]["type"], "KeyError");
    let (older, newer) = app
        .store
        .event_neighbours(stored.issue_id.unwrap(), &event_id(2))
        .await
        .unwrap();
    assert_eq!((older, newer), (Some(event_id(1)), Some(event_id(3))));
    assert!(app
        .store
        .event(app.project.id, "nope")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn out_of_order_events_never_move_last_seen_back() {
    let app = TestApp::new().await;
    let at = |ts: f64| {
        let mut e = python_error("KeyError", "'a'", "show", json!({}));
        e["timestamp"] = json!(ts);
        e
    };
    // A day ago: the processor takes times older than the retention horizon for a wrong clock.
    let t0 = chrono::Utc::now().timestamp() - 86_400;
    send(&app, 1, &at((t0 + 2_000) as f64)).await;
    send(&app, 2, &at((t0 + 1_000) as f64)).await;
    app.process().await;
    let (list, _) = app
        .store
        .list_issues(
            app.project.id,
            &IssueFilter {
                per_page: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (list[0].first_seen, list[0].last_seen),
        ((t0 + 1_000) * 1_000_000, (t0 + 2_000) * 1_000_000)
    );
    assert_eq!(list[0].last_event_id.as_deref(), Some(event_id(1).as_str()));
}

/// 12,000 issues in the test's project titled `issue N` and last seen at N, every 7th resolved; then
/// `then`, SQL over them (the project's only issues).
async fn twelve_thousand_issues(app: &TestApp, then: &str) {
    app.execute_sql(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 11999)
             INSERT INTO issues (project_id, status, title, level, first_seen, last_seen, times_seen, grouping_config)
               SELECT {project}, CASE WHEN i % 7 = 0 THEN 'resolved' ELSE 'open' END, 'issue ' || i, 'error', i, i, 1, 'test' FROM n;
             {then}",
            project = app.project.id.value()
        ))
        .await;
}

/// Lists the open ones of [`twelve_thousand_issues`] through `filter` and checks its page against those
/// `keep` picks, newest first; its total is exact if `few` match, else a floor of at least the issues
/// up to this page's last.
async fn assert_open_list(
    app: &TestApp,
    name: &str,
    filter: IssueFilter,
    keep: &dyn Fn(i64) -> bool,
    few: bool,
) {
    let filter = IssueFilter {
        status: Some(IssueStatus::Open),
        per_page: 25,
        ..filter
    };
    let (list, total) = app
        .store
        .list_issues(app.project.id, &filter)
        .await
        .unwrap();
    let matching: Vec<i64> = (0..12_000)
        .rev()
        .filter(|i| i % 7 != 0 && keep(*i))
        .collect();
    let start = filter.page as usize * 25;
    let expected: Vec<i64> = matching.iter().skip(start).take(25).copied().collect();
    let seen: Vec<i64> = list.iter().map(|i| i.last_seen).collect();
    assert_eq!(seen, expected, "{name}: the newest matching issues");
    match total {
        IssueTotal::Exact(n) => assert_eq!(n, matching.len() as i64, "{name}: exact total"),
        IssueTotal::AtLeast(n) => assert!(
            ((start + 25) as i64..=matching.len() as i64).contains(&n),
            "{name}: a floor of {n} for {}",
            matching.len()
        ),
    }
    assert_eq!(total.is_exact(), few, "{name}: {total:?}");
}

/// A tag value few issues carry and one most carry take different query paths (ids first, or the list
/// walked in page order); both must give the same issues a plain reading of the tags gives, and a filter
/// matching more than its count reads says its total is a floor.
#[tokio::test]
async fn tag_filters_are_right_whether_few_or_many_issues_carry_the_value() {
    let app = TestApp::new().await;
    // `production` on all, `canary` on every 1,000th, release `2.0` on every other.
    twelve_thousand_issues(
        &app,
        "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
           SELECT id, 'environment', 'production', 1, 0, 0 FROM issues;
         INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
           SELECT id, 'environment', 'canary', 1, 0, 0 FROM issues WHERE last_seen % 1000 = 0;
         INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
           SELECT id, 'release', '2.0', 1, 0, 0 FROM issues WHERE last_seen % 2 = 0;",
    )
    .await;
    // (what, environment, release, which of the rows match)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a dyn Fn(i64) -> bool,
    );
    let cases: [Case; 4] = [
        ("rare environment", Some("canary"), None, &|i| i % 1000 == 0),
        ("common environment", Some("production"), None, &|_| true),
        ("common release", None, Some("2.0"), &|i| i % 2 == 0),
        ("rare and common", Some("canary"), Some("2.0"), &|i| {
            i % 1000 == 0
        }),
    ];
    for (name, environment, release, keep) in cases {
        let filter = IssueFilter {
            environment: environment.map(str::to_owned),
            release: release.map(str::to_owned),
            ..Default::default()
        };
        // A rare value's issues are few enough to count them all; a common one's count is a floor.
        assert_open_list(&app, name, filter, keep, name.starts_with("rare")).await;
    }
}

/// Full text few issues match and full text many match take different paths (their issues read by id,
/// a list of the matches, or each issue checked against the index as the list is walked in page order);
/// all must give the issues a plain reading of the words gives, and a search matching more than its
/// count reads says its total is a floor.
#[tokio::test]
async fn full_text_is_right_whether_few_or_many_issues_match() {
    let app = TestApp::new().await;
    // In their text `timeout` on every other, `TimeoutError` on every third, `canary` on every 1,000th
    // and `café` on every 5th.
    twelve_thousand_issues(
        &app,
        "INSERT INTO issues_fts (rowid, title, body)
           SELECT id, title, CASE WHEN last_seen % 2 = 0 THEN 'timeout ' ELSE '' END
             || CASE WHEN last_seen % 3 = 0 THEN 'TimeoutError ' ELSE '' END
             || CASE WHEN last_seen % 1000 = 0 THEN 'canary ' ELSE '' END
             || CASE WHEN last_seen % 5 = 0 THEN 'café' ELSE '' END
           FROM issues;",
    )
    .await;
    let timeout = |i: i64| i % 2 == 0 || i % 3 == 0;
    // (search, page, which of the rows match, whether few enough match to count them all)
    type Case<'a> = (&'a str, u32, &'a dyn Fn(i64) -> bool, bool);
    let cases: [Case; 9] = [
        ("canary", 0, &|i| i % 1000 == 0, true),
        // A word is a prefix: `timeout` is also `TimeoutError`. Many match: the walk checks each.
        ("timeout", 0, &timeout, false),
        // A deep page of them reads a list of the matches instead.
        ("timeout", 30, &timeout, false),
        ("timeouterror", 0, &|i| i % 3 == 0, true),
        ("timeout canary", 0, &|i| i % 1000 == 0, true),
        ("issue", 0, &|_| true, false),
        ("issue !timeout", 2, &|i| !timeout(i), false),
        // The index folds accents either way.
        ("cafe", 0, &|i| i % 5 == 0, true),
        ("Café issue", 1, &|i| i % 5 == 0, true),
    ];
    for (query, page, keep, few) in cases {
        let filter = IssueFilter {
            query: IssueQuery::parse(query).unwrap(),
            page,
            ..Default::default()
        };
        let name = format!("{query} page {page}");
        assert_open_list(&app, &name, filter, keep, few).await;
    }
}

/// A `feedback` item naming an event, in the shape Sentry's SDKs send it.
fn feedback_envelope(feedback_id: &str, about: &str, message: &str) -> Vec<u8> {
    let payload = json!({
        "event_id": feedback_id, "timestamp": 1_700_000_100.0,
        "contexts": {"feedback": {"message": message, "associated_event_id": about}}
    })
    .to_string();
    format!(
        "{{\"event_id\":\"{feedback_id}\"}}\n{{\"type\":\"feedback\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

/// Feedback is listed on the issue of the event it names, whether the processor met the event first or
/// the feedback (a user's report can reach the queue before the crash it describes is processed).
#[tokio::test]
async fn feedback_is_filed_under_its_events_issue_in_either_order() {
    let app = TestApp::new().await;
    let error = python_error("KeyError", "'sku'", "checkout", json!({}));
    send(&app, 1, &error).await;
    app.process().await;
    let early = feedback_envelope(&event_id(100), &event_id(2), "before the event");
    let later = feedback_envelope(&event_id(101), &event_id(1), "after the event");
    for body in [early, later] {
        assert_eq!(app.post_envelope(body, &[]).await.status, 200);
    }
    app.process().await;
    send(&app, 2, &error).await;
    app.process().await;

    let issue = issues(&app, IssueFilter::default()).await;
    assert_eq!(issue.len(), 1, "{issue:?}");
    let id: i64 = app.query_strings("SELECT id FROM issues").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let (feedback, count) = app.store.issue_feedback(app.project.id, id).await.unwrap();
    let mut messages: Vec<&str> = feedback.iter().map(|f| f.message.as_str()).collect();
    messages.sort();
    assert_eq!(messages, ["after the event", "before the event"]);
    assert_eq!(count, 2);
}
