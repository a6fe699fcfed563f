"""Database bytes written per error event, per classic transaction and per streamed span, by `splat serve`
under strace: every byte the process wrote to the database file and its journal (or write-ahead log), the
file's growth, and which tables and indexes the changed pages belong to (SQLite's dbstat).

Shapes (real SDK captures from tests/fixtures/sdk, with fresh ids in every copy): the Python SDK's gzip error
and its transaction with spans, and @sentry/node's span-v2 envelope (a segment and its children). Each kind is
sent in batches of exactly --batch envelopes (the processor's window is long, so every batch fills), after a
warm-up of each kind (300 envelopes); the journal is `delete` by default, as on EFS.

    SPLAT_BIN=$CARGO_TARGET_DIR/debug/splat ~/.cache/splat/venv/bin/python infra/bench/db_bytes.py \\
        [--count 1000] [--batch 100] [--journal delete|wal] [--kinds error,transaction,streamed] [--env NAME=VALUE]
"""

import argparse
import gzip
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
from harness import start_splat  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "sdk"
# kind: (fixture, table and condition that count it once stored, what one envelope holds)
KINDS = {
    "error": ("python-error-gzip", "events WHERE 1", "error event"),
    "transaction": ("python-transaction-gzip", "transactions WHERE source = 'transaction'", "transaction"),
    "streamed": ("node-spans", "transactions WHERE source = 'span'", "streamed transaction"),
}
HEX_ID = re.compile(rb'"(?:event_id|trace_id|span_id|parent_span_id|sentry\.segment\.id)"\s*:\s*(?:\{"value"\s*:\s*)?"([0-9a-f]{16}|[0-9a-f]{32})"')
DB_FILES = ("splat.db", "splat.db-journal", "splat.db-wal")


def fixture_envelope(name):
    body = (FIXTURES / f"{name}.envelope").read_bytes()
    if json.loads((FIXTURES / f"{name}.json").read_text())["decoded_bytes"] != len(body):
        body = gzip.decompress(body)
    return body


def fresh_ids(envelope):
    """The envelope with every event, trace and span id replaced by a random one of the same length (the same
    old id always by the same new one, so parents and segments still match)."""
    new = {}
    for old in set(HEX_ID.findall(envelope)):
        new[old] = uuid.uuid4().hex.encode()[: len(old)]
    for old, replacement in new.items():
        envelope = envelope.replace(old, replacement)
    return envelope


def send(url, body):
    request = urllib.request.Request(url, data=gzip.compress(body), method="POST",
                                     headers={"Content-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.status


def wait_count(splat, where, n):
    deadline = time.monotonic() + 600
    while splat.scalar(f"SELECT count(*) FROM {where}") < n:
        assert time.monotonic() < deadline, f"{where}: not {n} rows"
        time.sleep(0.2)


def snapshot(db_path, to):
    """A page-for-page copy of the database (the backup API copies pages in place)."""
    src, dst = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True), sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()
    return to


def pages(path):
    """{page number: table or index} and the page size."""
    con = sqlite3.connect(path)
    size = con.execute("PRAGMA page_size").fetchone()[0]
    names = dict(con.execute("SELECT pageno, name FROM dbstat"))
    con.close()
    return names, size


def changed_pages(before, after):
    """Pages that differ between two snapshots, by the table or index that holds them after."""
    old, new = Path(before).read_bytes(), Path(after).read_bytes()
    names, size = pages(after)
    changed = Counter()
    for p in range(len(new) // size):
        if new[p * size:(p + 1) * size] != old[p * size:(p + 1) * size]:
            changed[names.get(p + 1, "(free list)")] += 1
    return changed, size


CALL = re.compile(r"^(\d+)\s+([\d.]+)\s+(?:(\w+)\((\d+)<([^>]*)>(.*?)|<\.\.\. (\w+) resumed>.*?)"
                  r"(?: <unfinished \.\.\.>|\)\s+=\s+(-?\d+))")


def strace_writes(log, start, end):
    """Writes between the times `start` and `end` to each database file, from strace's log: bytes by file,
    and the offsets written in the database file itself (pwrite64's last argument) with their sizes."""
    pending, written, offsets = {}, Counter(), []
    for line in log.read_text(errors="replace").splitlines():
        m = CALL.match(line)
        if not m:
            continue
        pid, at, path, args, result = m[1], float(m[2]), m[5], m[6], m[8]
        if path is not None and result is None:
            pending[pid] = (path, args)
            continue
        if path is None:
            path, args = pending.pop(pid, (None, None))
        if path is None or result is None or not (start <= at < end) or int(result) <= 0:
            continue
        name = Path(path).name
        if name in DB_FILES:
            written[name] += int(result)
            offset = re.search(r"(\d+)\s*$", args or "")
            if name == "splat.db" and offset:
                offsets.append((int(offset[1]), int(result)))
    return written, offsets


def written_by_table(offsets, snapshot):
    """Bytes written to the database file by the table or index that holds each page (in `snapshot`)."""
    names, size = pages(snapshot)
    by_table = Counter()
    for offset, n in offsets:
        by_table[names.get(offset // size + 1, "(free list)")] += n
    return by_table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000, help="envelopes of each kind")
    parser.add_argument("--batch", type=int, default=100, help="messages per processor batch")
    parser.add_argument("--journal", choices=("delete", "wal"), default="delete")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="more settings for splat serve (SPLAT_SPAN_SETTLE_SECS=0, say)")
    parser.add_argument("--keep", metavar="PATH", help="keep a copy of the database there (for payload_dict.py)")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    env = {"SPLAT_SQLITE_JOURNAL": args.journal, "SPLAT_BATCH_SIZE": str(args.batch),
           "SPLAT_BATCH_WINDOW_MS": "60000", "RUST_LOG": "warn", **dict(e.split("=", 1) for e in args.env)}
    templates = {kind: fixture_envelope(KINDS[kind][0]) for kind in kinds}
    with tempfile.TemporaryDirectory() as tmp, start_splat(Path(tmp), env=env) as splat:
        project = splat.dsn.rsplit("/", 1)[1]
        url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
        # Warm-up: whole batches of each kind, at least 300 envelopes (past the 200 payloads a project's
        # dictionary is trained from), so the measured ones find the project, issue, dictionary and pages made.
        warmup = -(-300 // args.batch) * args.batch
        for kind in kinds:
            for _ in range(warmup):
                send(url, fresh_ids(templates[kind]))
            wait_count(splat, KINDS[kind][1], warmup)
        log = Path(tmp) / "strace.log"
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-ttt", "-y", "-s", "0", "-o", str(log),
                                   "-e", "trace=write,pwrite64,writev,pwritev,pwritev2", "-p", str(splat.proc.pid)])
        time.sleep(2)  # strace attaches to every thread
        results, marks = [], []
        before = snapshot(splat.db_path, Path(tmp) / "start.db")
        for kind in kinds:
            spans_before = splat.scalar("SELECT count(*) FROM spans")
            size_before, start = splat.db_path.stat().st_size, time.time()
            stored = splat.scalar(f"SELECT count(*) FROM {KINDS[kind][1]}")
            for _ in range(args.count):
                send(url, fresh_ids(templates[kind]))
            wait_count(splat, KINDS[kind][1], stored + args.count)
            time.sleep(1.5)  # the last commit's journal is gone
            end = time.time()
            after = snapshot(splat.db_path, Path(tmp) / f"{kind}.db")
            changed, page_size = changed_pages(before, after)
            marks.append((kind, start, end))
            results.append({
                "kind": kind, "count": args.count, "batch": args.batch, "journal": args.journal,
                "spans_in_table": splat.scalar("SELECT count(*) FROM spans") - spans_before,
                "growth_bytes_per_item": round((splat.db_path.stat().st_size - size_before) / args.count),
                "pages_changed_by_table": dict(changed.most_common(12)),
                "page_size": page_size,
            })
            before = after
        if args.keep:
            snapshot(splat.db_path, Path(args.keep))
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        for result, (kind, start, end) in zip(results, marks):
            written, offsets = strace_writes(log, start, end)
            result["written_bytes_by_file"] = dict(written)
            by_table = written_by_table(offsets, Path(tmp) / f"{kind}.db")
            result["db_file_bytes_per_item_by_table"] = {
                name: round(n / args.count) for name, n in by_table.most_common(10)}
            result["written_bytes_per_item"] = round(sum(written.values()) / args.count)
            spans = lake_spans(kind, templates[kind])
            if spans:
                result["spans_per_item"] = spans
                result["written_bytes_per_span"] = round(sum(written.values()) / args.count / spans)
            print(json.dumps(result))


def lake_spans(kind, envelope):
    """Spans in one streamed envelope (every one is a row of `spans` while it waits)."""
    if kind != "streamed":
        return None
    return sum(json.loads(line).get("item_count", 0) for line in envelope.split(b"\n")[1:2])


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
