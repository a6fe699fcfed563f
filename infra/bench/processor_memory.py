"""Peak memory of `splat serve` while its processor takes one receive of --events error events of about
--kb KB each (near the 1 MiB event limit: every one is claim-checked), all arriving within the batch
window, so that the processor receives them at once. Prints the server's peak RSS (VmHWM) before and after.
Run it with the binary to measure:

    SPLAT_BIN=$CARGO_TARGET_DIR/debug/splat ~/.cache/splat/venv/bin/python infra/bench/processor_memory.py \\
        [--events 200] [--kb 900]
"""

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "sdk"))
from harness import start_splat  # noqa: E402


def rss_mib(pid, field="VmHWM"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def envelope(kb):
    """An error event carrying `kb` KB of base64 noise in its extra data (compresses to about 3/4)."""
    noise = base64.b64encode(os.urandom(kb * 768)).decode()
    event = {"message": "a large event", "level": "error", "extra": {"blob": noise}}
    lines = ({"event_id": uuid.uuid4().hex}, {"type": "event"}, event)
    return b"\n".join(json.dumps(x).encode() for x in lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--kb", type=int, default=900)
    args = parser.parse_args()
    env = {"SPLAT_BATCH_SIZE": "1000", "SPLAT_BATCH_WINDOW_MS": "60000", "SPLAT_QUEUE_VISIBILITY_SECS": "300"}
    with tempfile.TemporaryDirectory() as tmp, start_splat(Path(tmp), env) as splat:
        project = splat.dsn.rsplit("/", 1)[1]
        url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
        before = rss_mib(splat.proc.pid)
        started = time.monotonic()
        for _ in range(args.events):
            request = urllib.request.Request(url, data=envelope(args.kb), method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        sent_in = time.monotonic() - started
        sent_peak = rss_mib(splat.proc.pid)
        deadline = time.monotonic() + 600
        while splat.query("SELECT count(*) AS n FROM events")[0]["n"] < args.events:
            assert time.monotonic() < deadline, "the events were not stored"
            time.sleep(0.5)
        after = rss_mib(splat.proc.pid)
        print(f"{args.events} events of {args.kb} KB sent in {sent_in:.1f} s (one receive if under the 60 s window): "
              f"peak RSS {before:.0f} MiB before, {sent_peak:.0f} MiB once sent, {after:.0f} MiB after processing")


if __name__ == "__main__":
    main()
