//! The web UI through its router (`tower::ServiceExt::oneshot`, no socket): every page renders what it
//! should, unknown ids are 404s, state changes need the CSRF token and a same-site request, and nothing an
//! SDK sends can inject markup.

use axum::body::Body;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use splat::store::IssueStatus;
use splat_tests::*;
use tower::ServiceExt;

/// A response with its body as text.
struct Page {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The token the server set in the `splat_csrf` cookie.
    fn csrf_cookie(&self) -> String {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("splat_csrf="))
            .and_then(|c| c.split(';').next())
            .expect("a splat_csrf cookie")
            .to_owned()
    }

    fn assert_has(&self, needles: &[&str]) {
        for needle in needles {
            assert!(
                self.body.contains(needle),
                "page lacks {needle:?}:\n{}",
                &self.body[..self.body.len().min(4000)]
            );
        }
    }
}

async fn call(router: &Router, req: Request<Body>) -> Page {
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

async fn get(router: &Router, path: &str) -> Page {
    call(router, Request::get(path).body(Body::empty()).unwrap()).await
}

/// A form post as a browser on the same site sends it, with the cookie and the field (when given).
async fn post_form(
    router: &Router,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> Page {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut req = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "splat.test");
    if let Some(token) = cookie {
        req = req.header("cookie", format!("splat_csrf={token}"));
    }
    for (k, v) in extra_headers {
        req = req.header(*k, *v);
    }
    call(router, req.body(Body::from(body)).unwrap()).await
}

/// A Python-shaped error with everything the event page shows.
fn rich_error(n: u32, value: &str) -> Value {
    json!({
        "event_id": event_id(n),
        "platform": "python", "level": "error", "timestamp": 1_700_000_000.0 + f64::from(n),
        "release": "shop@1.2.3", "environment": "production", "server_name": "web-1",
        "transaction": "/checkout",
        "exception": {"values": [
            {"type": "KeyError", "value": "'sku'", "mechanism": {"type": "generic", "handled": true}},
            {"type": "CheckoutError", "value": value, "module": "shop.errors",
             "mechanism": {"type": "django", "handled": false},
             "stacktrace": {"frames": [
                {"filename": "django/core/handlers.py", "function": "get_response", "lineno": 47, "in_app": false,
                 "context_line": "response = wrapped(request)"},
                {"filename": "shop/views.py", "function": "checkout", "lineno": 88, "colno": 5, "in_app": true,
                 "pre_context": ["def checkout(request):", "    cart = load_cart(request)"],
                 "context_line": "    total = price(cart['sku'])",
                 "post_context": ["    return render(total)"],
                 "vars": {"cart": {"items": 3}, "request": "<WSGIRequest: POST '/checkout'>"}}
             ]}}
        ]},
        "breadcrumbs": {"values": [
            {"timestamp": 1_699_999_999.5, "category": "query", "message": "SELECT * FROM carts WHERE id = 7"},
            {"timestamp": 1_699_999_999.9, "category": "http", "level": "warning", "data": {"url": "/api/price", "status_code": 502}}
        ]},
        "request": {"url": "https://shop.example/checkout", "method": "POST", "query_string": "coupon=SPRING",
                    "headers": {"User-Agent": "Mozilla/5.0 TestBrowser", "Accept": "text/html"}},
        "user": {"id": format!("user-{n}"), "email": "ada@example.com", "segment": "paid"},
        "tags": {"browser": "Firefox", "region": "eu-west"},
        "contexts": {"os": {"name": "Linux", "version": "6.1"}, "runtime": {"name": "CPython", "version": "3.12.1"}},
        "extra": {"cart_size": 3},
        "sdk": {"name": "sentry.python.django", "version": "2.19.0", "integrations": ["django", "logging"]}
    })
}

async fn send_event(app: &TestApp, n: u32, event: &Value) {
    let reply = app
        .post_envelope(event_envelope(&event_id(n), event), &[])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
}

async fn only_issue(app: &TestApp) -> splat::store::Issue {
    let (issues, _) = app
        .store
        .list_issues(
            app.project.id,
            &splat::store::IssueFilter {
                per_page: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(issues.len(), 1, "{issues:?}");
    issues.into_iter().next().unwrap()
}

#[tokio::test]
async fn every_page_renders_what_it_shows() {
    let app = TestApp::new().await;
    send_event(&app, 1, &rich_error(1, "cart 7 has no price")).await;
    send_event(&app, 2, &rich_error(2, "cart 9 has no price")).await;
    app.process().await;
    let issue = only_issue(&app).await;
    let web = app.web();

    let projects = get(&web, "/").await;
    assert_eq!(projects.status, 200);
    assert!(projects.header("content-type").starts_with("text/html"));
    assert!(projects
        .header("content-security-policy")
        .contains("script-src 'self'"));
    projects.assert_has(&[
        "Projects",
        "/projects/default",
        "Open issues",
        &format!("http://{}@localhost/{}", app.key(), app.project.id),
        "name=\"csrf\"",
    ]);

    let dashboard = get(&web, "/projects/default").await;
    assert_eq!(dashboard.status, 200);
    dashboard.assert_has(&[
        "Events (24 h)",
        "envelopes waiting",
        "Recent open issues",
        "CheckoutError: cart 7 has no price",
        // External from the request's host, internal from the configured URL.
        &format!("http://{}@localhost/{}", app.key(), app.project.id),
        &format!(
            "http://{}@splat.internal:3030/{}",
            app.key(),
            app.project.id
        ),
        "shop@1.2.3",
    ]);

    let list = get(&web, "/projects/default/issues").await;
    assert_eq!(list.status, 200);
    list.assert_has(&[
        "Open <span class=\"count\">1</span>",
        &format!("/projects/default/issues/{}", issue.id),
        "<svg class=\"spark",
        "value=\"resolved\"",
        "value=\"ignored\"",
        "1–1 of 1",
        "<option value=\"production\"",
    ]);

    let detail = get(&web, &format!("/projects/default/issues/{}", issue.id)).await;
    assert_eq!(detail.status, 200);
    detail.assert_has(&[
        "Latest event",
        "Last 7 days",
        "CheckoutError",
        "Caused by",
        "KeyError",
        // Innermost frame first, in-app, with numbered context and local vars.
        "<li class=\"frame in-app\">",
        "shop/views.py:88:5",
        "<span class=\"ln\">88</span><code>    total = price(cart[&#39;sku&#39;])</code>",
        "<span class=\"ln\">86</span>",
        "{&#34;items&#34;:3}",
        "browser",
        "Firefox",
        "Resolve in next release",
        "?event=",
    ]);
    let innermost = detail.body.find("shop/views.py:88").unwrap();
    let outer = detail.body.find("django/core/handlers.py:47").unwrap();
    assert!(innermost < outer, "innermost frame comes first");

    let event = get(&web, &format!("/projects/default/events/{}", event_id(2))).await;
    assert_eq!(event.status, 200);
    event.assert_has(&[
        "CheckoutError",
        "Breadcrumbs",
        "SELECT * FROM carts WHERE id = 7",
        "https://shop.example/checkout",
        "coupon=SPRING",
        "Mozilla/5.0 TestBrowser",
        "ada@example.com",
        "segment",
        "CPython",
        "sentry.python.django",
        "django, logging",
        "cart_size",
        "Raw JSON",
        "← Older event",
        "View issue",
    ]);
    // Dashed UUIDs are accepted in URLs.
    let dashed = uuid_dashed(&event_id(2));
    assert_eq!(
        get(&web, &format!("/projects/default/events/{dashed}"))
            .await
            .status,
        200
    );

    let raw = get(
        &web,
        &format!("/projects/default/events/{}/json", event_id(1)),
    )
    .await;
    assert_eq!(raw.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&raw.body).unwrap()["release"],
        "shop@1.2.3"
    );

    let settings = get(&web, "/projects/default/settings").await;
    assert_eq!(settings.status, 200);
    settings.assert_has(&["Rename", "Delete project", "External DSN", "Internal DSN"]);

    let css = get(&web, "/static/splat.css").await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains("prefers-color-scheme: dark"));
    assert!(get(&web, "/static/splat.js")
        .await
        .body
        .contains("live.json"));
}

fn uuid_dashed(hex: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let app = TestApp::new().await;
    send_event(&app, 1, &rich_error(1, "x")).await;
    app.process().await;
    let issue = only_issue(&app).await;
    let other = app.store.create_project("Other").await.unwrap();
    let web = app.web();
    for path in [
        "/projects/nope".to_owned(),
        "/projects/nope/issues".to_owned(),
        "/projects/default/issues/999999".to_owned(),
        "/projects/default/issues/abc".to_owned(),
        format!("/projects/default/events/{}", event_id(77)),
        "/projects/default/events/not-an-id".to_owned(),
        format!("/projects/default/events/{}/json", event_id(77)),
        // An issue and an event are only found under their own project.
        format!("/projects/{}/issues/{}", other.slug, issue.id),
        format!("/projects/{}/events/{}", other.slug, event_id(1)),
        "/no/such/page".to_owned(),
        "/static/nope.css".to_owned(),
        "/live.json?project=nope".to_owned(),
    ] {
        let page = get(&web, &path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(page.body.contains("Not found"), "{path}");
    }
}

#[tokio::test]
async fn state_changes_need_the_csrf_token_and_a_same_site_request() {
    let app = TestApp::new().await;
    send_event(&app, 1, &rich_error(1, "x")).await;
    app.process().await;
    let issue = only_issue(&app).await;
    let web = app.web();
    let page = get(&web, "/projects/default/issues").await;
    let token = page.csrf_cookie();
    assert!(page.header("set-cookie").contains("SameSite=Strict"));
    assert!(page.header("set-cookie").contains("HttpOnly"));
    assert!(page
        .body
        .contains(&format!("name=\"csrf\" value=\"{token}\"")));
    let path = format!("/projects/default/issues/{}/status", issue.id);
    let resolve = [("status", "resolved"), ("csrf", token.as_str())];

    // No token in the form, no cookie, a different token, a cross-site fetch, a foreign origin: refused.
    let refused = [
        post_form(&web, &path, Some(&token), &[("status", "resolved")], &[]).await,
        post_form(&web, &path, None, &resolve, &[]).await,
        post_form(
            &web,
            &path,
            Some(&token),
            &[("status", "resolved"), ("csrf", &"A".repeat(43))],
            &[],
        )
        .await,
        post_form(
            &web,
            &path,
            Some(&token),
            &resolve,
            &[("sec-fetch-site", "cross-site")],
        )
        .await,
        post_form(
            &web,
            &path,
            Some(&token),
            &resolve,
            &[("origin", "https://evil.example")],
        )
        .await,
        post_form(&web, "/projects", None, &[("name", "sneaky")], &[]).await,
    ];
    for (i, page) in refused.iter().enumerate() {
        assert_eq!(page.status, 403, "case {i}: {}", page.body);
    }
    let still = app.store.issue(issue.id).await.unwrap().unwrap();
    assert_eq!(still.status, IssueStatus::Open);
    assert_eq!(app.store.list_projects().await.unwrap().len(), 1);

    // The same request from the page itself goes through and comes back to where it was.
    let ok = post_form(
        &web,
        &path,
        Some(&token),
        &[
            ("status", "resolved"),
            ("csrf", &token),
            ("next", "/projects/default/issues?status=open"),
        ],
        &[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://splat.test"),
        ],
    )
    .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(
        ok.header("location"),
        "/projects/default/issues?status=open"
    );
    let resolved = app.store.issue(issue.id).await.unwrap().unwrap();
    assert_eq!(resolved.status, IssueStatus::Resolved);

    // `next` never leaves the site.
    let away = post_form(
        &web,
        &path,
        Some(&token),
        &[
            ("status", "open"),
            ("csrf", &token),
            ("next", "//evil.example/"),
        ],
        &[],
    )
    .await;
    assert_eq!(away.status, 303);
    assert_eq!(
        away.header("location"),
        format!("/projects/default/issues/{}", issue.id)
    );
}

#[tokio::test]
async fn resolving_moves_an_issue_to_the_resolved_tab() {
    let app = TestApp::new().await;
    send_event(&app, 1, &rich_error(1, "x")).await;
    app.process().await;
    let issue = only_issue(&app).await;
    let web = app.web();
    let token = get(&web, "/").await.csrf_cookie();
    let href = format!("/projects/default/issues/{}\"", issue.id);
    let stamp_before = get(&web, "/live.json?project=default").await.body;
    let global_before = get(&web, "/live.json").await.body;

    let ok = post_form(
        &web,
        &format!("/projects/default/issues/{}/status", issue.id),
        Some(&token),
        &[("status", "resolved"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(ok.status, 303);
    let open = get(&web, "/projects/default/issues?status=open").await;
    assert!(!open.body.contains(&href));
    assert!(open.body.contains("No open issues"));
    let resolved = get(&web, "/projects/default/issues?status=resolved").await;
    resolved.assert_has(&[
        &href,
        "Resolved <span class=\"count\">1</span>",
        "value=\"open\"",
        "Reopen",
    ]);
    // Live pages see the change.
    let stamp_after = get(&web, "/live.json?project=default").await.body;
    assert_ne!(stamp_before, stamp_after);
    assert_ne!(global_before, get(&web, "/live.json").await.body);
    let live: Value = serde_json::from_str(&stamp_after).unwrap();
    assert_eq!(live["queue_depth"], 0);
    assert_eq!(live["queue_class"], "ok");
}

#[tokio::test]
async fn search_filters_sort_and_paging() {
    let app = TestApp::new().await;
    // 27 distinct issues (fingerprints), one of them in staging.
    for n in 1..=27 {
        let mut e = rich_error(n, "x");
        e["fingerprint"] = json!([format!("group-{n}")]);
        if n == 5 {
            e["environment"] = json!("staging");
            e["exception"]["values"][1]["type"] = json!("PaymentDeclined");
        }
        send_event(&app, n, &e).await;
    }
    app.process().await;
    let web = app.web();
    let first = get(&web, "/projects/default/issues").await;
    first.assert_has(&["1–25 of 27", "rel=\"next\""]);
    assert_eq!(first.body.matches("class=\"issue-row").count(), 25);
    let second = get(&web, "/projects/default/issues?status=open&page=2").await;
    second.assert_has(&["26–27 of 27", "rel=\"prev\""]);
    assert_eq!(second.body.matches("class=\"issue-row").count(), 2);
    let staging = get(&web, "/projects/default/issues?environment=staging").await;
    staging.assert_has(&["1–1 of 1", "PaymentDeclined"]);
    let search = get(
        &web,
        "/projects/default/issues?q=PaymentDecl&sort=first_seen",
    )
    .await;
    search.assert_has(&[
        "1–1 of 1",
        "PaymentDeclined",
        "<option value=\"first_seen\" selected>",
    ]);
    let none = get(&web, "/projects/default/issues?level=debug").await;
    none.assert_has(&["No issues match these filters."]);
    // Junk parameters fall back to defaults rather than failing.
    assert_eq!(
        get(&web, "/projects/default/issues?page=x&sort=zzz&status=??")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn projects_are_created_renamed_and_deleted() {
    let app = TestApp::new().await;
    let web = app.web();
    let token = get(&web, "/").await.csrf_cookie();
    let created = post_form(
        &web,
        "/projects",
        Some(&token),
        &[("name", "My Shop"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(created.status, 303);
    assert_eq!(created.header("location"), "/projects/my-shop");
    get(&web, "/projects/my-shop")
        .await
        .assert_has(&["My Shop"]);
    let empty = post_form(
        &web,
        "/projects",
        Some(&token),
        &[("name", "  "), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(empty.status, 400);

    let renamed = post_form(
        &web,
        "/projects/my-shop/rename",
        Some(&token),
        &[("name", "Shop API"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(renamed.status, 303);
    get(&web, "/")
        .await
        .assert_has(&["Shop API", "/projects/my-shop"]);

    let unconfirmed = post_form(
        &web,
        "/projects/my-shop/delete",
        Some(&token),
        &[("confirm", "yes"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(unconfirmed.status, 400);
    let deleted = post_form(
        &web,
        "/projects/my-shop/delete",
        Some(&token),
        &[("confirm", "my-shop"), ("csrf", &token)],
        &[],
    )
    .await;
    assert_eq!(deleted.status, 303);
    assert_eq!(get(&web, "/projects/my-shop").await.status, 404);
    assert_eq!(app.store.list_projects().await.unwrap().len(), 1);
}

#[tokio::test]
async fn keys_are_added_disabled_after_confirmation_rotated_and_limited() {
    let app = TestApp::new().await;
    let web = app.web();
    let token = get(&web, "/").await.csrf_cookie();
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let (web, token) = (web.clone(), token.clone());
        async move {
            let mut fields: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            fields.push(("csrf", &token));
            post_form(&web, &path, Some(&token), &fields, &[]).await
        }
    };
    let added = post(
        "/projects/default/keys".into(),
        vec![("label", "ci".into())],
    )
    .await;
    assert_eq!(added.status, 303);
    let project = app.store.project(app.project.id).await.unwrap().unwrap();
    let ci = project
        .keys
        .iter()
        .find(|k| k.label == "ci")
        .unwrap()
        .public_key
        .to_string();
    assert!(added.header("location").ends_with(&format!("#key-{ci}")));

    // Without `confirm=yes` disabling only asks; nothing changes until the confirmation's own post.
    let asked = post(format!("/projects/default/keys/{ci}/disable"), vec![]).await;
    assert_eq!(asked.status, 200);
    asked.assert_has(&["Disable key", "name=\"confirm\" value=\"yes\"", &ci]);
    let enabled = |k: &str| {
        let (store, k): (_, splat::protocol::PublicKey) = (app.store.clone(), k.parse().unwrap());
        async move { store.key(&k).await.unwrap().unwrap().1.enabled }
    };
    assert!(enabled(&ci).await);
    let done = post(
        format!("/projects/default/keys/{ci}/disable"),
        vec![("confirm", "yes".into())],
    )
    .await;
    assert_eq!(done.status, 303);
    assert!(!enabled(&ci).await);
    let reenabled = post(format!("/projects/default/keys/{ci}/enable"), vec![]).await;
    assert_eq!(reenabled.status, 303, "enabling needs no confirmation");
    assert!(enabled(&ci).await);

    let rotated = post(
        format!("/projects/default/keys/{ci}/rotate"),
        vec![("confirm", "yes".into())],
    )
    .await;
    assert_eq!(rotated.status, 303);
    assert!(!enabled(&ci).await);
    let project = app.store.project(app.project.id).await.unwrap().unwrap();
    assert_eq!(
        project
            .keys
            .iter()
            .filter(|k| k.label == "ci" && k.enabled)
            .count(),
        1
    );

    let limited = post(
        "/projects/default/limits".into(),
        vec![("limit_error", "100".into()), ("limit_span", "".into())],
    )
    .await;
    assert_eq!(limited.status, 303);
    let bad = post(
        "/projects/default/limits".into(),
        vec![("limit_error", "-3".into())],
    )
    .await;
    assert_eq!(bad.status, 400);
    let page = get(&web, "/projects/default/settings").await;
    page.assert_has(&[
        "name=\"limit_error\" value=\"100\"",
        "disabled",
        "Rotate",
        "Add key",
    ]);

    // A key of another project is not this project's to change; an unknown action is a 404.
    let other = app.store.create_project("other").await.unwrap();
    let foreign = other.keys[0].public_key.to_string();
    let refused = post(
        format!("/projects/default/keys/{foreign}/disable"),
        vec![("confirm", "yes".into())],
    )
    .await;
    assert_eq!(refused.status, 404);
    assert!(enabled(&foreign).await);
    assert_eq!(
        post(format!("/projects/default/keys/{ci}/delete"), vec![])
            .await
            .status,
        404
    );
    // And without the CSRF token nothing happens.
    let forged = post_form(
        &web,
        &format!("/projects/default/keys/{foreign}/disable"),
        None,
        &[("confirm", "yes")],
        &[],
    )
    .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn the_theme_toggle_works_without_javascript() {
    let app = TestApp::new().await;
    let web = app.web();
    let token = get(&web, "/").await.csrf_cookie();
    let set = post_form(
        &web,
        "/theme",
        Some(&token),
        &[
            ("theme", "dark"),
            ("next", "/projects/default"),
            ("csrf", &token),
        ],
        &[],
    )
    .await;
    assert_eq!(set.status, 303);
    assert_eq!(set.header("location"), "/projects/default");
    assert!(set.header("set-cookie").starts_with("splat_theme=dark"));
    let page = call(
        &web,
        Request::get("/")
            .header("cookie", format!("splat_csrf={token}; splat_theme=dark"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    page.assert_has(&["<html lang=\"en\" data-theme=\"dark\">", "value=\"auto\""]);
    // A browser that already has the cookie is not given a new one.
    assert!(page.header("set-cookie").is_empty());
}

/// Every string field of an event is a markup payload; no page may contain it unescaped.
#[tokio::test]
async fn event_data_is_always_escaped() {
    const XSS: &str = "<script>alert(1)</script>";
    const IMG: &str = "\"><img src=x onerror=alert(1)>";
    let x = |tag: &str| format!("{XSS}{tag}{IMG}");
    let event = json!({
        "event_id": event_id(1),
        "platform": x("platform"), "level": x("level"), "logger": x("logger"),
        "release": x("release"), "environment": x("env"), "server_name": x("server"),
        "transaction": x("transaction"), "dist": x("dist"),
        "message": x("message"),
        "exception": {"values": [{
            "type": x("type"), "value": x("value"), "module": x("module"),
            "mechanism": {"type": x("mechanism"), "handled": false},
            "stacktrace": {"frames": [{
                "filename": x("file"), "abs_path": x("abs"), "function": x("function"), "module": x("fmodule"),
                "package": x("package"), "lineno": 1, "in_app": true,
                "pre_context": [x("pre")], "context_line": x("line"), "post_context": [x("post")],
                "vars": {x("varname"): x("varvalue"), "nested": {x("k"): [x("v")]}}
            }]}
        }]},
        "breadcrumbs": [{"category": x("category"), "type": x("btype"), "message": x("crumb"), "level": x("blevel"),
                         "data": {x("dk"): x("dv")}}],
        "request": {"url": x("url"), "method": x("method"), "query_string": x("query"),
                    "headers": {x("hname"): x("hvalue")}, "data": {x("body"): x("bodyv")}},
        "user": {"id": x("uid"), "email": x("email"), x("ukey"): x("uval")},
        "tags": {x("tagkey"): x("tagvalue")},
        "contexts": {x("ctx"): {x("ckey"): x("cval")}},
        "extra": {x("extra"): x("extrav")},
        "sdk": {"name": x("sdk"), "version": x("sdkv"), "integrations": [x("integration")]},
        "fingerprint": [x("fp")]
    });
    let app = TestApp::new().await;
    send_event(&app, 1, &event).await;
    let outcome = app.process().await;
    assert!(outcome.failed.is_empty(), "{outcome:?}");
    let issue = only_issue(&app).await;
    let web = app.web();
    let pages = [
        "/projects/default".to_owned(),
        "/projects/default/issues".to_owned(),
        format!("/projects/default/issues?status=all&q={}", "script"),
        format!("/projects/default/issues/{}", issue.id),
        format!("/projects/default/events/{}", event_id(1)),
    ];
    for path in &pages {
        let page = get(&web, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert"),
            "{path} has a raw script tag"
        );
        assert!(
            !page.body.contains("<img src=x"),
            "{path} has a raw img tag"
        );
        assert!(
            !page.body.contains("\"><img"),
            "{path} lets a quote out of an attribute"
        );
        // The only script element is ours, from our own origin.
        assert_eq!(page.body.matches("<script").count(), 1, "{path}");
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path} should show the payload escaped"
        );
    }
    // The event page shows every field, escaped.
    let event_page = get(&web, &format!("/projects/default/events/{}", event_id(1))).await;
    for tag in [
        "type",
        "value",
        "function",
        "file",
        "pre",
        "line",
        "post",
        "varname",
        "varvalue",
        "crumb",
        "category",
        "url",
        "method",
        "query",
        "hname",
        "hvalue",
        "uid",
        "ukey",
        "uval",
        "tagkey",
        "tagvalue",
        "ctx",
        "ckey",
        "cval",
        "extra",
        "sdk",
        "integration",
        "release",
        "env",
        "server",
        "transaction",
        "message",
    ] {
        let escaped =
            format!("&#60;/script&#62;{tag}&#34;&#62;&#60;img src=x onerror=alert(1)&#62;");
        assert!(
            event_page.body.contains(&escaped),
            "event page lacks escaped field {tag}"
        );
    }
}

/// The UI as `splat serve` mounts it: answering to loopback and `splat.test` only, and (in AWS) requiring
/// CloudFront's origin secret when one is given.
fn guarded_web(app: &TestApp, origin_secret: Option<&str>) -> Router {
    use splat::web::front_door::HostPolicy;
    splat::web::router(
        splat::web::WebState::new(app.store.clone(), app.queue.clone(), None, None)
            .with_hosts(HostPolicy::new(
                Some([127, 0, 0, 1].into()),
                None,
                &["splat.test".into()],
            ))
            .with_origin_secret(origin_secret.map(Into::into)),
    )
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: String) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn a_rebound_host_name_gets_no_page_and_changes_nothing() {
    let app = TestApp::new().await;
    let web = guarded_web(&app, None);
    // A page on evil.example whose name now resolves to 127.0.0.1: the browser sends its own name as Host.
    let evil = [("host", "evil.example:3030")];
    let settings = call(
        &web,
        request("GET", "/projects/default/settings", &evil, String::new()),
    )
    .await;
    assert_eq!(settings.status, 421);
    assert!(
        settings.headers.get("set-cookie").is_none(),
        "no CSRF cookie for a foreign host"
    );
    assert!(!settings.body.contains("csrf") && !settings.body.contains("DSN"));
    assert!(settings.body.contains("SPLAT_ALLOWED_HOSTS"));

    // Even holding a valid token (the worst case), the same-origin-looking delete is refused.
    let token = get(&web, "/").await.csrf_cookie();
    let form = format!("confirm=default&csrf={token}");
    let cookie = format!("splat_csrf={token}");
    let delete = |host: &'static str, forwarded: Option<&'static str>| {
        let mut headers = vec![
            ("host", host),
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", "http://evil.example:3030"),
            ("sec-fetch-site", "same-origin"),
            ("cookie", cookie.as_str()),
        ];
        headers.extend(forwarded.map(|f| ("x-forwarded-host", f)));
        request("POST", "/projects/default/delete", &headers, form.clone())
    };
    assert_eq!(
        call(&web, delete("evil.example:3030", None)).await.status,
        421
    );
    // A proxy header naming the foreign host is refused as well (scripts on a rebound page can set it).
    assert_eq!(
        call(&web, delete("127.0.0.1:3030", Some("evil.example")))
            .await
            .status,
        421
    );
    assert_eq!(
        app.store.list_projects().await.unwrap().len(),
        1,
        "the project survives"
    );

    // The names it does answer to.
    for host in [
        "localhost:3030",
        "127.0.0.1:3030",
        "[::1]:3030",
        "splat.test",
        "SPLAT.TEST.:8080",
    ] {
        let page = call(&web, request("GET", "/", &[("host", host)], String::new())).await;
        assert_eq!(page.status, 200, "{host}");
    }
}

#[tokio::test]
async fn without_the_origin_secret_the_ui_is_refused() {
    let app = TestApp::new().await;
    let web = guarded_web(&app, Some("stack-uuid-secret"));
    let with = |secret: Option<&'static str>| {
        let mut headers = vec![("host", "localhost")];
        headers.extend(secret.map(|s| ("x-splat-origin-secret", s)));
        request("GET", "/", &headers, String::new())
    };
    let direct = call(&web, with(None)).await;
    assert_eq!(direct.status, 403);
    assert!(direct.headers.get("set-cookie").is_none());
    assert_eq!(
        call(&web, with(Some("stack-uuid-secreT"))).await.status,
        403
    );
    assert_eq!(
        call(&web, with(Some("stack-uuid-secret"))).await.status,
        200
    );
}

#[tokio::test]
async fn https_pages_ask_for_https_only() {
    let app = TestApp::new().await;
    let web = app.web();
    let https = call(
        &web,
        request("GET", "/", &[("x-forwarded-proto", "https")], String::new()),
    )
    .await;
    assert_eq!(
        https.header("strict-transport-security"),
        "max-age=31536000"
    );
    assert!(get(&web, "/")
        .await
        .headers
        .get("strict-transport-security")
        .is_none());
}
