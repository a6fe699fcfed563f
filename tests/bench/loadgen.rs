//! The load generator of the side-by-side benchmark and the soak (driven by `tests/bench/side-by-side`).
//! It replays the envelopes captured from real SDKs (`tests/support/corpus.rs`: fresh ids per copy) over
//! N keep-alive HTTP/1.1 connections, and watches the system under test from outside: its processes'
//! memory and CPU from /proc, the rows it has stored from its SQLite file (opened read-only), and its
//! queue depth from `/_health`.
//!
//! ```sh
//! cargo bench -p splat-tests --bench loadgen -- --dsn http://KEY@127.0.0.1:3030/1 \
//!   [--kinds error|transaction|all] (--events N | --rate R --duration S) [--connections C] \
//!   [--pids P,Q] [--db FILE --count-sql SQL] [--health URL] [--report-every S] [--settle S] [--json FILE]
//! ```
//! `--events N` sends N copies as fast as the server answers (bodies built before the clock starts);
//! `--rate R --duration S` sends R per second for S seconds (bodies built on the fly). `--pids` are the
//! root processes of the system under test: their descendants count too (gunicorn's workers).

// The function binaries use mimalloc too.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use splat_tests::corpus::{Kind, Prepared, Target, Template};

// Shared with the other benches, which use the rest of it.
#[allow(dead_code)]
mod common;
use common::cpu_seconds;

struct Options {
    target: Target,
    kinds: Vec<Kind>,
    events: u64,
    rate: Option<f64>,
    connections: usize,
    pids: Vec<u32>,
    db: Option<(PathBuf, String)>,
    health: Option<String>,
    report_every: f64,
    sample_every: f64,
    settle: f64,
    json: Option<PathBuf>,
}

fn opt(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).cloned()
}

fn num<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    opt(name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| format!("{name}: not a number: {v}"))
    })
}

impl Options {
    fn parse() -> Result<Self, String> {
        let target = Target::from_dsn(&opt("--dsn").ok_or("--dsn is required")?)?;
        let kinds = match opt("--kinds").as_deref().unwrap_or("all") {
            "error" => vec![Kind::Error],
            "transaction" => vec![Kind::Transaction],
            "all" => vec![Kind::Error, Kind::Transaction],
            other => return Err(format!("--kinds error|transaction|all, not {other}")),
        };
        let rate = opt("--rate").map(|_| num("--rate", 0.0)).transpose()?;
        let events = match rate {
            Some(rate) => (rate * num("--duration", 60.0)?) as u64,
            None => num("--events", 10_000)?,
        };
        let db = match (opt("--db"), opt("--count-sql")) {
            (Some(db), Some(sql)) => Some((PathBuf::from(db), sql)),
            (None, None) => None,
            _ => return Err("--db and --count-sql go together".into()),
        };
        let pids = opt("--pids")
            .unwrap_or_default()
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().map_err(|_| format!("--pids: {p}")))
            .collect::<Result<_, String>>()?;
        Ok(Self {
            target,
            kinds,
            events,
            rate,
            connections: num("--connections", 32)?,
            pids,
            db,
            health: opt("--health"),
            report_every: num("--report-every", 5.0)?,
            sample_every: num("--sample-every", 0.2)?,
            settle: num("--settle", 60.0)?,
            json: opt("--json").map(PathBuf::from),
        })
    }
}

/// What the server answered, counted by every connection.
#[derive(Default)]
struct Stats {
    sent: AtomicU64,
    accepted: AtomicU64,
    /// Non-2xx answers by status.
    rejected: Mutex<BTreeMap<u16, u64>>,
    /// Requests that got no answer (connection refused or broken mid-request).
    transport_errors: AtomicU64,
}

impl Stats {
    fn errors(&self) -> u64 {
        self.rejected.lock().unwrap().values().sum::<u64>() + self.transport_errors.load(Relaxed)
    }
}

/// Which copy goes next, and when.
struct Plan {
    templates: Vec<Template>,
    /// Bodies built before the clock starts (full speed), else built as they are sent.
    ready: Vec<Prepared>,
    run: u32,
    total: u64,
    next: AtomicU64,
    start: Instant,
    rate: Option<f64>,
}

impl Plan {
    async fn next(&self) -> Option<Prepared> {
        let i = self.next.fetch_add(1, Relaxed);
        if i >= self.total {
            return None;
        }
        if let Some(rate) = self.rate {
            let due = self.start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        Some(match self.ready.get(i as usize) {
            Some(p) => p.clone(),
            None => self.templates[i as usize % self.templates.len()].prepare(self.run, i),
        })
    }
}

fn request(p: &Prepared, host: &str) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::post(p.path_and_query.as_str())
        .header("host", host)
        .header("content-length", p.body.len());
    for (k, v) in &p.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Full::new(p.body.clone()))
        .expect("captured headers are valid")
}

async fn connect(host: &str) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One keep-alive connection: send, read the whole answer, repeat. A server that closes after each
/// answer (gunicorn's sync workers do) gets a new connection; a request it never saw is sent again.
async fn connection(plan: Arc<Plan>, host: Arc<str>, stats: Arc<Stats>) {
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while let Some(p) = plan.next().await {
        stats.sent.fetch_add(1, Relaxed);
        for attempt in 1..=5 {
            let sender = match &mut conn {
                Some(s) => s,
                None => match connect(&host).await {
                    Ok(s) => conn.insert(s),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        continue;
                    }
                },
            };
            if sender.ready().await.is_err() {
                conn = None;
                continue;
            }
            match sender.send_request(request(&p, &host)).await {
                Ok(resp) => {
                    let (status, close) = (
                        resp.status(),
                        resp.headers()
                            .get("connection")
                            .is_some_and(|v| v == "close"),
                    );
                    let complete = resp.into_body().collect().await.is_ok();
                    if close || !complete {
                        conn = None;
                    }
                    if status.is_success() {
                        stats.accepted.fetch_add(1, Relaxed);
                    } else {
                        *stats
                            .rejected
                            .lock()
                            .unwrap()
                            .entry(status.as_u16())
                            .or_default() += 1;
                    }
                    break;
                }
                // Not written to the wire: safe to send again on a new connection.
                Err(e) if e.is_canceled() => conn = None,
                Err(_) => {
                    conn = None;
                    stats.transport_errors.fetch_add(1, Relaxed);
                    break;
                }
            }
            if attempt == 5 {
                stats.transport_errors.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The system under test seen from outside at one instant.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    /// Seconds since the clock started (negative before).
    at: f64,
    rss_mb: f64,
    pss_mb: f64,
    cpu_seconds: f64,
    stored: Option<i64>,
    queue_depth: Option<u64>,
}

/// The roots and all their descendants, from the parent pids in /proc/*/stat.
fn process_tree(roots: &[u32]) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let ppid = common::proc_field(&format!("/proc/{pid}/stat"), 1);
            (ppid > 0.0).then_some((pid, ppid as u32))
        })
        .collect();
    let mut tree = roots.to_vec();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

/// Resident and proportional memory (MB: shared pages of forked workers counted once by PSS) and
/// CPU seconds (own, plus reaped children's) of these processes.
fn measure(pids: &[u32]) -> (f64, f64, f64) {
    let (mut rss, mut pss, mut cpu) = (0.0, 0.0, 0.0);
    for pid in pids {
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let kb = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        rss += kb("Rss:") / 1024.0;
        pss += kb("Pss:") / 1024.0;
        let stat = format!("/proc/{pid}/stat");
        cpu += (11..=14).map(|f| common::proc_field(&stat, f)).sum::<f64>() / 100.0;
    }
    (rss, pss, cpu)
}

async fn stored(db: &libsql::Connection, sql: &str) -> Option<i64> {
    let mut rows = db.query(sql, ()).await.ok()?;
    rows.next().await.ok()??.get::<i64>(0).ok()
}

async fn queue_depth(url: &str) -> Option<u64> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut sender = connect(host).await.ok()?;
    let req = http::Request::get(if path.is_empty() { "/" } else { path })
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let body = sender
        .send_request(req)
        .await
        .ok()?
        .into_body()
        .collect()
        .await
        .ok()?;
    let health: serde_json::Value = serde_json::from_slice(&body.to_bytes()).ok()?;
    health["queue_depth"].as_u64()
}

/// Samples every `sample_every` seconds until `stop`, on its own thread and runtime so that the
/// connections' runtime only sends; prints a line every `report_every` seconds.
fn spawn_sampler(
    options: Arc<Options>,
    stats: Arc<Stats>,
    samples: Arc<Mutex<Vec<Sample>>>,
    start: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let db = match &options.db {
                Some((path, _)) => {
                    let db = libsql::Builder::new_local(path)
                        .flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY)
                        .build()
                        .await
                        .expect("the database to watch opens read-only");
                    Some(db.connect().expect("a read-only connection"))
                }
                None => None,
            };
            let epoch = Instant::now();
            let (mut tree, mut last_report) = (Vec::new(), f64::NEG_INFINITY);
            for tick in 0u64.. {
                if stop.load(Relaxed) {
                    break;
                }
                if tick % 10 == 0 {
                    tree = process_tree(&options.pids);
                }
                let now = Instant::now();
                let at = match *start.lock().unwrap() {
                    Some(s) if now >= s => (now - s).as_secs_f64(),
                    Some(s) => -(s - now).as_secs_f64(),
                    None => -(now - epoch).as_secs_f64() - 1e-9,
                };
                let (rss_mb, pss_mb, cpu_seconds) = measure(&tree);
                let stored = match (&db, &options.db) {
                    (Some(db), Some((_, sql))) => stored(db, sql).await,
                    _ => None,
                };
                let report = at >= 0.0 && at - last_report >= options.report_every;
                let queue_depth = match (&options.health, report || tick == 0) {
                    (Some(url), true) => queue_depth(url).await,
                    _ => None,
                };
                let sample = Sample { at, rss_mb, pss_mb, cpu_seconds, stored, queue_depth };
                samples.lock().unwrap().push(sample);
                if report {
                    last_report = at;
                    println!(
                        "t={at:>6.1}s sent {:>8} accepted {:>8} errors {:>5} | RSS {rss_mb:>7.1} MB PSS {pss_mb:>7.1} MB CPU {cpu_seconds:>8.1} s | stored {:>8} queue {:>6}",
                        stats.sent.load(Relaxed),
                        stats.accepted.load(Relaxed),
                        stats.errors(),
                        stored.map_or("-".into(), |n| n.to_string()),
                        queue_depth.map_or("-".into(), |n| n.to_string()),
                    );
                }
                tokio::time::sleep_until((now + Duration::from_secs_f64(options.sample_every)).into()).await;
            }
        })
    })
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn main() -> Result<(), String> {
    let options = Arc::new(Options::parse()?);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sdk");
    let templates: Vec<Template> = Template::load_dir(&dir, &options.target)?
        .into_iter()
        .filter(|t| options.kinds.contains(&t.kind))
        .collect();
    if templates.is_empty() {
        return Err("no captured envelope of the kinds asked for".into());
    }
    // Distinct per run, so that runs against one server never repeat an id.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let ready: Vec<Prepared> = match options.rate {
        Some(_) => Vec::new(),
        None => (0..options.events)
            .map(|i| templates[i as usize % templates.len()].prepare(run, i))
            .collect(),
    };
    println!(
        "corpus: {} ({} copies, {})",
        templates
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        options.events,
        options
            .rate
            .map_or("full speed".into(), |r| format!("{r}/s")),
    );

    let stats = Arc::new(Stats::default());
    let samples = Arc::new(Mutex::new(Vec::new()));
    let start_at = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(
        options.clone(),
        stats.clone(),
        samples.clone(),
        start_at.clone(),
        stop.clone(),
    );
    // The baseline: one sample before the first request.
    while samples.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let baseline = samples.lock().unwrap()[0];

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load_before = loadavg();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    *start_at.lock().unwrap() = Some(start);
    let plan = Arc::new(Plan {
        templates,
        ready,
        run,
        total: options.events,
        next: AtomicU64::new(0),
        start,
        rate: options.rate,
    });
    let host: Arc<str> = options.target.host.as_str().into();
    rt.block_on(async {
        let tasks: Vec<_> = (0..options.connections)
            .map(|_| tokio::spawn(connection(plan.clone(), host.clone(), stats.clone())))
            .collect();
        for t in tasks {
            t.await.expect("a connection task ends without panicking");
        }
    });
    let send_seconds = start.elapsed().as_secs_f64();
    let loadgen_cpu = cpu_seconds() - cpu_before;
    let accepted = stats.accepted.load(Relaxed);

    // Processing: until every accepted envelope's row is stored, or nothing new arrives for `settle` s.
    let want = baseline.stored.map(|b| b + accepted as i64);
    let mut done: Option<Sample> = None;
    if let Some(want) = want {
        let (mut last_count, mut last_change) = (-1, Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let s = samples
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|s| s.stored.is_some())
                .copied();
            let Some(s) = s else { continue };
            let count = s.stored.unwrap_or_default();
            if count >= want {
                // The first sample at which the count was reached.
                done = samples
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|x| x.at >= 0.0 && x.stored >= Some(want))
                    .copied();
                break;
            }
            if count != last_count {
                (last_count, last_change) = (count, Instant::now());
            } else if last_change.elapsed().as_secs_f64() > options.settle {
                done = Some(s);
                break;
            }
        }
    }
    // One last report-interval's worth of samples for the soak's end figures.
    std::thread::sleep(Duration::from_secs_f64(options.sample_every * 2.0));
    stop.store(true, Relaxed);
    sampler.join().expect("the sampler ends without panicking");

    let samples = samples.lock().unwrap().clone();
    let during: Vec<&Sample> = samples.iter().filter(|s| s.at >= 0.0).collect();
    let end = done.unwrap_or_else(|| **during.last().unwrap_or(&&baseline));
    let stored = end.stored.zip(baseline.stored).map(|(e, b)| e - b);
    let cpu = end.cpu_seconds - baseline.cpu_seconds;
    let max = |f: fn(&Sample) -> f64| during.iter().map(|s| f(s)).fold(f(&baseline), f64::max);
    let rejected = stats.rejected.lock().unwrap().clone();
    let result = json!({
        "dsn_host": options.target.host,
        "sent": stats.sent.load(Relaxed),
        "accepted": accepted,
        "rejected": rejected.iter().map(|(k, v)| (k.to_string(), v)).collect::<BTreeMap<_, _>>(),
        "transport_errors": stats.transport_errors.load(Relaxed),
        "send_seconds": send_seconds,
        "accepted_per_second": accepted as f64 / send_seconds,
        "stored": stored,
        "stored_all": stored.map(|n| n >= accepted as i64),
        "processed_seconds": end.at,
        "processed_per_second": stored.map(|n| n as f64 / end.at),
        "cpu_seconds": cpu,
        "cpu_seconds_per_10k": stored.filter(|n| *n > 0).map(|n| cpu / n as f64 * 1e4),
        "start_rss_mb": baseline.rss_mb,
        "end_rss_mb": during.last().map(|s| s.rss_mb),
        "peak_rss_mb": max(|s| s.rss_mb),
        "peak_pss_mb": max(|s| s.pss_mb),
        "max_queue_depth": during.iter().filter_map(|s| s.queue_depth).max(),
        "loadgen_cpu_seconds": loadgen_cpu,
        "loadgen_cores": loadgen_cpu / send_seconds,
        "connections": options.connections,
        // 1-minute load average before and after: how busy the shared machine was.
        "loadavg": [load_before, loadavg()],
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    if let Some(path) = &options.json {
        std::fs::write(path, result.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
