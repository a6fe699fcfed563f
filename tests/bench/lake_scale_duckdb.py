#!/usr/bin/env python3
"""Times the README's lake recipes with stock DuckDB (PyPI duckdb 1.5.5 + ducklake, as tests/setup installs
them) over a lake `lake_scale` kept: `lake_scale_duckdb.py DATA_DIR [RUNS]`. Each query runs RUNS times
(default 5) on one connection after a first, untimed run; prints the median and the slowest."""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sdk"))
from harness import duckdb_with_ducklake  # noqa: E402

WINDOW = "timestamp >= CAST(current_date AS TIMESTAMP) - INTERVAL 30 DAY"
RECIPES = {
    "p95 by endpoint, 30 days": f"""
        SELECT name, count(*) AS n, quantile_cont(duration_ms, 0.95) AS p95
        FROM lake.transactions WHERE {WINDOW} GROUP BY name ORDER BY p95 DESC""",
    "slowest spans by description, 30 days": f"""
        SELECT op, description, count(*) AS n, quantile_cont(duration_ms, 0.95) AS p95, sum(duration_ms) AS total_ms
        FROM lake.spans WHERE {WINDOW} GROUP BY op, description ORDER BY p95 DESC LIMIT 20""",
    "slowest spans by description, one day": """
        SELECT op, description, count(*) AS n, quantile_cont(duration_ms, 0.95) AS p95
        FROM lake.spans WHERE timestamp >= CAST(current_date AS TIMESTAMP) - INTERVAL 3 DAY
          AND timestamp < CAST(current_date AS TIMESTAMP) - INTERVAL 2 DAY
        GROUP BY op, description ORDER BY p95 DESC LIMIT 20""",
    "one trace's spans by trace id": """
        SELECT printf('%016x', span_id) AS span_id, op, description, duration_ms
        FROM lake.spans WHERE trace_id = (SELECT trace_id FROM lake.transactions LIMIT 1 OFFSET 123456)""",
    "a transaction's spans by span id": """
        SELECT op, description, duration_ms FROM lake.spans
        WHERE transaction_id = (SELECT span_id FROM lake.transactions LIMIT 1 OFFSET 123456)""",
}


def main():
    data, runs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
    con = duckdb_with_ducklake()
    con.execute(f"ATTACH 'ducklake:sqlite:{data / 'splat.db'}' AS lake (READ_ONLY)")
    print(f"duckdb {con.execute('SELECT version()').fetchone()[0]}, threads {con.execute('SELECT current_setting(?)', ['threads']).fetchone()[0]}")
    for table in ("transactions", "spans"):
        files = con.execute(f"SELECT count(*), sum(data_file_size_bytes) FROM ducklake_list_files('lake', '{table}')").fetchone()
        print(f"{table}: {files[0]} files, {files[1] / 1e6:.0f} MB")
    for name, sql in RECIPES.items():
        rows = con.execute(sql).fetchall()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            times.append(time.perf_counter() - start)
        print(f"{name}: median {statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms ({len(rows)} rows)")


if __name__ == "__main__":
    main()
