//! Issue pages over a large project. Run: `cargo bench -p splat-tests --bench issue_pages`
//! (options `--events N`, default 1,000,000, and `--issues M`, default N / 10 up to 1,000,000).
//!
//! For the curve over data sizes: `--data DIR` keeps the data set in DIR and reuses it when it already
//! holds N events (10 M take a while; the timing can then run alone on a quiet machine), and
//! `--build-only` stops after building it.
//!
//! The data set is built without the processor's per-event JSON work (parsing, normalizing, grouping,
//! packing): each event is an [`EventRow`] made here, as the processor would make it, with one small
//! compressed payload shared by all, and batches of 20,000 go through the processor's own commit path
//! ([`splat::process::batch::commit`]: the events, their issues, hashes, users, tag counts, hourly counts
//! and releases, written by the store's batch writers in one transaction per batch). The events are spread
//! over the last 30 days in time order, as they would arrive: a fifth of them in the hottest issue, a fifth
//! over ten hot ones, the rest in turn over the other issues (2 M, 200,000 each and about 6 each at 10 M);
//! tags: environment, release (one per three days), level, browser (Opera rare), os, server, and a user
//! id and email out of 100,000 users.
//!
//! Then each page is requested through the web router, warm (3 requests left out, 30 timed), and the
//! p50/p95 wall time and the CPU time per request are printed.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use splat::grouping::Grouping;
use splat::model::EventSummary;
use splat::protocol::ProjectId;
use splat::store::{EventRow, IssueFilter, IssueSort, Store, WriteBatch};

mod common;
use common::{
    arg, cpu_seconds, data_set_dir, peak_rss_mb, percentile, print_page_times, web_router,
};

const DAY_US: i64 = 86_400_000_000;
const USERS: usize = 100_000;
const BATCH: usize = 20_000;

/// The issue event `i` of `n` belongs to (0: the hottest, 1 to 10: the hot ones, then the rest in turn).
fn issue_of(i: usize, issues: usize) -> usize {
    match i % 10 {
        0 | 1 => 0,
        2 | 3 => 1 + (i / 10) % 10,
        _ => 11 + (i / 10 * 6 + i % 10 - 4) % (issues - 11),
    }
}

fn event(
    project: ProjectId,
    i: usize,
    n: usize,
    issues: usize,
    now_us: i64,
    payload: &[u8],
) -> EventRow {
    let issue = issue_of(i, issues);
    // In i128: i × 30 days in µs passes i64 at 3.5 M events.
    let timestamp_us = now_us - 30 * DAY_US + (i as i128 * 30 * DAY_US as i128 / n as i128) as i64;
    let day = (timestamp_us - (now_us - 30 * DAY_US)) / DAY_US;
    // Deterministic spreads that do not follow the issue's own cycle.
    let mix = i.wrapping_mul(2_654_435_761) >> 7;
    let environment = match mix % 20 {
        0 => "dev",
        1..=5 => "staging",
        _ => "production",
    };
    let release = format!("shop@1.{}", day / 3);
    let browser = match mix % 1000 {
        0 => "Opera",
        1..=200 => "Firefox",
        201..=350 => "Safari",
        351..=400 => "Edge",
        _ => "Chrome",
    };
    let os = ["Windows", "macOS", "Linux", "Android", "iOS"][mix % 5];
    let user = (mix / 7) % USERS;
    let exception_type = format!("Error{}", issue % 17);
    let summary = EventSummary {
        timestamp_us: Some(timestamp_us),
        level: "error".into(),
        platform: Some("python".into()),
        release: Some(release.clone()),
        environment: Some(environment.into()),
        server_name: Some(format!("web-{}", mix % 4)),
        transaction: Some(format!("/orders/{}", issue % 50)),
        title: format!("{exception_type}: order failed in handler_{issue}"),
        exception_type: Some(exception_type),
        exception_value: Some(format!("order failed in handler_{issue}")),
        message: None,
        sdk_name: Some("sentry.python".into()),
        sdk_version: Some("2.75.0".into()),
        trace_id: Some(format!("{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15)),
    };
    let tags = [
        ("browser", browser.to_owned()),
        ("os", os.to_owned()),
        ("server_name", format!("web-{}", mix % 4)),
        ("environment", environment.to_owned()),
        ("release", release),
        ("level", "error".to_owned()),
        ("user.id", user.to_string()),
        ("user.email", format!("u{user}@example.com")),
    ];
    EventRow {
        project_id: project,
        event_id: format!("{:032x}", (i as u128) << 64 | 0xe7e7),
        timestamp_us,
        received_at_us: timestamp_us,
        grouping: Grouping {
            config: splat::grouping::CONFIG,
            hashes: vec![format!("{issue:032x}")],
            culprit: Some(format!("app.handlers in handler_{issue}")),
        },
        tags: tags.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        user_key: Some(format!("id:{user}")),
        search_text: format!(
            "{}\norder failed in handler_{issue}\nhandler_{issue}\napp.handlers\napp/handlers.py",
            summary.exception_type.as_deref().unwrap_or_default()
        ),
        summary,
        payload: payload.to_vec(),
    }
}

/// What every event shows on its page: a small Python error, compressed as the processor stores it.
fn payload() -> Vec<u8> {
    let frames: Vec<_> = (0..5)
        .map(|f| serde_json::json!({"filename": format!("app/module_{f}.py"), "function": format!("step_{f}"), "lineno": 10 + f, "in_app": f > 1}))
        .collect();
    let event = serde_json::json!({
        "platform": "python", "level": "error",
        "exception": {"values": [{"type": "Error1", "value": "order failed", "stacktrace": {"frames": frames}}]},
        "tags": {"browser": "Chrome"}, "user": {"id": "1"}
    });
    zstd::encode_all(event.to_string().as_bytes(), 3).unwrap()
}

async fn build(store: &Store, project: ProjectId, n: usize, issues: usize) {
    let now_us = chrono::Utc::now().timestamp_micros();
    let payload = payload();
    let (start, cpu) = (Instant::now(), cpu_seconds());
    for from in (0..n).step_by(BATCH) {
        let batch = WriteBatch {
            events: (from..(from + BATCH).min(n))
                .map(|i| event(project, i, n, issues, now_us, &payload))
                .collect(),
            ..WriteBatch::default()
        };
        splat::process::batch::commit(store, &batch, None)
            .await
            .unwrap();
    }
    println!(
        "built in {:.0} s wall, {:.0} s CPU",
        start.elapsed().as_secs_f64(),
        cpu_seconds() - cpu
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (dir, _guard) = data_set_dir();
        // On a data set built by an older binary, opening runs the newer migrations: timed.
        let opening = Instant::now();
        let store = Store::open(&dir.join("splat.db")).await.unwrap();
        println!("opened in {:.1} s", opening.elapsed().as_secs_f64());
        let project = store.ensure_default_project().await.unwrap();
        let n = arg("--events", 1_000_000);
        let issues = arg("--issues", (n / 10).min(1_000_000)).max(12);
        if (store.count("events").await.unwrap() as usize) < n {
            build(&store, project.id, n, issues).await;
        }
        println!(
            "data set: {} events, {} issues; database {:.0} MB",
            store.count("events").await.unwrap(),
            store.count("issues").await.unwrap(),
            std::fs::metadata(dir.join("splat.db")).unwrap().len() as f64 / 1e6
        );
        if std::env::args().any(|a| a == "--build-only") {
            return;
        }

        let web = web_router(&store, &dir).await;
        let slug = &project.slug;
        let by_count = IssueFilter {
            per_page: 25,
            sort: IssueSort::Count,
            ..Default::default()
        };
        let (busiest, _) = store.list_issues(project.id, &by_count).await.unwrap();
        let (recent, _) = store
            .list_issues(
                project.id,
                &IssueFilter {
                    per_page: 25,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (hottest, hot, typical) = (&busiest[0], &busiest[1], recent.last().unwrap());
        println!(
            "issues timed: hottest {} ({} events), hot {} ({} events), typical {} ({} events)",
            hottest.id, hottest.times_seen, hot.id, hot.times_seen, typical.id, typical.times_seen
        );
        // An event in the middle of the hottest issue: its page links the events before and after it.
        let middle = store
            .issue_events(hottest.id, (hottest.times_seen / 2 / 25) as u32, 25)
            .await
            .unwrap()
            .remove(0)
            .event_id;
        let deep = hottest.times_seen / 25 - 1;
        let issue = |id: i64| format!("/projects/{slug}/issues/{id}");
        let pages = [
            ("issue page, hottest", issue(hottest.id)),
            ("issue page, 200k-event issue", issue(hot.id)),
            ("issue page, typical", issue(typical.id)),
            (
                "events tab, hottest, page 2",
                format!("{}?page=2", issue(hottest.id)),
            ),
            (
                "events tab, hottest, page 400 (offset 10,000)",
                format!("{}?page=400", issue(hottest.id)),
            ),
            (
                "events tab, hottest, last page",
                format!("{}?page={deep}", issue(hottest.id)),
            ),
            (
                "issue page, hottest, middle event shown",
                format!("{}?event={middle}", issue(hottest.id)),
            ),
            (
                "event page, hottest, middle event",
                format!("/projects/{slug}/events/{middle}"),
            ),
            (
                "list, tag filter, common value",
                format!("/projects/{slug}/issues?q=browser%3AChrome"),
            ),
            (
                "list, tag filter, rare value",
                format!("/projects/{slug}/issues?q=browser%3AOpera"),
            ),
            (
                "list, tag filter, one user",
                format!("/projects/{slug}/issues?q=user.id%3A4242"),
            ),
            (
                "list, sorted by events",
                format!("/projects/{slug}/issues?sort=count"),
            ),
            (
                "list, environment filter, sorted by events",
                format!("/projects/{slug}/issues?environment=staging&sort=count"),
            ),
        ];
        for (name, path) in pages {
            print_page_times(&web, name, &path).await;
        }
        // What MCP's get_issue reads beside the issue row: its tag breakdown and hourly counts.
        for (name, id) in [("hottest", hottest.id), ("typical", typical.id)] {
            let mut times = Vec::new();
            for i in 0..33 {
                let t = Instant::now();
                store.issue_tag_breakdown(id, 20).await.unwrap();
                store.issue_hours(&[id], 0).await.unwrap();
                if i >= 3 {
                    times.push(t.elapsed());
                }
            }
            times.sort();
            println!(
                "tags and hours (MCP get_issue's reads), {name}: p50 {:.1} ms, p95 {:.1} ms",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.95).as_secs_f64() * 1e3
            );
        }
        println!("peak RSS of the bench process: {:.0} MB", peak_rss_mb());
    });
}
