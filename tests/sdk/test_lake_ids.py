"""Lake ids as binary (migration 28) on a lake that already has files with ids as hex text: the data folder
of `tests/fixtures/lake-hex-ids` was written by a release before it (Python SDK: an error, two
transactions, logs beside a transaction and an error). This `splat serve` migrates it and adds rows of both
kinds; stock DuckDB (1.5.5 + ducklake) reads old and new rows together, as `UUID` and `UBIGINT` ids, and
joins them across tables; the transaction page reads old and new spans; then `splat retention run` rewrites
the old files with binary ids and drops the `_hex` columns they needed."""

import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import pytest

from harness import SPLAT_BIN, run_client, start_splat

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "lake-hex-ids"
SDK_DIR = Path(__file__).resolve().parent
# Nothing in the fixture may age out whenever the test runs: it is the old files' rewrite that is tested.
HORIZONS = {name: "36500" for name in (
    "SPLAT_MAX_EVENT_LIFE_DAYS", "SPLAT_MAX_PAYLOAD_LIFE_DAYS", "SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS",
    "SPLAT_MAX_FILE_LIFE_DAYS", "SPLAT_MAX_SPAN_LIFE_DAYS", "SPLAT_MAX_ROLLUP_LIFE_DAYS", "SPLAT_MAX_LOG_LIFE_DAYS",
)}
HEX_COLUMNS = {"transactions": ["span_id_hex"], "spans": ["transaction_id_hex", "span_id_hex", "parent_span_id_hex"],
               "logs": ["span_id_hex"], "events": []}

pytestmark = pytest.mark.skipif(
    os.environ.get("SPLAT_TEST_DATABASE") == "sqld", reason="the fixture is a local splat.db"
)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    work = tmp_path_factory.mktemp("splat-lake-ids")
    with tarfile.open(FIXTURE / "data.tar.gz") as tar:
        tar.extractall(work, filter="data")
    old = json.loads((FIXTURE / "ids.json").read_text())
    env = {**HORIZONS, "SPLAT_RETENTION_FIRST_RUN_SECS": "3600"}
    with start_splat(work, env) as splat:
        new = run_client("python", splat.dsn, "transaction")
        done = subprocess.run([sys.executable, str(SDK_DIR / "python_logs_client.py"), splat.dsn],
                              capture_output=True, text=True, timeout=60, check=True)
        new_logs = json.loads(done.stdout.strip().splitlines()[-1])
        splat.wait_for("SELECT 1 FROM transactions", count=5)
        splat.wait_for("SELECT 1 FROM logs", count=8)
        splat.wait_for("SELECT 1 FROM events", count=3)
        yield {"splat": splat, "work": work, "old": old, "new": new, "new_logs": new_logs}


def traces(lake):
    """(trace id, root span id, from before migration 28) of each Python-SDK transaction with spans."""
    old, new = lake["old"]["python"]["ids"]["transaction"], lake["new"]["ids"]["transaction"]
    return [(old["trace_id"], old["span_id"], True), (new["trace_id"], new["span_id"], False)]


def columns(splat, table):
    return [r["column_name"] for r in splat.lake(f"DESCRIBE lake.{table}")]


def counts(splat, table):
    """Rows, rows with a trace id and rows with a (binary) span id of a lake table."""
    spanned = "0" if table == "events" else "count(span_id)"
    [row] = splat.lake(f"SELECT count(*) AS n, count(trace_id) AS traced, {spanned} AS spanned FROM lake.{table}")
    return row


def page_spans(splat, trace_id):
    [row] = splat.query("SELECT id FROM transactions WHERE trace_id = ?", trace_id)
    url = f"{splat.base_url}/projects/default/transactions/{row['id']}.json"
    return json.loads(urllib.request.urlopen(url, timeout=10).read())["spans"]


def test_old_and_new_rows_read_together_with_typed_ids(lake):
    splat = lake["splat"]
    for table in ("events", "transactions", "logs"):
        [n] = splat.lake(f"SELECT count(*) AS n, count(trace_id) AS traced FROM lake.{table}")
        assert n["n"] == splat.scalar(f"SELECT count(*) FROM {table}"), table
    types = {r["column_name"]: r["column_type"] for r in splat.lake("DESCRIBE lake.spans")}
    assert (types["trace_id"], types["span_id"], types["parent_span_id"]) == ("UUID", "UBIGINT", "UBIGINT")
    assert "event_id" not in columns(splat, "transactions"), "the classic transaction's event id left the lake"
    for trace_id, span_id, before in traces(lake):
        # A trace id pasted from a Sentry URL filters as it is; a span id after `0x`.
        [row] = splat.lake(
            "SELECT span_id, span_id_hex, printf('%016x', span_id) AS shown FROM lake.transactions WHERE trace_id = ?",
            trace_id,
        )
        if before:
            assert (row["span_id"], row["span_id_hex"]) == (None, span_id), "old rows keep their text until rewritten"
        else:
            assert (row["span_id"], row["span_id_hex"], row["shown"]) == (int(span_id, 16), None, span_id)
            [found] = splat.lake(f"SELECT count(*) AS n FROM lake.spans WHERE span_id = '0x{span_id}'::UBIGINT")
            assert found["n"] == 1


def test_ids_join_across_tables_old_and_new(lake):
    splat = lake["splat"]
    for trace_id, _, _ in traces(lake):
        [joined] = splat.lake(
            "SELECT count(*) AS n FROM lake.transactions t JOIN lake.spans s ON s.trace_id = t.trace_id WHERE t.trace_id = ?",
            trace_id,
        )
        assert joined["n"] == 10, "the root and its 9 spans"
    for logs in (lake["old"]["logs"], lake["new_logs"]):
        [joined] = splat.lake(
            "SELECT count(DISTINCT l.log_id) AS logs, count(DISTINCT e.event_id) AS errors FROM lake.logs l "
            "JOIN lake.transactions t ON t.trace_id = l.trace_id JOIN lake.events e ON e.trace_id = t.trace_id "
            "WHERE t.trace_id = ?",
            logs["trace_id"],
        )
        assert joined["logs"] == splat.scalar("SELECT count(*) FROM logs WHERE trace_id = ?", logs["trace_id"]) > 0
        assert joined["errors"] == 1


def test_the_transaction_page_reads_old_and_new_spans(lake):
    splat = lake["splat"]
    for trace_id, span_id, _ in traces(lake):
        spans = page_spans(splat, trace_id)
        assert len(spans) == 10
        assert spans[0]["span_id"] == span_id
        assert all(s["parent_span_id"] is None or len(s["parent_span_id"]) == 16 for s in spans)


def test_retention_rewrites_the_old_files_and_drops_the_text_columns(lake):
    splat = lake["splat"]
    [before] = splat.lake("SELECT max(snapshot_id) AS id FROM lake.snapshots()")
    old_pages = {t: page_spans(splat, t) for t, _, _ in traces(lake)}
    rows = {t: counts(splat, t) for t in HEX_COLUMNS}
    run = subprocess.run(
        [SPLAT_BIN, "retention", "run", "--data-dir", str(lake["work"] / "data")],
        env={**os.environ, **HORIZONS}, capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(run.stdout)["lake"]
    assert report["columns_retired"] == 5, report
    assert report["files_ended"] == 0
    for table, hex_columns in HEX_COLUMNS.items():
        assert not set(hex_columns) & set(columns(splat, table)), table
        after = counts(splat, table)
        assert after["n"] == after["traced"] == rows[table]["n"], table
        # Span ids in every row that has one (logs outside a transaction have none; events none at all).
        if table != "events":
            spanned = splat.scalar("SELECT count(span_id) FROM logs") if table == "logs" else after["n"]
            assert after["spanned"] == spanned > rows[table]["spanned"], table
    for trace_id, span_id, _ in traces(lake):
        [row] = splat.lake("SELECT printf('%016x', span_id) AS shown FROM lake.transactions WHERE trace_id = ?", trace_id)
        assert row["shown"] == span_id, "old rows have binary span ids now"
        [tree] = splat.lake(
            "SELECT count(*) AS n FROM lake.spans c JOIN lake.spans p ON p.span_id = c.parent_span_id "
            "WHERE c.trace_id = ? AND p.trace_id = c.trace_id",
            trace_id,
        )
        assert tree["n"] == 9, "every child finds its parent"
        assert page_spans(splat, trace_id) == old_pages[trace_id]
    # Every live file has binary ids; time travel to before the run still reads the text ones.
    [old_files] = splat.query(
        "SELECT count(*) AS n FROM ducklake_file_column_stats s JOIN ducklake_data_file f USING (data_file_id) "
        "WHERE f.end_snapshot IS NULL AND s.table_id = 2 AND s.column_id IN (4, 5, 6)"
    )
    assert old_files["n"] == 0
    [then] = splat.lake(
        f"SELECT count(span_id_hex) AS n FROM lake.spans AT (VERSION => {before['id']})"
    )
    assert then["n"] == 21, "the old spans: two transactions of 10 and the logs client's root"
