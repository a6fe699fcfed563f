"""Database bytes per streamed span: --transactions segments of @sentry/node's shape (span v2 items: a
segment span and --children children, with the attributes the SDK sends), sent to `splat serve`, then the
pages of each table and index holding them (SQLite's dbstat) divided by the spans stored. Run it with the
binary to measure:

    SPLAT_BIN=$CARGO_TARGET_DIR/debug/splat ~/.cache/splat/venv/bin/python infra/bench/span_bytes.py \\
        [--transactions 500] [--children 29]
"""

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "sdk"))
from harness import start_splat  # noqa: E402

NODE = "sentry.javascript.node"


def attributes(segment_id, op):
    typed = {"sentry.origin": "manual", "sentry.op": op, "sentry.trace_lifecycle": "stream",
             "sentry.segment.name": "GET /checkout", "sentry.segment.id": segment_id, "sentry.sdk.name": NODE,
             "sentry.sdk.version": "11.12.0", "sentry.release": "bench@1.0.0", "sentry.environment": "production",
             "sentry.is_localhost": False}
    return {k: {"value": v, "type": "boolean" if isinstance(v, bool) else "string"} for k, v in typed.items()}


def envelope(children):
    trace, segment, now = uuid.uuid4().hex, uuid.uuid4().hex[:16], time.time()
    spans = [{"name": "GET /checkout", "span_id": segment, "trace_id": trace, "start_timestamp": now - 1,
              "end_timestamp": now, "is_segment": True, "status": "ok", "attributes": attributes(segment, "http.server")}]
    for i in range(children):
        spans.append({"name": f"SELECT * FROM orders WHERE user_id = ${i % 3}", "span_id": uuid.uuid4().hex[:16],
                      "trace_id": trace, "parent_span_id": segment, "start_timestamp": now - 1 + i / 100,
                      "end_timestamp": now - 1 + i / 100 + 0.005, "is_segment": False, "status": "ok",
                      "attributes": attributes(segment, "db")})
    items = json.dumps({"version": 2, "items": spans}).encode()
    header = {"type": "span", "item_count": len(spans), "content_type": "application/vnd.sentry.items.span.v2+json"}
    return b"\n".join([b"{}", json.dumps(header).encode(), items])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--transactions", type=int, default=500)
    parser.add_argument("--children", type=int, default=29)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, start_splat(Path(tmp)) as splat:
        project = splat.dsn.rsplit("/", 1)[1]
        url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
        for _ in range(args.transactions):
            request = urllib.request.Request(url, data=envelope(args.children), method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        total = args.transactions * (args.children + 1)
        deadline = time.monotonic() + 300
        while splat.query("SELECT count(*) AS n FROM spans")[0]["n"] < total:
            assert time.monotonic() < deadline, "the spans were not stored"
            time.sleep(0.5)
        time.sleep(1)
        db = sqlite3.connect(splat.db_path)
        pages = dict(db.execute(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name IN ('spans', 'spans_segment', 'spans_received') GROUP BY name").fetchall())
        print(f"{args.transactions} transactions of {args.children + 1} streamed spans: "
              + ", ".join(f"{name} {size / total:.0f} B" for name, size in sorted(pages.items()))
              + f" per span ({sum(pages.values()) / total:.0f} B in all)")


if __name__ == "__main__":
    main()
