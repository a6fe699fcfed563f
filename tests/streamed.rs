//! Streamed transactions (span-v2 segments, what current JavaScript SDKs send): the segment's children
//! arrive before it and after it, in other envelopes and batches. Its figures — queries, db time, N+1,
//! span count — must count every child, be corrected when late children come, and keep the hourly rollup
//! in step, however often a batch is delivered.

use serde_json::{json, Value};
use splat_tests::*;

const T: f64 = 1_767_225_600.0; // 2026-01-01T00:00:00Z

fn trace() -> String {
    "c".repeat(32)
}

/// A db span of the segment `seg`, `ms` long, starting `at` seconds after `T`.
fn db_span(id: &str, sql: &str, at: f64, ms: f64) -> Value {
    json!({"trace_id": trace(), "span_id": id, "parent_span_id": "5e9000000000000a", "name": sql,
           "start_timestamp": T + at, "end_timestamp": T + at + ms / 1000.0,
           "attributes": {"sentry.op": {"type": "string", "value": "db"},
                          "db.system": {"type": "string", "value": "postgresql"},
                          "sentry.segment.id": {"type": "string", "value": "5e9000000000000a"}}})
}

fn segment() -> Value {
    json!({"trace_id": trace(), "span_id": "5e9000000000000a", "name": "GET /orders", "is_segment": true, "status": "ok",
           "start_timestamp": T, "end_timestamp": T + 0.5,
           "attributes": {"sentry.op": {"type": "string", "value": "http.server"},
                          "sentry.environment": {"type": "string", "value": "production"},
                          "sentry.segment.id": {"type": "string", "value": "5e9000000000000a"}}})
}

/// The n-th `order_items` query of the N+1 loop, 12 ms each, one after the other.
fn item_query(i: u32) -> Value {
    db_span(
        &format!("1000000000000{i:03}"),
        &format!("SELECT * FROM order_items WHERE order_id = {}", 100 + i),
        0.02 + f64::from(i) * 0.015,
        12.0,
    )
}

fn envelope(items: Vec<Value>) -> Vec<u8> {
    let body = json!({ "items": items });
    format!(
        "{{}}\n{{\"type\":\"span\",\"item_count\":{},\"content_type\":\"application/vnd.sentry.items.span.v2+json\"}}\n{body}\n",
        body["items"].as_array().unwrap().len()
    )
    .into_bytes()
}

async fn send(app: &TestApp, body: &[u8]) {
    assert_eq!(app.post_envelope(body.to_vec(), &[]).await.status, 200);
    app.process().await;
}

/// (query_count, has_n_plus_one, span_count, db_time_ms) of the transaction, and (query_sum,
/// n_plus_one_count, db_sum) of its rollup.
async fn figures(app: &TestApp) -> (Vec<Option<String>>, Vec<Option<String>>) {
    let tx = app
        .query_strings("SELECT query_count, has_n_plus_one, span_count, round(db_time_ms, 3) FROM transactions")
        .await;
    let rollup = app
        .query_strings(
            "SELECT count, query_sum, n_plus_one_count, round(db_sum, 3) FROM transaction_rollups",
        )
        .await;
    assert_eq!(
        (tx.len(), rollup.len()),
        (1, 1),
        "one transaction, one rollup cell"
    );
    (tx[0].clone(), rollup[0].clone())
}

fn strings(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

#[tokio::test]
async fn a_segment_counts_children_from_before_and_after_it() {
    let app = TestApp::new().await;
    // Batch 1: the list query and four of the loop's queries; no segment yet, so no transaction.
    let source = db_span(
        "2000000000000001",
        "SELECT id FROM orders WHERE user_id = 42",
        0.01,
        5.0,
    );
    let mut early = vec![source];
    early.extend((0..4).map(item_query));
    send(&app, &envelope(early)).await;
    assert_eq!(app.count("transactions").await, 0);

    // Batch 2: the segment with two more of the loop's queries. Its figures count all seven queries:
    // six repeats of one query under one parent, 72 ms in all — an N+1.
    send(
        &app,
        &envelope(vec![item_query(4), item_query(5), segment()]),
    )
    .await;
    let (tx, rollup) = figures(&app).await;
    assert_eq!(tx, strings(&["7", "1", "8", "77"]));
    assert_eq!(rollup, strings(&["1", "7", "1", "77"]));

    // Batch 3: a child that ended after its segment was sent. The transaction and its rollup are
    // corrected; the transaction is not counted twice.
    let late = envelope(vec![db_span(
        "3000000000000001",
        "UPDATE orders SET seen = true WHERE id = 7",
        0.3,
        20.0,
    )]);
    send(&app, &late).await;
    let (tx, rollup) = figures(&app).await;
    assert_eq!(tx, strings(&["8", "1", "9", "97"]));
    assert_eq!(rollup, strings(&["1", "8", "1", "97"]));

    // The same late envelope again (an SDK retry): its span is already stored, so nothing changes.
    send(&app, &late).await;
    assert_eq!(figures(&app).await, (tx, rollup));

    // The database keeps the segment's attributes (its transaction is made of them), not its children's,
    // which nothing reads back: the figures above were computed without them.
    let kept = app
        .query_strings("SELECT DISTINCT is_segment, data IS NOT NULL FROM spans ORDER BY 1")
        .await;
    assert_eq!(kept, vec![strings(&["0", "0"]), strings(&["1", "1"])]);
}

#[tokio::test]
async fn late_children_can_turn_a_segment_into_an_n_plus_one() {
    let app = TestApp::new().await;
    let source = db_span(
        "2000000000000001",
        "SELECT id FROM orders WHERE user_id = 42",
        0.01,
        5.0,
    );
    send(
        &app,
        &envelope(vec![source, item_query(0), item_query(1), segment()]),
    )
    .await;
    let (tx, rollup) = figures(&app).await;
    assert_eq!(tx[1].as_deref(), Some("0"), "two repeats are no N+1");
    assert_eq!(rollup[2].as_deref(), Some("0"));
    send(&app, &envelope((2..6).map(item_query).collect())).await;
    let (tx, rollup) = figures(&app).await;
    assert_eq!(tx, strings(&["7", "1", "8", "77"]));
    assert_eq!(rollup, strings(&["1", "7", "1", "77"]));
}
