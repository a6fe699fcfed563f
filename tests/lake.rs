//! The lake end to end: what the processor stores goes to parquet files registered in the DuckLake
//! catalog inside `splat.db`, once per row however often it is sent, with no SQL literal in any file, and
//! transactions are summed into hourly rollups. (Stock DuckDB reading the same lake: `tests/sdk/test_lake.py`.)

use arrow_array::{Array, BooleanArray, Float64Array, Int32Array};
use serde_json::json;
use splat::lake::tables::{ALL, SPANS, TRANSACTIONS};
use splat::perf::sketch::LatencySketch;
use splat_tests::*;

/// A Django-like request: a list query, then one query per order (an N+1), with literals in the SQL.
fn checkout_transaction(n: u32) -> Vec<u8> {
    let (event_id, root) = (event_id(n), format!("{n:016x}"));
    let start = 1_767_225_600.0; // 2026-01-01T00:00:00Z
    let mut spans = vec![json!({
        "span_id": "a000000000000001", "parent_span_id": root, "trace_id": "t1".repeat(16),
        "op": "db", "description": "SELECT id FROM orders WHERE user_id = 42 AND email = 'bob@example.com'",
        "start_timestamp": start + 0.001, "timestamp": start + 0.005, "data": {"db.system": "postgresql"}
    })];
    for i in 0..6 {
        let t = start + 0.01 + i as f64 * 0.015;
        spans.push(json!({
            "span_id": format!("b00000000000000{i}"), "parent_span_id": root, "trace_id": "t1".repeat(16),
            "op": "db", "description": format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i),
            "start_timestamp": t, "timestamp": t + 0.012, "data": {"db.system": "postgresql"}
        }));
    }
    let tx = json!({
        "type": "transaction", "transaction": "GET /checkout", "platform": "python",
        "start_timestamp": start, "timestamp": start + 0.2, "environment": "production", "release": "shop@1.0",
        "server_name": "web-1",
        "request": {"method": "get", "url": "https://shop.example/checkout?token=secret"},
        "contexts": {"trace": {"trace_id": "t1".repeat(16), "span_id": root, "op": "http.server"},
                     "response": {"status_code": 502}},
        "spans": spans,
    });
    let payload = tx.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

fn error_event() -> serde_json::Value {
    json!({"platform": "python", "level": "error", "timestamp": 1_767_225_600.5,
           "exception": {"values": [{"type": "KeyError", "value": "'sku'"}]}})
}

#[tokio::test]
async fn transactions_spans_and_events_land_in_the_lake_once() {
    let app = TestApp::new().await;
    for body in [
        checkout_transaction(1),
        event_envelope(&event_id(2), &error_event()),
    ] {
        assert_eq!(app.post_envelope(body, &[]).await.status, 200);
    }
    app.process().await;
    // The same transaction and event again (an SDK retry): nothing new anywhere.
    for body in [
        checkout_transaction(1),
        event_envelope(&event_id(2), &error_event()),
    ] {
        assert_eq!(app.post_envelope(body, &[]).await.status, 200);
    }
    app.process().await;

    let stats = app
        .query_strings("SELECT table_id, record_count, next_row_id FROM ducklake_table_stats ORDER BY table_id")
        .await;
    let counts: Vec<Vec<Option<String>>> = [(1, 1), (2, 8), (3, 1)]
        .iter()
        .map(|(t, n)| {
            vec![
                Some(t.to_string()),
                Some(n.to_string()),
                Some(n.to_string()),
            ]
        })
        .collect();
    assert_eq!(
        stats, counts,
        "one transaction, its root and 7 child spans, one event"
    );
    // One snapshot per batch that wrote rows, after the four the migrations made (0 and 1 by migration
    // 5, 2 by migration 20's logs table, 3 by migration 28's binary ids).
    let snapshots = app
        .query_strings(
            "SELECT snapshot_id, next_file_id FROM ducklake_snapshot ORDER BY snapshot_id",
        )
        .await;
    assert_eq!(
        snapshots.last().unwrap(),
        &vec![Some("4".into()), Some("3".into())]
    );

    let tx = &app.lake_batches(&TRANSACTIONS).await[0];
    assert_eq!(lake_strings(tx, "name"), [Some("GET /checkout".into())]);
    assert_eq!(lake_strings(tx, "http_method"), [Some("GET".into())]);
    assert_eq!(
        lake_strings(tx, "http_url"),
        [Some("https://shop.example/checkout".into())]
    );
    let status = tx.column_by_name("http_status").unwrap();
    assert_eq!(
        status
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .value(0),
        502
    );
    let n1 = tx.column_by_name("has_n_plus_one").unwrap();
    assert!(n1.as_any().downcast_ref::<BooleanArray>().unwrap().value(0));
    let db = tx.column_by_name("db_time_ms").unwrap();
    let db = db.as_any().downcast_ref::<Float64Array>().unwrap().value(0);
    assert!((db - 76.0).abs() < 0.01, "db time {db}");

    let spans = &app.lake_batches(&SPANS).await[0];
    let descriptions = lake_strings(spans, "description");
    assert_eq!(
        descriptions[1].as_deref(),
        Some("SELECT id FROM orders WHERE user_id = %s AND email = %s")
    );
    assert_eq!(
        descriptions[2].as_deref(),
        Some("SELECT * FROM order_items WHERE order_id = %s")
    );
    let sequence = spans.column_by_name("sequence").unwrap();
    let sequence = sequence.as_any().downcast_ref::<Int32Array>().unwrap();
    assert_eq!(
        (0..8).map(|i| sequence.value(i)).collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );

    // No literal from the SQL reaches any lake file, compressed or not.
    for table in ALL {
        for batch in app.lake_batches(table).await {
            let text = format!("{batch:?}");
            assert!(
                !text.contains("bob@example.com") && !text.contains("1003"),
                "{}",
                table.name
            );
        }
    }
}

#[tokio::test]
async fn transactions_roll_up_per_endpoint_and_hour() {
    let app = TestApp::new().await;
    for n in 1..=3 {
        assert_eq!(
            app.post_envelope(checkout_transaction(n), &[]).await.status,
            200
        );
    }
    app.process().await;
    let rows = app
        .query_strings(
            "SELECT name, environment, hour, count, query_sum, n_plus_one_count, errors_5xx, duration_min, duration_max
             FROM transaction_rollups",
        )
        .await;
    assert_eq!(
        rows,
        [[
            Some("GET /checkout".into()),
            Some("production".into()),
            Some("1767225600".into()),
            Some("3".into()),
            Some("21".into()),
            Some("3".into()),
            Some("3".into()),
            Some("200".into()),
            Some("200".into())
        ]
        .to_vec()]
    );
    // The stored sketch decodes and answers percentiles of the durations (all 200 ms here).
    let db = libsql::Builder::new_local(&app.config.database_path)
        .build()
        .await
        .unwrap();
    let mut sketch = db
        .connect()
        .unwrap()
        .query("SELECT sketch FROM transaction_rollups", ())
        .await
        .unwrap();
    let blob: Vec<u8> = sketch.next().await.unwrap().unwrap().get(0).unwrap();
    let sketch = LatencySketch::from_bytes(&blob).unwrap();
    assert_eq!(sketch.count(), 3);
    assert!((sketch.quantile(0.95).unwrap() - 200.0).abs() <= 2.0);
}

/// A transaction of `ms` milliseconds on an endpoint, with no spans.
fn timed_transaction(n: u32, name: &str, ms: f64) -> Vec<u8> {
    let start = 1_767_225_600.0 + n as f64;
    let tx = json!({
        "type": "transaction", "transaction": name, "start_timestamp": start, "timestamp": start + ms / 1000.0,
        "environment": "production",
        "contexts": {"trace": {"trace_id": format!("{n:032x}"), "span_id": format!("{n:016x}"), "op": "http.server"}},
    });
    let payload = tx.to_string();
    format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        event_id(n),
        payload.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn endpoint_rankings_and_percentiles_come_from_the_rollups() {
    use splat::store::{PerfWindow, TransactionQuery, TransactionSort};
    let app = TestApp::new().await;
    // /slow: 1..=200 ms; /fast: 100 × 1 ms. Exact p95 of /slow (nearest rank) is 190 ms.
    for n in 1..=200 {
        app.post_envelope(timed_transaction(n, "/slow", n as f64), &[])
            .await;
    }
    for n in 201..=300 {
        app.post_envelope(timed_transaction(n, "/fast", 1.0), &[])
            .await;
    }
    app.post_envelope(checkout_transaction(301), &[]).await;
    while !app.process().await.done.is_empty() {}
    let window = PerfWindow {
        from_us: 1_767_225_600_000_000,
        to_us: 1_767_229_200_000_000,
        ..PerfWindow::default()
    };
    let stats = app
        .store
        .endpoint_stats(app.project.id, &window)
        .await
        .unwrap();
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["/slow", "GET /checkout", "/fast"], "by time spent");
    let slow = &stats[0];
    assert_eq!(slow.count, 200);
    assert!(
        (slow.p95_ms.unwrap() - 190.0).abs() <= 1.9,
        "p95 {:?}",
        slow.p95_ms
    );
    assert!(
        (slow.p50_ms.unwrap() - 100.0).abs() <= 1.0,
        "p50 {:?}",
        slow.p50_ms
    );
    assert_eq!((slow.min_ms, slow.max_ms), (Some(1.0), Some(200.0)));
    assert_eq!(stats[1].n_plus_one_pct(), 100.0);

    let filtered = PerfWindow {
        name: Some("FAS".into()),
        ..window.clone()
    };
    let only = app
        .store
        .endpoint_stats(app.project.id, &filtered)
        .await
        .unwrap();
    assert_eq!(
        only.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["/fast"]
    );
    let hours = app
        .store
        .perf_hours(app.project.id, &window, Some("/slow"))
        .await
        .unwrap();
    assert_eq!(
        hours
            .iter()
            .map(|h| (h.hour, h.stats.count))
            .collect::<Vec<_>>(),
        [(1_767_225_600, 200)]
    );

    let slowest = app
        .store
        .transactions(
            app.project.id,
            &TransactionQuery {
                window: window.clone(),
                sort: TransactionSort::Slowest,
                limit: 2,
                ..TransactionQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        slowest.iter().map(|t| t.duration_ms).collect::<Vec<_>>(),
        [Some(200.0), Some(200.0)]
    );
    let checkout = slowest
        .iter()
        .find(|t| t.name == "GET /checkout")
        .expect("checkout is among the slowest");
    let detail = app
        .store
        .transaction_detail(app.project.id, checkout.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (detail.summary.http_status, detail.spans_truncated),
        (Some(502), false)
    );
    let worst = &detail.query_patterns[0];
    assert_eq!(
        worst["pattern"],
        "SELECT * FROM order_items WHERE order_id = %s"
    );
    assert_eq!(
        (
            worst["count"].as_u64(),
            worst["distinct_statements"].as_u64(),
            worst["n_plus_one"].as_bool()
        ),
        (Some(6), Some(6), Some(true))
    );
}

#[tokio::test]
async fn a_transactions_spans_are_read_back_from_the_files_of_its_time_only() {
    use splat::lake::read::{files_for, LakeFiles, LakeReader};
    let app = TestApp::new().await;
    app.post_envelope(checkout_transaction(1), &[]).await;
    app.process().await;
    // A day later, in another batch: another file, which the first transaction's lookup must not open.
    app.post_envelope(timed_transaction(86_400, "/later", 5.0), &[])
        .await;
    app.process().await;
    let start = 1_767_225_600_000_000;
    let project = app.project.id.value();
    let files = files_for(&app.store, &SPANS, project, start, start + 200_000)
        .await
        .unwrap();
    assert_eq!(files.len(), 1);
    assert!(
        files_for(&app.store, &SPANS, project + 1, start, start + 200_000)
            .await
            .unwrap()
            .is_empty()
    );

    let blobs = std::sync::Arc::new(splat::blob::LocalBlobStore::new(
        app.config.data_dir.clone(),
    ));
    let reader = LakeFiles::new(app.store.clone(), blobs);
    let spans = reader
        .transaction_spans(project, &format!("{:016x}", 1), start, start + 200_000)
        .await
        .unwrap();
    let shape: Vec<(Option<i32>, Option<i32>, Option<&str>)> = spans
        .iter()
        .map(|s| (s.sequence, s.depth, s.op.as_deref()))
        .collect();
    assert_eq!(shape[0], (Some(0), Some(0), Some("http.server")));
    assert_eq!(shape.len(), 8);
    assert!(shape[1..]
        .iter()
        .all(|(_, depth, op)| *depth == Some(1) && *op == Some("db")));
    let repeated: Vec<&Option<String>> = spans[2..].iter().map(|s| &s.group_hash).collect();
    assert!(
        repeated.iter().all(|g| g.is_some() && *g == repeated[0]),
        "one group for the repeated query"
    );
    assert_ne!(spans[1].group_hash, spans[2].group_hash);
}

/// Live lake files of a table in the catalog.
async fn lake_files(app: &TestApp, table: &splat::lake::TableDef) -> usize {
    app.query_strings(&format!(
        "SELECT 1 FROM ducklake_data_file WHERE table_id = {} AND end_snapshot IS NULL",
        table.id
    ))
    .await
    .len()
}

#[tokio::test]
async fn a_trickle_within_the_batch_window_is_one_batch_with_one_file_per_table() {
    use splat::process::runner::{run_once, RunnerOptions};
    use std::time::Duration;
    // Received messages stay invisible for longer than the window, as `splat serve` makes sure.
    let app = TestApp::with_config(|c| c.queue_visibility = Duration::from_secs(30)).await;
    let app = &app;
    let options = |window| RunnerOptions {
        batch_size: 3,
        wait: Duration::ZERO,
        window,
        notify: None,
    };
    // Three transactions, the second and third arriving 200 and 400 ms after the first is received.
    let trickle = |first: u32, window: Duration| async move {
        assert_eq!(
            app.post_envelope(checkout_transaction(first), &[])
                .await
                .status,
            200
        );
        let options = options(window);
        let batch = run_once(&app.processor, app.queue.as_ref(), &options);
        let later = async {
            for n in first + 1..first + 3 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                assert_eq!(
                    app.post_envelope(checkout_transaction(n), &[]).await.status,
                    200
                );
            }
        };
        tokio::join!(batch, later).0.unwrap().done.len()
    };

    // Without a window the batch is what has arrived: the first transaction alone, in files of its own.
    assert_eq!(trickle(1, Duration::ZERO).await, 1);
    assert_eq!(lake_files(app, &TRANSACTIONS).await, 1);
    app.process().await;
    assert_eq!(lake_files(app, &TRANSACTIONS).await, 2);

    // With one, the two that arrive while it is open join the first: one commit, one file per table.
    assert_eq!(trickle(11, Duration::from_secs(5)).await, 3);
    assert_eq!(lake_files(app, &TRANSACTIONS).await, 3);
    assert_eq!(lake_files(app, &SPANS).await, 3);
    assert_eq!(app.count("transactions").await, 6);
}

#[tokio::test]
async fn a_receive_past_the_batch_byte_bound_commits_in_several_batches_each_message_once() {
    use splat::process::runner::{run_once, RunnerOptions};
    use std::time::Duration;
    let app = TestApp::new().await;
    let options = RunnerOptions {
        batch_size: 10,
        wait: Duration::ZERO,
        window: Duration::ZERO,
        notify: None,
    };
    let send = |from: u32| {
        let app = &app;
        async move {
            for n in from..from + 3 {
                assert_eq!(
                    app.post_envelope(checkout_transaction(n), &[]).await.status,
                    200
                );
            }
        }
    };
    // Each envelope is more than the bound: three receives' worth of batches, one commit (and one lake
    // file per table) each.
    send(1).await;
    let small = app.processor.clone().with_batch_bytes(100);
    let outcome = run_once(&small, app.queue.as_ref(), &options)
        .await
        .unwrap();
    assert_eq!(outcome.done.len(), 3);
    assert_eq!(lake_files(&app, &TRANSACTIONS).await, 3);
    // Within the default bound the same three are one batch.
    send(11).await;
    let outcome = run_once(&app.processor, app.queue.as_ref(), &options)
        .await
        .unwrap();
    assert_eq!(outcome.done.len(), 3);
    assert_eq!(lake_files(&app, &TRANSACTIONS).await, 4);
    assert_eq!(app.count("transactions").await, 6);
}
