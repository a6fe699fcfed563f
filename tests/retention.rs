//! Retention over a simulated month: every day an SDK sends errors and a transaction with spans (in two
//! processor batches, so each day starts as two lake files per table), then retention runs as of that
//! day. The database and the lake must stay within their horizons, past days must be compacted to one file
//! per (table, project, day), `record_count` must never drop, issues must be recounted and removed when
//! empty, and nothing may be left on disk that the catalog does not list. (Stock DuckDB reading a lake
//! after retention: `tests/sdk/test_retention.py`.)

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use splat::blob::{BlobStore, LocalBlobStore};
use splat::lake::columns::format_timestamp;
use splat::lake::maintenance;
use splat::lake::tables::{EVENTS, SPANS, TRANSACTIONS};
use splat::retention::{self, Horizons};
use splat_tests::*;
use tower::ServiceExt;

const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const DAY: i64 = 86_400;

fn horizons() -> Horizons {
    Horizons {
        event_days: 10,
        payload_days: 5,
        transaction_days: 12,
        lake_days: 20,
        span_days: 7,
        rollup_days: 25,
        log_days: 30,
    }
}

/// An error at `ts`: `KeyError` (the same issue every day) or a `ValueError` whose message makes an
/// issue of its own per day (grouping parameterizes numbers, so the day goes in as a word).
fn error_at(n: u32, ts: i64, daily_issue: Option<&str>) -> Vec<u8> {
    let exception = match daily_issue {
        None => json!({"type": "KeyError", "value": "'sku'"}),
        Some(word) => json!({"type": format!("ValueError{word}"), "value": "bad"}),
    };
    event_envelope(
        &event_id(n),
        &json!({"platform": "python", "level": "error", "timestamp": ts as f64 + 0.5,
                "exception": {"values": [exception]}}),
    )
}

/// A transaction at `ts` with three spans.
fn transaction_at(n: u32, ts: i64) -> Vec<u8> {
    let (trace, root) = (format!("{n:032x}"), format!("{n:016x}"));
    let start = ts as f64;
    let spans: Vec<_> = (0..3)
        .map(|i| {
            json!({"span_id": format!("{:016x}", n * 10 + i + 1), "parent_span_id": root, "trace_id": trace,
                   "op": "db", "description": format!("SELECT * FROM t WHERE id = {i}"),
                   "start_timestamp": start + 0.01 * f64::from(i), "timestamp": start + 0.01 * f64::from(i) + 0.005})
        })
        .collect();
    transaction_envelope(
        &event_id(n),
        &json!({"type": "transaction", "transaction": "GET /day", "start_timestamp": start,
                "timestamp": start + 0.1, "environment": "production",
                "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}},
                "spans": spans}),
    )
}

fn us(seconds: i64) -> i64 {
    seconds * 1_000_000
}

/// Sends day `d`'s data: a batch of two errors and a transaction, then a batch of one more error.
async fn send_day(app: &TestApp, d: i64) {
    let ts = BASE + d * DAY + 3_600;
    let n = (d as u32) * 10;
    let word: String = std::iter::repeat_n('x', d as usize + 1).collect();
    for body in [
        error_at(n + 1, ts, None),
        error_at(n + 2, ts + 60, Some(&word)),
        transaction_at(n + 3, ts + 120),
    ] {
        assert_eq!(app.post_envelope(body, &[]).await.status, 200);
    }
    app.process().await;
    assert_eq!(
        app.post_envelope(error_at(n + 4, ts + 180, None), &[])
            .await
            .status,
        200
    );
    app.process().await;
}

async fn one(app: &TestApp, sql: &str) -> i64 {
    app.query_strings(sql).await[0][0]
        .as_deref()
        .unwrap_or("0")
        .parse()
        .unwrap()
}

/// Every `.parquet` file under the lake's `main` folder.
fn parquet_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&app.config.lake_dir().join("main"), &mut paths);
    paths
}

/// Every `.parquet` file under the lake folder, as table-relative catalog paths per table name.
fn files_on_disk(app: &TestApp) -> BTreeSet<String> {
    let root = app.config.lake_dir().join("main");
    parquet_files(app)
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect()
}

/// Dates every lake file two hours back, past the orphan sweep's minimum age.
fn age_lake_files(app: &TestApp) {
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7_200);
    for path in parquet_files(app) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(two_hours_ago).unwrap();
    }
}

async fn files_in_catalog(app: &TestApp) -> BTreeSet<String> {
    app.query_strings(
        "SELECT t.table_name || '/' || f.path FROM ducklake_data_file f JOIN ducklake_table t USING (table_id)",
    )
    .await
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect()
}

#[tokio::test]
async fn a_month_of_daily_retention_keeps_everything_within_its_horizon() {
    let app = TestApp::new().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(app.config.data_dir.clone()));
    let h = horizons();
    let mut last_record_counts = vec![0i64; 3];
    for d in 0..30 {
        send_day(&app, d).await;
        let now = BASE + d * DAY + 12 * 3_600;
        let report = retention::run(&app.store, &blobs, &h, us(now))
            .await
            .unwrap();
        let before = |days: u32| now - i64::from(days) * DAY;

        // The database: nothing older than its horizon; everything younger still there.
        let events_kept = (0..=d)
            .filter(|x| BASE + x * DAY + 3_600 >= before(h.event_days))
            .count();
        assert_eq!(app.count("events").await, 3 * events_kept as i64, "day {d}");
        assert_eq!(
            one(
                &app,
                &format!(
                    "SELECT count(*) FROM events WHERE timestamp < {}",
                    us(before(h.event_days))
                )
            )
            .await,
            0
        );
        assert_eq!(
            one(
                &app,
                &format!(
                    "SELECT count(*) FROM transactions WHERE end_time < {}",
                    us(before(h.transaction_days))
                )
            )
            .await,
            0
        );
        let tx_kept = (0..=d)
            .filter(|x| BASE + x * DAY + 3_720 >= before(h.transaction_days))
            .count();
        assert_eq!(app.count("transactions").await, tx_kept as i64, "day {d}");
        // Rollups, the endpoint's and the project's, hourly and daily: the cells of hours and days that
        // ended before the horizon go (the day's transaction ends in its second hour; `now` is midday).
        let rollups_kept = |seconds: i64, offset_in_day: i64| {
            let cutoff = before(h.rollup_days);
            let cutoff_cell = cutoff - cutoff.rem_euclid(seconds);
            (0..=d)
                .filter(|x| BASE + x * DAY + offset_in_day + seconds > cutoff_cell)
                .count() as i64
        };
        let (hours_kept, days_kept) = (rollups_kept(3_600, 3_600), rollups_kept(DAY, 0));
        assert!(d < 25 || hours_kept < d + 1, "some went");
        for (table, kept) in [
            ("transaction_rollups", hours_kept),
            ("project_rollups", hours_kept),
            ("transaction_rollups_daily", days_kept),
            ("project_rollups_daily", days_kept),
        ] {
            let cells = one(&app, &format!("SELECT count(*) FROM {table}")).await;
            assert_eq!(cells, kept, "{table} day {d}");
        }
        // Issues: the recurring one stays while any of its events does, counting only those; each day's
        // own issue goes when its day's event goes.
        assert_eq!(
            one(
                &app,
                "SELECT times_seen FROM issues WHERE exception_type = 'KeyError'"
            )
            .await,
            2 * events_kept as i64
        );
        assert_eq!(app.count("issues").await, 1 + events_kept as i64, "day {d}");
        assert_eq!(
            one(&app, "SELECT count(*) FROM issues_fts").await,
            1 + events_kept as i64,
            "search index rows go with their issues"
        );
        assert_eq!(
            one(
                &app,
                "SELECT count(*) FROM issue_hashes WHERE issue_id NOT IN (SELECT id FROM issues)"
            )
            .await,
            0
        );

        // The lake: live files only within each table's horizon (whole days), past days compacted.
        for (table, days) in [
            (&EVENTS, h.lake_days),
            (&TRANSACTIONS, h.lake_days),
            (&SPANS, h.span_days),
        ] {
            let cutoff = format_timestamp(us(before(days)));
            let too_old = format!(
                "SELECT count(*) FROM ducklake_data_file f JOIN ducklake_file_column_stats s
                 ON s.data_file_id = f.data_file_id AND s.column_id = 2
                 WHERE f.table_id = {} AND f.end_snapshot IS NULL AND s.max_value < '{cutoff}'",
                table.id
            );
            assert_eq!(one(&app, &too_old).await, 0, "{} day {d}", table.name);
            let live = app
                .query_strings(&format!(
                    "SELECT path FROM ducklake_data_file WHERE table_id = {} AND end_snapshot IS NULL",
                    table.id
                ))
                .await;
            let today = chrono::DateTime::from_timestamp(now, 0)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string();
            let mut per_day = std::collections::BTreeMap::<String, usize>::new();
            for row in live {
                let path = row[0].clone().unwrap();
                *per_day
                    .entry(path.rsplit_once('/').unwrap().0.to_owned())
                    .or_default() += 1;
            }
            for (folder, n) in per_day {
                if !folder.ends_with(&today) {
                    assert_eq!(n, 1, "{} {folder} is compacted to one file", table.name);
                }
            }
            let record_count = one(
                &app,
                &format!(
                    "SELECT record_count FROM ducklake_table_stats WHERE table_id = {}",
                    table.id
                ),
            )
            .await;
            let i = (table.id - 1) as usize;
            assert!(
                record_count >= last_record_counts[i],
                "record_count never drops"
            );
            last_record_counts[i] = record_count;
        }
        // The rows the live files hold are exactly the rows within the horizon.
        let lake_events: usize = app
            .lake_batches(&EVENTS)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum();
        // A day's file ends once its newest row (the error at 01:03) is past the horizon.
        let days_in_lake = (0..=d)
            .filter(|x| BASE + x * DAY + 3_780 >= before(h.lake_days))
            .count();
        assert_eq!(lake_events, 3 * days_in_lake, "day {d}");
        assert_eq!(
            report.database.events_deleted,
            if d >= 10 { 3 } else { 0 },
            "day {d}"
        );
    }
    // Every row ever written counted once (transactions; spans, a root and three children each; events):
    // compaction copied rows without counting them again, and ending files lowered nothing.
    assert_eq!(last_record_counts, vec![30, 120, 90]);

    // Nothing on disk the catalog does not list (ended files stay until their snapshots expire).
    assert_eq!(files_on_disk(&app), files_in_catalog(&app).await);
}

#[tokio::test]
async fn expired_snapshots_take_their_ended_files_and_orphans_go() {
    let app = TestApp::new().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(app.config.data_dir.clone()));
    for d in 0..3 {
        send_day(&app, d).await;
    }
    let files_before = files_on_disk(&app);
    assert_eq!(
        files_before.len(),
        3 * 4,
        "per day: two events files, one of transactions, one of spans"
    );
    // A batch that crashed between its upload and its commit left this behind.
    let orphan = app
        .config
        .lake_dir()
        .join("main/events/1/2026-01-02/deadbeef.parquet");
    std::fs::write(&orphan, b"not registered").unwrap();
    age_lake_files(&app);
    // This one may be a batch's upload on its way to its commit: too young to be an orphan.
    let young = app
        .config
        .lake_dir()
        .join("main/events/1/2026-01-02/cafe.parquet");
    std::fs::write(&young, b"not registered yet").unwrap();
    // A merge killed halfway left its scratch file (two hours old); one under way now is young.
    let scratch = |name: &str, age_secs: u64| {
        let path = app.config.data_dir.join(name);
        std::fs::write(&path, b"half a parquet file").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        let modified = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        file.set_modified(modified).unwrap();
        path
    };
    let (killed, merging) = (scratch(".tmp-killed", 7_200), scratch(".tmp-merging", 0));

    // Retention as of day 2 compacts days 0 and 1 (their old files end) but keeps all within horizons.
    let h = horizons();
    let report = retention::run(&app.store, &blobs, &h, us(BASE + 2 * DAY + 43_200))
        .await
        .unwrap();
    assert_eq!(report.lake.orphans_deleted, 1);
    assert!(!orphan.exists());
    assert!(young.exists());
    assert_eq!(report.lake.scratch_deleted, 1);
    assert!(!killed.exists() && merging.exists());
    std::fs::remove_file(&young).unwrap();
    assert_eq!(
        report.lake.files_compacted, 4,
        "two events files for each past day"
    );
    assert_eq!(report.lake.files_compacted_into, 2);
    assert_eq!(
        report.lake.files_deleted, 0,
        "snapshots that see the old files are still young"
    );
    assert_eq!(files_on_disk(&app).len(), files_before.len() + 2);

    // Once those snapshots expire, the ended files are deleted from disk and catalog alike.
    let future = "2999-01-01 00:00:00";
    let expired = maintenance::expire_snapshots(&app.store, future)
        .await
        .unwrap();
    assert!(expired > 0);
    assert_eq!(
        one(&app, "SELECT count(*) FROM ducklake_snapshot").await,
        1,
        "only the newest stays"
    );
    let deleted =
        maintenance::delete_scheduled(&app.store, blobs.as_ref(), maintenance::Deadline::NONE)
            .await
            .unwrap();
    assert_eq!(deleted, 4);
    assert_eq!(
        one(
            &app,
            "SELECT count(*) FROM ducklake_files_scheduled_for_deletion"
        )
        .await,
        0
    );
    assert_eq!(files_on_disk(&app), files_in_catalog(&app).await);
    assert_eq!(
        one(
            &app,
            "SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NOT NULL"
        )
        .await,
        0
    );
    // The rows are all still there, in fewer files.
    let rows: usize = app
        .lake_batches(&EVENTS)
        .await
        .iter()
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(rows, 9);
    // A second run changes nothing.
    let again = retention::run(&app.store, &blobs, &h, us(BASE + 2 * DAY + 43_200))
        .await
        .unwrap();
    assert_eq!(again, retention::RetentionReport::default());
}

#[tokio::test]
async fn old_payloads_are_replaced_by_a_marker_and_the_event_still_opens() {
    let app = TestApp::new().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(app.config.data_dir.clone()));
    send_day(&app, 0).await;
    send_day(&app, 8).await;
    let h = horizons();
    let report = retention::run(&app.store, &blobs, &h, us(BASE + 9 * DAY))
        .await
        .unwrap();
    assert_eq!(
        report.database.payloads_dropped, 3,
        "day 0's events are past the 5-day payload horizon"
    );
    assert_eq!(report.database.events_deleted, 0);
    let old = app
        .store
        .event(app.project.id, &event_id(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.payload["splat"]["payload_expired"], true);
    let young = app
        .store
        .event(app.project.id, &event_id(81))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(young.payload["exception"]["values"][0]["type"], "KeyError");
    // The event's page opens and says why its details are gone.
    let page = app
        .web()
        .oneshot(
            http::Request::get(format!(
                "/projects/{}/events/{}",
                app.project.slug,
                event_id(1)
            ))
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = http_body_util::BodyExt::collect(page.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&html).contains("Details expired"));
    let again = retention::run(&app.store, &blobs, &h, us(BASE + 9 * DAY))
        .await
        .unwrap();
    assert_eq!(
        again.database.payloads_dropped, 0,
        "a dropped payload is not dropped again"
    );
}

#[test]
fn horizons_come_from_the_environment_with_the_seeds_defaults() {
    let defaults = Horizons::from_lookup(|_| None).unwrap();
    assert_eq!(
        (
            defaults.event_days,
            defaults.transaction_days,
            defaults.lake_days,
            defaults.span_days
        ),
        (90, 90, 90, 30)
    );
    let set =
        Horizons::from_lookup(|k| (k == "SPLAT_MAX_SPAN_LIFE_DAYS").then(|| "7".into())).unwrap();
    assert_eq!(set.span_days, 7);
    let err = Horizons::from_lookup(|k| (k == "SPLAT_MAX_EVENT_LIFE_DAYS").then(|| "0".into()))
        .unwrap_err();
    assert!(
        err.to_string().contains("SPLAT_MAX_EVENT_LIFE_DAYS"),
        "{err}"
    );
}

async fn page(app: &TestApp, req: http::Request<axum::body::Body>) -> (u16, String) {
    let response = app.web().oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A well-formed CSRF token (32 random bytes in URL-safe base64 are 43 characters).
const TOKEN: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";

/// A form post as a browser on the same site sends it (CSRF cookie and field).
fn form(path: &str, fields: &[(&str, &str)]) -> http::Request<axum::body::Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", TOKEN)
        .extend_pairs(fields)
        .finish();
    http::Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "splat.test")
        .header("cookie", format!("splat_csrf={TOKEN}"))
        .body(axum::body::Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn the_settings_page_shows_and_overrides_the_horizons_and_what_runs_removed() {
    let app = TestApp::new().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(app.config.data_dir.clone()));
    let get = || {
        http::Request::get("/settings")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, html) = page(&app, get()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(r#"data-horizon="SPLAT_MAX_EVENT_LIFE_DAYS">90<"#),
        "{html}"
    );
    assert!(html.contains("No run yet"));

    // An event from 2026-01-01 (older than 20 days, younger than the default 90 as of 2026-01-25).
    send_day(&app, 0).await;
    let saved = page(
        &app,
        form(
            "/settings/retention",
            &[("SPLAT_MAX_EVENT_LIFE_DAYS", "20")],
        ),
    )
    .await;
    assert_eq!(saved.0, 303);
    let (_, html) = page(&app, get()).await;
    assert!(html.contains(r#"data-horizon="SPLAT_MAX_EVENT_LIFE_DAYS">20<"#));
    assert!(html.contains("settings page"));

    // Retention runs with the saved horizon over the configured one.
    let in_force = app.config.retention.in_force(&app.store).await.unwrap();
    assert_eq!(in_force.event_days, 20);
    assert_eq!(
        in_force.span_days, 30,
        "fields left empty keep the environment's value"
    );
    let report = retention::run(&app.store, &blobs, &in_force, us(BASE + 25 * DAY))
        .await
        .unwrap();
    assert_eq!(report.database.events_deleted, 3);
    app.store
        .record_retention_run(us(BASE), &serde_json::to_string(&report).unwrap())
        .await
        .unwrap();
    let (_, html) = page(&app, get()).await;
    assert!(html.contains("database: events deleted <b>3</b>"), "{html}");
    assert!(
        html.contains("lake: events"),
        "storage figures per lake table"
    );

    // A bad value is refused whole; emptying a field goes back to the environment's value.
    let bad = page(
        &app,
        form("/settings/retention", &[("SPLAT_MAX_SPAN_LIFE_DAYS", "0")]),
    )
    .await;
    assert_eq!(bad.0, 400);
    assert!(bad.1.contains("SPLAT_MAX_SPAN_LIFE_DAYS"));
    page(
        &app,
        form("/settings/retention", &[("SPLAT_MAX_EVENT_LIFE_DAYS", "")]),
    )
    .await;
    let in_force = app.config.retention.in_force(&app.store).await.unwrap();
    assert_eq!(in_force.event_days, 90);
}

/// The span ids of the live lake files, sorted: every row written must be there exactly once.
async fn live_span_ids(app: &TestApp) -> Vec<u64> {
    let mut ids: Vec<u64> = Vec::new();
    for batch in app.lake_batches(&SPANS).await {
        let column = batch.column_by_name("span_id").expect("span_id");
        let column = column
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .expect("binary span ids");
        ids.extend(column.iter().flatten());
    }
    ids.sort_unstable();
    ids
}

/// Writes `files` lake files of spans for day 0, two rows each, as the processor's small batches would.
async fn small_span_files(app: &TestApp, files: u64) -> Vec<u64> {
    use splat::lake::catalog::CatalogDb;
    let writer =
        splat::lake::LakeWriter::new(Arc::new(LocalBlobStore::new(app.config.data_dir.clone())));
    let mut ids = Vec::new();
    for f in 0..files {
        let mut facts = splat::lake::LakeFacts::default();
        for i in 0..2 {
            let n = f * 2 + i + 1;
            ids.push(n);
            facts.spans.push(splat::lake::SpanFact {
                project_id: app.project.id.value(),
                start_us: us(BASE + 3_600) + n as i64,
                trace_id: format!("{:032x}", f + 1),
                span_id: format!("{n:016x}"),
                op: Some("db".into()),
                description: Some(format!("SELECT {}", n % 7)),
                duration_ms: Some(n as f64 / 10.0),
                ..Default::default()
            });
        }
        let written = writer.write(&facts).await.unwrap();
        let conn = app.store.catalog_connection();
        let mut tx = conn
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await
            .unwrap();
        splat::lake::catalog::register(&mut tx, &written)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    ids
}

#[tokio::test]
async fn a_run_stops_at_its_deadline_or_when_killed_and_the_next_run_goes_on_losing_and_doubling_nothing(
) {
    let app = TestApp::new().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(app.config.data_dir.clone()));
    // More small files than one merge takes (1,000), so a day needs several merges.
    let written = small_span_files(&app, 1_050).await;
    assert_eq!(live_span_ids(&app).await, written);
    let (h, now) = (horizons(), us(BASE + 2 * DAY));

    // A run whose deadline has passed starts no merge and says it left work.
    let past = retention::Deadline::at(std::time::Instant::now());
    let report = retention::run_until(&app.store, &blobs, &h, now, past)
        .await
        .unwrap();
    assert!(report.stopped_at_deadline);
    assert_eq!(report.lake.files_compacted, 0);
    assert_eq!(live_span_ids(&app).await, written);

    // Runs killed midway (the future dropped at whatever await it had reached: a file half fetched, a
    // merged file uploaded but not yet swapped in, a deletion round) leave every row exactly once.
    let mut killed = 0;
    for ms in [2, 10, 40, 150, 500, 2_000] {
        let run = retention::run(&app.store, &blobs, &h, now);
        match tokio::time::timeout(std::time::Duration::from_millis(ms), run).await {
            Err(_) => killed += 1,
            Ok(report) => {
                report.unwrap();
            }
        }
        assert_eq!(live_span_ids(&app).await, written, "after a run of {ms} ms");
    }
    assert!(killed > 0, "at least one run was cut short");

    // Runs without a deadline finish the job: the day's 1,050 files are merged (1,000 at a time, then
    // what one run left as two files, by the next), and no file is left that the catalog does not list.
    let report = retention::run(&app.store, &blobs, &h, now).await.unwrap();
    assert!(!report.stopped_at_deadline);
    // A killed run's upload is an orphan once it is old enough not to be on its way to a commit.
    age_lake_files(&app);
    retention::run(&app.store, &blobs, &h, now).await.unwrap();
    assert_eq!(live_span_ids(&app).await, written);
    let live = one(
        &app,
        &format!(
            "SELECT count(*) FROM ducklake_data_file WHERE table_id = {} AND end_snapshot IS NULL",
            SPANS.id
        ),
    )
    .await;
    assert_eq!(live, 1, "one file for the day");
    assert_eq!(files_on_disk(&app), files_in_catalog(&app).await);
}

/// The orphan sweep goes a folder at a time over any blob store (S3 in `aws_emulator`): a folder of more
/// keys than one S3 page (1,000) with orphans before and after its live files, a folder with an ended file
/// and one scheduled for deletion, folders and a table the catalog does not know, and objects younger
/// than the cutoff (a batch's upload on its way to its commit), which stay.
pub(crate) async fn orphans_go_folder_by_folder(app: &TestApp, blobs: &dyn BlobStore) {
    const LIVE: usize = 1_050;
    app.execute_sql(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last})
         INSERT INTO ducklake_data_file
             (data_file_id, table_id, begin_snapshot, path, path_is_relative, file_format, record_count)
         SELECT 900000 + i, {spans}, 0, printf('1/2026-01-01/live-%04d.parquet', i), 1, 'parquet', 1 FROM n;
         INSERT INTO ducklake_data_file
             (data_file_id, table_id, begin_snapshot, end_snapshot, path, path_is_relative, file_format, record_count)
         VALUES (899999, {events}, 0, 1, '1/2026-01-02/ended.parquet', 1, 'parquet', 1);
         INSERT INTO ducklake_files_scheduled_for_deletion (data_file_id, path, path_is_relative, schedule_start)
         VALUES (899998, 'main/events/1/2026-01-02/scheduled.parquet', 1, '2026-01-02 00:00:00');",
        last = LIVE - 1,
        spans = SPANS.id,
        events = EVENTS.id,
    ))
    .await;
    let live = (0..LIVE).map(|i| format!("lake/main/spans/1/2026-01-01/live-{i:04}.parquet"));
    let kept_old = live.chain(
        [
            "lake/main/events/1/2026-01-02/ended.parquet",
            "lake/main/events/1/2026-01-02/scheduled.parquet",
            "lake/main/spans/1/2026-01-01/notes.txt",
            "ingest/elsewhere.parquet",
        ]
        .map(String::from),
    );
    let orphans = [
        "lake/main/spans/1/2026-01-01/a-orphan.parquet",
        "lake/main/spans/1/2026-01-01/z-orphan.parquet",
        "lake/main/events/1/2026-01-02/orphan.parquet",
        "lake/main/spans/99/2026-01-01/unknown-project.parquet",
        "lake/main/nope/1/2026-01-01/unknown-table.parquet",
    ]
    .map(String::from);
    let young = [
        "lake/main/spans/1/2026-01-01/young.parquet",
        "lake/main/events/7/2026-01-03/young.parquet",
    ]
    .map(String::from);
    let put_all = |keys: Vec<String>| async move {
        for keys in keys.chunks(32) {
            let puts = keys
                .iter()
                .map(|k| blobs.put(k, bytes::Bytes::from_static(b"x")));
            futures_util::future::try_join_all(puts).await.unwrap();
        }
    };
    let old: Vec<String> = kept_old.chain(orphans.clone()).collect();
    put_all(old.clone()).await;
    // S3 dates objects to the second: the cutoff falls a second clear of either side.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let cutoff = chrono::Utc::now().timestamp_micros();
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    put_all(young.to_vec()).await;

    let past = maintenance::Deadline::at(std::time::Instant::now());
    let none = maintenance::delete_orphans(&app.store, blobs, cutoff, past).await;
    assert_eq!(none.unwrap(), 0, "no time left: nothing listed");

    let deleted =
        maintenance::delete_orphans(&app.store, blobs, cutoff, maintenance::Deadline::NONE)
            .await
            .unwrap();
    assert_eq!(deleted, orphans.len() as u64);
    let mut expected: Vec<String> = old
        .into_iter()
        .filter(|k| k.starts_with("lake/") && !orphans.contains(k))
        .chain(young)
        .collect();
    expected.sort();
    assert_eq!(blobs.list("lake/").await.unwrap(), expected);
    assert_eq!(
        blobs.list("ingest/").await.unwrap(),
        ["ingest/elsewhere.parquet"]
    );
}

#[tokio::test]
async fn orphans_go_folder_by_folder_and_young_files_stay() {
    let app = TestApp::new().await;
    let blobs = LocalBlobStore::new(app.config.data_dir.clone());
    orphans_go_folder_by_folder(&app, &blobs).await;
}
