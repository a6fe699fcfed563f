"""Log records accepted and stored per CPU-second of `splat serve` (ingest and processor in one process: the
figure counts both, then each apart: the processor's thread, `splat-processor`, stores them; the rest of
the process, HTTP workers and all, accepts them), database and lake bytes per record, and the logs page's
time at the end. Sends
--envelopes envelopes, each of --items `log` items of 100 SDK-shaped records (random trace ids, eight
typed attributes), waits until every record is stored, and reads the process's CPU time from /proc:

    SPLAT_BIN=$CARGO_TARGET_DIR/release/splat ~/.cache/splat/venv/bin/python infra/bench/logs_rate.py \\
        [--envelopes 200] [--items 5]
"""

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "sdk"))
from harness import start_splat  # noqa: E402

LEVELS = ["trace", "debug", "info", "info", "info", "warn", "error"]


def cpu_seconds(stat):
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processor_cpu_seconds(pid):
    """CPU seconds of the processor's thread (its name, as `serve` gives it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == "splat-processor":
            return cpu_seconds(task / "stat")
    raise RuntimeError("no splat-processor thread")


def record(rnd, now):
    typed = {"sentry.environment": "production", "sentry.release": "shop@2.4.1", "sentry.sdk.name": "sentry.python",
             "user.id": rnd.randrange(10_000), "cart.total": round(rnd.random() * 100, 2), "cart.express": rnd.random() < .5,
             "http.route": f"/checkout/{rnd.randrange(20)}", "sentry.message.template": "User {user_id} checked out"}
    kind = {bool: "boolean", int: "integer", float: "double", str: "string"}
    return {"timestamp": now - rnd.random(), "trace_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
            "level": rnd.choice(LEVELS), "body": f"User {typed['user.id']} checked out {rnd.randrange(1, 9)} items",
            "attributes": {k: {"value": v, "type": kind[type(v)]} for k, v in typed.items()}}


def envelope(rnd, items):
    now, lines = time.time(), [b"{}"]
    for _ in range(items):
        payload = json.dumps({"items": [record(rnd, now) for _ in range(100)]}).encode()
        header = {"type": "log", "item_count": 100, "content_type": "application/vnd.sentry.items.log+json"}
        lines += [json.dumps(header).encode(), payload]
    return b"\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--envelopes", type=int, default=200)
    parser.add_argument("--items", type=int, default=5)
    args = parser.parse_args()
    rnd = random.Random(5)
    bodies = [envelope(rnd, args.items) for _ in range(args.envelopes)]
    total = args.envelopes * args.items * 100
    with tempfile.TemporaryDirectory() as tmp, start_splat(Path(tmp)) as splat:
        project = splat.dsn.rsplit("/", 1)[1]
        url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
        stat = f"/proc/{splat.proc.pid}/stat"
        before, started = cpu_seconds(stat), time.monotonic()
        processor_before = processor_cpu_seconds(splat.proc.pid)
        for body in bodies:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as r:
                assert r.status == 200
        while splat.query("SELECT total(count) AS n FROM log_blocks")[0]["n"] < total:
            assert time.monotonic() - started < 600, "the records were not stored"
            time.sleep(0.2)
        cpu, wall = cpu_seconds(stat) - before, time.monotonic() - started
        stored = processor_cpu_seconds(splat.proc.pid) - processor_before
        db = sqlite3.connect(splat.db_path)
        pages = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat WHERE name LIKE 'log%' GROUP BY name"))
        lake = sum(f.stat().st_size for f in (Path(tmp) / "data" / "lake").rglob("*.parquet") if "/logs/" in str(f))
        page_ms = []
        for _ in range(20):
            t = time.monotonic()
            with urllib.request.urlopen(f"{splat.base_url}/projects/default/logs?level=warn", timeout=30) as r:
                r.read()
            page_ms.append((time.monotonic() - t) * 1000)
        page_ms.sort()
        print(f"{total} records in {args.envelopes} envelopes of {args.items} items: {total / cpu:,.0f} records per "
              f"CPU-second ({cpu:.2f} CPU-s, {wall:.1f} s wall): stored {total / stored:,.0f} per CPU-second of the processor "
              f"({stored:.2f} CPU-s), accepted {total / (cpu - stored):,.0f} per CPU-second of the rest ({cpu - stored:.2f} CPU-s); database {sum(pages.values()) / total:.0f} B/record "
              f"({', '.join(f'{k} {v / total:.0f}' for k, v in sorted(pages.items()))}); lake {lake / total:.0f} B/record "
              f"before compaction; logs page (level ≥ warn) p50 {page_ms[9]:.0f} ms, p95 {page_ms[18]:.0f} ms")


if __name__ == "__main__":
    main()
