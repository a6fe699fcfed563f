"""Structured logs from the real SDKs (sentry-sdk with `enable_logs=True`, @sentry/node with `enableLogs`)
stored by `splat serve`: typed attributes, trace links to the error and the transaction beside them, every
record in the lake for stock DuckDB, and a malformed record refused alone."""

import http.client
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from harness import ROOT, start_splat

SDK_DIR = ROOT / "tests" / "sdk"
MCP_TOKEN = "logs-test-token-5b1e"


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    with start_splat(tmp_path_factory.mktemp("splat-logs"), {"MCP_AUTH_TOKEN": MCP_TOKEN}) as splat:
        python = run([sys.executable, str(SDK_DIR / "python_logs_client.py"), splat.dsn])
        node = run(["node", str(SDK_DIR / "node" / "logs_client.js"), splat.dsn])
        splat.wait_for("SELECT 1 FROM logs", count=6)
        splat.wait_for("SELECT 1 FROM events", count=2)
        yield splat, python, node


def attributes(row):
    return json.loads(row["attributes"])


def test_python_sdk_logs_keep_typed_attributes_and_their_trace(sent):
    splat, python, _ = sent
    rows = splat.query("SELECT * FROM logs WHERE trace_id = ? ORDER BY timestamp, block_id, position", python["trace_id"])
    assert [r["level"] for r in rows] == ["info", "warn", "error"]
    info = rows[0]
    assert info["body"] == "User 42 checked out 3 items"
    assert (info["environment"], info["release"]) == ("sdk-test", "splat-sdk-tests@1.0.0")
    assert info["severity_number"] == 9
    assert info["span_id"] is not None and len(info["span_id"]) == 16
    attrs = attributes(info)
    assert attrs["cart.total"] == {"type": "double", "value": 19.5}
    assert attrs["cart.express"] == {"type": "boolean", "value": True}
    assert attrs["shop"] == {"type": "string", "value": "north"}
    assert attrs["sentry.message.parameter.user_id"] == {"type": "integer", "value": 42}
    assert attrs["sentry.message.template"]["value"] == "User {user_id} checked out {items} items"
    # The error and the transaction logged beside are in the same trace.
    [error] = splat.query("SELECT trace_id FROM events WHERE event_id = ?", python["error"])
    assert error["trace_id"] == python["trace_id"]
    [tx] = splat.query("SELECT trace_id FROM transactions WHERE event_id = ?", python["transaction"])
    assert tx["trace_id"] == python["trace_id"]
    # The line after the transaction is stored too, at debug level.
    assert splat.query("SELECT level FROM logs WHERE body = 'after the transaction'") == [{"level": "debug"}]


def test_node_sdk_logs_link_to_the_error_of_their_trace(sent):
    splat, _, node = sent
    rows = splat.query("SELECT * FROM logs WHERE trace_id = ? ORDER BY timestamp, block_id, position", node["trace_id"])
    assert [(r["level"], r["body"]) for r in rows] == [
        ("warn", "Queue billing is slow"),
        ("error", "node payment failed"),
    ]
    attrs = attributes(rows[0])
    assert attrs["queue.depth"] == {"type": "integer", "value": 12}
    assert attrs["retry"] == {"type": "boolean", "value": False}
    assert attrs["sentry.sdk.name"]["value"] == "sentry.javascript.node"
    assert attributes(rows[1])["payment.amount"] == {"type": "double", "value": 12.5}
    [error] = splat.query("SELECT trace_id FROM events WHERE event_id = ?", node["error"].replace("-", ""))
    assert error["trace_id"] == node["trace_id"]


def test_stock_duckdb_reads_every_record_with_typed_attributes(sent):
    splat, python, node = sent
    [count] = splat.lake("SELECT count(*) AS n FROM lake.logs")
    assert count["n"] == splat.scalar("SELECT count(*) FROM logs")
    rows = splat.lake(
        "SELECT level, body, sdk_name, attributes->'$.\"cart.total\"'->>'type' AS ty, "
        "CAST(attributes->'$.\"cart.total\"'->'value' AS DOUBLE) AS total "
        "FROM lake.logs WHERE trace_id = ? AND level = 'info'",
        python["trace_id"],
    )
    assert rows == [{"level": "info", "body": "User 42 checked out 3 items", "sdk_name": "sentry.python",
                     "ty": "double", "total": 19.5}]
    ids = {r["log_id"].hex for r in splat.lake("SELECT log_id FROM lake.logs")}
    assert ids == {r["log_id"] for r in splat.query("SELECT log_id FROM logs")}
    [node_rows] = splat.lake("SELECT count(*) AS n FROM lake.logs WHERE trace_id = ?", node["trace_id"])
    assert node_rows["n"] == 2


def post_envelope(splat, body):
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    project = urlsplit(splat.dsn).path.strip("/")
    try:
        conn.request("POST", f"/api/{project}/envelope/?sentry_key={splat.key}&sentry_version=7", body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_malformed_record_is_refused_alone(splat):
    now = time.time()
    records = [
        {"timestamp": now, "level": "info", "body": "kept one", "trace_id": "a" * 32},
        {"level": "info", "body": "no timestamp"},
        {"timestamp": now, "level": "info", "body": "bad trace", "trace_id": "xyz"},
        "not an object",
        {"timestamp": now + 1, "level": "fatal", "body": "kept two",
         "attributes": {"n": {"type": "integer", "value": "7"}, "bad": {"type": "integer", "value": "x"}}},
    ]
    payload = json.dumps({"items": records})
    item = json.dumps({"type": "log", "item_count": len(records), "length": len(payload.encode()),
                       "content_type": "application/vnd.sentry.items.log+json"})
    status, body = post_envelope(splat, f"{{}}\n{item}\n{payload}\n".encode())
    assert status == 200, body
    rows = splat.wait_for("SELECT body, attributes FROM logs ORDER BY timestamp", count=2)
    assert [r["body"] for r in rows] == ["kept one", "kept two"]
    assert attributes(rows[1]) == {"n": {"type": "integer", "value": 7}}
    splat.wait_for("SELECT 1 FROM item_counts WHERE item_type = 'log_refused' AND count = 3")
    # A record from long ago lands on the received time, the time it was sent kept beside.
    old = json.dumps({"items": [{"timestamp": 1_000_000_000.0, "level": "info", "body": "from 2001"}]})
    status, _ = post_envelope(splat, f'{{}}\n{{"type":"log","length":{len(old)}}}\n{old}\n'.encode())
    assert status == 200
    [row] = splat.wait_for("SELECT timestamp, attributes FROM logs WHERE body = 'from 2001'")
    assert row["timestamp"] > (now - 60) * 1e6
    assert attributes(row)["splat.sdk_timestamp"]["value"].startswith("2001-09-09T01:46:40")
    # A log item that is not even an object is a 400 for its envelope, as for every JSON item.
    status, _ = post_envelope(splat, b'{}\n{"type":"log","length":2}\n[]\n')
    assert status == 400


def mcp_session(splat, body):
    """Runs `body(session)` in a session of the official MCP client; returns its tools and what body returns."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def go():
        headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(f"{splat.base_url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    tools = {t.name: t for t in (await session.list_tools()).tools}
                    return tools, await body(session)

    return asyncio.run(go())


def test_mcp_tools_find_logs_by_text_level_trace_and_id(sent):
    import jsonschema

    splat, python, node = sent

    async def body(session):
        call = session.call_tool
        out = {
            "search": await call("search_logs", {"query": "north", "level": "info"}),
            "levels": await call("search_logs", {"level": "warn,error", "limit": 2}),
            "trace": await call("get_trace_logs", {"trace_id": python["trace_id"]}),
            "node_trace": await call("get_trace_logs", {"trace_id": node["trace_id"], "project": "default"}),
        }
        first = out["trace"].structured_content["logs"][0]["log_id"]
        out["log"] = await call("get_log", {"log_id": first})
        issues = (await call("list_recent_issues", {})).structured_content["issues"]
        key_error = next(i for i in issues if i["exception_type"] == "KeyError")
        out["context"] = await call("get_investigation_context", {"issue_id": key_error["id"]})
        return out

    tools, out = mcp_session(splat, body)
    for name, result in out.items():
        assert not result.is_error, (name, result.content)
        tool = {"search": "search_logs", "levels": "search_logs", "trace": "get_trace_logs",
                "node_trace": "get_trace_logs", "log": "get_log", "context": "get_investigation_context"}[name]
        jsonschema.validate(result.structured_content, tools[tool].output_schema)
        assert "untrusted" in result.content[0].text

    [hit] = out["search"].structured_content["logs"]
    assert hit["body"] == "User 42 checked out 3 items" and hit["attributes"]["shop"]["value"] == "north"
    levels = out["levels"].structured_content
    assert [l["level"] in ("warn", "error") for l in levels["logs"]] == [True, True] and levels["more"] is True
    trace = out["trace"].structured_content
    assert [l["level"] for l in trace["logs"]] == ["info", "warn", "error"]
    assert [l["body"] for l in out["node_trace"].structured_content["logs"]] == ["Queue billing is slow", "node payment failed"]
    log = out["log"].structured_content["log"]
    assert log["attributes"]["cart.total"] == {"type": "double", "value": 19.5}
    context = out["context"].structured_content
    assert [l["body"] for l in context["trace_logs"]] == [l["body"] for l in trace["logs"]]
    assert "Logs of the same trace" in out["context"].content[0].text


def post_otlp(splat, body, content_type, key=None):
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    project = urlsplit(splat.dsn).path.strip("/")
    headers = {"content-type": content_type}
    if key is not False:
        headers["x-sentry-auth"] = f"sentry sentry_key={key or splat.key}"
    try:
        conn.request("POST", f"/api/{project}/integration/otlp/v1/logs", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_opentelemetry_sdk_logs_over_otlp_http_are_stored_with_their_trace(splat):
    sent = run([sys.executable, str(SDK_DIR / "otel_logs_client.py"), splat.dsn])
    assert sent["results"] == ["SUCCESS", "SUCCESS"]
    rows = splat.wait_for("SELECT * FROM logs ORDER BY timestamp, block_id, position", count=2)
    warn, info = rows
    assert (warn["level"], warn["body"], warn["trace_id"]) == ("warn", "payment for order 17 declined", sent["trace_id"])
    assert warn["severity_number"] == 13 and len(warn["span_id"]) == 16
    assert (warn["environment"], warn["release"]) == ("otel-test", "3.2.1")
    attrs = attributes(warn)
    assert attrs["order.id"] == {"type": "integer", "value": 17}
    assert attrs["card.expired"] == {"type": "boolean", "value": True}
    assert attrs["service.name"] == {"type": "string", "value": "otel-shop"}
    assert attrs["instrumentation.name"]["value"] == "otel.shop"
    assert (info["level"], info["body"]) == ("info", "otel line outside any span")
    [lake] = splat.lake("SELECT count(*) AS n FROM lake.logs WHERE trace_id = ?", sent["trace_id"])
    assert lake["n"] == 1


def test_otlp_json_bodies_map_to_the_same_records_and_bad_records_are_refused_alone(splat):
    now_ns = str(int(time.time() * 1e9))
    request = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]},
                                 "scopeLogs": [{"logRecords": [
        {"timeUnixNano": now_ns, "severityNumber": 17, "severityText": "ERROR", "body": {"stringValue": "json line"},
         "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
         "attributes": [{"key": "retries", "value": {"intValue": "2"}}]},
        {"timeUnixNano": now_ns, "body": {"stringValue": "bad trace"}, "traceId": "0af7"},
    ]}]}]}
    status, body = post_otlp(splat, json.dumps(request).encode(), "application/json")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "record 1" in answer["partialSuccess"]["errorMessage"]
    [row] = splat.wait_for("SELECT * FROM logs")
    assert (row["level"], row["body"], row["trace_id"]) == ("error", "json line", "0af7651916cd43dd8448eb211c80319c")
    assert attributes(row)["retries"] == {"type": "integer", "value": 2}


def test_otlp_refuses_a_missing_or_wrong_key_before_reading_and_garbage_with_a_reason(splat):
    assert post_otlp(splat, b"{}", "application/json", key=False)[0] == 401
    assert post_otlp(splat, b"{}", "application/json", key="0" * 32)[0] == 403
    # The key is refused before the body is read: a client waiting for `100 Continue` is answered at once,
    # its announced body never sent.
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.putrequest("POST", f"/api/{urlsplit(splat.dsn).path.strip('/')}/integration/otlp/v1/logs")
        conn.putheader("content-type", "application/x-protobuf")
        conn.putheader("content-length", str(10 << 20))
        conn.putheader("x-sentry-auth", "sentry sentry_key=" + "0" * 32)
        conn.putheader("expect", "100-continue")
        conn.endheaders()
        assert conn.getresponse().status == 403
    finally:
        conn.close()
    status, body = post_otlp(splat, b"\xff\xff\xff\xff", "application/x-protobuf")
    assert status == 400 and b"protobuf" in body.lower(), body
    status, body = post_otlp(splat, b"[1,2]", "application/json")
    assert status == 400, body


def test_log_quotas_drop_log_items_and_say_so_in_x_sentry_rate_limits(tmp_path):
    """`log_item` and `log_byte` quotas (`splat key limit`, `splat project limit`) drop log items at ingest and
    name their category in X-Sentry-Rate-Limits, as Relay does, so SDKs stop sending logs for the minute."""
    from harness import SPLAT_BIN

    def cli(*args):
        done = subprocess.run([SPLAT_BIN, *args, "--data-dir", str(splat.db_path.parent)], capture_output=True,
                              text=True, timeout=30, env={**os.environ, **(splat.remote_env or {})})
        assert done.returncode == 0, done.stderr

    with start_splat(tmp_path, {"SPLAT_KEY_CACHE_SECS": "1"}) as splat:
        cli("key", "limit", splat.key, "log_item", "2")
        time.sleep(1.2)
        records = [{"timestamp": time.time(), "level": "info", "body": f"line {i}"} for i in range(2)]
        payload = json.dumps({"items": records})
        item = json.dumps({"type": "log", "item_count": 2, "length": len(payload)})
        envelope = f'{{}}\n{item}\n{payload}\n{{"type":"event"}}\n{{"message":"kept"}}\n'.encode()
        parts = urlsplit(splat.base_url)
        project = urlsplit(splat.dsn).path.strip("/")

        def post():
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                conn.request("POST", f"/api/{project}/envelope/?sentry_key={splat.key}&sentry_version=7", body=envelope)
                response = conn.getresponse()
                response.read()
                return response.status, response.getheader("x-sentry-rate-limits")
            finally:
                conn.close()

        assert post() == (200, None), "the first two records of the minute are within the quota"
        status, limits = post()
        assert status == 200 and limits.split(":")[1:3] == ["log_item", "key"], limits
        splat.wait_for("SELECT 1 FROM events", count=2)
        assert splat.scalar("SELECT count(*) FROM logs") == 2, "the second item was dropped, its event kept"

        cli("project", "limit", "default", "log_byte", "10")
        time.sleep(1.2)
        otlp = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "over"}}]}]}]}
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("POST", f"/api/{project}/integration/otlp/v1/logs", body=json.dumps(otlp),
                     headers={"content-type": "application/json", "x-sentry-auth": f"sentry sentry_key={splat.key}"})
        response = conn.getresponse()
        response.read()
        conn.close()
        assert response.status == 429
        assert "log_byte:project" in response.getheader("x-sentry-rate-limits")
