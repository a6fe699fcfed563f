//! What the benches share: command-line numbers and the process's own CPU and memory figures from /proc,
//! which stay honest per core when other work shares the machine.

/// The number after `name` on the command line, else `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn proc_field(file: &str, index: usize) -> f64 {
    let stat = std::fs::read_to_string(file).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    fields
        .get(index)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0.0)
}

/// User + system CPU seconds of this process.
pub fn cpu_seconds() -> f64 {
    (proc_field("/proc/self/stat", 11) + proc_field("/proc/self/stat", 12)) / 100.0
}

/// Peak resident memory, MB.
pub fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The bench's data directory: temporary, or kept and printed with `--keep` (to inspect the database
/// and the lake afterwards). Hold the guard as long as the directory is used.
#[allow(dead_code)] // not every bench stores data
pub fn data_dir() -> (std::path::PathBuf, Option<tempfile::TempDir>) {
    let temp = tempfile::tempdir().unwrap();
    let path = temp.path().to_owned();
    if std::env::args().any(|a| a == "--keep") {
        let _ = temp.keep();
        println!("keeping the data in {}", path.display());
        return (path, None);
    }
    (path, Some(temp))
}

/// `--data DIR` (kept, and reused by a bench that finds its data set there), or a temporary directory
/// removed at the end.
#[allow(dead_code)] // not every bench keeps a data set
pub fn data_set_dir() -> (std::path::PathBuf, Option<tempfile::TempDir>) {
    let args: Vec<String> = std::env::args().collect();
    match args
        .iter()
        .position(|a| a == "--data")
        .and_then(|i| args.get(i + 1))
    {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            (dir.into(), None)
        }
        None => {
            let temp = tempfile::tempdir().unwrap();
            (temp.path().to_owned(), Some(temp))
        }
    }
}

/// The value at `p` (0 to 1) of times sorted ascending.
#[allow(dead_code)] // not every bench times requests
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A page's warm times through the web router: `path` requested `warm + timed` times, the first `warm`
/// left out; returns the sorted wall times and the CPU seconds of the timed ones.
#[allow(dead_code)] // not every bench requests pages
pub async fn time_page(
    web: &axum::Router,
    path: &str,
    warm: usize,
    timed: usize,
) -> (Vec<std::time::Duration>, f64) {
    use tower::ServiceExt;
    let mut times = Vec::new();
    let mut cpu = 0.0;
    for i in 0..warm + timed {
        let cpu_before = cpu_seconds();
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let t = std::time::Instant::now();
        let response = web.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let _ = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        if i >= warm {
            times.push(t.elapsed());
            cpu += cpu_seconds() - cpu_before;
        }
    }
    times.sort();
    (times, cpu)
}

/// The web router over `store`, its queue a file in `dir`: the pages as `splat serve` serves them.
#[allow(dead_code)] // not every bench requests pages
pub async fn web_router(store: &splat::store::Store, dir: &std::path::Path) -> axum::Router {
    let queue = splat::queue::LocalQueue::open(
        &dir.join("queue.db"),
        std::time::Duration::from_secs(60),
        5,
    )
    .await
    .unwrap();
    splat::web::router(splat::web::WebState::new(
        store.clone(),
        std::sync::Arc::new(queue),
        None,
        None,
    ))
}

/// Times a page warm (3 requests left out, 30 timed) and prints its p50 and p95 wall times and the CPU
/// time per request: wall time waits for the CPU when the machine is busy; CPU time does not.
#[allow(dead_code)] // not every bench requests pages
pub async fn print_page_times(web: &axum::Router, name: &str, path: &str) {
    let (times, cpu) = time_page(web, path, 3, 30).await;
    println!(
        "{name}: p50 {:.1} ms, p95 {:.1} ms wall; {:.1} ms CPU per request",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.95).as_secs_f64() * 1e3,
        cpu * 1e3 / times.len() as f64
    );
}
