//! The performance pages through the web router: endpoints ranked by time spent with their percentiles
//! and N+1 badges, an endpoint's page, the N+1 worklist, the dashboard's performance half, the
//! transaction page with its waterfall and exports, and escaping of everything an SDK names.

use axum::body::Body;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use splat_tests::*;
use tower::ServiceExt;

struct Page {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Page {
    fn assert_has(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.body.contains(needle),
                "page lacks {needle:?}:\n{}",
                &self.body[..self.body.len().min(6000)]
            );
        }
    }

    /// Where `needle` first occurs; panics when absent.
    fn at(&self, needle: &str) -> usize {
        self.body
            .find(needle)
            .unwrap_or_else(|| panic!("page lacks {needle:?}"))
    }

    /// The value of the first `attr="…"` after `after`.
    fn attr_after(&self, after: &str, attr: &str) -> String {
        let rest = &self.body[self.at(after)..];
        let start = rest.find(&format!("{attr}=\"")).expect("attribute") + attr.len() + 2;
        rest[start..start + rest[start..].find('"').unwrap()].to_owned()
    }
}

async fn get(router: &Router, path: &str) -> Page {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(req).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Seconds since the epoch a few minutes ago: inside every range the pages offer.
fn recent(offset_s: f64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    (now - 900.0).floor() + offset_s
}

fn envelope(n: u32, tx: &Value) -> Vec<u8> {
    let payload = tx.to_string();
    format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        event_id(n),
        payload.len()
    )
    .into_bytes()
}

fn root_span(n: u32) -> String {
    format!("{n:016x}")
}

fn trace(n: u32) -> String {
    format!("{n:032x}")
}

/// A transaction of `ms` milliseconds with no spans.
fn timed(n: u32, name: &str, ms: f64) -> Vec<u8> {
    let start = recent(n as f64 * 0.01);
    envelope(
        n,
        &json!({
            "type": "transaction", "transaction": name, "start_timestamp": start, "timestamp": start + ms / 1000.0,
            "environment": "production", "platform": "python",
            "contexts": {"trace": {"trace_id": trace(n), "span_id": root_span(n), "op": "http.server"}},
        }),
    )
}

/// `GET /checkout`, 200 ms, 502: a source query, then the same query six times under the root (an N+1),
/// an HTTP call with a nested template render, and tags and measurements.
fn checkout(n: u32) -> Vec<u8> {
    let start = recent(100.0 + n as f64);
    let (root, tr) = (root_span(n), trace(n));
    let mut spans = vec![json!({
        "span_id": "a000000000000001", "parent_span_id": root, "trace_id": tr, "op": "db",
        "description": "SELECT id FROM orders WHERE user_id = 42",
        "start_timestamp": start + 0.001, "timestamp": start + 0.005, "data": {"db.system": "postgresql"}
    })];
    for i in 0..6 {
        let t = start + 0.01 + i as f64 * 0.015;
        spans.push(json!({
            "span_id": format!("b00000000000000{i}"), "parent_span_id": root, "trace_id": tr, "op": "db",
            "description": format!("SELECT * FROM order_items WHERE order_id = {}", 1000 + i),
            "start_timestamp": t, "timestamp": t + 0.012, "data": {"db.system": "postgresql"}
        }));
    }
    spans.push(json!({
        "span_id": "c000000000000001", "parent_span_id": root, "trace_id": tr, "op": "http.client",
        "description": "GET https://payments.example/charge", "start_timestamp": start + 0.11, "timestamp": start + 0.15
    }));
    spans.push(json!({
        "span_id": "c000000000000002", "parent_span_id": "c000000000000001", "trace_id": tr, "op": "template.render",
        "description": "receipt.html", "start_timestamp": start + 0.12, "timestamp": start + 0.14
    }));
    spans.push(json!({
        "span_id": "c000000000000003", "parent_span_id": "c000000000000002", "trace_id": tr, "op": "cache.get",
        "description": "receipt:<b>bold</b>", "start_timestamp": start + 0.125, "timestamp": start + 0.13
    }));
    envelope(
        n,
        &json!({
            "type": "transaction", "transaction": "GET /checkout", "platform": "python",
            "start_timestamp": start, "timestamp": start + 0.2, "environment": "production", "release": "shop@1.0",
            "server_name": "web-1", "tags": {"customer_tier": "gold"},
            "sdk": {"name": "sentry.python", "version": "2.0.0"},
            "measurements": {"ttfb": {"value": 42.5, "unit": "millisecond"}},
            "request": {"method": "GET", "url": "https://shop.example/checkout"},
            "contexts": {"trace": {"trace_id": tr, "span_id": root, "op": "http.server"},
                         "response": {"status_code": 502}},
            "spans": spans,
        }),
    )
}

/// A transaction with `count` child spans, each under the one before up to depth 4.
fn many_spans(n: u32, count: usize) -> Vec<u8> {
    let start = recent(200.0);
    let (root, tr) = (root_span(n), trace(n));
    let spans: Vec<Value> = (0..count)
        .map(|i| {
            let parent = if i % 4 == 0 { root.clone() } else { format!("{:016x}", 0xd000_0000u64 + i as u64 - 1) };
            json!({
                "span_id": format!("{:016x}", 0xd000_0000u64 + i as u64), "parent_span_id": parent, "trace_id": tr,
                "op": "function", "description": format!("step {i}"),
                "start_timestamp": start + i as f64 * 0.0001, "timestamp": start + i as f64 * 0.0001 + 0.00005
            })
        })
        .collect();
    envelope(
        n,
        &json!({
            "type": "transaction", "transaction": "batch job", "start_timestamp": start, "timestamp": start + 0.5,
            "contexts": {"trace": {"trace_id": tr, "span_id": root, "op": "task"}},
            "spans": spans,
        }),
    )
}

const XSS: &str = "<script>alert(1)</script>";

/// Sends everything the pages show and processes it.
async fn seeded() -> TestApp {
    let app = TestApp::new().await;
    // /slow: 1..=200 ms (exact nearest-rank p95 190 ms); /fast: 100 × 1 ms.
    for n in 1..=200 {
        app.post_envelope(timed(n, "/slow", n as f64), &[]).await;
    }
    for n in 201..=300 {
        app.post_envelope(timed(n, "/fast", 1.0), &[]).await;
    }
    app.post_envelope(checkout(301), &[]).await;
    app.post_envelope(timed(302, XSS, 50.0), &[]).await;
    // An error in the checkout's trace.
    let error = json!({"platform": "python", "level": "error", "timestamp": recent(101.1),
        "exception": {"values": [{"type": "PaymentError", "value": "card declined"}]},
        "contexts": {"trace": {"trace_id": trace(301), "span_id": root_span(301)}}});
    app.post_envelope(event_envelope(&event_id(400), &error), &[])
        .await;
    while !app.process().await.done.is_empty() {}
    app
}

/// The UI as `splat serve` mounts it, reading spans from the app's lake folder.
fn web(app: &TestApp) -> Router {
    let blobs = std::sync::Arc::new(splat::blob::LocalBlobStore::new(
        app.config.data_dir.clone(),
    ));
    let lake = splat::lake::LakeFiles::new(app.store.clone(), blobs);
    splat::web::router(
        splat::web::WebState::new(app.store.clone(), app.queue.clone(), None, None)
            .with_lake(std::sync::Arc::new(lake)),
    )
}

async fn transaction_row_id(app: &TestApp, n: u32) -> i64 {
    app.store
        .transaction_id(app.project.id, &event_id(n), None, u32::MAX)
        .await
        .unwrap()
        .expect("transaction stored")
}

#[tokio::test]
async fn performance_pages_rank_endpoints_and_show_their_numbers() {
    let app = seeded().await;
    let web = web(&app);

    let page = get(&web, "/projects/default/performance").await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        "Top endpoints by impact",
        "Recent transactions",
        "aria-current=\"page\">Performance</a>",
        "<svg class=\"spark trend\"",
    ]);
    // Ranked by time spent: /slow (20.1 s), then the checkout (200 ms), then /fast (100 ms).
    let (slow, checkout, fast) = (
        page.at("data-endpoint=\"/slow\""),
        page.at("data-endpoint=\"GET /checkout\""),
        page.at("data-endpoint=\"/fast\""),
    );
    assert!(slow < checkout && checkout < fast, "ranking order");
    let p95: f64 = page
        .attr_after("data-endpoint=\"/slow\"", "data-p95-ms")
        .parse()
        .unwrap();
    assert!((p95 - 190.0).abs() <= 1.9, "p95 {p95} within 1% of 190");
    // The checkout tripped the N+1 detector: a red badge with its share.
    let checkout_row = &page.body[checkout..fast];
    assert!(checkout_row.contains("badge n1 bad"), "{checkout_row}");
    assert!(checkout_row.contains("⚠ 100%"));
    assert!(checkout_row.contains("1 of 1 transactions tripped the N+1 detector"));
    // Recent transactions: 50 on the first page, and a link to the next.
    assert_eq!(page.body.matches("class=\"transaction-row\"").count(), 50);
    page.assert_has(&["rel=\"next\"", "badge http bad\">502</span>"]);
    let second = get(&web, "/projects/default/performance?page=7").await;
    assert_eq!(second.body.matches("class=\"transaction-row\"").count(), 2);

    // Filters: a name substring and a range.
    let filtered = get(&web, "/projects/default/performance?name=FAS&range=1h").await;
    assert_eq!(filtered.status, 200);
    assert!(filtered.body.contains("data-endpoint=\"/fast\""));
    assert!(!filtered.body.contains("data-endpoint=\"/slow\""));

    // The endpoint page: cards, chart, the transactions slowest first.
    let url = page
        .attr_after("data-endpoint=\"/slow\"", "href")
        .replace("&amp;", "&");
    assert!(
        url.starts_with("/projects/default/performance/endpoint?name=%2Fslow"),
        "{url}"
    );
    let detail = get(&web, &format!("{url}&sort=slowest")).await;
    assert_eq!(detail.status, 200);
    detail.assert_has(&[
        "<svg class=\"series\"",
        "polyline class=\"p95\"",
        "Latency and throughput",
    ]);
    let p95: f64 = detail
        .attr_after("data-p95 ", "data-p95-ms")
        .parse()
        .unwrap();
    assert!((p95 - 190.0).abs() <= 1.9, "endpoint p95 {p95}");
    assert_eq!(detail.body.matches("class=\"transaction-row\"").count(), 50);
    let first_duration = detail.at("class=\"dur ");
    assert!(
        detail.body[first_duration..].starts_with("class=\"dur dur-ok\">200 ms<"),
        "slowest first"
    );
    let page4 = get(&web, &format!("{url}&sort=slowest&page=4")).await;
    assert_eq!(page4.body.matches("class=\"transaction-row\"").count(), 50);
    assert!(!page4.body.contains("rel=\"next\""));

    // The N+1 worklist: only the checkout, with its wasted time and newest example.
    let n1 = get(&web, "/projects/default/performance/n-plus-one?range=24h").await;
    assert_eq!(n1.status, 200);
    assert_eq!(n1.body.matches("class=\"endpoint-row\"").count(), 1);
    let id = transaction_row_id(&app, 301).await;
    n1.assert_has(&[
        "data-endpoint=\"GET /checkout\"",
        &format!("href=\"/projects/default/transactions/{id}\" data-example"),
        "⚠ 100%",
    ]);

    // The dashboard's performance half.
    let dash = get(&web, "/projects/default").await;
    assert_eq!(dash.status, 200);
    dash.assert_has(&[
        "Transactions (24 h)",
        "Top endpoints by impact",
        "Error rate (24 h)",
    ]);
    assert_eq!(dash.body.matches("class=\"endpoint-row\"").count(), 4);
    // 1 error against 302 transactions.
    let rate = dash.attr_after("id=\"error-rate\"", "class");
    let _ = rate;
    assert!(dash.body.contains("0.33%"), "error rate");
    assert!(dash
        .body
        .contains("1 errors / (1 errors + 302 transactions)"));
}

#[tokio::test]
async fn the_dashboard_says_events_per_hour_without_transactions() {
    let app = TestApp::new().await;
    let error = json!({"platform": "python", "level": "error", "timestamp": recent(0.0),
        "exception": {"values": [{"type": "KeyError", "value": "x"}]}});
    app.post_envelope(event_envelope(&event_id(1), &error), &[])
        .await;
    app.process().await;
    let dash = get(&web(&app), "/projects/default").await;
    assert_eq!(dash.status, 200);
    dash.assert_has(&[
        "0.0/h",
        "error events per hour",
        "No transactions in the last 24 hours",
    ]);
    let perf = get(&web(&app), "/projects/default/performance").await;
    assert_eq!(perf.status, 200);
    perf.assert_has(&["No transactions in the last 24 hours"]);
}

#[tokio::test]
async fn endpoint_names_are_escaped_everywhere() {
    let app = seeded().await;
    let web = web(&app);
    let id = transaction_row_id(&app, 302).await;
    for path in [
        "/projects/default/performance".to_owned(),
        "/projects/default".to_owned(),
        format!(
            "/projects/default/performance/endpoint?name={}",
            form_urlencoded::byte_serialize(XSS.as_bytes()).collect::<String>()
        ),
        "/projects/default/performance?name=%3Cscript%3E".to_owned(),
        format!("/projects/default/transactions/{id}"),
    ] {
        let page = get(&web, &path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.body.contains(XSS), "{path} has the raw name");
        assert!(
            page.body.contains("&#60;script&#62;alert(1)"),
            "{path} shows it escaped"
        );
    }
}

#[tokio::test]
async fn the_transaction_page_shows_where_the_time_went() {
    let app = seeded().await;
    app.post_envelope(many_spans(500, 1_200), &[]).await;
    while !app.process().await.done.is_empty() {}
    let web = web(&app);
    let id = transaction_row_id(&app, 301).await;
    let page = get(&web, &format!("/projects/default/transactions/{id}")).await;
    assert_eq!(page.status, 200);
    page.assert_has(&[
        "GET /checkout",
        "Time breakdown",
        "badge http bad\">502</span>",
        "https://shop.example/checkout",
        "shop@1.0",
        "web-1",
        "customer_tier",
        "gold",
        "ttfb",
        "42.5 millisecond",
        "Query analysis",
        "N+1 patterns",
        "class=\"pattern-row n1-row\"",
        "SELECT * FROM order_items WHERE order_id = ",
        "×6",
        "6 distinct",
        "PaymentError: card declined",
        ".json\" data-export=\"json\"",
        ".csv\" data-export=\"csv\"",
    ]);
    // No literal from a query reaches the page.
    assert!(!page.body.contains("order_id = 1003"));
    assert!(!page.body.contains("data-truncated"));
    // The waterfall: the root and its ten spans, in start order, indented by depth.
    let depths: Vec<&str> = page
        .body
        .match_indices("class=\"span-row")
        .map(|(at, _)| {
            let rest = &page.body[at..];
            let d = rest.find("data-depth=\"").unwrap() + 12;
            &rest[d..d + rest[d..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        depths,
        ["0", "1", "1", "1", "1", "1", "1", "1", "1", "2", "3"],
        "{}",
        page.body
    );
    page.assert_has(&[
        "span-row op-db\"",
        "span-row op-http\"",
        "span-row op-view\"",
        "span-row op-cache\"",
        "span-label depth-3",
        "tree depth 3",
    ]);
    // The span description with markup is escaped.
    assert!(!page.body.contains("<b>bold</b>"));

    // CSV: the header, then one line per span with its offset and duration.
    let csv = get(&web, &format!("/projects/default/transactions/{id}.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "sequence,depth,span_id,parent_span_id,op,description,status,start_offset_ms,duration_ms"
    );
    assert_eq!(lines.len(), 1 + 11);
    assert!(
        lines[1].contains(&format!(",{},", root_span(301))),
        "{}",
        lines[1]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("template.render,receipt.html,") && l.contains(",120.000,20.000")),
        "{lines:?}"
    );

    // JSON: the row and the spans.
    let json_page = get(&web, &format!("/projects/default/transactions/{id}.json")).await;
    assert_eq!(json_page.status, 200);
    let v: Value = serde_json::from_str(&json_page.body).unwrap();
    assert_eq!(v["transaction"]["name"], "GET /checkout");
    assert_eq!(v["transaction"]["http_status"], 502);
    assert_eq!(v["transaction"]["has_n_plus_one"], true);
    assert_eq!(v["spans"].as_array().unwrap().len(), 11);

    // More than 1,000 spans: the first 1,000 kept, and a banner says so.
    let big = transaction_row_id(&app, 500).await;
    let page = get(&web, &format!("/projects/default/transactions/{big}")).await;
    assert_eq!(page.status, 200);
    page.assert_has(&["data-truncated", "only the first 1,000"]);
    assert_eq!(
        page.body.matches("class=\"span-row").count(),
        1_000,
        "the root and 999 children"
    );
    page.assert_has(&["span-label depth-4", "data-depth=\"4\""]);

    // Unknown or malformed ids are 404s.
    for path in [
        "/projects/default/transactions/999999",
        "/projects/default/transactions/abc.json",
    ] {
        assert_eq!(get(&web, path).await.status, 404, "{path}");
    }
}
