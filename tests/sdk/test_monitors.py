"""Cron monitors end to end: the real Python SDK (`@monitor` with a monitor_config, `capture_checkin`) and
curl-style requests to the HTTP check-in endpoint against `splat serve`, which evaluates its monitors every
second here (`SPLAT_MONITOR_EVALUATE_SECS=1`): the monitors, their runs, the issue a failed run opens, the
monitors page and the MCP `list_monitors` tool."""

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from harness import start_splat

CLIENT = Path(__file__).parent / "python_monitor_client.py"
TOKEN = "monitor-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"SPLAT_MONITOR_EVALUATE_SECS": "1", "MCP_AUTH_TOKEN": TOKEN}
    with start_splat(tmp_path_factory.mktemp("splat-monitors"), env) as splat:
        done = subprocess.run([sys.executable, str(CLIENT), splat.dsn], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        yield splat, json.loads(done.stdout.strip().splitlines()[-1])


def request(splat, path, method="GET", body=None):
    """(status, JSON body or text, X-Sentry-Error) of a plain HTTP request, as curl would send it."""
    req = urllib.request.Request(f"{splat.base_url}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, raw, reason = r.status, r.read(), None
    except urllib.error.HTTPError as e:
        status, raw, reason = e.code, e.read(), e.headers.get("x-sentry-error")
    try:
        return status, json.loads(raw), reason
    except ValueError:
        return status, raw.decode(), reason


def test_sdk_check_ins_create_and_configure_monitors(server):
    splat, report = server
    # in_progress + ok, in_progress + error, in_progress + ok: six envelopes, all accepted.
    assert report["requests"] == [200] * 6
    monitors = {m["slug"]: m for m in splat.wait_for("SELECT * FROM monitors ORDER BY slug", count=3)}
    nightly = monitors["nightly-backup"]
    assert (nightly["schedule_type"], nightly["schedule_value"], nightly["timezone"]) == ("crontab", "0 3 * * *", "Europe/Berlin")
    assert (nightly["checkin_margin"], nightly["max_runtime"], nightly["environment"]) == (5, 30, "production")
    assert nightly["next_expected_at"] > nightly["last_checkin_at"]
    sync = monitors["sync-invoices"]
    assert (sync["schedule_type"], sync["schedule_value"], sync["schedule_unit"], sync["checkin_margin"]) == ("interval", "10", "minute", 2)
    # The next slot is ten minutes after the run started.
    assert sync["next_expected_at"] - sync["last_checkin_at"] == 600_000_000
    assert monitors["manual-report"]["schedule_type"] is None

    def run(slug, status):
        [row] = splat.wait_for(
            "SELECT c.* FROM monitor_checkins c JOIN monitors m ON m.id = c.monitor_id WHERE m.slug = ? AND c.status = ?",
            slug, status)
        return row

    # The decorator's two check-ins are one run, closed with the time the job took.
    assert run("nightly-backup", "ok")["duration_ms"] >= 50
    assert run("sync-invoices", "error")["finished_at"] is not None
    manual = run("manual-report", "ok")
    assert (manual["check_in_id"], manual["duration_ms"]) == (report["manual"].replace("-", ""), 2500.0)
    assert splat.scalar("SELECT count(*) FROM monitor_checkins") == 3


def test_a_failed_run_opens_an_issue(server):
    splat, _ = server
    [issue] = splat.wait_for("SELECT * FROM issues WHERE title = ?", "Monitor `sync-invoices` reported a failed run")
    assert (issue["status"], issue["times_seen"], issue["level"]) == ("open", 1, "error")
    tags = splat.query("SELECT key, value FROM issue_tags WHERE issue_id = ? AND key LIKE 'monitor.%'", issue["id"])
    assert {(t["key"], t["value"]) for t in tags} == {("monitor.slug", "sync-invoices"), ("monitor.incident", "failed")}
    # Only the failed job has an issue; the evaluation keeps running and does not repeat it.
    assert splat.scalar("SELECT count(*) FROM issues") == 1


def test_http_check_in_endpoint(server):
    splat, _ = server
    project = urlsplit(splat.dsn).path.strip("/")
    base = f"/api/{project}/cron/db-vacuum/{splat.key}/"
    status, body, _ = request(splat, base + "?status=in_progress&environment=staging")
    assert status == 202
    run_id = body["id"]
    config = json.dumps({"monitor_config": {"schedule": {"type": "interval", "value": 1, "unit": "day"}}}).encode()
    status, body, _ = request(splat, base + f"?status=ok&check_in_id={run_id}&duration=3", "POST", config)
    assert (status, body) == (202, {"id": run_id})
    [row] = splat.wait_for(
        "SELECT c.*, m.schedule_type, m.schedule_unit FROM monitor_checkins c JOIN monitors m ON m.id = c.monitor_id "
        "WHERE m.slug = 'db-vacuum' AND c.status = 'ok'")
    assert (row["check_in_id"], row["duration_ms"], row["environment"]) == (run_id, 3000.0, "staging")
    assert (row["schedule_type"], row["schedule_unit"]) == ("interval", "day")

    assert request(splat, base + "?status=finished")[0::2] == (400, "invalid check_in item: `status` is invalid: \"finished\" is not in_progress, ok or error")
    assert request(splat, f"/api/{project}/cron/db-vacuum/{'0' * 32}/?status=ok")[0] == 403
    status, _, reason = request(splat, base + "?status=ok", "POST", b"not json")
    assert status == 400 and "request body" in reason


def test_monitors_page_and_mcp(server):
    splat, _ = server
    splat.wait_for("SELECT 1 FROM issues")
    status, html, _ = request(splat, "/projects/default/monitors")
    assert status == 200
    assert 'data-monitor="sync-invoices" data-state="failed"' in html
    assert 'data-monitor="nightly-backup" data-state="ok"' in html
    assert "0 3 * * * (Europe/Berlin)" in html and "every 10 minutes" in html

    async def call():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with streamable_http_client(f"{splat.base_url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    listed = {t.name: t for t in (await session.list_tools()).tools}
                    return listed["list_monitors"], await session.call_tool("list_monitors", {"project": "default"})

    tool, result = asyncio.run(call())
    assert not result.is_error
    jsonschema.validate(result.structured_content, tool.output_schema, cls=jsonschema.Draft202012Validator)
    monitors = {m["slug"]: m for m in result.structured_content["monitors"]}
    assert monitors["sync-invoices"]["state"] == "failed"
    assert monitors["nightly-backup"]["schedule"] == {"type": "crontab", "value": "0 3 * * *", "unit": None, "timezone": "Europe/Berlin"}
    text = "\n".join(c.text for c in result.content if c.type == "text")
    assert "`sync-invoices` | failed" in text
