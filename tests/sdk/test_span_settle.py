"""Streamed spans wait in the database only until their segment settles (SPLAT_SPAN_SETTLE_SECS): the real
Node SDK's span tree, then a second one whose batch sweeps the first; the first transaction keeps its figures,
and its page and the MCP tools still show its spans, from the lake."""

import asyncio
import json
import urllib.request

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from harness import run_client, start_splat

TOKEN = "mcp-settle-token-51c0"


def mcp_spans(splat, trace_id):
    async def go():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            async with streamable_http_client(f"{splat.base_url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await session.call_tool("get_transaction_spans", {"trace_id": trace_id})

    return asyncio.run(go())


def test_settled_spans_leave_the_database_and_pages_still_show_them(tmp_path):
    # No settle time: a segment settles as soon as a later batch comes.
    env = {"SPLAT_SPAN_SETTLE_SECS": "0", "MCP_AUTH_TOKEN": TOKEN}
    with start_splat(tmp_path, env) as splat:
        first = run_client("node", splat.dsn, "spans")["ids"]
        splat.wait_for("SELECT 1 FROM spans WHERE trace_id = ?", first["trace_id"], count=8)
        second = run_client("node", splat.dsn, "spans")["ids"]
        splat.wait_for("SELECT 1 FROM transactions WHERE trace_id = ?", second["trace_id"])

        # The second tree's batch swept the first (settled) one; the second waits for the next batch.
        assert splat.scalar("SELECT count(*) FROM spans WHERE trace_id = ?", first["trace_id"]) == 0
        assert splat.scalar("SELECT count(*) FROM spans WHERE trace_id = ?", second["trace_id"]) == 8
        [tx] = splat.query("SELECT * FROM transactions WHERE trace_id = ?", first["trace_id"])
        assert (tx["query_count"], tx["span_count"], tx["has_n_plus_one"]) == (7, 8, 1)

        # The transaction page reads its spans from the lake, as before.
        url = f"{splat.base_url}/projects/default/transactions/{tx['id']}.json"
        page = json.loads(urllib.request.urlopen(url, timeout=10).read())
        assert len(page["spans"]) == 8
        assert sum("SELECT * FROM orders" in (s.get("description") or "") for s in page["spans"]) == 6

        # So do the MCP tools.
        spans = mcp_spans(splat, first["trace_id"])
        assert not spans.is_error, spans
        assert spans.structured_content["total_spans"] == 8
        assert [r["count"] for r in spans.structured_content["repeated"]] == [6]

        # And the lake holds both trees once each.
        rows = splat.lake("SELECT count(*) AS n FROM lake.spans")
        assert rows == [{"n": 16}]
