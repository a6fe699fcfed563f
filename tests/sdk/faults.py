"""What the fault tests (test_faults.py) share: traffic made of the captured SDK fixtures, a sender that
notes which envelopes the server acknowledged, and the exactly-once check of everything acknowledged."""

import contextlib
import http.client
import json
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from harness import FIXTURE_KEY, ROOT, decode, until

FIXTURES = ROOT / "tests" / "fixtures" / "sdk"
# fixture -> what it stores: an error event, a classic transaction (root + 8 spans), or a streamed segment
# (7 spans, root included).
KINDS = {
    "python-error-gzip": ("error", 0),
    "node-error": ("error", 0),
    "python-transaction-gzip": ("transaction", 9),
    "node-spans": ("segment", 7),
}
_HEX32 = re.compile(rb"\b[0-9a-f]{32}\b")
# Framing and encoding describe the captured transfer; copies are sent decoded, so both go.
_DROP = {"host", "connection", "content-length", "transfer-encoding", "content-encoding"}


@dataclass
class Envelope:
    kind: str
    # The event id (errors, transactions) or the trace id (segments): what the database is checked by.
    id: str
    trace_id: str
    spans: int
    path: str
    headers: dict
    body: bytes


class Corpus:
    """Copies of the captured fixtures, each with fresh event and trace ids (every 32-hex id but the key is
    replaced, same length, so item lengths stay right), authenticated with the server's key."""

    def __init__(self, key):
        self.key = key
        self.templates = []
        for name, (kind, spans) in KINDS.items():
            request = json.loads((FIXTURES / f"{name}.json").read_text())
            request["body"] = (FIXTURES / f"{name}.envelope").read_bytes()
            self.templates.append((kind, spans, request, decode(request)))
        self.made = 0

    def take(self, n):
        return [self.next() for _ in range(n)]

    def next(self):
        kind, spans, request, body = self.templates[self.made % len(self.templates)]
        self.made += 1
        fresh = {}

        def replace(match):
            old = match.group(0)
            if old == FIXTURE_KEY.encode():
                return old
            return fresh.setdefault(old, uuid.uuid4().hex.encode())

        body = _HEX32.sub(replace, body)
        head = json.loads(body.split(b"\n", 1)[0])
        trace_id = head["trace"]["trace_id"]
        headers = {k: v.replace(FIXTURE_KEY, self.key) for k, v in request["headers"] if k.lower() not in _DROP}
        return Envelope(kind, head.get("event_id") or trace_id, trace_id, spans,
                        request["path"].replace(FIXTURE_KEY, self.key), headers, body)


@dataclass
class Ledger:
    """What was sent and what the server answered, per envelope id."""

    sent: dict = field(default_factory=dict)
    statuses: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self):
        return [self.sent[i] for i, s in self.statuses.items() if s == 200]

    def count(self, status):
        return sum(1 for s in self.statuses.values() if s == status)

    def note(self, envelope, status):
        with self.lock:
            self.sent[envelope.id] = envelope
            self.statuses[envelope.id] = status


def post(base_url, envelope, timeout=30):
    """(status, body); status None when the connection failed (the server is down or went down)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", envelope.path, body=envelope.body, headers=envelope.headers)
        response = conn.getresponse()
        return response.status, response.read()
    except OSError as e:
        return None, str(e).encode()
    finally:
        conn.close()


def send(base_url, envelopes, ledger, threads=4):
    """Sends every envelope (from `threads` threads) and notes each answer; returns the answers' bodies of
    failures, for messages."""
    failures = []
    todo = list(envelopes)

    def worker():
        while True:
            with ledger.lock:
                if not todo:
                    return
                envelope = todo.pop()
            status, body = post(base_url, envelope)
            ledger.note(envelope, status)
            if status != 200:
                with ledger.lock:
                    failures.append((status, body))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return failures


class Traffic:
    """Sends fresh envelopes from a background thread until stopped: load that keeps going through a fault."""

    def __init__(self, base_url, corpus, ledger, pause=0.0):
        self.base_url, self.corpus, self.ledger, self.pause = base_url, corpus, ledger, pause
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()

    def run(self):
        while not self.stopped.is_set():
            send(self.base_url, self.corpus.take(8), self.ledger, threads=2)
            time.sleep(self.pause)


def queue_rows(data_dir, sql):
    """Reads the local queue file, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{data_dir / 'queue.db'}?mode=ro", uri=True, timeout=5)) as db:
        return db.execute(sql).fetchall()


def wait_until(predicate, what, timeout=60.0, log=None):
    until(predicate, what, timeout, lambda: log.read_text()[-3000:] if log else "")


def check_stored_exactly_once(splat, ledger, lake=True):
    """Every acknowledged envelope is stored, once, in the database and (unless `lake` is false) in the lake;
    nothing is stored that was not sent; the issues' and releases' counters agree with the rows they count."""
    acked = ledger.acknowledged()
    assert acked, "nothing was acknowledged: the test proves nothing"
    errors = {e.id for e in acked if e.kind == "error"}
    transactions = {e.id: e for e in acked if e.kind == "transaction"}
    segments = {e.trace_id: e for e in acked if e.kind == "segment"}
    sent_errors = {e.id for e in ledger.sent.values() if e.kind == "error"}
    sent_traces = {e.trace_id: e for e in ledger.sent.values() if e.kind != "error"}

    # Events: the database (unique by id), then the lake, which has no constraint to hide a second copy.
    stored = {r["event_id"] for r in splat.query("SELECT event_id FROM events")}
    assert errors <= stored, f"{len(errors - stored)} acknowledged events lost"
    assert stored <= sent_errors, "events stored that were never sent"
    if lake:
        in_lake = Counter(r["event_id"].hex for r in splat.lake("SELECT event_id FROM lake.events"))
        assert set(in_lake) == stored and max(in_lake.values()) == 1, \
            f"lake events: {sum(in_lake.values())} rows for {len(stored)} events"

    # Transactions of both shapes: one row each, in the database and in the lake, with all their spans.
    rows = splat.query("SELECT trace_id, source, count(*) AS n FROM transactions GROUP BY trace_id, source")
    stored_traces = {r["trace_id"]: r["n"] for r in rows}
    expected = {e.trace_id for e in transactions.values()} | set(segments)
    assert expected <= set(stored_traces), f"{len(expected - set(stored_traces))} acknowledged transactions lost"
    assert set(stored_traces) <= set(sent_traces), "transactions stored that were never sent"
    assert max(stored_traces.values()) == 1
    if lake:
        lake_tx = Counter(r["trace_id"].hex for r in splat.lake("SELECT trace_id FROM lake.transactions"))
        assert lake_tx == Counter(set(stored_traces)), "each stored transaction is in the lake exactly once"
        lake_spans = {r["trace_id"].hex: r["n"] for r in splat.lake("SELECT trace_id, count(*) AS n FROM lake.spans GROUP BY 1")}
        assert lake_spans == {t: sent_traces[t].spans for t in stored_traces}, "every span in the lake exactly once"

    # Counters are updated in the same transaction as the rows: after a crash they still agree.
    [issues] = splat.query(
        "SELECT (SELECT sum(times_seen) FROM issues) AS seen, (SELECT count(*) FROM events) AS events,"
        " (SELECT sum(count) FROM issue_hours) AS hours,"
        " (SELECT count(*) FROM issues i WHERE times_seen <> (SELECT count(*) FROM events e WHERE e.issue_id = i.id)) AS off")
    assert issues == {"seen": len(stored), "events": len(stored), "hours": len(stored), "off": 0}, issues
    [release] = splat.query("SELECT sum(event_count) AS events, sum(transaction_count) AS transactions FROM releases")
    assert release == {"events": len(stored), "transactions": len(stored_traces)}, release
