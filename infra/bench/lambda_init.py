"""Runs a Lambda bootstrap under a minimal Runtime API on loopback, the way Lambda would, and measures it.

- Init time, as Lambda reports "Init Duration": from the process start to its first request for work
  (GET /2018-06-01/runtime/invocation/next).
- With events: each invocation's duration (the event handed out -> the response posted), what Lambda would
  bill for it (rounded up to the millisecond), the process's CPU time per invocation, and its peak resident
  memory (the closest local figure to "Max Memory Used").

The function talks to a real S3/SQS emulator given by AWS_ENDPOINT_URL and opens its database on local disk
(so EFS latency is not included).

    python infra/bench/lambda_init.py BOOTSTRAP [--runs N] [--event FILE]

With --event, the first invocation of each cold start gets that event and its duration is reported too
(one warm-up run is then made before the timed runs, so the database is already migrated). Needs SPLAT_*
and AWS_* in the environment, as the function would have them. Prints one JSON line. `warm()` (used by
infra/bench/lambda_cost.py) runs many events through one warm process. BENCHMARKS.md has the full recipe.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the function process is killed mid-poll at the end of every run

    def __init__(self, events):
        super().__init__(("127.0.0.1", 0), Handler)
        self.events = list(events)
        self.first_next = threading.Event()
        self.first_next_at = None
        self.invoked_at = []
        self.responded_at = []
        self.responses = []
        self.all_done = threading.Event()
        if not self.events:
            self.all_done.set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        api = self.server
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_error(404)
            return
        if api.first_next_at is None:
            api.first_next_at = time.perf_counter()
            api.first_next.set()
        served = len(api.invoked_at)
        if served == len(api.events):
            time.sleep(3600)  # park the poll; the process is killed
            return
        body = api.events[served]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", f"bench-{served + 1}")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        api.invoked_at.append(time.perf_counter())
        self.wfile.write(body)

    def do_POST(self):
        api = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        api.responded_at.append(time.perf_counter())
        api.responses.append(body)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        if len(api.responses) == len(api.events):
            api.all_done.set()


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def written_bytes(pid):
    """Bytes the process caused to be written to storage (/proc/<pid>/io write_bytes): the database and its
    journal, not sockets. On EFS every one of them crosses the network and is billed."""
    with open(f"/proc/{pid}/io") as f:
        return int(next(line for line in f if line.startswith("write_bytes:")).split()[1])


def run(bootstrap, events, env, timeout=600):
    """One process, from a cold start through every event, against a Runtime API of its own (a fresh port,
    so that a late poll from a previous process can never take this run's events). Returns a dict."""
    api = RuntimeApi(events)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}")
    start = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.first_next.wait(30):
            raise RuntimeError("the function never asked for work: " + proc.stderr.read1().decode(errors="replace"))
        init_cpu, init_written = cpu_seconds(proc.pid), written_bytes(proc.pid)
        if not api.all_done.wait(timeout):
            raise RuntimeError(f"only {len(api.responses)} of {len(events)} invocations answered")
        durations = [(done - began) * 1000 for began, done in zip(api.invoked_at, api.responded_at)]
        return {
            "init_ms": (api.first_next_at - start) * 1000,
            "durations_ms": durations,
            "invoke_cpu_s": cpu_seconds(proc.pid) - init_cpu,
            "invoke_written_bytes": written_bytes(proc.pid) - init_written,
            "peak_rss_mb": peak_rss_mb(proc.pid),
            "responses": api.responses,
        }
    finally:
        proc.kill()
        proc.wait()
        api.shutdown()
        api.server_close()


def billed_ms(duration_ms):
    """Lambda bills each invocation's duration rounded up to the next millisecond."""
    return math.ceil(duration_ms)


def warm(bootstrap, events, env):
    """Every event through one warm process (the first is a warm-up and not counted)."""
    result = run(bootstrap, events, env)
    durations = result["durations_ms"][1:]
    counted = len(durations)
    return {
        "invocations": counted,
        "duration_ms_median": round(statistics.median(durations), 2),
        "duration_ms_mean": round(statistics.fmean(durations), 2),
        "duration_ms_p95": round(sorted(durations)[int(0.95 * (counted - 1))], 2),
        "billed_ms_mean": round(statistics.fmean(billed_ms(d) for d in durations), 2),
        # CPU includes the warm-up invocation; spread over all of them.
        "cpu_ms_per_invocation": round(result["invoke_cpu_s"] * 1000 / len(events), 2),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "written_bytes_per_invocation": round(result["invoke_written_bytes"] / len(events)),
        "last_response": result["responses"][-1][:1000].decode(errors="replace"),
    }


def lambda_env(memory_mb=512):
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb),
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
    )
    env.setdefault("SPLAT_DATABASE_PATH", os.path.join(tempfile.mkdtemp(), "splat.db"))
    return env


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--event")
    args = parser.parse_args()
    events = [open(args.event, "rb").read()] if args.event else []
    env = lambda_env()
    run(args.bootstrap, events, env)  # warm-up: creates and migrates the database, warms the page cache
    inits, invokes, response = [], [], None
    for _ in range(args.runs):
        result = run(args.bootstrap, events, env)
        inits.append(result["init_ms"])
        invokes += result["durations_ms"]
        response = result["responses"][-1] if result["responses"] else None
    out = {
        "bootstrap": args.bootstrap,
        "runs": args.runs,
        "init_ms_median": round(statistics.median(inits), 1),
        "init_ms_min": round(min(inits), 1),
        "init_ms_max": round(max(inits), 1),
    }
    if invokes:
        out["first_invoke_ms_median"] = round(statistics.median(invokes), 1)
        out["response"] = (response or b"")[:200].decode(errors="replace")
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
