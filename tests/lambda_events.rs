//! The Lambda handlers fed real event JSON: an API Gateway HTTP API v2 request with a base64 gzip body goes
//! through the same router as `splat serve`; an SQS batch with a poison record gets a partial batch response;
//! the UI's function URL events as CloudFront forwards them (a page, and a form post) reach the web router.

use aws_lambda_events::sqs::SqsEvent;
use base64::Engine;
use serde_json::json;
use splat::queue::Queue;
use splat_tests::*;
use tower::ServiceExt;

#[tokio::test]
async fn api_gateway_v2_event_with_base64_gzip_body() {
    let app = TestApp::new().await;
    let body = gzip(&event_envelope(
        &event_id(7),
        &json!({"message": "through API Gateway"}),
    ));
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/aws/apigw-v2-envelope.json")).unwrap();
    event["rawPath"] = json!(format!("/api/{}/envelope/", app.project.id));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event["rawQueryString"] = json!(format!("sentry_key={}&sentry_version=7", app.key()));
    event["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&body));
    let request = lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event");
    let response = app.router.clone().oneshot(request).await.unwrap();
    let reply = Reply::read(response).await;
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({"id": event_id(7)}))
    );
    app.process().await;
    assert_eq!(
        app.query_strings("SELECT title FROM events").await,
        vec![vec![Some("through API Gateway".to_string())]]
    );
}

#[tokio::test]
async fn sqs_event_with_a_poison_record_reports_only_that_record() {
    let app = TestApp::new().await;
    let event = recorded_sqs_event(&app, 3, "from SQS").await;
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let poison_id = event.records[1].message_id.clone().unwrap();

    let response = splat::lambda::handle_sqs_event(&app.processor, None, event.clone()).await;
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec![poison_id.clone()]);
    assert_eq!(app.count("events").await, 1);
    // SQS redelivers the whole batch after a timeout: the good record is not stored twice.
    let again = splat::lambda::handle_sqs_event(&app.processor, None, event).await;
    assert_eq!(again.batch_item_failures.len(), 1);
    assert_eq!(app.count("events").await, 1);
    // The response serializes the way the Lambda service expects.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        json!({"batchItemFailures": [{"itemIdentifier": poison_id}]})
    );
}

#[tokio::test]
async fn a_redelivered_record_that_panics_fails_alone() {
    let app = TestApp::new().await;
    for (n, message) in [(3, "good"), (4, "POISON-MARKER")] {
        app.post_envelope(
            event_envelope(&event_id(n), &json!({ "message": message })),
            &[],
        )
        .await;
    }
    let bodies = app
        .queue
        .receive(2, std::time::Duration::ZERO)
        .await
        .unwrap();
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/aws/sqs-batch-with-poison.json")).unwrap();
    for (record, delivery) in [0, 1].into_iter().zip(&bodies) {
        event["Records"][record]["body"] =
            json!(base64::engine::general_purpose::STANDARD.encode(&delivery.body));
        // Both were in an invocation that panicked before.
        event["Records"][record]["attributes"]["ApproximateReceiveCount"] = json!("2");
    }
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let poison_id = event.records[1].message_id.clone().unwrap();
    let processor = app
        .processor
        .clone()
        .with_panic_marker(Some("POISON-MARKER"));

    let response = splat::lambda::handle_sqs_event(&processor, None, event).await;
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec![poison_id]);
    assert_eq!(
        app.query_strings("SELECT title FROM events").await,
        vec![vec![Some("good".to_string())]]
    );
}

/// The ingest URL the template gives the UI function as `SPLAT_PUBLIC_URL`, so its DSNs name ingest.
const INGEST_URL: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com";
/// The viewer's host in the fixtures: CloudFront's, copied into `x-forwarded-host` by the stack's
/// viewer-request function (the origin gets the function URL's own `Host`).
const CLOUDFRONT_HOST: &str = "d1x2y3z4abcdef.cloudfront.net";

/// The web router as `functions/ui` builds it in AWS.
fn ui_router(app: &TestApp) -> axum::Router {
    splat::web::router(splat::web::WebState::new(
        app.store.clone(),
        app.queue.clone(),
        Some(INGEST_URL.into()),
        None,
    ))
}

/// A Lambda function URL event (payload 2.0) as the UI function receives it from CloudFront: the
/// function URL's `Host`, `x-forwarded-host` from the viewer-request function, `cloudfront-*` and `via`
/// headers, cookies in their own array, and (for the POST) a base64 form body. Built from AWS's documented
/// payload and CloudFront's headers under Managed-AllViewerExceptHostHeader, not captured from a live stack.
fn cloudfront_event(name: &str) -> serde_json::Value {
    let text = match name {
        "get" => include_str!("fixtures/aws/function-url-cloudfront-get.json"),
        "post-form" => include_str!("fixtures/aws/function-url-cloudfront-post-form.json"),
        _ => unreachable!(),
    };
    serde_json::from_str(text).unwrap()
}

async fn call_ui(
    router: &axum::Router,
    event: &serde_json::Value,
) -> (u16, http::HeaderMap, String) {
    let request = lambda_http::request::from_str(&event.to_string()).expect("a function URL event");
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn cloudfront_function_url_get_of_the_projects_page() {
    let app = TestApp::new().await;
    let event = cloudfront_event("get");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    let (status, headers, body) = call_ui(&ui_router(&app), &event).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The DSN names ingest (SPLAT_PUBLIC_URL), never CloudFront or the function URL.
    let dsn = format!(
        "https://{}@abc123.execute-api.eu-west-1.amazonaws.com/{}",
        app.key(),
        app.project.id
    );
    assert!(body.contains(&dsn), "no {dsn} in:\n{body}");
    assert!(
        !body.contains("lambda-url"),
        "the origin's host leaked into the page"
    );
    // The CSRF cookie is Secure: the function URL says x-forwarded-proto https.
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("splat_csrf=") && cookie.contains("; Secure"),
        "{cookie}"
    );
}

#[tokio::test]
async fn cloudfront_function_url_post_of_a_form() {
    let app = TestApp::new().await;
    let router = ui_router(&app);
    let event = cloudfront_event("post-form");
    assert_eq!(event["isBase64Encoded"], true);
    let projects = "SELECT name FROM projects ORDER BY id";

    // Without the viewer-request function, the Origin (CloudFront's host) matches neither the Host the
    // origin sees (the function URL's) nor SPLAT_PUBLIC_URL (ingest's): the CSRF check refuses the post.
    let mut bare = event.clone();
    bare["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-forwarded-host");
    let (status, _, _) = call_ui(&router, &bare).await;
    assert_eq!(status, 403);
    // Another site's form, forwarded by the same CloudFront, is refused too.
    let mut forged = event.clone();
    forged["headers"]["origin"] = json!("https://evil.example");
    forged["headers"]["sec-fetch-site"] = json!("cross-site");
    let (status, _, _) = call_ui(&router, &forged).await;
    assert_eq!(status, 403);
    assert_eq!(
        app.query_strings(projects).await,
        vec![vec![Some("default".to_string())]]
    );

    // As CloudFront forwards it: the base64 form body decoded, the cookie from `cookies`, the Origin
    // matching x-forwarded-host. The project is created and the browser sent to it by a relative link.
    assert_eq!(
        event["headers"]["x-forwarded-host"], CLOUDFRONT_HOST,
        "fixture"
    );
    let (status, headers, body) = call_ui(&router, &event).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(headers["location"], "/projects/checkout-service");
    assert_eq!(
        app.query_strings(projects).await,
        vec![
            vec![Some("default".to_string())],
            vec![Some("Checkout service".to_string())]
        ]
    );
}

#[tokio::test]
async fn eventbridge_scheduled_event_runs_retention() {
    let app = TestApp::new().await;
    // An event from 2025, far past the default 90-day horizon, and one from now.
    let old = json!({"message": "old news", "timestamp": 1_735_689_600.0});
    let new = json!({"message": "fresh", "timestamp": chrono::Utc::now().timestamp() as f64});
    for (n, event) in [(1, old), (2, new)] {
        assert_eq!(
            app.post_envelope(event_envelope(&event_id(n), &event), &[])
                .await
                .status,
            200
        );
    }
    app.process().await;
    let blobs: std::sync::Arc<dyn splat::blob::BlobStore> = std::sync::Arc::new(
        splat::blob::LocalBlobStore::new(app.config.data_dir.clone()),
    );
    let scheduled: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/aws/eventbridge-scheduled.json")).unwrap();
    let cx = splat::lambda::ScheduledContext {
        store: &app.store,
        blobs: &blobs,
        horizons: &app.config.retention,
        notifier: None,
        deadline: splat::retention::Deadline::NONE,
    };
    let answer = splat::lambda::handle_scheduled_event(&cx, &scheduled)
        .await
        .expect("retention ran");
    assert_eq!(answer["job"], "retention");
    assert_eq!(answer["report"]["database"]["events_deleted"], 1);
    assert_eq!(
        app.query_strings("SELECT title FROM events").await,
        vec![vec![Some("fresh".to_string())]]
    );
    // A rule's constant input names the job; an unknown job is refused without running anything.
    let constant = json!({"job": "retention"});
    assert!(splat::lambda::handle_scheduled_event(&cx, &constant)
        .await
        .is_ok());
    let unknown = json!({"job": "reindex"});
    let err = splat::lambda::handle_scheduled_event(&cx, &unknown)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown scheduled job"), "{err}");
}

#[tokio::test]
async fn the_per_minute_monitors_job_turns_a_failed_check_in_into_an_issue() {
    let app = TestApp::new().await;
    let check_in = json!({"check_in_id": "a".repeat(32), "monitor_slug": "nightly-backup", "status": "error",
        "monitor_config": {"schedule": {"type": "interval", "value": 1, "unit": "day"}, "checkin_margin": 5, "max_runtime": 60}});
    let body = check_in.to_string();
    let envelope = format!(
        "{{}}\n{{\"type\":\"check_in\",\"length\":{}}}\n{body}\n",
        body.len()
    );
    assert_eq!(app.post_envelope(envelope, &[]).await.status, 200);
    app.process().await;
    let blobs = local_blobs(&app);
    let cx = scheduled_context(&app, &blobs);
    let answer = splat::lambda::handle_scheduled_event(&cx, &json!({"job": "monitors"}))
        .await
        .expect("monitors evaluated");
    assert_eq!(
        (answer["job"].as_str(), answer["failed"].as_u64()),
        (Some("monitors"), Some(1))
    );
    assert_eq!(app.count("issues").await, 1, "the failed run is an issue");
    // The next tick finds nothing new: the run was judged once.
    let again = splat::lambda::handle_scheduled_event(&cx, &json!({"job": "monitors"}))
        .await
        .unwrap();
    assert_eq!(again["failed"], 0);
}

/// A processor whose database lacks a migration (here 35, undone as a database of the release before it
/// would be) processes nothing: each message comes back to the queue and the monitor tick is skipped. Once
/// the migrate job (the retention function's) has applied it, the same batch is stored.
#[tokio::test]
async fn a_processor_behind_its_schema_holds_batches_until_the_migrate_job_has_run() {
    let app = TestApp::new().await;
    let mut event = recorded_sqs_event(&app, 4, "held, then stored").await;
    event["Records"] = json!([event["Records"][0].clone()]);
    let message_id = event["Records"][0]["messageId"].clone();
    app.execute_sql("DELETE FROM schema_migrations WHERE version = 35")
        .await;
    app.execute_sql("DROP INDEX transaction_rollups_daily_environment")
        .await;
    let blobs = local_blobs(&app);
    let cx = scheduled_context(&app, &blobs);
    let gate = splat::lambda::MigrationGate::default();
    let invoke = |event: serde_json::Value| {
        splat::lambda::handle_processor_event(&app.processor, None, &cx, &gate, event)
    };

    let held = invoke(event.clone()).await.unwrap();
    assert_eq!(
        held,
        json!({"batchItemFailures": [{"itemIdentifier": message_id}]})
    );
    let tick = invoke(json!({"job": "monitors"})).await.unwrap();
    assert_eq!(tick, json!({"job": "monitors", "held": 1}));
    assert_eq!(app.count("events").await, 0);

    let migrated = splat::lambda::migrate_job(&app.config, splat::retention::Deadline::NONE)
        .await
        .unwrap();
    assert_eq!(migrated["pending"], 0);
    assert_eq!(
        migrated["schema_version"],
        app.store.schema_version().await.unwrap()
    );
    let stored = invoke(event).await.unwrap();
    assert_eq!(stored, json!({"batchItemFailures": []}));
    assert_eq!(app.count("events").await, 1);
    assert_eq!(
        invoke(json!({"job": "monitors"})).await.unwrap()["job"],
        "monitors"
    );
}

/// A recorded SQS batch (tests/fixtures/aws/sqs-batch-with-poison.json: a good record, then a poison one)
/// whose first record carries a real message: ingest queues event `n` with `message`, and its body goes in.
async fn recorded_sqs_event(app: &TestApp, n: u32, message: &str) -> serde_json::Value {
    app.post_envelope(
        event_envelope(&event_id(n), &json!({ "message": message })),
        &[],
    )
    .await;
    let queued = app
        .queue
        .receive(1, std::time::Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/aws/sqs-batch-with-poison.json")).unwrap();
    event["Records"][0]["body"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&queued.body));
    event
}

fn local_blobs(app: &TestApp) -> std::sync::Arc<dyn splat::blob::BlobStore> {
    std::sync::Arc::new(splat::blob::LocalBlobStore::new(
        app.config.data_dir.clone(),
    ))
}

/// What the scheduled jobs and the processor's handler are given, over the app's store and `blobs`.
fn scheduled_context<'a>(
    app: &'a TestApp,
    blobs: &'a std::sync::Arc<dyn splat::blob::BlobStore>,
) -> splat::lambda::ScheduledContext<'a> {
    splat::lambda::ScheduledContext {
        store: &app.store,
        blobs,
        horizons: &app.config.retention,
        notifier: None,
        deadline: splat::retention::Deadline::NONE,
    }
}
