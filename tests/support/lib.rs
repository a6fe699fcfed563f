//! Helpers for the integration tests: a Splat app on a temporary data directory, request builders, and
//! compressors for bodies; `corpus`, the captured SDK requests the load generator replays.

pub mod corpus;
pub mod stored;

use std::io::Write;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StringArray};
use axum::body::Body;
use axum::Router;
use http::{Request, Response};
use http_body_util::BodyExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use splat::blob::LocalBlobStore;
use splat::config::Config;
use splat::process::runner::drain;
use splat::process::{BatchOutcome, Processor};
use splat::queue::{LocalQueue, Queue};
use splat::store::{Project, Store};
use tower::ServiceExt;

/// The processor's horizons in these tests: the fixtures are SDK data dated 2023 to 2026, replayed as if
/// it arrived then, so the processor must not take their timestamps as older than retention keeps (the
/// default 90 days would move them all to the time of the test run). The rule itself is tested with the
/// default horizons: `splat::process::time`'s unit tests and `tests/sdk/test_attack_time.py`.
pub const FIXTURE_HORIZONS: splat::retention::Horizons = splat::retention::Horizons {
    event_days: 3_650,
    payload_days: 30,
    transaction_days: 3_650,
    lake_days: 90,
    span_days: 30,
    rollup_days: 540,
    log_days: 3_650,
};

/// A whole local Splat: the ingest router, the local queue and the processor over a temp directory.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: Store,
    pub queue: Arc<LocalQueue>,
    pub processor: Processor,
    pub router: Router,
    pub project: Project,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// An app whose config is adjusted first (limits, say).
    pub async fn with_config(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::from_lookup(|_| None)
            .expect("default config")
            .with_data_dir(dir.path().to_path_buf());
        config.queue_visibility = std::time::Duration::from_millis(200);
        adjust(&mut config);
        let store = Store::open(&config.database_path).await.expect("store");
        store
            .set_lake_data_path(&splat::wiring::lake_data_path(&config))
            .await
            .expect("lake data path");
        let project = store.ensure_default_project().await.expect("project");
        let reader = Store::open_reader(&config.database_path)
            .await
            .expect("reader");
        let queue = Arc::new(
            LocalQueue::open(
                &config.queue_path(),
                config.queue_visibility,
                config.queue_max_receives,
            )
            .await
            .expect("queue"),
        );
        let blobs = Arc::new(LocalBlobStore::new(config.data_dir.clone()));
        let processor = Processor::new(store.clone(), blobs.clone())
            .with_horizons(FIXTURE_HORIZONS)
            .with_span_settle(config.span_settle);
        let router = splat::ingest::router(splat::wiring::ingest_state(
            &config,
            reader,
            queue.clone(),
            blobs,
        ));
        Self {
            dir,
            config,
            store,
            queue,
            processor,
            router,
            project,
        }
    }

    pub fn key(&self) -> String {
        self.project.keys[0].public_key.to_string()
    }

    /// `/api/<project>/envelope/?sentry_key=<key>` — query auth, as JavaScript SDKs send it.
    pub fn envelope_url(&self) -> String {
        format!(
            "/api/{}/envelope/?sentry_key={}&sentry_version=7",
            self.project.id,
            self.key()
        )
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        Reply::read(response).await
    }

    /// Posts `body` to the envelope endpoint with query auth and the given extra headers.
    pub async fn post_envelope(&self, body: impl Into<Body>, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::post(self.envelope_url());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    /// The web UI over this app's database and queue, as `splat serve` mounts it.
    pub fn web(&self) -> Router {
        splat::web::router(splat::web::WebState::new(
            self.store.clone(),
            self.queue.clone(),
            None,
            Some("http://splat.internal:3030".into()),
        ))
    }

    /// Runs the processor until the queue is empty.
    pub async fn process(&self) -> BatchOutcome {
        drain(&self.processor, self.queue.as_ref(), 100)
            .await
            .expect("processing")
    }

    pub async fn queued(&self) -> u64 {
        self.queue.depth().await.unwrap()
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.store.count(table).await.unwrap()
    }

    /// Every live lake file of a table, read back with the parquet crate; checks each file's field ids
    /// against the table and its row count against the catalog.
    pub async fn lake_batches(&self, table: &splat::lake::TableDef) -> Vec<RecordBatch> {
        let rows = self
            .query_strings(&format!(
                "SELECT path, record_count FROM ducklake_data_file WHERE table_id = {} AND end_snapshot IS NULL ORDER BY data_file_id",
                table.id
            ))
            .await;
        let mut batches = Vec::new();
        for row in rows {
            let path = self
                .config
                .lake_dir()
                .join("main")
                .join(table.name)
                .join(row[0].as_deref().expect("path"));
            let file = std::fs::File::open(&path).expect("lake file");
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet");
            let fields = builder.parquet_schema().root_schema().get_fields().to_vec();
            for (i, field) in fields.iter().enumerate() {
                assert_eq!(
                    i64::from(field.get_basic_info().id()),
                    table.columns[i].id,
                    "field id of {}",
                    field.name()
                );
                assert_eq!(field.name(), table.columns[i].name);
            }
            let file_batches: Vec<RecordBatch> = builder
                .build()
                .expect("reader")
                .map(|b| b.expect("batch"))
                .collect();
            let n: usize = file_batches.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(Some(n.to_string()), row[1], "record_count of {path:?}");
            batches.extend(file_batches);
        }
        batches
    }

    /// Runs SQL on the database behind the app's back: test data in bulk, or a trigger standing in for a
    /// failure.
    pub async fn execute_sql(&self, sql: &str) {
        let db = libsql::Builder::new_local(&self.config.database_path)
            .build()
            .await
            .unwrap();
        db.connect().unwrap().execute_batch(sql).await.unwrap();
    }

    /// One column of one row, as a string (NULL → None), for assertions.
    pub async fn query_strings(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let db = libsql::Builder::new_local(&self.config.database_path)
            .build()
            .await
            .unwrap();
        let conn = db.connect().unwrap();
        let mut rows = conn.query(sql, ()).await.unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            let mut cols = Vec::new();
            for i in 0..row.column_count() {
                cols.push(match row.get_value(i).unwrap() {
                    libsql::Value::Null => None,
                    libsql::Value::Integer(n) => Some(n.to_string()),
                    libsql::Value::Real(f) => Some(f.to_string()),
                    libsql::Value::Text(s) => Some(s),
                    libsql::Value::Blob(b) => Some(format!("<{} bytes>", b.len())),
                });
            }
            out.push(cols);
        }
        out
    }
}

/// A string column of a lake batch (NULL → None).
pub fn lake_strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let a = batch.column_by_name(column).expect("column");
    let a = a
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("a string column");
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
        .collect()
}

/// An id column of a lake batch as hex text, as SDKs send ids (NULL → None): span ids are stored as
/// unsigned 64-bit integers, trace and event ids as 16-byte UUIDs.
pub fn lake_ids(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let a = batch.column_by_name(column).expect("column");
    if let Some(a) = a.as_any().downcast_ref::<arrow_array::UInt64Array>() {
        return (0..a.len())
            .map(|i| {
                a.is_valid(i)
                    .then(|| splat::lake::ids::span_hex(a.value(i)))
            })
            .collect();
    }
    let a = a
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeBinaryArray>()
        .expect("an id column");
    (0..a.len())
        .map(|i| {
            a.is_valid(i)
                .then(|| splat::lake::ids::uuid_hex(a.value(i)))
        })
        .collect()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: serde_json::Value,
}

impl Reply {
    pub async fn read(response: Response<Body>) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
        Self {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `X-Sentry-Error` reason, for assertions on why a request was refused.
    pub fn error(&self) -> String {
        self.header("x-sentry-error").unwrap_or_default().to_owned()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::CompressorWriter::new(&mut out, 4096, 4, 22)
        .write_all(data)
        .unwrap();
    out
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// A one-event envelope in the Python SDK's shape (header event id, item with length, trailing newline).
pub fn event_envelope(event_id: &str, event: &serde_json::Value) -> Vec<u8> {
    let payload = event.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

/// A hex event id that differs per `n`.
pub fn event_id(n: u32) -> String {
    format!("{n:032x}")
}

/// A transaction envelope: `GET /checkout` at 2026-01-01T00:00:00Z, 200 ms, answered 502, whose one
/// `orders` query is followed by 6 `order_items` queries of 12 ms each (a real N+1).
pub fn checkout_transaction(n: u32) -> Vec<u8> {
    let (event_id, root) = (event_id(n), format!("{n:016x}"));
    let start = 1_767_225_600.0; // 2026-01-01T00:00:00Z
    let mut spans = vec![serde_json::json!({
        "span_id": "a000000000000001", "parent_span_id": root, "trace_id": "t1".repeat(16),
        "op": "db", "description": "SELECT id FROM orders WHERE user_id = 42 AND email = 'bob@example.com'",
        "start_timestamp": start + 0.001, "timestamp": start + 0.005, "data": {"db.system": "postgresql"}
    })];
    for i in 0..6 {
        let t = start + 0.01 + i as f64 * 0.015;
        spans.push(serde_json::json!({
            "span_id": format!("b00000000000000{i}"), "parent_span_id": root, "trace_id": "t1".repeat(16),
            "op": "db", "description": format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i),
            "start_timestamp": t, "timestamp": t + 0.012, "data": {"db.system": "postgresql"}
        }));
    }
    let tx = serde_json::json!({
        "type": "transaction", "transaction": "GET /checkout", "platform": "python",
        "start_timestamp": start, "timestamp": start + 0.2, "environment": "production", "release": "shop@1.0",
        "server_name": "web-1",
        "request": {"method": "get", "url": "https://shop.example/checkout?token=secret"},
        "contexts": {"trace": {"trace_id": "t1".repeat(16), "span_id": root, "op": "http.server"},
                     "response": {"status_code": 502}},
        "spans": spans,
    });
    transaction_envelope(&event_id, &tx)
}

/// A transaction envelope without spans: `name`, `ms` long, starting `n` seconds after
/// 2026-01-01T00:00:00Z, with trace id `n` (32 hex) and root span id `n` (16 hex).
pub fn timed_transaction(n: u32, name: &str, ms: f64) -> Vec<u8> {
    timed_transaction_in(n, name, ms, None)
}

/// [`timed_transaction`] of a release.
pub fn timed_transaction_in(n: u32, name: &str, ms: f64, release: Option<&str>) -> Vec<u8> {
    let start = 1_767_225_600.0 + n as f64;
    let mut tx = serde_json::json!({
        "type": "transaction", "transaction": name, "start_timestamp": start, "timestamp": start + ms / 1000.0,
        "environment": "production",
        "contexts": {"trace": {"trace_id": format!("{n:032x}"), "span_id": format!("{n:016x}"), "op": "http.server"}},
    });
    if let Some(r) = release {
        tx["release"] = serde_json::json!(r);
    }
    transaction_envelope(&event_id(n), &tx)
}

/// A one-transaction envelope (header event id, item with length).
pub fn transaction_envelope(event_id: &str, tx: &serde_json::Value) -> Vec<u8> {
    let payload = tx.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}
