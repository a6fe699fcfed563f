//! Cron monitors against a real libSQL database: check-ins recorded as the processor records them (at
//! chosen times), the evaluation's verdicts (on time, missed, failed, overrun, recovered), redelivery that
//! changes nothing, crontab-with-timezone and interval schedules; then the same path through ingest (an
//! envelope `check_in` item and the HTTP check-in endpoint), the monitors page and the issues it opens.

use axum::body::Body;
use http::Request;
use serde_json::{json, Value};
use splat::model::check_in::{CheckIn, RunStatus};
use splat::monitors::Evaluation;
use splat::process::monitors::evaluate;
use splat::store::{CheckInRow, IssueChange, Monitor, Run, WriteBatch};
use splat_tests::*;
use tower::ServiceExt;

const MIN: i64 = 60_000_000;

fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

fn id(n: u32) -> String {
    format!("{n:032x}")
}

/// Records one check-in received at `received_us`, as the processor would (`times` deliveries of it).
async fn check_in(app: &TestApp, fields: Value, received_us: i64, times: usize) {
    let check_in = CheckIn::from_object(fields.as_object().unwrap()).expect("valid check-in");
    for _ in 0..times {
        let batch = WriteBatch {
            check_ins: vec![CheckInRow {
                project_id: app.project.id,
                check_in: check_in.clone(),
                received_at_us: received_us,
            }],
            ..WriteBatch::default()
        };
        splat::process::batch::commit(&app.store, &batch, None)
            .await
            .unwrap();
    }
}

async fn monitor(app: &TestApp, slug: &str) -> Monitor {
    let all = app.store.monitors(Some(app.project.id)).await.unwrap();
    all.into_iter().find(|m| m.slug == slug).expect("monitor")
}

async fn runs(app: &TestApp, slug: &str) -> Vec<Run> {
    let m = monitor(app, slug).await;
    app.store.monitor_runs(m.id, 100).await.unwrap()
}

/// `(title, status, times_seen)` of every issue, oldest first.
async fn issues(app: &TestApp) -> Vec<(String, String, i64)> {
    app.query_strings("SELECT title, status, times_seen FROM issues ORDER BY id")
        .await
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

async fn eval(app: &TestApp, now: i64) -> Evaluation {
    evaluate(&app.store, None, now).await.unwrap()
}

fn counts(e: &Evaluation) -> [usize; 4] {
    [e.missed, e.failed, e.overrun, e.recovered]
}

fn nightly(status: &str, n: u32) -> Value {
    json!({"check_in_id": id(n), "monitor_slug": "nightly-backup", "status": status, "environment": "production",
        "monitor_config": {"schedule": {"type": "crontab", "value": "0 3 * * *"}, "timezone": "Europe/Berlin",
            "checkin_margin": 5, "max_runtime": 60}})
}

#[tokio::test]
async fn crontab_in_a_timezone_on_time_missed_recovered_and_regressed() {
    let app = TestApp::new().await;
    // 03:00 in Berlin is 02:00 UTC in January.
    check_in(&app, nightly("ok", 1), at("2026-01-10T02:00:20Z"), 1).await;
    let m = monitor(&app, "nightly-backup").await;
    assert_eq!(
        m.schedule.as_ref().unwrap().describe(),
        "0 3 * * * (Europe/Berlin)"
    );
    assert_eq!((m.checkin_margin, m.max_runtime), (5, 60));
    assert_eq!(m.next_expected_at, Some(at("2026-01-11T02:00:00Z")));
    assert_eq!(
        (m.state(), m.environment.as_deref()),
        ("ok", Some("production"))
    );

    // Within the margin nothing is missed; a check-in a minute late is on time.
    assert_eq!(
        counts(&eval(&app, at("2026-01-11T02:04:59Z")).await),
        [0; 4]
    );
    check_in(&app, nightly("ok", 2), at("2026-01-11T02:01:00Z"), 1).await;
    assert_eq!(
        counts(&eval(&app, at("2026-01-11T02:30:00Z")).await),
        [0; 4]
    );
    assert!(issues(&app).await.is_empty());

    // Nothing on the 12th: missed once the margin passed, an issue opens (and alerts), once.
    let e = eval(&app, at("2026-01-12T02:05:30Z")).await;
    assert_eq!(counts(&e), [1, 0, 0, 0]);
    assert!(matches!(e.issue_changes[..], [IssueChange::Created { .. }]));
    assert_eq!(
        counts(&eval(&app, at("2026-01-12T02:06:30Z")).await),
        [0; 4]
    );
    let title = "Monitor `nightly-backup` missed a check-in".to_owned();
    assert_eq!(issues(&app).await, [(title.clone(), "open".into(), 1)]);
    let m = monitor(&app, "nightly-backup").await;
    assert_eq!(
        (m.state(), m.next_expected_at),
        ("missed", Some(at("2026-01-13T02:00:00Z")))
    );
    // The missed run is recorded at its slot; the last real check-in is still the 11th's.
    assert_eq!(m.last_checkin_at, Some(at("2026-01-11T02:01:00Z")));
    assert_eq!(
        runs(&app, "nightly-backup").await[0].started_at,
        at("2026-01-12T02:00:00Z")
    );

    // Missed again the next night: the same issue, seen twice.
    assert_eq!(
        counts(&eval(&app, at("2026-01-13T02:10:00Z")).await),
        [1, 0, 0, 0]
    );
    assert_eq!(issues(&app).await, [(title.clone(), "open".into(), 2)]);

    // Back on time: the issue resolves without an alert.
    check_in(&app, nightly("ok", 3), at("2026-01-14T02:00:05Z"), 1).await;
    let e = eval(&app, at("2026-01-14T02:01:00Z")).await;
    assert_eq!(counts(&e), [0, 0, 0, 1]);
    assert!(e.issue_changes.is_empty());
    assert_eq!(issues(&app).await, [(title.clone(), "resolved".into(), 2)]);
    assert_eq!(
        counts(&eval(&app, at("2026-01-14T02:02:00Z")).await),
        [0; 4]
    );

    // Missed once more: the resolved issue regresses.
    let e = eval(&app, at("2026-01-15T02:06:00Z")).await;
    assert!(matches!(
        e.issue_changes[..],
        [IssueChange::Regressed { .. }]
    ));
    assert_eq!(issues(&app).await, [(title, "open".into(), 3)]);
}

#[tokio::test]
async fn crontab_follows_daylight_saving() {
    let app = TestApp::new().await;
    // Summer: 03:00 in Berlin is 01:00 UTC.
    check_in(&app, nightly("ok", 1), at("2026-07-10T01:00:00Z"), 1).await;
    let m = monitor(&app, "nightly-backup").await;
    assert_eq!(m.next_expected_at, Some(at("2026-07-11T01:00:00Z")));
    assert_eq!(
        counts(&eval(&app, at("2026-07-11T01:05:30Z")).await),
        [1, 0, 0, 0]
    );
}

#[tokio::test]
async fn failed_runs_open_an_issue_once_and_redelivery_changes_nothing() {
    let app = TestApp::new().await;
    let t0 = at("2026-03-01T10:00:00Z");
    let job = |status: &str, n: u32, extra: Value| {
        let mut v = json!({"check_in_id": id(n), "monitor_slug": "sync", "status": status,
            "monitor_config": {"schedule": {"type": "interval", "value": 10, "unit": "minute"}}});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    // A run opened and closed as failed; every message delivered twice.
    check_in(&app, job("in_progress", 1, json!({})), t0, 2).await;
    check_in(
        &app,
        job("error", 1, json!({"duration": 30.5})),
        t0 + 31_000_000,
        2,
    )
    .await;
    let r = runs(&app, "sync").await;
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].status, r[0].started_at, r[0].duration_ms),
        (RunStatus::Error, t0, Some(30_500.0))
    );
    assert_eq!(monitor(&app, "sync").await.state(), "failed");
    // A late `in_progress` for a closed run does not reopen it.
    check_in(&app, job("in_progress", 1, json!({})), t0 + 40_000_000, 1).await;
    assert_eq!(runs(&app, "sync").await[0].status, RunStatus::Error);

    let e = eval(&app, t0 + MIN).await;
    assert_eq!(counts(&e), [0, 1, 0, 0]);
    assert_eq!(e.issue_changes.len(), 1);
    // Evaluating again (or after a crash, twice) finds nothing new.
    assert_eq!(counts(&eval(&app, t0 + 2 * MIN).await), [0; 4]);
    let title = "Monitor `sync` reported a failed run".to_owned();
    assert_eq!(issues(&app).await, [(title.clone(), "open".into(), 1)]);
    // The incident is an ordinary error event with the monitor's tags.
    let tags = app
        .query_strings("SELECT key, value FROM issue_tags WHERE key LIKE 'monitor.%' ORDER BY key")
        .await;
    assert_eq!(
        tags,
        [
            [Some("monitor.incident".into()), Some("failed".into())],
            [Some("monitor.slug".into()), Some("sync".into())]
        ]
    );
    assert_eq!(app.count("events").await, 1);

    // The next run is ok: recovered.
    check_in(&app, job("ok", 2, json!({"duration": 2})), t0 + 10 * MIN, 2).await;
    assert_eq!(counts(&eval(&app, t0 + 10 * MIN + 1).await), [0, 0, 0, 1]);
    assert_eq!(issues(&app).await, [(title, "resolved".into(), 1)]);
    assert_eq!(runs(&app, "sync").await.len(), 2);
}

#[tokio::test]
async fn an_overrunning_run_times_out_and_a_late_ok_recovers() {
    let app = TestApp::new().await;
    let t0 = at("2026-03-01T10:00:00Z");
    let job = |status: &str| {
        json!({"check_in_id": id(7), "monitor_slug": "import", "status": status,
            "monitor_config": {"schedule": {"type": "interval", "value": 1, "unit": "hour"}, "max_runtime": 5}})
    };
    check_in(&app, job("in_progress"), t0, 1).await;
    assert_eq!(monitor(&app, "import").await.state(), "in progress");
    assert_eq!(counts(&eval(&app, t0 + 4 * MIN).await), [0; 4]);
    assert_eq!(counts(&eval(&app, t0 + 6 * MIN).await), [0, 0, 1, 0]);
    assert_eq!(counts(&eval(&app, t0 + 7 * MIN).await), [0; 4]);
    assert_eq!(monitor(&app, "import").await.state(), "overrun");
    assert_eq!(runs(&app, "import").await[0].status, RunStatus::Timeout);
    let title = "Monitor `import` exceeded its max runtime".to_owned();
    assert_eq!(issues(&app).await, [(title.clone(), "open".into(), 1)]);

    // It does finish, late: the run closes with its real status and duration, and the monitor recovers.
    check_in(&app, job("ok"), t0 + 8 * MIN, 1).await;
    let r = runs(&app, "import").await;
    assert_eq!(
        (r.len(), r[0].status, r[0].duration_ms),
        (1, RunStatus::Ok, Some(480_000.0))
    );
    assert_eq!(counts(&eval(&app, t0 + 9 * MIN).await), [0, 0, 0, 1]);
    assert_eq!(issues(&app).await, [(title, "resolved".into(), 1)]);
}

#[tokio::test]
async fn interval_schedules_and_a_long_silence_miss_once_per_evaluation() {
    let app = TestApp::new().await;
    let t0 = at("2026-03-01T10:00:00Z");
    let ok = |n: u32| {
        json!({"check_in_id": id(n), "monitor_slug": "heartbeat", "status": "ok",
            "monitor_config": {"schedule": {"type": "interval", "value": 10, "unit": "minute"}, "checkin_margin": 2}})
    };
    check_in(&app, ok(1), t0, 1).await;
    assert_eq!(
        monitor(&app, "heartbeat").await.next_expected_at,
        Some(t0 + 10 * MIN)
    );
    assert_eq!(counts(&eval(&app, t0 + 12 * MIN).await), [0; 4]);
    // Three hours of silence (the server was down, say): one missed run, and the next slot is ahead.
    let now = t0 + 180 * MIN;
    assert_eq!(counts(&eval(&app, now).await), [1, 0, 0, 0]);
    let m = monitor(&app, "heartbeat").await;
    assert!(
        m.next_expected_at.unwrap() > now,
        "{:?}",
        m.next_expected_at
    );
    assert_eq!(counts(&eval(&app, now + MIN).await), [0; 4]);
    assert_eq!(runs(&app, "heartbeat").await.len(), 2);
}

#[tokio::test]
async fn a_failure_threshold_waits_for_failures_in_a_row() {
    let app = TestApp::new().await;
    let t0 = at("2026-03-01T10:00:00Z");
    let run = |status: &str, n: u32| {
        json!({"check_in_id": id(n), "monitor_slug": "flaky", "status": status,
            "monitor_config": {"schedule": {"type": "interval", "value": 1, "unit": "hour"},
                "failure_issue_threshold": 2, "recovery_threshold": 2}})
    };
    check_in(&app, run("error", 1), t0, 1).await;
    assert_eq!(counts(&eval(&app, t0 + MIN).await), [0, 1, 0, 0]);
    assert!(
        issues(&app).await.is_empty(),
        "one failure is below the threshold"
    );
    check_in(&app, run("ok", 2), t0 + 60 * MIN, 1).await;
    check_in(&app, run("error", 3), t0 + 120 * MIN, 1).await;
    assert_eq!(counts(&eval(&app, t0 + 121 * MIN).await), [0, 1, 0, 0]);
    assert!(
        issues(&app).await.is_empty(),
        "the failures were not in a row"
    );
    check_in(&app, run("error", 4), t0 + 180 * MIN, 1).await;
    eval(&app, t0 + 181 * MIN).await;
    assert_eq!(issues(&app).await.len(), 1);
    // One ok run is not enough to recover with a recovery threshold of 2.
    check_in(&app, run("ok", 5), t0 + 240 * MIN, 1).await;
    assert_eq!(counts(&eval(&app, t0 + 241 * MIN).await), [0; 4]);
    check_in(&app, run("ok", 6), t0 + 300 * MIN, 1).await;
    assert_eq!(counts(&eval(&app, t0 + 301 * MIN).await), [0, 0, 0, 1]);
    assert_eq!(issues(&app).await[0].1, "resolved");
}

#[tokio::test]
async fn the_newest_config_wins_even_when_an_older_one_is_redelivered() {
    let app = TestApp::new().await;
    let t0 = at("2026-03-01T10:00:00Z");
    let with = |n: u32, every: u32| {
        json!({"check_in_id": id(n), "monitor_slug": "cfg", "status": "ok",
            "monitor_config": {"schedule": {"type": "interval", "value": every, "unit": "minute"}}})
    };
    check_in(&app, with(1, 10), t0, 1).await;
    check_in(&app, with(2, 30), t0 + MIN, 1).await;
    check_in(&app, with(1, 10), t0, 1).await;
    // A check-in without config keeps the config.
    check_in(
        &app,
        json!({"check_in_id": id(3), "monitor_slug": "cfg", "status": "ok"}),
        t0 + 2 * MIN,
        1,
    )
    .await;
    let m = monitor(&app, "cfg").await;
    assert_eq!(m.schedule.unwrap().describe(), "every 30 minutes");
    assert_eq!(m.next_expected_at, Some(t0 + 32 * MIN));
    // A monitor nobody configured is never missed.
    check_in(
        &app,
        json!({"monitor_slug": "adhoc", "status": "ok"}),
        t0,
        1,
    )
    .await;
    assert_eq!(counts(&eval(&app, t0 + 1000 * MIN).await), [1, 0, 0, 0]);
    assert!(monitor(&app, "adhoc").await.schedule.is_none());
}

fn check_in_envelope(payload: &Value) -> Vec<u8> {
    let body = payload.to_string();
    format!(
        "{{}}\n{{\"type\":\"check_in\",\"length\":{}}}\n{body}\n",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn check_ins_through_ingest_the_http_endpoint_and_the_monitors_page() {
    let app = TestApp::new().await;
    let (project, key) = (app.project.id, app.key());
    // An SDK's envelope item.
    let reply = app
        .post_envelope(check_in_envelope(&nightly("in_progress", 9)), &[])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    let refused = app
        .post_envelope(check_in_envelope(&json!({"status": "ok"})), &[])
        .await;
    assert_eq!(refused.status, 400);
    assert!(
        refused.error().contains("monitor_slug"),
        "{}",
        refused.error()
    );

    // curl: open a run, then close it with the id the endpoint answered.
    let get = |uri: String| Request::get(uri).body(Body::empty()).unwrap();
    let opened = app
        .send(get(format!(
            "/api/{project}/cron/db-vacuum/{key}/?status=in_progress&environment=prod"
        )))
        .await;
    assert_eq!(opened.status, 202, "{}", opened.error());
    let run_id = opened.body["id"].as_str().unwrap().to_owned();
    assert_eq!(run_id.len(), 32);
    let closed = app
        .send(get(format!(
            "/api/{project}/cron/db-vacuum/{key}?status=ok&check_in_id={run_id}&duration=1.5"
        )))
        .await;
    assert_eq!(
        (closed.status, closed.body["id"].as_str()),
        (202, Some(run_id.as_str()))
    );
    // A POST may carry the monitor_config as JSON.
    let config = json!({"monitor_config": {"schedule": {"type": "interval", "value": 2, "unit": "hour"}, "checkin_margin": 10}});
    let posted = app
        .send(
            Request::post(format!("/api/{project}/cron/reports/{key}/?status=ok"))
                .header("content-type", "application/json")
                .body(Body::from(config.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.error());

    // Bad requests say why.
    for (uri, status, reason) in [
        (
            format!("/api/{project}/cron/x/{key}/?status=done"),
            400,
            "not in_progress, ok or error",
        ),
        (
            format!("/api/{project}/cron/x/{key}/"),
            400,
            "`status` is required",
        ),
        (
            format!("/api/{project}/cron/x/{key}/?status=ok&check_in_id=nope"),
            400,
            "not a UUID",
        ),
        (
            format!("/api/{project}/cron/x/0123456789abcdef0123456789abcdef/?status=ok"),
            403,
            "unknown public key",
        ),
        (
            format!("/api/{}/cron/x/{key}/?status=ok", project.value() + 1),
            403,
            "does not belong",
        ),
        (
            format!("/api/no.pe/cron/x/{key}/?status=ok"),
            400,
            "project id or slug",
        ),
    ] {
        let reply = app.send(get(uri.clone())).await;
        assert_eq!(reply.status, status, "{uri}: {}", reply.error());
        assert!(reply.error().contains(reason), "{uri}: {}", reply.error());
    }
    // The seed's DSNs named the project by its slug; a check-in URL may too.
    let by_slug = format!("/api/{}/cron/slugged/{key}/?status=ok", app.project.slug);
    let reply = app.send(get(by_slug)).await;
    assert_eq!(reply.status, 202, "{}", reply.error());
    let bad_tz = app
        .send(
            Request::post(format!("/api/{project}/cron/x/{key}/?status=ok"))
                .body(Body::from(r#"{"monitor_config":{"schedule":{"type":"crontab","value":"* * * * *"},"timezone":"Mars/Base"}}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(bad_tz.status, 400);
    assert!(
        bad_tz.error().contains("unknown timezone"),
        "{}",
        bad_tz.error()
    );

    app.process().await;
    let vacuum = runs(&app, "db-vacuum").await;
    assert_eq!(vacuum.len(), 1);
    assert_eq!(
        (
            vacuum[0].check_in_id.as_str(),
            vacuum[0].status,
            vacuum[0].duration_ms
        ),
        (run_id.as_str(), RunStatus::Ok, Some(1500.0))
    );
    assert_eq!(vacuum[0].environment.as_deref(), Some("prod"));
    let reports = monitor(&app, "reports").await;
    assert_eq!(
        (reports.schedule.unwrap().describe(), reports.checkin_margin),
        ("every 2 hours".into(), 10)
    );
    assert_eq!(monitor(&app, "nightly-backup").await.state(), "in progress");
    // Four check-ins above, and the one by slug.
    assert_eq!(app.store.item_count(project, "check_in").await.unwrap(), 5);

    let page = app
        .web()
        .oneshot(get(format!("/projects/{}/monitors", app.project.slug)))
        .await
        .unwrap();
    let page = Reply::read(page).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    for needle in [
        r#"data-monitor="db-vacuum" data-state="ok""#,
        r#"data-monitor="nightly-backup" data-state="in progress""#,
        "0 3 * * * (Europe/Berlin)",
        "every 2 hours",
        ">Monitors</a>",
    ] {
        assert!(
            html.contains(needle),
            "{needle} missing from the monitors page"
        );
    }
}
