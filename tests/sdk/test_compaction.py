"""Compaction a row batch at a time, and retention runs that stop at their deadline or are killed: a day of
small lake files (one per processor batch) is merged by `splat retention run`, and stock DuckDB (1.5.5 +
ducklake) reads exactly the same rows, every column, before, between and after: a run with no time left
(`--budget-secs 0`) merges nothing and says so, runs killed with SIGKILL at any moment lose and double
nothing, and the next run finishes the job."""

import json
import os
import signal
import subprocess
import time

from harness import SPLAT_BIN, start_splat
from test_retention import DAY, HORIZONS, post, transaction_at

BATCHES, PER_BATCH = 30, 10


def rows(splat, table):
    """Every row of a lake table, every column, in a stable order."""
    return splat.lake(f"SELECT * FROM lake.{table} ORDER BY ALL")


def live_files(splat, table):
    [row] = splat.lake(f"SELECT count(*) AS n FROM ducklake_list_files('lake', '{table}')")
    return row["n"]


def retention(tmp_path, *args):
    return [SPLAT_BIN, "retention", "run", "--data-dir", str(tmp_path / "data"), *args]


def test_merged_files_hold_the_same_rows_and_a_stopped_or_killed_run_loses_nothing(tmp_path):
    yesterday = (int(time.time() // DAY) - 1) * DAY
    env = {**os.environ, **HORIZONS}
    with start_splat(tmp_path, {"SPLAT_RETENTION_FIRST_RUN_SECS": "3600"}) as splat:
        for b in range(BATCHES):
            for i in range(PER_BATCH):
                post(splat, "transaction", transaction_at(yesterday + 3600 + b * 60 + i))
            # Each group committed before the next is sent: one batch, one file per table.
            splat.wait_for("SELECT 1 FROM transactions", count=(b + 1) * PER_BATCH)
        assert live_files(splat, "spans") >= BATCHES // 2
        before = {t: rows(splat, t) for t in ("transactions", "spans")}
        assert len(before["spans"]) == BATCHES * PER_BATCH * 4, "each root and its 3 spans"

        # No time left: nothing merged, the report says work is left.
        run = subprocess.run(retention(tmp_path, "--budget-secs", "0"), env=env, capture_output=True,
                             text=True, timeout=120, check=True)
        report = json.loads(run.stdout)
        assert report["stopped_at_deadline"] is True
        assert report["lake"]["files_compacted"] == 0
        assert {t: rows(splat, t) for t in before} == before

        # Killed at different moments: whatever it had done, every row is there exactly once.
        for after_s in (0.05, 0.2, 0.5):
            proc = subprocess.Popen(retention(tmp_path), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(after_s)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            assert {t: rows(splat, t) for t in before} == before, f"killed after {after_s} s"

        run = subprocess.run(retention(tmp_path), env=env, capture_output=True, text=True, timeout=120,
                             check=True)
        assert json.loads(run.stdout)["stopped_at_deadline"] is False
        assert {t: rows(splat, t) for t in before} == before
        assert live_files(splat, "spans") == 1 and live_files(splat, "transactions") == 1
        # No object is left that the catalog does not list: a killed run's upload is an orphan, deleted by
        # a run once it is an hour old (younger, it could be a batch's upload on its way to its commit).
        lake = tmp_path / "data" / "lake"
        two_hours_ago = time.time() - 7200
        for p in lake.rglob("*.parquet"):
            os.utime(p, (two_hours_ago, two_hours_ago))
        subprocess.run(retention(tmp_path), env=env, capture_output=True, text=True, timeout=120, check=True)
        assert {t: rows(splat, t) for t in before} == before
        on_disk = {p.relative_to(lake) for p in lake.rglob("*.parquet")}
        listed = {p["path"] for p in splat.query(
            "SELECT 'main/' || t.table_name || '/' || f.path AS path FROM ducklake_data_file f JOIN ducklake_table t USING (table_id)"
        )}
        assert {str(p) for p in on_disk} == listed
