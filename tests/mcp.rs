//! The MCP server through its router (`tower::ServiceExt::oneshot`, no socket): the bearer token refusals,
//! and a raw JSON-RPC exchange as plain HTTP clients make it (initialize, the initialized notification,
//! tools/list, tools/call) over issues built by posting real envelopes and running the processor.

use axum::body::Body;
use axum::Router;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use splat::mcp::{router, McpState};
use splat_tests::*;
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789";

struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

async fn post(app: &Router, auth: Option<&str>, body: Value) -> Answer {
    let mut req = Request::post("/mcp")
        .header("host", "splat.example")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        content_type,
        body,
    }
}

fn mcp(app: &TestApp, token: Option<&str>) -> Router {
    router(McpState::new(
        app.store.clone(),
        Some(app.queue.clone()),
        token.map(str::to_owned),
    ))
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "splat-tests", "version": "1"}}})
}

/// A Python-shaped error whose in-app frame has source context.
fn error(n: u32, value: &str, in_app: bool) -> Value {
    json!({
        "event_id": event_id(n),
        "platform": "python", "level": "error", "timestamp": 1_700_000_000.0 + f64::from(n),
        "release": "shop@1.2.3", "environment": "production", "server_name": "web-1",
        "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}},
        "exception": {"values": [{"type": "CheckoutError", "value": value,
            "stacktrace": {"frames": [
                {"filename": "django/core/handlers.py", "function": "get_response", "lineno": 47, "in_app": false},
                {"filename": "shop/views.py", "function": "checkout", "lineno": 88, "in_app": in_app,
                 "pre_context": ["def checkout(request):"], "context_line": "    total = price(cart['sku'])",
                 "post_context": ["    return render(total)"], "vars": {"cart": {"items": 3}}}
            ]}}]},
        "breadcrumbs": {"values": [{"timestamp": 1_699_999_999.5, "category": "query", "message": "SELECT * FROM carts"}]},
        "request": {"url": "https://shop.example/checkout", "method": "POST", "headers": {"X-Request-Id": "req-42"}},
        "tags": {"region": "eu-west"},
    })
}

async fn seeded() -> TestApp {
    let app = TestApp::new().await;
    for (n, v) in [(1, "cart is empty"), (2, "cart is empty")] {
        let reply = app
            .post_envelope(event_envelope(&event_id(n), &error(n, v, true)), &[])
            .await;
        assert_eq!(reply.status, 200, "{}", reply.error());
    }
    app.process().await;
    app
}

async fn call_tool(app: &Router, id: u64, name: &str, args: Value) -> Value {
    let a = post(
        app,
        Some(&format!("Bearer {TOKEN}")),
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": args}}),
    )
    .await;
    assert_eq!(a.status, 200, "{name}: {:?}", a.body);
    assert!(
        a.content_type.starts_with("application/json"),
        "{}",
        a.content_type
    );
    assert_eq!(a.body["id"], id);
    a.body["result"].clone()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn requests_without_the_right_bearer_token_are_refused() {
    let app = TestApp::new().await;
    let guarded = mcp(&app, Some(TOKEN));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(TOKEN),
        Some("Basic dGVzdA=="),
    ] {
        let a = post(&guarded, auth, initialize()).await;
        assert_eq!(a.status, 401, "{auth:?}");
        assert_eq!(a.body["jsonrpc"], "2.0");
        assert_eq!(a.body["error"]["code"], -32001);
        assert!(a.body["id"].is_null());
    }
    // A prefix or an extension of the token is no token.
    let a = post(&guarded, Some(&format!("Bearer {TOKEN}x")), initialize()).await;
    assert_eq!(a.status, 401);
    let a = post(
        &guarded,
        Some(&format!("Bearer {}", &TOKEN[..10])),
        initialize(),
    )
    .await;
    assert_eq!(a.status, 401);

    // Without MCP_AUTH_TOKEN nothing gets in, and the refusal says what to set.
    let closed = mcp(&app, None);
    let a = post(&closed, Some(&format!("Bearer {TOKEN}")), initialize()).await;
    assert_eq!(a.status, 401);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP_AUTH_TOKEN"),
        "{:?}",
        a.body
    );

    let a = post(&guarded, Some(&format!("Bearer {TOKEN}")), initialize()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
}

#[tokio::test]
async fn a_raw_json_rpc_exchange() {
    let app = seeded().await;
    let r = mcp(&app, Some(TOKEN));
    let auth = format!("Bearer {TOKEN}");

    let init = post(&r, Some(&auth), initialize()).await;
    assert_eq!(init.status, 200, "{:?}", init.body);
    assert!(init.content_type.starts_with("application/json"));
    assert_eq!(init.body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init.body["result"]["serverInfo"]["name"], "splat");
    assert!(init.body["result"]["capabilities"]["tools"].is_object());

    let note = post(
        &r,
        Some(&auth),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(note.status, 202);

    let ping = post(
        &r,
        Some(&auth),
        json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}),
    )
    .await;
    assert_eq!(ping.status, 200);
    assert_eq!(ping.body["result"], json!({}));

    let list = post(
        &r,
        Some(&auth),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let tools = list.body["result"]["tools"].as_array().unwrap().clone();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for want in [
        "list_projects",
        "get_status",
        "list_recent_issues",
        "search_issues",
        "get_issue",
        "get_issue_events",
        "get_event",
        "get_investigation_context",
        "resolve_issue",
        "ignore_issue",
        "reopen_issue",
        "list_releases",
    ] {
        let t = tools
            .iter()
            .find(|t| t["name"] == want)
            .unwrap_or_else(|| panic!("{want} in {names:?}"));
        assert_eq!(t["inputSchema"]["type"], "object", "{want}");
        let writes = want.ends_with("_issue") && !want.starts_with("get");
        assert_eq!(t["annotations"]["readOnlyHint"], !writes, "{want}");
    }

    let status = call_tool(&r, 3, "get_status", json!({})).await;
    assert_eq!(status["structuredContent"]["events"], 2);
    assert_eq!(status["structuredContent"]["issues_by_status"]["open"], 1);

    let recent = call_tool(&r, 4, "list_recent_issues", json!({"limit": "500"})).await;
    assert_eq!(recent["isError"], false);
    let issues = recent["structuredContent"]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1);
    let issue_id = issues[0]["id"].as_i64().unwrap();
    assert_eq!(issues[0]["count"], 2);
    assert!(text(&recent).contains(&format!("**Issue #{issue_id}**")));

    let found = call_tool(&r, 5, "search_issues", json!({"query": "CheckoutError"})).await;
    assert_eq!(found["structuredContent"]["total"], 1);
    let none = call_tool(&r, 6, "search_issues", json!({"query": "NoSuchThing"})).await;
    assert_eq!(none["structuredContent"]["total"], 0);
    assert!(text(&none).contains("No issues match"));

    let ctx = call_tool(
        &r,
        7,
        "get_investigation_context",
        json!({"issue_id": issue_id}),
    )
    .await;
    assert_eq!(ctx["isError"], false, "{ctx:?}");
    // The newest event with in-app frames, deterministically.
    assert_eq!(ctx["structuredContent"]["event"]["event_id"], event_id(2));
    assert_eq!(
        ctx["structuredContent"]["event"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let md = text(&ctx);
    assert!(md.contains("untrusted"), "{md}");
    assert!(md.contains("total = price(cart['sku'])"), "{md}");
    assert!(md.contains("[in-app]"), "{md}");
    assert!(md.contains("SELECT * FROM carts"), "{md}");
    assert!(md.contains("shop@1.2.3"), "{md}");

    let event = call_tool(&r, 8, "get_event", json!({"event_id": event_id(1)})).await;
    assert_eq!(event["structuredContent"]["issue_id"], issue_id);
    assert!(text(&event).contains("req-42"));

    let resolved = call_tool(
        &r,
        10,
        "resolve_issue",
        json!({"issue_id": issue_id.to_string()}),
    )
    .await;
    assert!(text(&resolved).contains("marked as resolved"));
    let open = call_tool(&r, 11, "list_recent_issues", json!({})).await;
    assert_eq!(open["structuredContent"]["total"], 0);
    let res = call_tool(&r, 12, "list_recent_issues", json!({"status": "resolved"})).await;
    assert_eq!(res["structuredContent"]["total"], 1);

    // Tool errors, not crashes: an unknown id, a bad argument, an unknown project.
    let missing = call_tool(&r, 13, "get_issue", json!({"issue_id": 987654})).await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("no issue #987654"));
    let bad = call_tool(&r, 14, "get_event", json!({"event_id": "nope"})).await;
    assert_eq!(bad["isError"], true);
    let bad = call_tool(&r, 15, "list_recent_issues", json!({"status": "sleeping"})).await;
    assert_eq!(bad["isError"], true);
    let bad = call_tool(
        &r,
        16,
        "list_releases",
        json!({"project": "no-such-project"}),
    )
    .await;
    assert_eq!(bad["isError"], true);
    assert!(text(&bad).contains("default"), "{}", text(&bad));

    // An unknown tool is a JSON-RPC error.
    let a = post(
        &r,
        Some(&auth),
        json!({"jsonrpc": "2.0", "id": 17, "method": "tools/call", "params": {"name": "drop_tables", "arguments": {}}}),
    )
    .await;
    assert!(a.body["error"]["code"].is_i64(), "{:?}", a.body);
}

/// The `splat-mcp` Lambda's path: an API Gateway HTTP API v2 event (real JSON shape, the Host API Gateway
/// sets, the stage `$default`) through the same router, answered in JSON.
#[tokio::test]
async fn an_api_gateway_v2_event_reaches_the_tools() {
    let app = seeded().await;
    let mut event: Value =
        serde_json::from_str(include_str!("fixtures/aws/apigw-v2-envelope.json")).unwrap();
    event["routeKey"] = json!("POST /mcp");
    event["rawPath"] = json!("/mcp");
    event["requestContext"]["http"]["path"] = json!("/mcp");
    event["requestContext"]["routeKey"] = json!("POST /mcp");
    event["rawQueryString"] = json!("");
    event["queryStringParameters"] = json!({});
    event["pathParameters"] = json!({});
    event["headers"] = json!({
        "accept": "application/json, text/event-stream",
        "authorization": format!("Bearer {TOKEN}"),
        "content-type": "application/json",
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "mcp-protocol-version": "2025-06-18",
        "user-agent": "claude-code/2.0",
        "x-forwarded-proto": "https"
    });
    event["isBase64Encoded"] = json!(false);
    event["body"] = json!(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_recent_issues", "arguments": {}}})
    .to_string());
    let request = lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event");
    let response = mcp(&app, Some(TOKEN)).oneshot(request).await.unwrap();
    let reply = Reply::read(response).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["result"]["structuredContent"]["issues"][0]["title"],
        "CheckoutError: cart is empty"
    );
}
