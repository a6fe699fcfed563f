"""Retention against a running `splat serve`: `splat retention run` keeps the database and the lake within
their horizons, and stock DuckDB reading the lake afterwards sees exactly the rows within them (and, by
time travel, the rows before the run); `splat serve` runs retention by itself on its timer."""

import json
import os
import subprocess
import time
import urllib.request
import uuid
from urllib.parse import urlsplit

from harness import SPLAT_BIN, start_splat

DAY = 86_400
HORIZONS = {
    "SPLAT_MAX_EVENT_LIFE_DAYS": "30",
    "SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS": "30",
    "SPLAT_MAX_FILE_LIFE_DAYS": "30",
    "SPLAT_MAX_SPAN_LIFE_DAYS": "30",
}


def post(splat, item_type, body):
    """One item in an envelope, with the DSN's key, as an SDK posts it."""
    payload = json.dumps(body).encode()
    envelope = (
        json.dumps({"event_id": body["event_id"]}).encode()
        + b"\n"
        + json.dumps({"type": item_type, "length": len(payload)}).encode()
        + b"\n"
        + payload
        + b"\n"
    )
    request = urllib.request.Request(
        f"{splat.base_url}/api/{urlsplit(splat.dsn).path.strip('/')}/envelope/?sentry_key={splat.key}&sentry_version=7", data=envelope, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def error_at(ts, kind="KeyError"):
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": ts,
        "platform": "python",
        "level": "error",
        "exception": {"values": [{"type": kind, "value": "'sku'"}]},
    }


def transaction_at(ts):
    trace, root = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    spans = [
        {"span_id": uuid.uuid4().hex[:16], "parent_span_id": root, "trace_id": trace, "op": "db",
         "description": f"SELECT * FROM t WHERE id = {i}", "start_timestamp": ts + i * 0.01, "timestamp": ts + i * 0.01 + 0.005}
        for i in range(3)
    ]
    return {
        "event_id": uuid.uuid4().hex, "type": "transaction", "transaction": "GET /old", "start_timestamp": ts,
        "timestamp": ts + 0.1, "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}},
        "spans": spans,
    }


def test_retention_run_leaves_a_lake_stock_duckdb_reads(tmp_path):
    now = time.time()
    # Noon of each day, so that a day's events stay on that day.
    old, recent = (int(now // DAY) - 40) * DAY + DAY / 2, (int(now // DAY) - 2) * DAY + DAY / 2
    with start_splat(tmp_path, {"SPLAT_RETENTION_FIRST_RUN_SECS": "3600"}) as splat:
        for i in range(3):
            post(splat, "event", error_at(old + i))
        post(splat, "transaction", transaction_at(old + 10))
        post(splat, "event", error_at(recent))
        post(splat, "transaction", transaction_at(recent + 10))
        splat.wait_for("SELECT 1 FROM events", count=4)
        splat.wait_for("SELECT 1 FROM transactions", count=2)
        # A second batch for the recent day: two files for that day, which retention compacts.
        post(splat, "event", error_at(recent + 60, "ValueError"))
        splat.wait_for("SELECT 1 FROM events", count=5)
        [before] = splat.lake("SELECT max(snapshot_id) AS id FROM lake.snapshots()")

        run = subprocess.run(
            [SPLAT_BIN, "retention", "run", "--data-dir", str(tmp_path / "data")],
            env={**os.environ, **HORIZONS}, capture_output=True, text=True, timeout=60, check=True,
        )
        report = json.loads(run.stdout)
        assert report["database"]["events_deleted"] == 3
        assert report["database"]["transactions_deleted"] == 1
        assert report["database"]["issues_deleted"] == 0, "the KeyError issue still has its recent event"
        # The old day's events (in one file per batch they came in), transactions and spans.
        assert report["lake"]["files_ended"] >= 3
        assert report["lake"]["files_compacted"] == 2 and report["lake"]["files_compacted_into"] == 1

        # The database and stock DuckDB agree on what is left, and nothing is older than the horizon.
        assert splat.scalar("SELECT count(*) FROM events") == 2
        [events] = splat.lake("SELECT count(*) AS n, min(timestamp) AS oldest FROM lake.events")
        assert events["n"] == 2
        assert events["oldest"].timestamp() > now - 30 * DAY - 3600
        assert splat.lake("SELECT count(*) AS n FROM lake.transactions") == [{"n": 1}]
        assert splat.lake("SELECT count(*) AS n FROM lake.spans") == [{"n": 4}], "the recent root and its 3 spans"
        [files] = splat.lake("SELECT count(*) AS n FROM ducklake_list_files('lake', 'events')")
        assert files["n"] == 1, "the recent day's two events files became one"
        # Time travel to before the run still sees every row: the old files end, they are not rewritten.
        assert splat.lake(f"SELECT count(*) AS n FROM lake.events AT (VERSION => {before['id']})") == [{"n": 5}]
        [stats] = splat.query("SELECT record_count FROM ducklake_table_stats WHERE table_id = 3")
        assert stats["record_count"] == 5, "record_count is never lowered"
        assert splat.scalar("SELECT count(*) FROM retention_runs") == 1


def test_serve_runs_retention_on_its_timer(tmp_path):
    # Sent while the horizon is the default 90 days, the 40-day-old event keeps its date (sent under a
    # 30-day horizon, the processor would take its timestamp for a wrong clock and store it as received)...
    with start_splat(tmp_path, {"SPLAT_RETENTION_FIRST_RUN_SECS": "3600"}) as splat:
        post(splat, "event", error_at(time.time() - 40 * DAY))
        post(splat, "event", error_at(time.time(), "ValueError"))
        splat.wait_for("SELECT 1 FROM events", count=2)
    # ...then the operator lowers the horizons and restarts: the timer's first run removes it.
    env = {**HORIZONS, "SPLAT_RETENTION_FIRST_RUN_SECS": "4"}
    with start_splat(tmp_path, env, log_name="splat-restarted.log") as splat:
        [run] = splat.wait_for("SELECT report FROM retention_runs")
        assert json.loads(run["report"])["database"]["events_deleted"] == 1
        assert splat.scalar("SELECT count(*) FROM events") == 1
        assert splat.scalar("SELECT count(*) FROM issues") == 1, "the old event's issue went with it"
