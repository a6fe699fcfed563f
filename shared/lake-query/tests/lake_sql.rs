//! DuckDB over the files the processor wrote: the same rows the database has, with SQL.

use std::sync::Arc;
use std::time::Duration;

use splat::blob::LocalBlobStore;
use splat::process::Processor;
use splat::queue::{EnvelopeRef, LocalQueue, Queue, QueueMessage};
use splat::store::Store;
use splat_lake_query::{LakeQuery, LakeSource};

fn transaction(n: u32, name: &str, ms: f64) -> Vec<u8> {
    let start = 1_767_225_600.0 + n as f64;
    let payload = serde_json::json!({
        "type": "transaction", "transaction": name, "start_timestamp": start, "timestamp": start + ms / 1000.0,
        "contexts": {"trace": {"trace_id": format!("{n:032x}"), "span_id": format!("{n:016x}"), "op": "http.server"}},
        "spans": [{"span_id": format!("c{n:015x}"), "parent_span_id": format!("{n:016x}"), "op": "db",
                   "description": format!("SELECT * FROM t WHERE id = {n}"),
                   "start_timestamp": start, "timestamp": start + 0.001}],
    })
    .to_string();
    format!(
        "{{\"event_id\":\"{n:032x}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

/// A data folder whose processor has stored these transactions (number, endpoint, milliseconds).
async fn processed(transactions: &[(u32, &str, f64)]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("splat.db")).await.unwrap();
    let project = store.ensure_default_project().await.unwrap();
    let queue = LocalQueue::open(&dir.path().join("queue.db"), Duration::from_secs(30), 5)
        .await
        .unwrap();
    for (n, name, ms) in transactions {
        let message = QueueMessage {
            project_id: project.id,
            event_id: None,
            received_at_us: 1_767_225_600_000_000,
            envelope: EnvelopeRef::Inline(transaction(*n, name, *ms).into()),
        };
        queue.send(message.encode()).await.unwrap();
    }
    let processor = Processor::new(
        store.clone(),
        Arc::new(LocalBlobStore::new(dir.path().to_path_buf())),
    );
    let deliveries = queue
        .receive(100, Duration::from_millis(100))
        .await
        .unwrap();
    processor.process_batch(&deliveries).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn sql_over_the_lake_answers_what_the_database_holds() {
    let sent: Vec<(u32, &str, f64)> = (1..=20u32)
        .map(|n| (n, if n % 2 == 0 { "/even" } else { "/odd" }, n as f64))
        .collect();
    let (dir, store) = processed(&sent).await;
    let lake = LakeQuery::open(&store, &LakeSource::Local(dir.path().to_path_buf()))
        .await
        .unwrap();
    let answer = lake
        .query("SELECT name, count(*) AS n, max(duration_ms) AS slowest FROM transactions GROUP BY name ORDER BY name")
        .unwrap();
    assert_eq!(answer.columns, ["name", "n", "slowest"]);
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        answer.rows,
        [
            [s("/even"), s("10"), s("20.0")],
            [s("/odd"), s("10"), s("19.0")]
        ]
    );
    let spans = lake
        .query("SELECT DISTINCT description FROM spans WHERE op = 'db'")
        .unwrap();
    assert_eq!(spans.rows, [[s("SELECT * FROM t WHERE id = %s")]]);
    assert!(
        lake.query("SELECT nope FROM spans").is_err(),
        "bad SQL is an error, not a panic"
    );
}

#[tokio::test]
async fn the_splat_lake_command_prints_rows_under_a_header() {
    let (dir, _store) = processed(&[(7, "/seven", 7.0)]).await;
    let run = |sql: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_splat-lake"))
            .arg(sql)
            .env("SPLAT_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let out = run("SELECT name, duration_ms FROM transactions");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "name\tduration_ms\n/seven\t7.0\n"
    );
    let bad = run("SELECT FROM WHERE");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("Parser Error"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
