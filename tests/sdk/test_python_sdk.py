"""The Python SDK (sentry-sdk) against `splat serve`: an exception, a message and a transaction with a span
tree, once with gzip and once with brotli bodies. The SDK runs as a subprocess (its state is global)."""

import pytest

from harness import payload, run_client, start_splat

RELEASE, ENVIRONMENT = "splat-sdk-tests@1.0.0", "sdk-test"


@pytest.fixture(scope="module", params=["gzip", "br"])
def sent(request, tmp_path_factory):
    """One server per compression, one client run sending all three; tests read what it stored."""
    with start_splat(tmp_path_factory.mktemp(f"splat-{request.param}")) as splat:
        report = run_client("python", splat.dsn, "error", "message", "transaction", "--compression", request.param)
        yield splat, report, request.param


def test_every_request_used_the_encoding_and_was_accepted(sent):
    _, report, compression = sent
    # The SDK option alone proves nothing: the client checks each body really decodes with that codec.
    assert report["requests"] == [{"encoding": compression, "decodes": True, "status": 200}] * 3


def test_exception(sent):
    splat, report, _ = sent
    [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", report["ids"]["error"])
    assert row["title"] == "ZeroDivisionError: division by zero"
    assert (row["exception_type"], row["exception_value"]) == ("ZeroDivisionError", "division by zero")
    assert (row["level"], row["platform"]) == ("error", "python")
    assert (row["release"], row["environment"]) == (RELEASE, ENVIRONMENT)
    assert (row["sdk_name"], row["sdk_version"]) == ("sentry.python", "2.75.0")
    frames = payload(row)["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "send_error"


def test_message(sent):
    splat, report, _ = sent
    [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", report["ids"]["message"])
    assert (row["title"], row["message"], row["level"]) == ("splat sdk test message",) * 2 + ("warning",)
    assert row["exception_type"] is None
    assert (row["release"], row["environment"], row["sdk_name"]) == (RELEASE, ENVIRONMENT, "sentry.python")


def test_transaction(sent):
    splat, report, _ = sent
    tx = report["ids"]["transaction"]
    [row] = splat.wait_for("SELECT * FROM transactions WHERE event_id = ?", tx["event_id"])
    assert (row["trace_id"], row["span_id"], row["source"]) == (tx["trace_id"], tx["span_id"], "transaction")
    assert (row["name"], row["op"]) == ("sdk-test/checkout", "task")
    assert (row["release"], row["environment"], row["sdk_name"]) == (RELEASE, ENVIRONMENT, "sentry.python")
    # The client sleeps inside the spans, so ~10 ms at least.
    assert row["duration_us"] >= 5_000
    assert row["duration_us"] == row["end_time"] - row["start_time"]


def test_span_tree(sent):
    """The spans live in the lake only: read them the way a user would, with stock DuckDB."""
    splat, report, _ = sent
    tx = report["ids"]["transaction"]
    splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", tx["event_id"])
    # Span ids are UBIGINTs: shown as Sentry shows them, 16 hex digits.
    spans = splat.lake(
        "SELECT * REPLACE (printf('%016x', span_id) AS span_id, printf('%016x', transaction_id) AS transaction_id, "
        "printf('%016x', parent_span_id) AS parent_span_id) FROM lake.spans WHERE trace_id = ? ORDER BY sequence",
        tx["trace_id"],
    )
    assert len(spans) == 10  # the root, the users query, load_orders, the orders query, 6 items queries
    root, children = spans[0], spans[1:]
    assert (root["span_id"], root["op"], root["depth"], root["sequence"]) == (tx["span_id"], "task", 0, 0)
    assert all(s["transaction_id"] == tx["span_id"] and s["duration_ms"] > 0 for s in spans)
    assert [s["sequence"] for s in spans] == list(range(10))
    [loader] = [s for s in children if s["op"] == "function"]
    assert (loader["description"], loader["parent_span_id"], loader["depth"]) == ("load_orders", tx["span_id"], 1)
    # Nesting is checked by ids, not times: the SDK stamps a start from the wall clock and its end from a
    # monotonic delta, so a child can end some µs after its parent in what it sends.
    under = [s for s in children if s["parent_span_id"] == loader["span_id"]]
    assert [(s["op"], s["depth"]) for s in under] == [("db", 2)] * 7
    assert [s["description"] for s in under] == (
        ["SELECT id FROM orders WHERE user_id = %s"] + ["SELECT * FROM order_items WHERE order_id = %s"] * 6
    )


def test_every_reported_id_stored_exactly_once(sent):
    splat, report, _ = sent
    ids = report["ids"]
    splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", ids["transaction"]["event_id"])
    splat.wait_for("SELECT 1 FROM events WHERE event_id IN (?, ?)", ids["error"], ids["message"], count=2)
    events = splat.query("SELECT event_id FROM events")
    assert sorted(r["event_id"] for r in events) == sorted([ids["error"], ids["message"]])
    assert [r["event_id"] for r in splat.query("SELECT event_id FROM transactions")] == [ids["transaction"]["event_id"]]


def test_transaction_figures(sent):
    """What the processor derives from the span tree: the N+1 under load_orders, query count, db time."""
    splat, report, _ = sent
    tx = report["ids"]["transaction"]
    splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", tx["event_id"])
    [row] = splat.lake("SELECT * FROM lake.transactions WHERE trace_id = ?", tx["trace_id"])
    assert (row["name"], row["source"], row["span_count"], row["spans_truncated"]) == ("sdk-test/checkout", "transaction", 10, False)
    assert (row["query_count"], row["has_n_plus_one"]) == (8, True)
    # Six 10 ms repeats: batching would save the five after the first.
    assert row["n_plus_one_wasted_ms"] >= 50
    assert row["db_time_ms"] >= 60
