"""Measures a Lambda bootstrap's init time the way Lambda reports "Init Duration": from the process start to
its first request for work (GET /2018-06-01/runtime/invocation/next on the Runtime API). A minimal Runtime
API on loopback stands in for Lambda's; the function talks to a real S3/SQS emulator given by
AWS_ENDPOINT_URL and opens its database on local disk (so EFS latency is not included).

    python infra/bench/lambda_init.py BOOTSTRAP [--runs N] [--event FILE]

With --event, the first invocation gets that event and its duration is reported too (one warm-up run is
then made before the timed runs, so the database is already migrated). Needs SPLAT_* and AWS_* in the
environment, as the function would have them. Prints one JSON line. BENCHMARKS.md has the full recipe.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the function process is killed mid-poll at the end of every run

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.first_next = threading.Event()
        self.first_next_at = None
        self.response_at = None
        self.responded = threading.Event()
        self.response_body = None
        self.served = False


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
        if api.event is None or api.served:
            time.sleep(3600)  # park the poll; the process is killed
            return
        api.served = True
        body = api.event
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
        self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
        self.end_headers()
        api.invoked_at = time.perf_counter()
        self.wfile.write(body)

    def do_POST(self):
        api = self.server
        length = int(self.headers.get("Content-Length") or 0)
        api.response_body = self.rfile.read(length)
        api.response_at = time.perf_counter()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        api.responded.set()


def run_once(bootstrap, event, env):
    """One cold start, against a Runtime API of its own (a fresh port, so that a late poll from the previous
    process can never take this run's event)."""
    api = RuntimeApi(event)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{api.server_address[1]}")
    start = time.perf_counter()
    proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not api.first_next.wait(30):
            raise RuntimeError("the function never asked for work: " + proc.stderr.read1().decode(errors="replace"))
        init_ms = (api.first_next_at - start) * 1000
        invoke_ms = None
        if api.event is not None:
            if not api.responded.wait(30):
                raise RuntimeError("no response to the invocation")
            invoke_ms = (api.response_at - api.invoked_at) * 1000
        return init_ms, invoke_ms, api.response_body
    finally:
        proc.kill()
        proc.wait()
        api.shutdown()
        api.server_close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--event")
    args = parser.parse_args()
    event = open(args.event, "rb").read() if args.event else None
    env = dict(os.environ)
    env.update(
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
        AWS_LAMBDA_LOG_GROUP_NAME="/aws/lambda/bench",
        AWS_LAMBDA_LOG_STREAM_NAME="bench",
    )
    env.setdefault("SPLAT_DATABASE_PATH", os.path.join(tempfile.mkdtemp(), "splat.db"))
    run_once(args.bootstrap, event, env)  # warm-up: creates and migrates the database, warms the page cache
    inits, invokes, response = [], [], None
    for _ in range(args.runs):
        init_ms, invoke_ms, response = run_once(args.bootstrap, event, env)
        inits.append(init_ms)
        if invoke_ms is not None:
            invokes.append(invoke_ms)
    result = {
        "bootstrap": args.bootstrap,
        "runs": args.runs,
        "init_ms_median": round(statistics.median(inits), 1),
        "init_ms_min": round(min(inits), 1),
        "init_ms_max": round(max(inits), 1),
    }
    if invokes:
        result["first_invoke_ms_median"] = round(statistics.median(invokes), 1)
        result["response"] = (response or b"")[:200].decode(errors="replace")
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
