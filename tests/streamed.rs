//! Streamed transactions (span-v2 segments, what current JavaScript SDKs send): the segment's children
//! arrive before it and after it, in other envelopes and batches. Its figures — queries, db time, N+1,
//! span count — must count every child, be corrected when late children come, and keep the hourly rollup
//! in step, however often a batch is delivered.

use serde_json::{json, Value};
use splat::queue::Queue;
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
    // The project's cells are corrected with the endpoint's.
    for project_cells in ["project_rollups", "project_rollups_daily"] {
        let project = app
            .query_strings(&format!(
                "SELECT count, query_sum, n_plus_one_count, round(db_sum, 3) FROM {project_cells}"
            ))
            .await;
        assert_eq!(project, rollup, "{project_cells}");
    }
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

    // The database keeps no span's attributes: the late child's correction above found its rollup cell
    // (one cell, with the segment's name and environment) from the transaction row.
    let columns = app
        .query_strings("SELECT count(*) FROM pragma_table_info('spans') WHERE name = 'data'")
        .await;
    assert_eq!(columns, vec![strings(&["0"])]);
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

/// A segment sent without an end ends when it was received, its span row as its transaction, so that a
/// late child finds the transaction in the hour its key files it under (migration 37).
#[tokio::test]
async fn a_segment_sent_without_an_end_is_corrected_by_late_children() {
    let app = TestApp::new().await;
    let mut open = segment();
    open.as_object_mut().unwrap().remove("end_timestamp");
    send(&app, &envelope(vec![item_query(0), open])).await;
    let ends = "SELECT t.end_time = s.end_time, t.duration_us IS NOT NULL FROM transactions t
        JOIN spans s ON s.span_id = t.span_id AND s.is_segment = 1";
    assert_eq!(app.query_strings(ends).await, vec![strings(&["1", "1"])]);
    assert_eq!(figures(&app).await.0[0].as_deref(), Some("1"));
    send(&app, &envelope((1..6).map(item_query).collect())).await;
    let (tx, rollup) = figures(&app).await;
    assert_eq!((tx[0].as_deref(), tx[2].as_deref()), (Some("6"), Some("7")));
    assert_eq!(rollup[1].as_deref(), Some("6"));
}

/// The spans of the lake by trace id: (trace id, span id) pairs, sorted.
async fn lake_spans(app: &TestApp) -> Vec<(String, String)> {
    let mut spans = Vec::new();
    for batch in app.lake_batches(&splat::lake::tables::SPANS).await {
        let traces = lake_ids(&batch, "trace_id");
        let ids = lake_ids(&batch, "span_id");
        spans.extend(
            traces
                .into_iter()
                .zip(ids)
                .map(|(t, s)| (t.unwrap(), s.unwrap())),
        );
    }
    spans.sort();
    spans
}

/// Rows of `spans` of a trace.
async fn waiting(app: &TestApp, trace: &str) -> i64 {
    let n = app
        .query_strings(&format!(
            "SELECT count(*) FROM spans WHERE trace_id = '{trace}'"
        ))
        .await;
    n[0][0].as_deref().unwrap().parse().unwrap()
}

/// A segment of another trace, whose batch sweeps what has settled before it.
fn other_segment(trace: char) -> Vec<u8> {
    let mut segment = segment();
    segment["trace_id"] = json!(trace.to_string().repeat(32));
    envelope(vec![segment])
}

#[tokio::test]
async fn settled_segments_leave_the_database_and_the_lake_keeps_their_spans() {
    // No settle time: a segment settles as soon as a batch comes after its last span.
    let app = TestApp::with_config(|c| c.span_settle = std::time::Duration::ZERO).await;
    send(
        &app,
        &envelope(vec![item_query(0), item_query(1), segment()]),
    )
    .await;
    assert_eq!(waiting(&app, &trace()).await, 3);
    // A child arriving in the next batch is within the window (measured from the segment's last arrival):
    // it is figured with its siblings, then all of them wait again.
    send(&app, &envelope(vec![item_query(2)])).await;
    assert_eq!(figures(&app).await.0[0].as_deref(), Some("3"));
    assert_eq!(waiting(&app, &trace()).await, 4);

    // The next batch sweeps the whole settled segment; its transaction, figures and lake spans stay.
    send(&app, &other_segment('d')).await;
    assert_eq!(waiting(&app, &trace()).await, 0);
    assert_eq!(waiting(&app, &"d".repeat(32)).await, 1);
    let kept = app
        .query_strings("SELECT query_count, span_count FROM transactions WHERE trace_id = 'cccccccccccccccccccccccccccccccc'")
        .await;
    assert_eq!(kept, vec![strings(&["3", "4"])]);
    let in_lake = |spans: &[(String, String)]| spans.iter().filter(|(t, _)| *t == trace()).count();
    assert_eq!(in_lake(&lake_spans(&app).await), 4);

    // A child after the segment settled still reaches the lake; its transaction keeps its figures (no
    // sibling is left to figure them from), and the child's own row goes with the next sweep.
    send(&app, &envelope(vec![item_query(3)])).await;
    assert_eq!(in_lake(&lake_spans(&app).await), 5);
    assert_eq!(app.query_strings("SELECT query_count FROM transactions WHERE trace_id = 'cccccccccccccccccccccccccccccccc'").await, vec![strings(&["3"])]);
    send(&app, &other_segment('e')).await;
    assert_eq!(waiting(&app, &trace()).await, 0);

    // A batch delivered again after its segment settled writes nothing twice: the ledger knows it.
    app.post_envelope(envelope(vec![item_query(4)]), &[]).await;
    let batch = app
        .queue
        .receive(10, std::time::Duration::ZERO)
        .await
        .unwrap();
    app.processor.process_batch(&batch).await.unwrap();
    send(&app, &other_segment('f')).await;
    let before = lake_spans(&app).await;
    app.processor.process_batch(&batch).await.unwrap();
    assert_eq!(lake_spans(&app).await, before);
    assert_eq!(in_lake(&before), 6);
    assert_eq!(waiting(&app, &trace()).await, 0);
}

#[tokio::test]
async fn spans_wait_for_the_settle_window_by_default() {
    let app = TestApp::new().await;
    assert_eq!(app.config.span_settle, std::time::Duration::from_secs(3600));
    send(&app, &envelope(vec![item_query(0), segment()])).await;
    send(&app, &other_segment('d')).await;
    send(&app, &other_segment('e')).await;
    assert_eq!(waiting(&app, &trace()).await, 2);
}
