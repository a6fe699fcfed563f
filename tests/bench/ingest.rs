//! Ingest throughput: envelopes accepted per second, with envelopes captured from real SDKs
//! (`tests/fixtures/sdk`). Run: `cargo bench -p splat-tests --bench ingest` (add `-- --seconds N`).
//!
//! Three figures, each on ONE core (a current-thread runtime), so they read as "per core":
//! 1. the handler in process with a queue that only counts: the protocol work alone (auth, key lookup,
//!    decompression, framing, JSON checks, message encoding);
//! 2. the handler in process with the durable local queue (group commit, fsync);
//! 3. over HTTP on loopback: the server on one core, a keep-alive load generator on the other.

// The function binaries use mimalloc too; measure what they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use splat::ingest::{handle, Endpoint, IngestRequest, IngestState};
use splat::queue::{Delivery, LocalQueue, Queue, QueueError};
use splat::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One captured SDK request.
#[derive(Clone)]
struct Fixture {
    name: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn load_fixtures(dir: &Path) -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/fixtures/sdk")
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "envelope"))
    {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        let path_and_query = meta["path"].as_str().unwrap_or_default();
        let query = path_and_query.split_once('?').map(|(_, q)| q.to_owned());
        // Headers are recorded as [name, value] pairs, in the order the SDK sent them.
        let headers = meta["headers"]
            .as_array()
            .expect("headers are [name, value] pairs")
            .iter()
            .filter_map(|pair| {
                Some((
                    pair[0].as_str()?.to_ascii_lowercase(),
                    pair[1].as_str()?.to_owned(),
                ))
            })
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "host" | "content-length" | "transfer-encoding" | "connection"
                )
            })
            .collect();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        fixtures.push(Fixture {
            name,
            query,
            headers,
            body: Bytes::from(std::fs::read(&path).unwrap()),
        });
    }
    fixtures
}

/// Rewrites a fixture's credentials to the bench project's key (the captures used a throwaway one).
fn rekey(fixture: &Fixture, key: &str) -> Fixture {
    let swap = |s: &str| {
        let re_key = |part: &str| {
            if part.trim_start().starts_with("sentry_key=") {
                format!("sentry_key={key}")
            } else {
                part.to_owned()
            }
        };
        if s.contains(',') || s.starts_with("Sentry ") {
            let (prefix, rest) = s.split_once(' ').unwrap_or(("", s));
            format!(
                "{prefix} {}",
                rest.split(',')
                    .map(|p| re_key(p.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            s.split('&').map(re_key).collect::<Vec<_>>().join("&")
        }
    };
    Fixture {
        name: fixture.name.clone(),
        query: fixture.query.as_deref().map(swap),
        headers: fixture
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == "x-sentry-auth" {
                        swap(v)
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
        body: fixture.body.clone(),
    }
}

/// Counts sends and keeps nothing: isolates the protocol work from storage.
#[derive(Default)]
struct CountingQueue(AtomicU64);

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, _body: Vec<u8>) -> Result<(), QueueError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn receive(&self, _: usize, _: Duration) -> Result<Vec<Delivery>, QueueError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _: &[String]) -> Result<(), QueueError> {
        Ok(())
    }
    async fn depth(&self) -> Result<u64, QueueError> {
        Ok(self.0.load(Ordering::Relaxed))
    }
    fn max_message_bytes(&self) -> usize {
        usize::MAX
    }
}

fn request(fixture: &Fixture, project: &str) -> IngestRequest {
    let mut headers = HeaderMap::new();
    for (k, v) in &fixture.headers {
        headers.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    IngestRequest {
        endpoint: Endpoint::Envelope,
        project: project.to_owned(),
        headers,
        query: fixture.query.clone(),
        body: fixture.body.clone(),
    }
}

async fn in_process(
    state: &IngestState,
    fixtures: &[Fixture],
    project: &str,
    seconds: f64,
    concurrency: usize,
) -> f64 {
    let requests: Arc<Vec<IngestRequest>> =
        Arc::new(fixtures.iter().map(|f| request(f, project)).collect());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (state, requests, done) = (state.clone(), requests.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    let req = requests[i % requests.len()].clone();
                    handle(&state, req).await.expect("fixture accepted");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Keep-alive HTTP/1.1 load: each connection sends a request, reads the whole response, repeats.
async fn http_client(
    addr: std::net::SocketAddr,
    raw_requests: Arc<Vec<Vec<u8>>>,
    deadline: Instant,
    offset: usize,
) -> (u64, u64) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut ok, mut failed) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(4096);
    let mut i = offset;
    while Instant::now() < deadline {
        stream
            .write_all(&raw_requests[i % raw_requests.len()])
            .await
            .unwrap();
        i += 1;
        buf.clear();
        let (status, body_len, header_end) = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "server closed the connection");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status: u16 = head[9..12].parse().unwrap();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse().unwrap());
                break (status, len, end + 4);
            }
        };
        while buf.len() < header_end + body_len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        if status == 200 {
            ok += 1
        } else {
            failed += 1
        }
    }
    (ok, failed)
}

fn raw_http(fixture: &Fixture, project: &str) -> Vec<u8> {
    let query = fixture
        .query
        .as_deref()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let mut out = format!("POST /api/{project}/envelope/{query} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n", fixture.body.len());
    for (k, v) in &fixture.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&fixture.body);
    bytes
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let one_core = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let rt = one_core();
    let config = splat::config::Config::from_lookup(|_| None)
        .unwrap()
        .with_data_dir(dir.path().to_path_buf());
    let (store, queue) = rt.block_on(async {
        let store = Store::open(&config.database_path).await.unwrap();
        let queue = LocalQueue::open(
            &config.queue_path(),
            config.queue_visibility,
            config.queue_max_receives,
        )
        .await
        .unwrap();
        (store, queue)
    });
    let project = rt.block_on(store.ensure_default_project()).unwrap();
    let key = project.keys[0].public_key.to_string();
    let fixtures: Vec<Fixture> = load_fixtures(&root.join("fixtures/sdk"))
        .iter()
        .map(|f| rekey(f, &key))
        .collect();
    let pid = project.id.to_string();
    let blobs = Arc::new(splat::blob::LocalBlobStore::new(dir.path()));
    println!(
        "fixtures: {}",
        fixtures
            .iter()
            .map(|f| format!("{} ({} B)", f.name, f.body.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let counting = splat::wiring::ingest_state(
        &config,
        store.clone(),
        Arc::new(CountingQueue::default()),
        blobs.clone(),
    );
    let rate = rt.block_on(in_process(&counting, &fixtures, &pid, seconds, 1));
    println!(
        "in-process handler, counting queue, 1 core: {rate:>9.0} envelopes/s ({:.1} µs each)",
        1e6 / rate
    );
    let durable = splat::wiring::ingest_state(
        &config,
        store.clone(),
        Arc::new(queue.clone()),
        blobs.clone(),
    );
    let rate = rt.block_on(in_process(&durable, &fixtures, &pid, seconds, 64));
    println!(
        "in-process handler, durable local queue, 1 core, 64 concurrent: {rate:>9.0} envelopes/s"
    );

    // HTTP: the server on this thread's runtime, the load generator on another OS thread.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = splat::ingest::router(durable);
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let raw: Arc<Vec<Vec<u8>>> = Arc::new(fixtures.iter().map(|f| raw_http(f, &pid)).collect());
    let connections = 64;
    let client = std::thread::Builder::new()
        .name("loadgen".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let start = Instant::now();
                let tasks: Vec<_> = (0..connections)
                    .map(|c| tokio::spawn(http_client(addr, raw.clone(), deadline, c)))
                    .collect();
                let (mut ok, mut failed) = (0, 0);
                for t in tasks {
                    let (o, f) = t.await.unwrap();
                    ok += o;
                    failed += f;
                }
                (ok, failed, start.elapsed())
            })
        })
        .unwrap();
    // Keep the server's runtime turning while the client runs.
    let (ok, failed, elapsed) = rt.block_on(async {
        tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap()
    });
    println!(
        "HTTP loopback, server on 1 core, {connections} keep-alive connections: {:>9.0} envelopes/s ({failed} non-200)",
        ok as f64 / elapsed.as_secs_f64()
    );
    let depth = rt.block_on(queue.depth()).unwrap();
    println!("queued durably: {depth}");
}
