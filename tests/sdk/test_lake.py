"""Splat's lake read by stock DuckDB (PyPI duckdb 1.5.5 with the ducklake and sqlite extensions), attached to
`splat.db` exactly as the README tells users: the same rows Splat stored, and no SQL literal anywhere."""

import pytest

from harness import run_client, start_splat


@pytest.fixture(scope="module")
def splat(tmp_path_factory):
    with start_splat(tmp_path_factory.mktemp("splat-lake")) as splat:
        python = run_client("python", splat.dsn, "error", "message", "transaction", "transaction")
        node = {s: run_client("node", splat.dsn, s) for s in ("error", "spans")}
        splat.wait_for("SELECT 1 FROM events", count=3)
        splat.wait_for("SELECT 1 FROM transactions", count=3)
        yield splat, python, node


def test_every_table_attaches_and_counts_match_the_database(splat):
    splat, _, _ = splat
    for table, oltp in [("events", "events"), ("transactions", "transactions")]:
        [lake] = splat.lake(f"SELECT count(*) AS n FROM lake.{table}")
        assert lake["n"] == splat.scalar(f"SELECT count(*) FROM {oltp}"), table
    # Python: 2 transactions of 10 spans; Node: its streamed spans (the database keeps those too).
    [spans] = splat.lake("SELECT count(*) AS n FROM lake.spans")
    assert spans["n"] == 20 + splat.scalar("SELECT count(*) FROM spans")


def test_events_carry_their_issue(splat):
    splat, python, _ = splat
    [row] = splat.lake("SELECT * FROM lake.events WHERE event_id = ?", python["ids"]["error"])
    [stored] = splat.query("SELECT issue_id, level, platform FROM events WHERE event_id = ?", python["ids"]["error"])
    assert (row["issue_id"], row["level"], row["platform"]) == (stored["issue_id"], "error", "python")
    assert row["exception_type"] == "ZeroDivisionError"


def test_filters_and_group_bys_use_the_file_statistics(splat):
    """Wrong column statistics make DuckDB prune files it needs or fold min/max to stale constants: these
    answers come out right only if every catalog statistic is."""
    splat, _, node = splat
    rows = splat.lake(
        "SELECT source, count(*) AS n, min(timestamp) AS first, max(duration_ms) AS slowest "
        "FROM lake.transactions GROUP BY source ORDER BY source"
    )
    assert [(r["source"], r["n"]) for r in rows] == [("span", 1), ("transaction", 2)]
    [segment] = splat.lake("SELECT * FROM lake.transactions WHERE source = 'span'")
    # Ids are typed: the trace id a UUID, the span id a UBIGINT of its 16 hex digits.
    assert (segment["trace_id"].hex, f"{segment['span_id']:016x}") == (node["spans"]["ids"]["trace_id"], node["spans"]["ids"]["span_id"])
    [bounds] = splat.lake("SELECT min(project_id) AS lo, max(project_id) AS hi FROM lake.spans")
    assert (bounds["lo"], bounds["hi"]) == (1, 1)
    assert splat.lake("SELECT count(*) AS n FROM lake.spans WHERE project_id = 2") == [{"n": 0}]


def test_no_sql_literal_reaches_the_lake(splat):
    splat, _, _ = splat
    # The e-mail literal cannot appear by chance anywhere in a row; the order ids (1001–1006) could, inside
    # a random hex id, so they are looked for where the queries went: the descriptions.
    for table in ("events", "transactions", "spans"):
        [hits] = splat.lake(f"SELECT count(*) AS n FROM lake.{table} t WHERE CAST(t AS VARCHAR) LIKE '%bob@example.com%'")
        assert hits["n"] == 0, table
    [numbers] = splat.lake("SELECT count(*) AS n FROM lake.spans WHERE regexp_matches(description, '100[1-6]')")
    assert numbers["n"] == 0
    patterns = {r["description"] for r in splat.lake("SELECT DISTINCT description FROM lake.spans WHERE op = 'db'")}
    assert "SELECT * FROM users WHERE id = %s AND email = %s" in patterns
    assert "SELECT * FROM order_items WHERE order_id = %s" in patterns


def test_time_travel_sees_each_batch_as_a_snapshot(splat):
    splat, _, _ = splat
    snapshots = splat.lake("SELECT snapshot_id, changes FROM lake.snapshots() ORDER BY snapshot_id")
    assert snapshots[0]["snapshot_id"] == 0 and len(snapshots) >= 3
    [before] = splat.lake("SELECT count(*) AS n FROM lake.transactions AT (VERSION => 1)")
    assert before["n"] == 0


def test_stock_duckdb_and_the_performance_page_agree_on_percentiles(tmp_path):
    """The page reads hourly rollups (latency sketches, ~1% relative error); DuckDB reads every row of the
    lake. Over 1,000 transactions of a skewed latency distribution they agree on the count exactly and on
    p95 within the sketch's 1%."""
    import http.client
    import json
    import math
    import random
    import re
    import time
    import urllib.request
    from urllib.parse import quote, urlsplit

    rng = random.Random(7)
    durations = [rng.lognormvariate(math.log(120), 0.8) for _ in range(1000)]
    with start_splat(tmp_path) as splat:
        parts = urlsplit(splat.dsn)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        now = time.time() - 600
        for i, ms in enumerate(durations):
            trace, span = f"{i:032x}", f"{i:016x}"
            tx = json.dumps({
                "type": "transaction", "transaction": "GET /orders", "start_timestamp": now + i * 0.1,
                "timestamp": now + i * 0.1 + ms / 1000, "environment": "production",
                "contexts": {"trace": {"trace_id": trace, "span_id": span, "op": "http.server"}},
            })
            body = f'{{"event_id":"{i:032x}"}}\n{{"type":"transaction","length":{len(tx)}}}\n{tx}\n'
            conn.request("POST", f"{parts.path.rstrip('/').replace('/', '/api/', 1)}/envelope/?sentry_key={splat.key}", body)
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()
        splat.wait_for("SELECT 1 FROM transactions", count=len(durations))

        page = urllib.request.urlopen(
            f"{splat.base_url}/projects/default/performance/endpoint?name={quote('GET /orders')}&range=24h", timeout=10
        ).read().decode()
        page_p95 = float(re.search(r'data-p95-ms="([0-9.]+)"', page).group(1))
        [lake] = splat.lake(
            "SELECT count(*) AS n, list(duration_ms ORDER BY duration_ms) AS ms FROM lake.transactions WHERE name = 'GET /orders'"
        )
        assert lake["n"] == len(durations)
        # Nearest rank, the definition the sketch estimates.
        exact = lake["ms"][math.ceil(0.95 * lake["n"]) - 1]
        assert abs(page_p95 - exact) <= 0.01 * exact, (page_p95, exact)
