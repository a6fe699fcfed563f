"""`splat serve` with its database on a real libSQL server (sqld, see sqld.py) instead of a local file:
SPLAT_DATABASE_URL and SPLAT_DATABASE_TOKEN (an EdDSA JWT). The Python SDK's errors and transaction are
stored there, the UI answers from there, a redelivered envelope is stored once, a wrong token is refused.
Rows are read through sqld's HTTP API with the token. A proxy in front of sqld counts the Hrana requests
of each processor batch (printed with `-s`)."""

import json
import os
import subprocess
import time
import uuid
import urllib.request
from urllib.parse import urlsplit

import pytest

from harness import SPLAT_BIN, Recorder, item_types, lake_query, replay, run_client, start_splat
from sqld import CountingProxy, KeyPair, start_sqld


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("remote")
    with start_sqld(workdir) as sqld:
        proxy = CountingProxy(sqld.url)
        env = {"SPLAT_DATABASE_URL": proxy.url, "SPLAT_DATABASE_TOKEN": sqld.token}
        try:
            with start_splat(workdir, env) as splat:
                # No local database file exists to read: every read goes to the server, as Splat's do.
                splat.query = sqld.query
                yield splat, sqld, proxy
        finally:
            proxy.stop()


@pytest.fixture(scope="module")
def sent(remote):
    splat, _, _ = remote
    report = run_client("python", splat.dsn, "error", "message", "transaction", "--compression", "gzip")
    assert [r["status"] for r in report["requests"]] == [200] * 3
    return report["ids"]


def test_a_wrong_token_is_refused(remote, tmp_path):
    _, sqld, _ = remote
    probe = [{"type": "execute", "stmt": {"sql": "SELECT count(*) FROM projects"}}, {"type": "close"}]
    assert sqld.pipeline(probe)[0] == 200
    assert sqld.pipeline(probe, token="not-a-jwt")[0] == 401
    assert sqld.pipeline(probe, token=KeyPair().token())[0] == 401, "signed by another key"
    # Splat with a token the server refuses stops at start-up and says why, without printing the token.
    bad = KeyPair().token()
    run = subprocess.run(
        [SPLAT_BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "SPLAT_DATABASE_URL": sqld.url, "SPLAT_DATABASE_TOKEN": bad},
        capture_output=True, text=True, timeout=30,
    )
    assert run.returncode != 0
    assert "401" in run.stderr and bad not in run.stderr + run.stdout, run.stderr


def test_sdk_errors_and_transaction_are_stored_on_the_server(remote, sent):
    splat, _, _ = remote
    [error] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", sent["error"])
    assert (error["title"], error["exception_type"]) == ("ZeroDivisionError: division by zero", "ZeroDivisionError")
    assert error["issue_id"] is not None
    [message] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", sent["message"])
    assert (message["title"], message["level"]) == ("splat sdk test message", "warning")
    tx = sent["transaction"]
    [row] = splat.wait_for("SELECT * FROM transactions WHERE event_id = ?", tx["event_id"])
    assert (row["trace_id"], row["name"], row["source"]) == (tx["trace_id"], "sdk-test/checkout", "transaction")
    issues = splat.query("SELECT title, times_seen FROM issues ORDER BY title")
    assert issues == [{"title": "ZeroDivisionError: division by zero", "times_seen": 1},
                      {"title": "splat sdk test message", "times_seen": 1}]
    # The spans went to the lake, registered in the catalog on the server (the parquet files are local).
    splat.wait_for("SELECT 1 FROM ducklake_data_file")
    assert not splat.db_path.exists(), "no local database file"


def test_ui_pages_answer_from_the_server(remote, sent):
    splat, _, _ = remote
    splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", sent["transaction"]["event_id"])
    [error] = splat.wait_for("SELECT issue_id FROM events WHERE event_id = ?", sent["error"])
    slug = splat.query("SELECT slug FROM projects ORDER BY id")[0]["slug"]
    [tx] = splat.query("SELECT id FROM transactions")
    pages = ["/", f"/projects/{slug}", f"/projects/{slug}/issues", f"/projects/{slug}/issues/{error['issue_id']}",
             f"/projects/{slug}/events/{sent['error']}", f"/projects/{slug}/performance",
             f"/projects/{slug}/transactions/{tx['id']}", "/settings", "/_health"]
    for page in pages:
        with urllib.request.urlopen(splat.base_url + page, timeout=10) as response:
            assert response.status == 200, page
            body = response.read().decode()
    assert json.loads(body)["database"] == "ok"


def test_redelivery_writes_nothing_twice(remote, sent):
    splat, _, proxy = remote
    recorder = Recorder()
    try:
        parts = urlsplit(splat.dsn)
        dsn = parts._replace(netloc=f"{splat.key}@127.0.0.1:{recorder.port}").geturl()
        ids = run_client("python", dsn, "error", "transaction", "--compression", "br")["ids"]
    finally:
        recorder.stop()
    requests = [r for r in recorder.requests if set(item_types(r)) - {"session"}]
    assert len(requests) == 2
    before = splat.query("SELECT count(*) AS n FROM processed_messages")[0]["n"]
    for request in requests:
        for _ in range(2):
            status, body = replay(splat.base_url, request)
            assert status == 200, body
    splat.wait_for("SELECT 1 FROM processed_messages", count=before + 4)
    assert len(splat.query("SELECT 1 FROM events WHERE event_id = ?", ids["error"])) == 1
    assert len(splat.query("SELECT 1 FROM transactions WHERE event_id = ?", ids["transaction"]["event_id"])) == 1
    [issue] = splat.query("SELECT times_seen FROM issues WHERE title LIKE 'ZeroDivisionError%'")
    assert issue["times_seen"] == 2, "the first run's error and this one, each once"



def test_batch_commit_round_trips(remote):
    """Fifty error envelopes at once, then twenty transactions: every message is committed inside one Hrana
    transaction of its batch in two requests, and the proxy's count of requests and time per batch is
    printed (run with -s)."""
    splat, _, proxy = remote
    project, key = splat.dsn.rsplit("/", 1)[1], splat.key

    def send_all(items):
        before = splat.query("SELECT count(*) AS n FROM processed_messages")[0]["n"]
        start = len(proxy.records)
        for kind, payload in items:
            body = b"\n".join(json.dumps(x).encode() for x in ({"event_id": uuid.uuid4().hex}, {"type": kind}, payload))
            request = urllib.request.Request(f"{splat.base_url}/api/{project}/envelope/?sentry_key={key}", data=body,
                                             method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        splat.wait_for("SELECT 1 FROM processed_messages", count=before + len(items))
        records, proxy.records = proxy.records, proxy.records[start:]
        batches = proxy.transactions("INSERT OR IGNORE INTO processed_messages")
        proxy.records = records
        # (A session or client report sent earlier may share the first batch.)
        assert sum(b["marked"] for b in batches) >= len(items), batches
        return batches

    errors = send_all([("event", {"message": f"remote batch {i}", "level": "error"}) for i in range(50)])

    def transaction(i):
        now, trace, root = time.time(), uuid.uuid4().hex, uuid.uuid4().hex[:16]
        span = {"trace_id": trace, "span_id": uuid.uuid4().hex[:16], "parent_span_id": root, "op": "db",
                "description": "SELECT 1", "start_timestamp": now - 0.4, "timestamp": now - 0.3}
        return {"type": "transaction", "transaction": f"GET /remote/{i % 3}", "start_timestamp": now - 0.5,
                "timestamp": now, "spans": [span],
                "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}}}

    transactions = send_all([("transaction", transaction(i)) for i in range(20)])
    # Two requests a batch, the protocol's floor: BEGIN with every read the batch needs (stored events,
    # issues and the next issue id; stored transaction and span keys; rollup cells; the lake catalog's
    # state), then every write with the catalog's rows and COMMIT (BENCHMARKS.md, "A processor batch on a
    # remote libSQL server"); 4 and 5 when each kind of read went on its own, 135 when each statement did.
    # However the messages fall into batches, none takes more.
    for b in errors + transactions:
        assert b["requests"] == 2, b
        print(f"\nprocessor batch over Hrana: {b['marked']} messages, {b['requests']} requests "
              f"({b['lake_requests']} for the lake catalog, {b['describes']} describes, {b['cursors']} cursors), {b['seconds'] * 1000:.1f} ms BEGIN to COMMIT on loopback")


def test_stock_duckdb_reads_the_lake_through_an_exported_catalog(remote, sent, tmp_path):
    """No splat.db to attach: `splat lake export-catalog` copies the catalog from the server into a SQLite
    file, and stock DuckDB reads the spans of the SDK's transaction with it."""
    splat, sqld, _ = remote
    tx = sent["transaction"]
    splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", tx["event_id"])
    out = tmp_path / "catalog.sqlite"
    run = subprocess.run(
        [SPLAT_BIN, "lake", "export-catalog", str(out), "--data-dir", str(splat.db_path.parent)],
        env={**os.environ, "SPLAT_DATABASE_URL": sqld.url, "SPLAT_DATABASE_TOKEN": sqld.token},
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    spans = lake_query(out, "SELECT span_id, sequence FROM lake.spans WHERE trace_id = ? ORDER BY sequence",
                       tx["trace_id"])
    assert [s["sequence"] for s in spans] == list(range(10))
    assert spans[0]["span_id"] == int(tx["span_id"], 16)
    [count] = lake_query(out, "SELECT count(*) AS n FROM lake.events")
    assert count["n"] == len(splat.query("SELECT 1 FROM events"))


def test_https_to_the_server_checks_its_certificate(remote, tmp_path):
    """The same server behind TLS: Splat connects over https with the system's roots (here a test CA given
    through SSL_CERT_FILE, which the system-roots loader honours) and refuses it with the system's own roots,
    which do not trust that CA."""
    from sqld import tls_server

    _, sqld, _ = remote
    ca_file, context = tls_server(tmp_path)
    proxy = CountingProxy(sqld.url, tls=context)
    try:
        env = {"SPLAT_DATABASE_URL": proxy.url, "SPLAT_DATABASE_TOKEN": sqld.token, "SSL_CERT_FILE": str(ca_file)}
        (tmp_path / "trusted").mkdir()
        with start_splat(tmp_path / "trusted", env) as splat:
            with urllib.request.urlopen(splat.base_url + "/_health", timeout=10) as response:
                assert json.loads(response.read())["database"] == "ok"
        assert any(r["path"].endswith("/pipeline") for r in proxy.records), "the requests went over TLS"
        untrusted = subprocess.run(
            [SPLAT_BIN, "project", "list", "--data-dir", str(tmp_path / "untrusted")],
            env={**{k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"},
                 "SPLAT_DATABASE_URL": proxy.url, "SPLAT_DATABASE_TOKEN": sqld.token},
            capture_output=True, text=True, timeout=30,
        )
        assert untrusted.returncode != 0, untrusted.stdout
        assert "certificate" in untrusted.stderr.lower() or "invalid peer" in untrusted.stderr.lower(), untrusted.stderr
    finally:
        proxy.stop()


def test_a_large_event_is_stored_whole(remote):
    """An event near the size limit whose payload hardly compresses: its row (the payload a blob literal in
    the batched writes, twice its size in hex; the message text with a quote, a NUL and non-ASCII) reaches the server
    intact, with a small event of the same batch."""
    import base64
    import random
    import zlib

    splat, _, _ = remote
    project, key = splat.dsn.rsplit("/", 1)[1], splat.key
    # Without digits: data scrubbing (on by default) rightly filters what reads as a card number or an IBAN,
    # and 800,000 random base64 characters now and then hold one that passes its checksum.
    noise = base64.b64encode(random.randbytes(600_000)).decode().translate(str.maketrans("0123456789", "ghijklmnop"))
    ids = []
    for extra in ({"blob": noise}, {"small": "x"}):
        event_id = uuid.uuid4().hex
        # Quotes, a NUL and SQL punctuation in text columns (the message), next to the blob.
        body = json.dumps({"message": "remote large event: it's \u0000 -- ; é ☃ 🦀", "level": "error", "extra": extra}).encode()
        envelope = b'{"event_id":"%s"}\n{"type":"event"}\n' % event_id.encode() + body
        request = urllib.request.Request(f"{splat.base_url}/api/{project}/envelope/?sentry_key={key}",
                                         data=zlib.compress(envelope), method="POST",
                                         headers={"Content-Encoding": "deflate"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        ids.append(event_id)
    for event_id in ids:
        splat.wait_for("SELECT 1 FROM events WHERE event_id = ?", event_id)
    [row] = splat.query("SELECT length(payload) AS n FROM events WHERE event_id = ?", ids[0])
    assert row["n"] > 400_000, row
    slug = splat.query("SELECT slug FROM projects ORDER BY id")[0]["slug"]
    with urllib.request.urlopen(f"{splat.base_url}/projects/{slug}/events/{ids[0]}/json", timeout=10) as response:
        stored = json.loads(response.read())
    [row] = splat.query("SELECT message FROM events WHERE event_id = ?", ids[0])
    assert row["message"] == "remote large event: it's \u0000 -- ; é ☃ 🦀", "the same text as a bound parameter gives"
    assert stored["extra"]["blob"] == noise
