"""The Node SDK (@sentry/node 11) against `splat serve`: an Error, a streamed span tree (span v2 items, not a
transaction) and an event over 32 KiB, which the SDK gzips. Auth rides in the query string, bodies are
chunked and carry no Content-Type: all of that must pass ingest."""

import json

import pytest

from harness import payload, run_client, start_splat

RELEASE, ENVIRONMENT = "splat-sdk-tests@1.0.0", "sdk-test"
NODE = ("sentry.javascript.node", "11.12.0")


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """One server, one client run per scenario; tests read what it stored."""
    with start_splat(tmp_path_factory.mktemp("splat-node")) as splat:
        reports = {s: run_client("node", splat.dsn, s) for s in ("error", "spans", "large")}
        yield splat, reports


def test_every_request_was_accepted(sent):
    _, reports = sent
    requests = [r for report in reports.values() for r in report["requests"]]
    assert len(requests) >= 3  # error, spans, large; plus the process sessions the SDK reports
    assert {r["status"] for r in requests} == {200}
    assert all("sentry_key=" in r["path"] for r in requests)


def test_error(sent):
    splat, reports = sent
    [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", reports["error"]["ids"]["event_id"])
    assert (row["title"], row["exception_type"], row["exception_value"]) == ("Error: node sdk boom", "Error", "node sdk boom")
    assert (row["level"], row["platform"]) == ("error", "node")
    assert (row["release"], row["environment"]) == (RELEASE, ENVIRONMENT)
    assert (row["sdk_name"], row["sdk_version"]) == NODE


def test_large_gzipped_event(sent):
    splat, reports = sent
    report = reports["large"]
    # Only bodies over 32 KiB are compressed by the SDK: make sure this one really was.
    assert any(r["headers"].get("content-encoding") == "gzip" for r in report["requests"])
    [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", report["ids"]["event_id"])
    assert (row["title"], row["sdk_name"]) == ("Error: node sdk large", NODE[0])
    rows = payload(row)["extra"]["rows"]
    assert len(rows) == 500 and rows[-1] == "row 499 ".ljust(100, "x")


def test_streamed_segment_is_a_transaction(sent):
    splat, reports = sent
    ids = reports["spans"]["ids"]
    [row] = splat.wait_for("SELECT * FROM transactions WHERE trace_id = ? AND span_id = ?", ids["trace_id"], ids["span_id"])
    assert (row["name"], row["op"], row["source"], row["status"]) == ("sdk-test/node-checkout", "task", "span", "ok")
    assert (row["release"], row["environment"], row["sdk_name"]) == (RELEASE, ENVIRONMENT, NODE[0])
    assert row["duration_us"] >= 6 * 1_000  # six children of ~2 ms each
    assert row["duration_us"] == row["end_time"] - row["start_time"]


def test_streamed_span_tree(sent):
    splat, reports = sent
    ids = reports["spans"]["ids"]
    spans = splat.wait_for("SELECT * FROM spans WHERE trace_id = ?", ids["trace_id"], count=8)
    assert len(spans) == 8
    [root] = [s for s in spans if s["is_segment"]]
    assert (root["span_id"], root["parent_span_id"], root["op"]) == (ids["span_id"], None, "task")
    children = sorted((s for s in spans if not s["is_segment"]), key=lambda s: s["start_time"])
    # Stored normalized, as Relay does: the SDK's `$1` placeholder becomes `%s` like every literal.
    assert [(c["op"], c["name"]) for c in children] == [("db", "SELECT id FROM users WHERE team_id = %s")] + [
        ("db", "SELECT * FROM orders WHERE user_id = %s")
    ] * 6
    assert all(c["parent_span_id"] == c["segment_id"] == root["span_id"] for c in children)
    assert all(c["end_time"] > c["start_time"] for c in children)


def test_streamed_transaction_figures_find_its_n_plus_one(sent):
    """The figures of a streamed transaction count its children as a classic one's do, and Sentry's N+1
    rule finds the loop in them."""
    splat, reports = sent
    ids = reports["spans"]["ids"]
    [tx] = splat.wait_for("SELECT * FROM transactions WHERE trace_id = ?", ids["trace_id"])
    assert (tx["query_count"], tx["span_count"], tx["has_n_plus_one"]) == (7, 8, 1)
    assert 60 <= tx["db_time_ms"] and tx["db_time_ms"] * 1000 <= tx["duration_us"]
    [pattern] = [p for p in json.loads(tx["query_patterns"]) if p["n_plus_one"]]
    assert (pattern["pattern"], pattern["count"]) == ("SELECT * FROM orders WHERE user_id = %s", 6)


def test_every_reported_id_stored_exactly_once(sent):
    splat, reports = sent
    event_ids = [reports["error"]["ids"]["event_id"], reports["large"]["ids"]["event_id"]]
    splat.wait_for("SELECT 1 FROM events WHERE event_id IN (?, ?)", *event_ids, count=2)
    splat.wait_for("SELECT 1 FROM transactions WHERE trace_id = ?", reports["spans"]["ids"]["trace_id"])
    assert sorted(r["event_id"] for r in splat.query("SELECT event_id FROM events")) == sorted(event_ids)
    assert splat.scalar("SELECT count(*) FROM transactions") == 1
