//! Notifications against a real HTTP receiver (an axum server on a loopback port, standing in for a
//! webhook endpoint and an ntfy server): new and regressed issues, retries when the receiver fails, the
//! processor loop handing changes to the background task, and a burst alerted once.
//! (Email over SMTP is tested end to end against a real SMTP server in `tests/sdk/test_notifications.py`.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use splat::config::NotifyConfig;
use splat::notify::{self, Notifier, RetryPolicy};
use splat::process::runner::{run_once, RunnerOptions};
use splat::store::{IssueChange, IssueStatus};
use splat_tests::{event_envelope, event_id, TestApp};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// How many more webhook requests to answer 500.
    fail_next: Arc<Mutex<u32>>,
}

impl Receiver {
    /// Starts the server; returns its base URL.
    async fn start(&self) -> String {
        async fn take(
            State(r): State<Receiver>,
            uri: axum::http::Uri,
            headers: HeaderMap,
            body: String,
        ) -> StatusCode {
            r.got.lock().unwrap().push(Received {
                path: uri.path().to_owned(),
                headers,
                body,
            });
            let mut fail = r.fail_next.lock().unwrap();
            if uri.path() == "/hook" && *fail > 0 {
                *fail -= 1;
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            StatusCode::OK
        }
        let app = Router::new()
            .route("/hook", post(take))
            .route("/topic", post(take))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn webhooks(&self) -> Vec<Value> {
        self.at("/hook")
            .iter()
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }

    async fn wait_for(&self, path: &str, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.at(path);
            if got.len() >= count {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{path} got {:?}", self.at(path));
    }
}

const FAST: RetryPolicy = RetryPolicy {
    attempts: 3,
    backoff: Duration::from_millis(20),
    timeout: Duration::from_secs(5),
};

async fn notifier(app: &TestApp, base: &str, burst_threshold: u64) -> Notifier {
    let config = NotifyConfig {
        webhooks: vec![
            splat::notify::Webhook::new("webhook", None, &format!("{base}/hook")).unwrap(),
        ],
        ntfy_url: Some(format!("{base}/topic").into()),
        ntfy_token: Some("tk_secret".into()),
        ntfy_priority: "high".into(),
        burst_threshold,
        ..NotifyConfig::default()
    };
    let store = splat::store::Store::open(&app.config.database_path)
        .await
        .unwrap();
    Notifier::from_config(&config, store, "https://splat.example.com")
        .unwrap()
        .expect("channels are configured")
        .with_retry(FAST)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An error that always groups into the same issue.
async fn send_error(app: &TestApp, n: u32) {
    let event = json!({"timestamp": now_secs(), "level": "error", "platform": "python",
        "exception": {"values": [{"type": "ZeroDivisionError", "value": "division by zero",
            "stacktrace": {"frames": [{"function": "checkout", "module": "shop.views", "in_app": true}]}}]}});
    let reply = app
        .post_envelope(event_envelope(&event_id(n), &event), &[])
        .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn new_and_regressed_issues_reach_the_webhook_and_ntfy_despite_failures() {
    let app = TestApp::new().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let notifier = notifier(&app, &base, 1000).await;
    assert_eq!(notifier.channel_names(), ["webhook", "ntfy"]);

    send_error(&app, 1).await;
    let outcome = app.process().await;
    let [IssueChange::Created { issue_id, .. }] = outcome.issue_changes[..] else {
        panic!("one new issue, got {:?}", outcome.issue_changes);
    };
    // The webhook fails twice; the third try gets through. ntfy takes it the first time.
    *receiver.fail_next.lock().unwrap() = 2;
    notifier
        .deliver_changes(&outcome.issue_changes, Duration::from_secs(20))
        .await;
    let hooks = receiver.webhooks();
    assert_eq!(hooks.len(), 3, "two failures and a success: {hooks:?}");
    let slug = app.project.slug.clone();
    let url = format!("https://splat.example.com/projects/{slug}/issues/{issue_id}");
    let created = &hooks[2];
    assert_eq!(created["event"], "issue.created");
    assert_eq!(created["issue"]["id"], issue_id);
    assert_eq!(
        created["issue"]["title"],
        "ZeroDivisionError: division by zero"
    );
    assert_eq!(created["issue"]["level"], "error");
    assert_eq!(created["issue"]["count"], 1);
    assert_eq!(created["project"]["slug"], slug.as_str());
    assert_eq!(created["url"], url.as_str());
    let hook = &receiver.at("/hook")[2];
    assert_eq!(hook.headers["content-type"], "application/json");

    let ntfy = receiver.at("/topic");
    assert_eq!(ntfy.len(), 1);
    let h = &ntfy[0].headers;
    assert_eq!(
        h["title"],
        "[Splat] New Issue: ZeroDivisionError: division by zero"
    );
    assert_eq!(h["tags"], "boom");
    assert_eq!(h["click"], url.as_str());
    assert_eq!(h["priority"], "high");
    assert_eq!(h["authorization"], "Bearer tk_secret");
    assert!(ntfy[0]
        .body
        .contains("Issue: ZeroDivisionError: division by zero\n"));
    assert!(ntfy[0].body.contains(&url));

    // Resolved, then seen again: a regression alert.
    app.store
        .set_issue_status(issue_id, IssueStatus::Resolved)
        .await
        .unwrap();
    send_error(&app, 2).await;
    let outcome = app.process().await;
    assert!(matches!(
        outcome.issue_changes[..],
        [IssueChange::Regressed { .. }]
    ));
    notifier
        .deliver_changes(&outcome.issue_changes, Duration::from_secs(20))
        .await;
    let regressed = receiver.webhooks().pop().unwrap();
    assert_eq!(regressed["event"], "issue.regressed");
    assert_eq!(regressed["issue"]["count"], 2);
    assert_eq!(regressed["issue"]["status"], "open");
    let ntfy = receiver.at("/topic");
    assert_eq!(
        ntfy.last().unwrap().headers["title"],
        "[Splat] Issue Reopened: ZeroDivisionError: division by zero"
    );
    assert_eq!(ntfy.last().unwrap().headers["tags"], "recycle");
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_tried_three_times_and_the_others_still_get_it() {
    let app = TestApp::new().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let notifier = notifier(&app, &base, 1000).await;
    send_error(&app, 1).await;
    let outcome = app.process().await;
    let IssueChange::Created { issue_id, .. } = outcome.issue_changes[0] else {
        panic!()
    };
    *receiver.fail_next.lock().unwrap() = 100;
    let delivered = notifier.notify(notify::AlertKind::Created, issue_id).await;
    assert_eq!(delivered, 1, "ntfy took it, the webhook did not");
    assert_eq!(receiver.at("/hook").len(), 3);
    assert_eq!(receiver.at("/topic").len(), 1);
}

#[tokio::test]
async fn the_processor_loop_hands_changes_to_the_background_task() {
    let app = TestApp::new().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let notifier = notifier(&app, &base, 1000).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (handle, task) = notify::spawn(notifier, Duration::from_secs(3600), stopped);
    let options = RunnerOptions {
        batch_size: 10,
        wait: Duration::ZERO,
        window: Duration::ZERO,
        notify: Some(handle),
    };
    send_error(&app, 1).await;
    let outcome = run_once(&app.processor, app.queue.as_ref(), &options)
        .await
        .unwrap();
    assert_eq!(outcome.issue_changes.len(), 1);
    let hooks = receiver.wait_for("/hook", 1).await;
    let body: Value = serde_json::from_str(&hooks[0].body).unwrap();
    assert_eq!(body["event"], "issue.created");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_burst_is_alerted_once_per_hour() {
    let app = TestApp::new().await;
    let receiver = Receiver::default();
    let base = receiver.start().await;
    let notifier = notifier(&app, &base, 3).await;
    for n in 1..=2 {
        send_error(&app, n).await;
    }
    let outcome = app.process().await;
    notifier
        .deliver_changes(&outcome.issue_changes, Duration::from_secs(20))
        .await;
    let events: Vec<Value> = receiver
        .webhooks()
        .iter()
        .map(|h| h["event"].clone())
        .collect();
    assert_eq!(events, ["issue.created"], "two events: below the threshold");

    send_error(&app, 3).await;
    let outcome = app.process().await;
    assert!(outcome.issue_changes.is_empty());
    notifier
        .deliver_changes(&outcome.issue_changes, Duration::from_secs(20))
        .await;
    let hooks = receiver.webhooks();
    let burst = hooks.last().unwrap();
    assert_eq!(burst["event"], "issue.burst");
    assert_eq!(burst["burst"]["events"], 3);
    assert_eq!(
        receiver.at("/topic").last().unwrap().headers["tags"],
        "fire,warning"
    );

    // More events in the same hour: no second burst alert, even from a notifier started afresh.
    send_error(&app, 4).await;
    app.process().await;
    assert_eq!(notifier.check_bursts().await, 0);
    let again = self::notifier(&app, &base, 3).await;
    assert_eq!(again.check_bursts().await, 0);
    assert_eq!(receiver.webhooks().len(), 2);
    assert_eq!(
        app.query_strings("SELECT kind FROM notifications_sent")
            .await,
        vec![vec![Some("burst".to_owned())]]
    );
}
