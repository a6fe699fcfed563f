//! Ingest throughput: envelopes accepted per second, with envelopes captured from real SDKs
//! (`tests/fixtures/sdk`). Run: `cargo bench -p splat-tests --bench ingest` (add `-- --seconds N`).
//!
//! Three figures, each on ONE core (a current-thread runtime), so they read as "per core":
//! 1. the handler in process with a queue that only counts: the protocol work alone (auth, key lookup,
//!    decompression, framing, JSON checks, message encoding);
//! 2. the handler in process with the durable local queue (group commit, fsync);
//! 3. over HTTP on loopback: `splat serve`'s HTTP server on one core, a keep-alive load generator on the other.
//!
//! With two or more CPUs the threads are pinned (`taskset`; `--no-pin` leaves them to the scheduler): the
//! server's runtime (this thread) alone on CPU 0, the queue writer and the load generator on CPU 1, so that nothing of ours takes the server's core. Each HTTP run ends with the CPU each thread
//! spent (from /proc): a server thread under 100% of a core means the server was not what bounded the figure.
//! `--http-only` skips the in-process figures (for profiling the HTTP case alone; `perf_split.py` beside this
//! file splits a `perf` recording of it by thread and by part of ingest).

// The function binaries use mimalloc too; measure what they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
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
    let http_only = args.iter().any(|a| a == "--http-only");
    let pin = !args.iter().any(|a| a == "--no-pin")
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
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
    if pin {
        // The queue writer's thread exists now.
        pin_threads();
    }
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

    let durable = splat::wiring::ingest_state(
        &config,
        store.clone(),
        Arc::new(queue.clone()),
        blobs.clone(),
    );
    if !http_only {
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
        let rate = rt.block_on(in_process(&durable, &fixtures, &pid, seconds, 64));
        println!(
            "in-process handler, durable local queue, 1 core, 64 concurrent: {rate:>9.0} envelopes/s"
        );
    }

    // HTTP: the server on this thread's runtime, the load generator on another OS thread.
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = splat::ingest::router(durable);
    let edge = config.edge.clone();
    rt.spawn(async move {
        splat::http_server::serve(listener, app, &edge, std::future::pending()).await
    });
    let raw: Arc<Vec<Vec<u8>>> = Arc::new(fixtures.iter().map(|f| raw_http(f, &pid)).collect());
    let connections = 64;
    let client = std::thread::Builder::new()
        .name("loadgen".into())
        .spawn(move || {
            if pin {
                let me = std::fs::read_link("/proc/thread-self").unwrap();
                taskset(&me.file_name().unwrap().to_string_lossy(), 1);
            }
            let before = thread_cpu();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let (ok, failed, elapsed) = rt.block_on(async move {
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
            });
            // Taken here, while every thread (this one too) still lives.
            let after = thread_cpu();
            (ok, failed, elapsed, before, after)
        })
        .unwrap();
    // Keep the server's runtime turning while the client runs.
    let (ok, failed, elapsed, before, after) = rt.block_on(async {
        tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap()
    });
    let rate = ok as f64 / elapsed.as_secs_f64();
    println!(
        "HTTP loopback, server on 1 core, {connections} keep-alive connections: {rate:>9.0} envelopes/s ({failed} non-200)"
    );
    let placement = if pin {
        "server alone on CPU 0; queue writer and load generator on CPU 1"
    } else {
        "threads not pinned"
    };
    println!("  CPU per thread during the run ({placement}):");
    for (name, spent) in &after {
        let busy = spent.saturating_sub(before.get(name).copied().unwrap_or_default());
        let share = busy.as_secs_f64() / elapsed.as_secs_f64();
        if share >= 0.005 {
            println!("    {name:<20} {:>5.1}% of a core", share * 100.0);
        }
    }
    // What the budget asks of the server's core, whatever else held the figure above back (fsync, the load
    // generator, other processes): its CPU per envelope, and so what it would take with nothing else waiting.
    let server = after.get("server").copied().unwrap_or_default()
        - before.get("server").copied().unwrap_or_default();
    let per_envelope = server.as_secs_f64() / (ok.max(1) as f64);
    println!(
        "  server thread: {:.1} µs of CPU per envelope, {:>9.0} envelopes/s on a whole core",
        per_envelope * 1e6,
        1.0 / per_envelope
    );
    let depth = rt.block_on(queue.depth()).unwrap();
    println!("queued durably: {depth}");
}

/// This process's threads: (thread id, name), the main thread named "server" (it runs the server's runtime).
fn threads() -> Vec<(String, String)> {
    let pid = std::process::id().to_string();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| {
            let t = t.ok()?;
            let tid = t.file_name().to_string_lossy().into_owned();
            let name = if tid == pid {
                "server".to_owned()
            } else {
                std::fs::read_to_string(t.path().join("comm"))
                    .ok()?
                    .trim()
                    .to_owned()
            };
            Some((tid, name))
        })
        .collect()
}

/// CPU time (user + system) spent so far by each thread, summed by name.
fn thread_cpu() -> BTreeMap<String, Duration> {
    let mut out = BTreeMap::new();
    for (tid, name) in threads() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised name: utime and stime are the 12th and 13th (clock ticks, 100/s).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        *out.entry(name).or_default() += Duration::from_millis(ticks * 10);
    }
    out
}

/// The server's thread to CPU 0, every other thread of the process to CPU 1. Threads started later inherit
/// their creator's CPUs: the load generator pins itself.
fn pin_threads() {
    let pid = std::process::id().to_string();
    for (tid, _) in threads() {
        taskset(&tid, if tid == pid { 0 } else { 1 });
    }
}

fn taskset(tid: &str, cpu: usize) {
    let ok = std::process::Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), tid])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("taskset failed for thread {tid}: run with --no-pin");
        std::process::exit(1);
    }
}
