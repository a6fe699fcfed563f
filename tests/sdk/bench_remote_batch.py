"""Hrana requests and commit time of the processor's batches with the database on a libSQL server (sqld on
loopback, sqld.py), for 50 error envelopes and then 50 transaction envelopes; and the time modeled at a
20 ms round trip (each request one RTT more). A measurement, not a test:

    SPLAT_BIN=$CARGO_TARGET_DIR/debug/splat ~/.cache/splat/venv/bin/python tests/sdk/bench_remote_batch.py
"""

import json
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import start_splat  # noqa: E402
from sqld import CountingProxy, start_sqld  # noqa: E402

RTT_MS = 20
N = 50


def error(i):
    return {"message": f"remote bench error {i}", "level": "error", "tags": {"shard": str(i % 5)}}


def transaction(i):
    trace, root, now = uuid.uuid4().hex, uuid.uuid4().hex[:16], time.time()
    spans = [{"trace_id": trace, "span_id": uuid.uuid4().hex[:16], "parent_span_id": root, "op": "db",
              "description": f"SELECT * FROM t WHERE id = {j}", "start_timestamp": now - 0.5 + j / 100,
              "timestamp": now - 0.49 + j / 100} for j in range(5)]
    return {"type": "transaction", "transaction": f"GET /bench/{i % 5}", "start_timestamp": now - 0.5,
            "timestamp": now, "release": "bench@1", "environment": "bench", "spans": spans,
            "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}}}


def send(splat, kind, payload):
    project = splat.dsn.rsplit("/", 1)[1]
    event_id = uuid.uuid4().hex
    body = b"\n".join(json.dumps(x).encode() for x in ({"event_id": event_id}, {"type": kind}, payload))
    url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=10) as r:
        assert r.status == 200


def measure(splat, sqld, proxy, kind, make):
    before = sqld.query("SELECT count(*) AS n FROM processed_messages")[0]["n"]
    start = len(proxy.records)
    for i in range(N):
        send(splat, kind, make(i))
    deadline = time.monotonic() + 60
    while sqld.query("SELECT count(*) AS n FROM processed_messages")[0]["n"] < before + N:
        assert time.monotonic() < deadline, "the batch was not committed"
        time.sleep(0.05)
    records, proxy.records = proxy.records, proxy.records[start:]
    batches = proxy.transactions("INSERT OR IGNORE INTO processed_messages")
    proxy.records = records
    for b in batches:
        ms = b["seconds"] * 1000
        print(f"{N} {kind} envelopes: batch of {b['marked']} messages, {b['requests']} Hrana requests "
              f"({b['lake_requests']} for the lake catalog), {ms:.1f} ms BEGIN to COMMIT on loopback, "
              f"{ms + b['requests'] * RTT_MS:.0f} ms at {RTT_MS} ms RTT")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with start_sqld(workdir) as sqld:
            proxy = CountingProxy(sqld.url)
            try:
                env = {"SPLAT_DATABASE_URL": proxy.url, "SPLAT_DATABASE_TOKEN": sqld.token}
                with start_splat(workdir, env) as splat:
                    measure(splat, sqld, proxy, "event", error)
                    measure(splat, sqld, proxy, "transaction", transaction)
            finally:
                proxy.stop()


if __name__ == "__main__":
    main()
