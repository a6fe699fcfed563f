"""An SDK that retries, or a proxy that replays, sends the same envelope again: Splat must store it once.

Real SDK requests are recorded (with the server's own DSN key, so the bytes authenticate) and then each is
delivered to Splat twice, byte for byte, chunked when the SDK sent it chunked."""

from urllib.parse import parse_qs, urlsplit

from harness import Recorder, decode, item_types, parse_envelope, replay, run_client

CLIENTS = [
    ("python", "error", "--compression", "gzip"),
    ("python", "transaction", "--compression", "br"),
    ("node", "error"),
    ("node", "spans"),
]


def record(splat, kind, scenario, *extra):
    """The requests an SDK client makes when its DSN (Splat's key and project) points at a recorder."""
    recorder = Recorder()
    try:
        parts = urlsplit(splat.dsn)
        report = run_client(kind, parts._replace(netloc=f"{splat.key}@127.0.0.1:{recorder.port}").geturl(), scenario, *extra)
    finally:
        recorder.stop()
    # Sessions carry no rows to duplicate; only the envelopes with data are replayed.
    return report["ids"], [r for r in recorder.requests if set(item_types(r)) - {"session"}]


def test_each_envelope_delivered_twice_is_stored_once(splat):
    recorded = [record(splat, *client) for client in CLIENTS]
    requests = [r for _, rs in recorded for r in rs]
    assert len(requests) == len(CLIENTS)
    for request in requests:
        for _ in range(2):
            status, body = replay(splat.base_url, request)
            assert status == 200, body

    # Every delivery is its own queue message; once all are in the ledger, the duplicates were processed
    # (not merely still queued) and the counts below are final.
    splat.wait_for("SELECT 1 FROM processed_messages", count=2 * len(requests))
    (py_error, _), (py_tx, _), (node_error, _), (node_spans, _) = recorded
    py_error, py_tx = py_error["error"], py_tx["transaction"]
    events = splat.query("SELECT event_id FROM events")
    assert sorted(r["event_id"] for r in events) == sorted([py_error, node_error["event_id"]])
    transactions = splat.query("SELECT trace_id, span_id, source FROM transactions ORDER BY source")
    assert [tuple(r.values()) for r in transactions] == [
        (node_spans["trace_id"], node_spans["span_id"], "span"),
        (py_tx["trace_id"], py_tx["span_id"], "transaction"),
    ]
    # Streamed spans wait in the database for their segment; every span, once, is in the lake.
    spans = splat.query("SELECT trace_id, count(*) AS n FROM spans GROUP BY trace_id")
    assert [(r["trace_id"], r["n"]) for r in spans] == [(node_spans["trace_id"], 8)]
    lake = splat.lake("SELECT trace_id, count(*) AS n FROM lake.spans GROUP BY trace_id")
    assert sorted((r["trace_id"].hex, r["n"]) for r in lake) == sorted([(py_tx["trace_id"], 10), (node_spans["trace_id"], 8)])


def test_node_wire_format_is_what_ingest_must_accept(splat):
    """Pins what @sentry/node 11 really sends, so a change of SDK behaviour shows up here, not as lost data."""
    _, [request] = record(splat, "node", "spans")
    headers = {k.lower(): v for k, v in request["headers"]}
    assert "content-type" not in headers and "x-sentry-auth" not in headers
    assert headers["transfer-encoding"] == "chunked"
    assert parse_qs(urlsplit(request["path"]).query)["sentry_key"] == [splat.key]
    envelope_headers, items = parse_envelope(decode(request))
    assert "event_id" not in envelope_headers
    [(item, _)] = items
    assert item == {"type": "span", "item_count": 8, "content_type": "application/vnd.sentry.items.span.v2+json"}
