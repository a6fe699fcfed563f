"""MCP on an instance with two projects, through the official MCP Python SDK client: without `project`,
every list and search tool covers every project and names each item's project; with it, only that one;
the figure tools answer for each project in turn (see test_mcp_figures_across.py)."""

import subprocess
from urllib.parse import urlsplit

import pytest

from harness import SPLAT_BIN, run_client, start_splat
from test_mcp import TOKEN, session_run, text


def create_project(splat, slug):
    """Creates project `slug` with the CLI while `splat serve` runs; returns its DSN."""
    created = subprocess.run([SPLAT_BIN, "project", "create", slug, "--data-dir", str(splat.db_path.parent)],
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    printed = urlsplit(next(line for line in created.stdout.splitlines() if "://" in line).split()[-1])
    # The CLI does not know the port `splat serve` chose: the key and project are what it printed.
    served = urlsplit(splat.dsn)
    return f"{served.scheme}://{printed.username}@{served.netloc.split('@')[-1]}{printed.path}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`default` gets a Python SDK error, `web` (created with the CLI while serving) a Python SDK message."""
    with start_splat(tmp_path_factory.mktemp("splat-mcp-projects"), {"MCP_AUTH_TOKEN": TOKEN}) as splat:
        web_dsn = create_project(splat, "web")
        run_client("python", splat.dsn, "error")
        run_client("python", web_dsn, "message")
        splat.wait_for("SELECT DISTINCT project_id FROM events", count=2)
        yield splat


def slugs(items):
    return sorted({i["project"] for i in items})


def test_lists_and_searches_cover_every_project_unless_one_is_named(server):
    async def body(session):
        call = session.call_tool
        return {
            "recent": await call("list_recent_issues", {}),
            "search": await call("search_issues", {"query": "is:unresolved"}),
            "search_web": await call("search_issues", {"query": "is:unresolved", "project": "web"}),
            "syntax": await call("search_issues", {"query": "level:error !level:info"}),
            "releases": await call("list_releases", {}),
            "monitors": await call("list_monitors", {}),
            "stats": await call("get_transaction_stats", {}),
        }

    _, out = session_run(server, body)
    for name in ["recent", "search", "releases", "monitors"]:
        assert not out[name].is_error, text(out[name])
        assert [p["slug"] for p in out[name].structured_content["projects"]] == ["default", "web"], name
    for name in ["recent", "search"]:
        answer = out[name].structured_content
        assert slugs(answer["issues"]) == ["default", "web"], answer
        assert answer["total"] == 2
        md = text(out[name])
        assert "all projects (default, web)" in md and "Project: default" in md and "Project: web" in md, md

    web = out["search_web"].structured_content
    assert [p["slug"] for p in web["projects"]] == ["web"]
    assert slugs(web["issues"]) == ["web"] and web["total"] == 1
    assert web["issues"][0]["title"] == "splat sdk test message"

    errors = out["syntax"].structured_content["issues"]
    assert [(i["project"], i["exception_type"]) for i in errors] == [("default", "ZeroDivisionError")]

    releases = out["releases"].structured_content["releases"]
    assert slugs(releases) == ["default", "web"], releases
    assert out["monitors"].structured_content["monitors"] == []

    # No transactions anywhere: each project says so, in turn.
    assert not out["stats"].is_error, text(out["stats"])
    stats = out["stats"].structured_content
    assert [stats["project"]["slug"]] + [o["project"]["slug"] for o in stats["other_projects"]] == ["default", "web"]
