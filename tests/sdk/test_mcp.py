"""The MCP server through the official MCP Python SDK client (PyPI `mcp`) over streamable HTTP, against
`splat serve` holding errors sent by the real Python SDK: initialize, list the tools, call every one and
check its answer; requests without the token are refused."""

import asyncio
import json
import urllib.error
import urllib.request

import jsonschema
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from harness import run_client, start_splat

TOKEN = "mcp-test-token-7f3a9c"
RELEASE = "splat-sdk-tests@1.0.0"
TOOLS = {
    "list_projects", "get_status", "list_recent_issues", "search_issues", "get_issue", "get_issue_events",
    "get_event", "get_investigation_context", "resolve_issue", "ignore_issue", "reopen_issue", "list_releases",
    "get_transaction_stats", "get_endpoint_summary", "get_endpoint_timeseries", "find_n_plus_one_endpoints",
    "search_slow_transactions", "get_transactions_by_endpoint", "compare_endpoint_performance", "get_transaction",
    "get_transaction_spans", "get_trace", "list_monitors", "search_logs", "get_log", "get_trace_logs",
}
WRITES = {"resolve_issue", "ignore_issue", "reopen_issue"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server with MCP on; the Python SDK sends two errors (one issue) and a message (another), the
    Node SDK an error (a third), and the Python SDK a transaction with an N+1 (six order_items queries)."""
    with start_splat(tmp_path_factory.mktemp("splat-mcp"), {"MCP_AUTH_TOKEN": TOKEN}) as splat:
        first = run_client("python", splat.dsn, "error", "message")
        second = run_client("python", splat.dsn, "error")
        node = run_client("node", splat.dsn, "error")
        tx = run_client("python", splat.dsn, "transaction")
        splat.wait_for("SELECT 1 FROM events", count=4)
        splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", tx["ids"]["transaction"]["event_id"])
        yield splat, first["ids"], {**second["ids"], "node": node["ids"]["event_id"], "transaction": tx["ids"]["transaction"]}


def session_run(splat, body, token=TOKEN):
    """Runs `body(session)` inside an initialized client session; returns what it returns."""

    async def go():
        headers = {"Authorization": f"Bearer {token}"}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(f"{splat.base_url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    return init, await body(session)

    return asyncio.run(go())


def text(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


def test_the_splat_serve_banner_says_mcp_is_on(server):
    splat, _, _ = server
    assert f"MCP: {splat.base_url}/mcp (enabled" in splat.log_path.read_text()


def test_initialize_and_list_tools(server):
    splat, _, _ = server

    async def body(session):
        await session.send_ping()
        return await session.list_tools()

    init, listed = session_run(splat, body)
    assert init.server_info.name == "splat"
    assert init.capabilities.tools is not None
    assert "untrusted" in (init.instructions or "")
    by_name = {t.name: t for t in listed.tools}
    assert set(by_name) == TOOLS
    for name, tool in by_name.items():
        assert tool.input_schema["type"] == "object", name
        assert tool.description, name
        assert tool.annotations.read_only_hint is (name not in WRITES), name
    assert by_name["get_issue"].input_schema["required"] == ["issue_id"]


def test_every_tool_answers_correctly(server):
    splat, first, second = server
    error_ids = {first["error"], second["error"]}

    async def body(session):
        out = {}
        call = session.call_tool
        out["projects"] = await call("list_projects", {})
        out["status"] = await call("get_status", {})
        out["recent"] = await call("list_recent_issues", {"limit": 1000})
        issues = out["recent"].structured_content["issues"]
        error_issue = next(i for i in issues if i["exception_type"] == "ZeroDivisionError")
        message_issue = next(i for i in issues if i["title"] == "splat sdk test message")
        iid, mid = error_issue["id"], message_issue["id"]
        out["ids"] = (iid, mid)
        out["search"] = await call("search_issues", {"query": "ZeroDivision", "project": "default"})
        out["search_level"] = await call("search_issues", {"level": "warning"})
        out["search_none"] = await call("search_issues", {"query": "NoSuchErrorAnywhere"})
        out["issue"] = await call("get_issue", {"issue_id": iid})
        out["events"] = await call("get_issue_events", {"issue_id": iid, "limit": 1})
        out["events_all"] = await call("get_issue_events", {"issue_id": str(iid), "hours": 2})
        out["event"] = await call("get_event", {"event_id": first["error"]})
        out["context"] = await call("get_investigation_context", {"issue_id": iid})
        node_issue = next(i for i in issues if i["title"].startswith("Error: node sdk boom"))
        out["node_context"] = await call("get_investigation_context", {"issue_id": node_issue["id"]})
        out["releases"] = await call("list_releases", {"project": 1})
        out["resolve"] = await call("resolve_issue", {"issue_id": mid})
        out["after_resolve"] = await call("list_recent_issues", {"status": "resolved"})
        out["ignore"] = await call("ignore_issue", {"issue_id": mid})
        out["after_ignore"] = await call("list_recent_issues", {"status": "ignored"})
        out["reopen"] = await call("reopen_issue", {"issue_id": mid})
        out["after_reopen"] = await call("list_recent_issues", {})
        out["unknown_issue"] = await call("get_issue", {"issue_id": 424242})
        out["unknown_event"] = await call("get_event", {"event_id": "0" * 32})
        out["bad_status"] = await call("list_recent_issues", {"status": "sleeping"})
        out["bad_project"] = await call("list_recent_issues", {"project": "nope"})
        out["bad_time"] = await call("list_recent_issues", {"start_time": "last tuesday"})
        return out

    _, out = session_run(splat, body)
    iid, mid = out["ids"]

    projects = out["projects"].structured_content["projects"]
    assert [(p["slug"], p["open_issues"], p["events"]) for p in projects] == [("default", 3, 4)]
    assert "| 1 | `default` |" in text(out["projects"])

    status = out["status"].structured_content
    assert (status["projects"], status["issues"], status["events"]) == (1, 3, 4)
    assert status["issues_by_status"]["open"] == 3
    assert status["queue_depth"] == 0
    assert "- Events: 4" in text(out["status"])

    recent = out["recent"]
    assert not recent.is_error
    assert recent.structured_content["total"] == 3
    assert f"**Issue #{iid}** — ZeroDivisionError: division by zero" in text(recent)

    assert [i["id"] for i in out["search"].structured_content["issues"]] == [iid]
    assert [i["id"] for i in out["search_level"].structured_content["issues"]] == [mid]
    assert out["search_none"].structured_content["total"] == 0 and not out["search_none"].is_error

    issue = out["issue"].structured_content
    assert (issue["id"], issue["count"], issue["status"]) == (iid, 2, "open")
    assert issue["last_event_id"] in error_ids
    assert issue["first_release"] == RELEASE
    assert "Most Recent Stack Trace" in text(out["issue"]) and "send_error" in text(out["issue"])

    assert len(out["events"].structured_content["events"]) == 1
    listed = {e["event_id"] for e in out["events_all"].structured_content["events"]}
    assert listed == error_ids

    event = out["event"].structured_content
    assert event["event_id"] == first["error"] and event["issue_id"] == iid
    assert event["exceptions"][-1]["type"] == "ZeroDivisionError"
    assert event["release"] == RELEASE and event["untrusted"] is True
    md = text(out["event"])
    assert "division by zero" in md and "untrusted" in md
    assert "1 / 0" in md  # the source line the SDK sent as context

    context = out["context"].structured_content
    # Both events have in-app frames: the newest one is chosen, every time.
    assert context["event"]["event_id"] == second["error"]
    assert context["event"]["has_in_app_frames"] is True
    assert context["event"]["in_app_frames"][0]["function"] == "send_error"
    assert context["event"]["release"] == RELEASE
    assert context["event"]["trace_id"]
    assert context["untrusted_event_data"] is True
    md = text(out["context"])
    assert "untrusted data" in md and "[in-app]" in md and "1 / 0" in md and context["event"]["trace_id"] in md

    node = out["node_context"].structured_content["event"]
    assert node["event_id"] == second["node"] and node["platform"] == "node"
    assert node["has_in_app_frames"] is True
    assert "client.js" in text(out["node_context"])

    releases = out["releases"].structured_content["releases"]
    assert [(r["version"], r["events"]) for r in releases] == [(RELEASE, 4)]

    assert "marked as resolved" in text(out["resolve"])
    assert [i["id"] for i in out["after_resolve"].structured_content["issues"]] == [mid]
    assert "marked as ignored" in text(out["ignore"])
    assert [i["id"] for i in out["after_ignore"].structured_content["issues"]] == [mid]
    assert "marked as reopened" in text(out["reopen"])
    assert out["after_reopen"].structured_content["total"] == 3

    for name in ["unknown_issue", "unknown_event", "bad_status", "bad_project", "bad_time"]:
        assert out[name].is_error, name
        assert text(out[name]).startswith("Error: "), name
        # The outputSchema describes answers: an error carries no structuredContent that would violate it.
        assert out[name].structured_content is None, name
    assert "no issue #424242" in text(out["unknown_issue"])
    assert "no project \"nope\"" in text(out["bad_project"])


def test_performance_tools_on_a_python_sdk_transaction(server):
    """The transaction the Python SDK sent (`sdk-test/checkout`: a users query, then under `load_orders`
    one orders query and 6 × 10 ms order_items queries) through the performance tools."""
    splat, _, second = server
    sent = second["transaction"]
    endpoint = "sdk-test/checkout"

    async def body(session):
        call = session.call_tool
        return {
            "n_plus_one": await call("find_n_plus_one_endpoints", {"hours": 2}),
            "spans": await call("get_transaction_spans", {"transaction_id": sent["event_id"]}),
            "spans_db": await call("get_transaction_spans", {"transaction_id": sent["span_id"], "op_filter": "db", "limit": 3}),
            "transaction": await call("get_transaction", {"transaction_id": sent["event_id"]}),
            "stats": await call("get_transaction_stats", {}),
            "summary": await call("get_endpoint_summary", {"endpoint": endpoint}),
            "slow": await call("search_slow_transactions", {"min_duration_ms": 50}),
            "by_endpoint": await call("get_transactions_by_endpoint", {"endpoint": endpoint}),
            "series": await call("get_endpoint_timeseries", {"endpoint": endpoint, "hours": 3}),
            "compare": await call("compare_endpoint_performance", {"endpoint": endpoint, "release_a": RELEASE, "release_b": RELEASE}),
            "unknown": await call("get_endpoint_summary", {"endpoint": "no/such/endpoint"}),
            "unknown_tx": await call("get_transaction_spans", {"transaction_id": "f" * 32}),
            "in_trace": await call("get_transaction", {"transaction_id": sent["span_id"], "trace_id": sent["trace_id"]}),
            "unknown_in_trace": await call("get_transaction", {"transaction_id": sent["event_id"], "trace_id": "0" * 32}),
        }

    _, out = session_run(splat, body)
    for name, result in out.items():
        assert result.is_error is name.startswith("unknown"), (name, text(result))

    [ep] = out["n_plus_one"].structured_content["endpoints"]
    assert ep["name"] == endpoint and (ep["count"], ep["n_plus_one_count"]) == (1, 1)
    assert ep["wasted_ms"] > 0
    example = ep["example"]
    assert example["transaction"]["id"] == sent["event_id"]
    assert "order_items" in example["pattern"]["pattern"] and example["pattern"]["count"] == 6
    assert "42" not in example["pattern"]["pattern"]  # literals never reach disk
    md = text(out["n_plus_one"])
    assert endpoint in md and sent["event_id"] in md and "order_items" in md

    spans = out["spans"].structured_content
    assert spans["total_spans"] == 10 and spans["shown"] == 10
    tree = spans["spans"]
    assert tree[0]["span_id"] == sent["span_id"] and tree[0]["depth"] == 0 and tree[0]["offset_ms"] == 0
    by_desc = {}
    for s in tree:
        by_desc.setdefault(s["description"], []).append(s)
    [load] = by_desc["load_orders"]
    items = [s for s in tree if "order_items" in (s["description"] or "")]
    assert load["depth"] == 1 and len(items) == 6
    assert all(s["depth"] == 2 and s["parent_span_id"] == load["span_id"] for s in items)
    assert all(s["duration_ms"] >= 9 and s["offset_ms"] >= load["offset_ms"] for s in items)
    assert [r["count"] for r in spans["repeated"]] == [6] and "order_items" in spans["repeated"][0]["description"]
    md = text(out["spans"])
    load_line = next(l for l in md.splitlines() if "load_orders" in l and "]" in l)
    item_line = next(l for l in md.splitlines() if "order_items" in l and l.lstrip().startswith("["))
    indent = lambda l: len(l) - len(l.lstrip())
    assert indent(item_line) == indent(load_line) + 2, md
    assert "Repeated descriptions" in md and "×6" in md

    db = out["spans_db"].structured_content
    assert (db["matching"], db["shown"], db["output_truncated"]) == (8, 3, True)
    assert all(s["op"] == "db" for s in db["spans"])
    assert "5 more spans not shown" in text(out["spans_db"])

    tx = out["transaction"].structured_content
    assert (tx["name"], tx["has_n_plus_one"], tx["release"]) == (endpoint, True, RELEASE)
    assert tx["query_patterns"][0]["count"] == 6 and tx["query_patterns"][0]["n_plus_one"] is True
    assert "Time breakdown" in text(out["transaction"])

    assert out["stats"].structured_content["totals"]["count"] == 1
    assert [e["name"] for e in out["stats"].structured_content["endpoints"]] == [endpoint]
    summary = out["summary"].structured_content["stats"]
    assert summary["count"] == 1 and summary["n_plus_one_count"] == 1 and summary["p95_ms"] > 60
    assert [t["id"] for t in out["slow"].structured_content["transactions"]] == [sent["event_id"]]
    assert [t["id"] for t in out["by_endpoint"].structured_content["transactions"]] == [sent["event_id"]]
    assert sum(b["count"] for b in out["series"].structured_content["buckets"]) == 1
    compare = out["compare"].structured_content
    assert compare["a"]["stats"]["count"] == compare["b"]["stats"]["count"] == 1
    assert "no transactions for endpoint" in text(out["unknown"]) and endpoint in text(out["unknown"])
    assert "no transaction" in text(out["unknown_tx"]) and "newest 50000" in text(out["unknown_tx"])
    # With its trace, found through the unique key whatever its age; in another trace, not at all.
    assert out["in_trace"].structured_content["event_id"] == sent["event_id"]
    assert f"in trace {'0' * 32}" in text(out["unknown_in_trace"])
    # Lists give the trace beside each id, for exactly that lookup.
    assert f"trace `{sent['trace_id']}`" in text(out["slow"])


def test_requests_without_the_token_are_refused(server):
    splat, _, _ = server
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]:
        request = urllib.request.Request(f"{splat.base_url}/mcp", data=body.encode(), method="POST", headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        answer = json.loads(refused.value.read())
        assert answer["error"]["code"] == -32001 and answer["id"] is None

    # The official client gets no session either.
    with pytest.raises(BaseException):
        session_run(splat, lambda s: s.list_tools(), token="wrong")


def test_without_mcp_auth_token_everything_is_refused(tmp_path):
    with start_splat(tmp_path, {"MCP_AUTH_TOKEN": ""}) as splat:
        assert "MCP: disabled (set MCP_AUTH_TOKEN" in splat.log_path.read_text()
        request = urllib.request.Request(f"{splat.base_url}/mcp", data=b"{}", method="POST", headers={
            "Content-Type": "application/json", "Authorization": "Bearer "})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401
        assert "MCP_AUTH_TOKEN" in json.loads(refused.value.read())["error"]["message"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A second server: the Python SDK sends a tagged POST answered 502 with a KeyError captured inside it
    (one trace), and the N+1 transaction; the Node SDK an error."""
    with start_splat(tmp_path_factory.mktemp("splat-mcp-web"), {"MCP_AUTH_TOKEN": TOKEN}) as splat:
        sent = run_client("python", splat.dsn, "web_transaction", "transaction")["ids"]
        node = run_client("node", splat.dsn, "error")["ids"]
        splat.wait_for("SELECT 1 FROM events", count=2)
        splat.wait_for("SELECT 1 FROM transactions", count=2)
        yield splat, sent["web_transaction"], sent["transaction"], node["event_id"]


def test_seed_filters_and_traces_on_real_sdk_data(web):
    splat, req, n1, _ = web
    endpoint = "sdk-test/orders"

    async def body(session):
        call = session.call_tool
        slow = lambda **a: call("search_slow_transactions", {"min_duration_ms": 0, **a})
        return {
            "status": await slow(http_status=502),
            "status_none": await slow(http_status="404"),
            "method": await slow(http_method="post"),
            "tag": await slow(tags={"region": "eu-west"}),
            "tag_text": await slow(tags='{"region": "eu-west"}'),
            "tag_none": await slow(tags={"region": "us-east"}),
            "short": await slow(max_duration_ms=59),
            "long": await call("search_slow_transactions", {"min_duration_ms": 60}),
            "trace": await call("get_trace", {"trace_id": req["trace_id"]}),
            "by_trace": await call("get_transaction", {"trace_id": req["trace_id"]}),
            "spans_by_trace": await call("get_transaction_spans", {"trace_id": req["trace_id"]}),
            "event": await call("get_event", {"event_id": req["error"]}),
            "series": await call("get_endpoint_timeseries", {"endpoint": endpoint, "hours": 24, "buckets": 4}),
            "unknown_trace": await call("get_trace", {"trace_id": "0" * 32}),
            "bad_trace": await call("get_transaction", {"trace_id": "not-a-trace"}),
            "bad_tags": await slow(tags={"no spaces": "x"}),
            "bad_status": await slow(http_status=9000),
        }

    _, out = session_run(splat, body)
    for name, result in out.items():
        assert result.is_error is name.startswith(("unknown", "bad")), (name, text(result))
    ids = lambda name: [t["id"] for t in out[name].structured_content["transactions"]]

    # The SDK set the status (tag and trace data), the method (trace data) and a tag on the transaction.
    assert ids("status") == ids("method") == ids("tag") == ids("tag_text") == [req["event_id"]]
    assert ids("status_none") == ids("tag_none") == []
    assert out["method"].structured_content["transactions"][0]["http_method"] == "POST"
    # 6 × 10 ms of sleeps: the N+1 transaction is never under 60 ms; whatever else is, is within the range.
    assert n1["event_id"] not in ids("short") and n1["event_id"] in ids("long")
    assert all(t["duration_ms"] <= 59 for t in out["short"].structured_content["transactions"])
    assert all(t["duration_ms"] >= 60 for t in out["long"].structured_content["transactions"])

    trace = out["trace"].structured_content
    assert [t["id"] for t in trace["transactions"]] == [req["event_id"]]
    [error] = trace["errors"]
    assert error["event_id"] == req["error"] and error["issue_id"] and "KeyError" in error["title"]
    assert req["error"] in text(out["trace"]) and req["event_id"] in text(out["trace"])

    tx = out["by_trace"].structured_content
    assert (tx["id"], tx["http_status"], tx["tags"]["region"]) == (req["event_id"], 502, "eu-west")
    assert [e["event_id"] for e in tx["errors"]] == [req["error"]]
    assert "Errors in this request" in text(out["by_trace"]) and req["error"] in text(out["by_trace"])
    spans = out["spans_by_trace"].structured_content
    assert spans["transaction"]["id"] == req["event_id"] and spans["total_spans"] == 2

    event = out["event"].structured_content
    assert event["trace"]["trace_id"] == req["trace_id"]
    assert [t["id"] for t in event["trace"]["transactions"]] == [req["event_id"]]
    assert endpoint in text(out["event"])

    series = out["series"].structured_content
    # 24 hours touch 25 clock hours: 4 buckets of 7 whole hours.
    assert (series["bucket_hours"], len(series["buckets"]), series["total"]) == (7, 4, 1)

    assert "nothing in trace" in text(out["unknown_trace"])
    assert "32 hex digits" in text(out["bad_trace"])
    assert "tag key" in text(out["bad_tags"]) and "http_status" in text(out["bad_status"])


def test_every_tool_answers_with_structured_content_matching_its_output_schema(web):
    """Every tool declares an outputSchema; called on real SDK data, each answer validates against it
    (checked here with jsonschema, besides the client's own check), and so does the empty answer."""
    splat, req, n1, node_error = web

    async def body(session):
        listed = {t.name: t for t in (await session.list_tools()).tools}
        issues = (await session.call_tool("list_recent_issues", {})).structured_content["issues"]
        issue = next(i["id"] for i in issues if i["exception_type"] == "KeyError")
        calls = {
            "list_projects": {}, "get_status": {}, "list_recent_issues": {}, "list_releases": {},
            "search_issues": {"query": "KeyError"}, "get_issue": {"issue_id": issue},
            "get_issue_events": {"issue_id": issue}, "get_event": {"event_id": node_error},
            "get_investigation_context": {"issue_id": issue}, "resolve_issue": {"issue_id": issue},
            "ignore_issue": {"issue_id": issue}, "reopen_issue": {"issue_id": issue},
            "get_transaction_stats": {}, "get_endpoint_summary": {"endpoint": "sdk-test/checkout"},
            "get_endpoint_timeseries": {"endpoint": "sdk-test/checkout", "release": RELEASE},
            "find_n_plus_one_endpoints": {}, "search_slow_transactions": {"min_duration_ms": 0},
            "get_transactions_by_endpoint": {"endpoint": "sdk-test/orders"},
            "compare_endpoint_performance": {"endpoint": "sdk-test/checkout", "before_release": RELEASE, "after_release": RELEASE},
            "get_transaction": {"transaction_id": n1["event_id"]},
            "get_transaction_spans": {"transaction_id": n1["span_id"]},
            "get_trace": {"trace_id": req["trace_id"]},
            "list_monitors": {},
            # No logs here (tests/sdk/test_logs.py has them): the empty answers validate too; get_log needs one.
            "search_logs": {}, "get_trace_logs": {"trace_id": req["trace_id"]},
        }
        empty = {"search_issues": {"query": "NoSuchThingAnywhere"}, "search_slow_transactions": {"min_duration_ms": 86400000}}
        results = {name: await session.call_tool(name, args) for name, args in calls.items()}
        results.update({f"{name} (empty)": await session.call_tool(name, args) for name, args in empty.items()})
        return listed, results

    _, (listed, results) = session_run(splat, body)
    assert set(listed) >= set(TOOLS)
    # get_log needs a stored record: tests/sdk/test_logs.py validates its answer the same way.
    missing = sorted(set(listed) - {name.split(" ")[0] for name in results} - {"get_log"})
    assert not missing, f"call these tools here too: {missing}"
    for name, result in results.items():
        tool = listed[name.split(" ")[0]]
        assert not result.is_error, (name, text(result))
        assert tool.output_schema is not None, name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
        jsonschema.validate(result.structured_content, tool.output_schema, cls=jsonschema.Draft202012Validator)
        # Markdown for people beside the structure for programs.
        assert text(result).startswith(("#", "✅", "🔕", "🔓")), (name, text(result)[:80])

    # A wrong shape fails: the schemas are not vacuous.
    stats = listed["get_transaction_stats"].output_schema
    bad = dict(results["get_transaction_stats"].structured_content, totals={"count": "many"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, stats, cls=jsonschema.Draft202012Validator)
