"""The MCP figure tools (performance and logs) on an instance with two projects, through the official MCP
Python SDK client: without `project` each answers for every project in turn, naming each, in its text and
in `other_projects` (the answer validated against the tool's output schema); a project the tool has no
answer for says why; with `project`, only that one."""

import sys

import pytest

from harness import run_client, start_splat
from test_logs import SDK_DIR, run
from test_mcp import TOKEN, session_run, text
from test_mcp_projects import create_project

CHECKOUT = "sdk-test/checkout"  # the N+1 transaction python_client.py sends
LOGGED = "sdk-test/logs"  # the transaction python_logs_client.py sends


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`default` and `shop` each get the logs client's transaction and log lines; `shop` also the
    Python SDK's N+1 transaction."""
    with start_splat(tmp_path_factory.mktemp("splat-mcp-figures"), {"MCP_AUTH_TOKEN": TOKEN}) as splat:
        shop_dsn = create_project(splat, "shop")
        for dsn in [splat.dsn, shop_dsn]:
            run([sys.executable, str(SDK_DIR / "python_logs_client.py"), dsn])
        run_client("python", shop_dsn, "transaction")
        splat.wait_for("SELECT 1 FROM logs", count=8)
        splat.wait_for("SELECT 1 FROM transactions", count=3)
        yield splat


def call_all(server, calls):
    """Each `(tool, arguments)` called in one session. The client checks every structured answer against
    the tool's output schema (from `tools/list`) and raises if it does not hold."""

    async def body(session):
        await session.list_tools()
        return [await session.call_tool(name, args) for name, args in calls]

    _, results = session_run(server, body)
    return results


def per_project(answer):
    """Each project's answer, by slug: the first at the top level, the others in `other_projects`."""
    return {a["project"]["slug"]: a for a in [answer] + answer["other_projects"]}


def test_figures_and_logs_cover_every_project_unless_one_is_named(server):
    stats, named, logs, n_plus_one = call_all(server, [
        ("get_transaction_stats", {}),
        ("get_transaction_stats", {"project": "shop"}),
        ("search_logs", {}),
        ("find_n_plus_one_endpoints", {}),
    ])
    for result in [stats, named, logs, n_plus_one]:
        assert not result.is_error, text(result)

    answers = per_project(stats.structured_content)
    assert {slug: a["totals"]["count"] for slug, a in answers.items()} == {"default": 1, "shop": 2}
    assert stats.structured_content["unanswered"] == [] and stats.structured_content["projects_not_searched"] == []
    md = text(stats)
    assert "## Transaction stats — default" in md and "## Transaction stats — shop" in md, md

    assert per_project(named.structured_content).keys() == {"shop"}
    assert "default" not in text(named)

    by_project = per_project(logs.structured_content)
    assert by_project.keys() == {"default", "shop"}
    for answer in by_project.values():
        assert {line["body"] for line in answer["logs"]} >= {"Stock low for A-17", "Order 17 failed"}
    assert "## Logs of default" in text(logs) and "## Logs of shop" in text(logs)

    worklists = per_project(n_plus_one.structured_content)
    assert [e["name"] for e in worklists["shop"]["endpoints"]] == [CHECKOUT], worklists["shop"]
    assert worklists["default"]["endpoints"] == []


def test_an_endpoint_one_project_has_is_answered_there_and_the_other_says_why(server):
    summary, nowhere = call_all(server, [
        ("get_endpoint_summary", {"endpoint": CHECKOUT}),
        ("get_endpoint_summary", {"endpoint": "GET /nowhere"}),
    ])
    assert not summary.is_error, text(summary)
    answer = summary.structured_content
    assert answer["project"]["slug"] == "shop" and answer["endpoint"] == CHECKOUT
    assert answer["other_projects"] == []
    assert [u["project"] for u in answer["unanswered"]] == ["default"]
    assert "no transactions for endpoint" in answer["unanswered"][0]["reason"]
    assert "No answer for:" in text(summary) and "`default`" in text(summary)

    assert nowhere.is_error
    assert "default: no transactions" in text(nowhere) and "shop: no transactions" in text(nowhere)
