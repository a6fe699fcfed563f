//! The Lambda handlers fed real event JSON: an API Gateway HTTP API v2 request with a base64 gzip body goes
//! through the same router as `splat serve`; an SQS batch with a poison record gets a partial batch response.

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
    // Let ingest write a real message, then hand its body to the Lambda handler inside a recorded SQS event.
    app.post_envelope(
        event_envelope(&event_id(3), &json!({"message": "from SQS"})),
        &[],
    )
    .await;
    let good = app
        .queue
        .receive(1, std::time::Duration::ZERO)
        .await
        .unwrap()
        .remove(0);
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/aws/sqs-batch-with-poison.json")).unwrap();
    event["Records"][0]["body"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&good.body));
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    let poison_id = event.records[1].message_id.clone().unwrap();

    let response = splat::lambda::handle_sqs_event(&app.processor, event.clone()).await;
    let failures: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failures, vec![poison_id.clone()]);
    assert_eq!(app.count("events").await, 1);
    // SQS redelivers the whole batch after a timeout: the good record is not stored twice.
    let again = splat::lambda::handle_sqs_event(&app.processor, event).await;
    assert_eq!(again.batch_item_failures.len(), 1);
    assert_eq!(app.count("events").await, 1);
    // The response serializes the way the Lambda service expects.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(
        json,
        json!({"batchItemFailures": [{"itemIdentifier": poison_id}]})
    );
}
