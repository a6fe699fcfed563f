"""The MCP server through the official MCP Python SDK client (PyPI `mcp`) over streamable HTTP, against
`splat serve` holding errors sent by the real Python SDK: initialize, list the tools, call every one and
check its answer; requests without the token are refused."""

import asyncio
import json
import urllib.error
import urllib.request

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
}
WRITES = {"resolve_issue", "ignore_issue", "reopen_issue"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server with MCP on; the Python SDK sends two errors (one issue) and a message (another), the
    Node SDK an error (a third)."""
    with start_splat(tmp_path_factory.mktemp("splat-mcp"), {"MCP_AUTH_TOKEN": TOKEN}) as splat:
        first = run_client("python", splat.dsn, "error", "message")
        second = run_client("python", splat.dsn, "error")
        node = run_client("node", splat.dsn, "error")
        splat.wait_for("SELECT 1 FROM events", count=4)
        yield splat, first["ids"], {**second["ids"], "node": node["ids"]["event_id"]}


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
    assert "no issue #424242" in text(out["unknown_issue"])
    assert "no project \"nope\"" in text(out["bad_project"])


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
