"""Hostile timestamps against a running `splat serve` (issue 15, item 5): SDK time is normalized as Relay
does it. A transaction from 1970 to 9999 with 1,000 spans spread over the years writes a bounded number of
lake files and is stored at the time it arrived, with a processing note on its page; an error dated in the
future cannot pin its issue's last_seen ahead; an SDK whose clock is an hour behind is corrected through
its envelope's `sent_at`."""

import json
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from harness import payload

YEAR_9999 = 253_402_300_799.0  # 9999-12-31T23:59:59Z
LAKE_TABLES = ("transactions", "spans", "events")


def envelope(items, sent_at=None):
    """An envelope of (type, JSON body[, extra item headers]) items, with `sent_at` in its header when
    given."""
    header = {"event_id": items[0][1].get("event_id", uuid.uuid4().hex)}
    if sent_at is not None:
        header["sent_at"] = sent_at
    lines = [json.dumps(header).encode()]
    for item_type, body, *extra in items:
        data = json.dumps(body).encode()
        item_header = {"type": item_type, "length": len(data), **(extra[0] if extra else {})}
        lines += [json.dumps(item_header).encode(), data]
    return b"\n".join(lines) + b"\n"


def post(splat, body):
    """Posts an envelope with the DSN's key in the query string, as browser SDKs do."""
    project = urlsplit(splat.dsn).path.strip("/")
    request = urllib.request.Request(
        f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}&sentry_version=7",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-sentry-envelope"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def page(splat, path):
    with urllib.request.urlopen(f"{splat.base_url}{path}", timeout=30) as response:
        return response.status, response.read().decode()


def lake_files(splat):
    """The parquet files under the data dir's lake folder, per table."""
    root = splat.db_path.parent / "lake" / "main"
    return {t: len(list((root / t).rglob("*.parquet"))) for t in LAKE_TABLES}


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def attack_transaction(spans=1_000):
    """The issue's envelope: a transaction from 1970 to 9999, its spans spread evenly over the years, each
    with a long description (about 600 KB in all)."""
    trace, root = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    step = YEAR_9999 / spans
    return {
        "event_id": uuid.uuid4().hex,
        "type": "transaction",
        "transaction": "GET /timeless",
        "start_timestamp": 0.0,
        "timestamp": YEAR_9999,
        "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}},
        "spans": [
            {"span_id": f"{i + 1:016x}", "parent_span_id": root, "trace_id": trace, "op": "db",
             "description": f"SELECT * FROM t{i} WHERE note = '{'x' * 480}'",
             "start_timestamp": i * step, "timestamp": (i + 1) * step}
            for i in range(spans)
        ],
    }


def test_a_transaction_from_1970_to_9999_writes_few_files_and_is_stored_now(splat):
    tx = attack_transaction()
    body = envelope([("transaction", tx)])
    assert len(body) > 500_000
    before = time.time()
    post(splat, body)
    [row] = splat.wait_for("SELECT id, start_time, end_time, payload FROM transactions")
    after = time.time()
    # Give the processor's lake upload (same commit) no excuse: the row is committed, so are its files.
    files = lake_files(splat)
    print(f"\nlake files for the 1970-to-9999 envelope: {files}")
    # Before normalization this wrote one spans file per day touched (about 1,000); now a batch writes at
    # most four per table (lake::MAX_FILES_PER_BATCH), and this one lands on a single day.
    assert files["transactions"] == 1 and files["spans"] <= 2, files

    # Stored at the time received, not in 1970 or 9999.
    for column in ("start_time", "end_time"):
        assert before - 5 <= row[column] / 1e6 <= after + 5, (column, row[column])
    [spans] = splat.lake(
        "SELECT count(*) AS n, min(timestamp) AS first, max(timestamp) AS last FROM lake.spans"
    )
    assert spans["n"] == 1_000, "the root and 999 children (the span cap)"
    first = spans["first"].replace(tzinfo=timezone.utc).timestamp()
    last = spans["last"].replace(tzinfo=timezone.utc).timestamp()
    assert before - 5 <= first <= last <= after + 5, spans

    # The payload is kept as sent, with what was corrected.
    stored = payload(row)
    assert stored["timestamp"] == YEAR_9999 and stored["start_timestamp"] == 0.0
    kinds = {n["kind"]: n for n in stored["splat"]["processing_notes"]}
    assert kinds["future_timestamp"]["sdk_time"].startswith("9999-12-31T23:59:59")
    assert kinds["past_timestamp"]["sdk_time"].startswith("1970-01-01T00:00:00")
    assert kinds["spans_clamped"]["count"] >= 998

    status, html = page(splat, f"/projects/default/transactions/{row['id']}")
    assert status == 200
    assert "Processing notes" in html and html.count("data-processing-note") == 3
    assert "was more than 60 s in the future" in html and "9999-12-31 23:59:59 UTC" in html
    assert html.count('class="span-row') == 1_000


def test_an_error_from_the_future_does_not_pin_its_issue(splat):
    now = time.time()
    future = {"event_id": uuid.uuid4().hex, "timestamp": now + 10 * 365 * 86_400, "platform": "python",
              "level": "error", "exception": {"values": [{"type": "TimeTravelError", "value": "from 2036"}]}}
    post(splat, envelope([("event", future)]))
    [issue] = splat.wait_for("SELECT id, first_seen, last_seen FROM issues")
    assert issue["last_seen"] / 1e6 <= time.time() + 60, "last_seen is when it arrived, not 2036"
    assert issue["first_seen"] / 1e6 >= now - 5
    [event] = splat.query("SELECT event_id, timestamp, payload FROM events")
    assert abs(event["timestamp"] / 1e6 - now) < 30
    assert payload(event)["splat"]["processing_notes"][0]["kind"] == "future_timestamp"

    # A later, ordinary event of another issue ranks above it.
    recent = {"event_id": uuid.uuid4().hex, "timestamp": time.time(), "platform": "python",
              "level": "error", "exception": {"values": [{"type": "KeyError", "value": "'sku'"}]}}
    post(splat, envelope([("event", recent)]))
    rows = splat.wait_for("SELECT title FROM issues ORDER BY last_seen DESC", count=2)
    assert rows[0]["title"].startswith("KeyError")

    status, html = page(splat, f"/projects/default/events/{event['event_id']}")
    assert status == 200
    assert "Processing notes" in html and "was more than 60 s in the future" in html


def test_an_sdk_clock_an_hour_behind_is_corrected(splat):
    now = datetime.now(timezone.utc)
    skewed = now - timedelta(hours=1)
    event = {"event_id": uuid.uuid4().hex, "timestamp": skewed.timestamp(), "platform": "python",
             "level": "error", "message": "my clock is an hour behind"}
    trace, root = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    tx = {"event_id": uuid.uuid4().hex, "type": "transaction", "transaction": "GET /skewed",
          "start_timestamp": skewed.timestamp() - 0.5, "timestamp": skewed.timestamp(),
          "contexts": {"trace": {"trace_id": trace, "span_id": root, "op": "http.server"}},
          "spans": [{"span_id": "a" * 16, "parent_span_id": root, "trace_id": trace, "op": "db",
                     "description": "SELECT 1", "start_timestamp": skewed.timestamp() - 0.4,
                     "timestamp": skewed.timestamp() - 0.3}]}
    # The SDK stamps sent_at with its own clock, an hour behind as well.
    post(splat, envelope([("event", event)], sent_at=iso(skewed.timestamp())))
    post(splat, envelope([("transaction", tx)], sent_at=iso(skewed.timestamp())))
    [stored] = splat.wait_for("SELECT timestamp, payload FROM events")
    [row] = splat.wait_for("SELECT start_time, end_time, duration_us FROM transactions")
    assert abs(stored["timestamp"] / 1e6 - now.timestamp()) < 30, "moved forward by the hour"
    assert abs(row["end_time"] / 1e6 - now.timestamp()) < 30
    assert row["duration_us"] == 500_000, "the whole moves: durations stay"
    note = payload(stored)["splat"]["processing_notes"][0]
    assert note["kind"] == "clock_drift" and note["field"] == "timestamp"
    [span] = splat.lake("SELECT timestamp FROM lake.spans WHERE span_id = '0xaaaaaaaaaaaaaaaa'::UBIGINT")
    assert abs(span["timestamp"].replace(tzinfo=timezone.utc).timestamp() - now.timestamp()) < 30

    # Without the skewed sent_at, an hour-old event is just an hour old.
    old = {**event, "event_id": uuid.uuid4().hex}
    post(splat, envelope([("event", old)], sent_at=iso(time.time())))
    rows = splat.wait_for("SELECT timestamp FROM events ORDER BY timestamp", count=2)
    assert abs(rows[0]["timestamp"] / 1e6 - skewed.timestamp()) < 1


def test_streamed_spans_from_1970_and_9999_are_stored_now(splat):
    """The span-v2 shape (the JavaScript SDK's streaming): a segment from 1970 and a child ending in 9999."""
    trace, seg = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    attrs = {"sentry.op": {"type": "string", "value": "http.server"},
             "sentry.segment.name": {"type": "string", "value": "GET /streamed-timeless"}}
    items = [
        {"trace_id": trace, "span_id": seg, "name": "GET /streamed-timeless", "is_segment": True, "status": "ok",
         "start_timestamp": 0.0, "end_timestamp": 1.0, "attributes": attrs},
        {"trace_id": trace, "span_id": "c" * 16, "parent_span_id": seg, "name": "SELECT 1", "status": "ok",
         "start_timestamp": time.time() - 1, "end_timestamp": YEAR_9999,
         "attributes": {"sentry.op": {"type": "string", "value": "db"},
                        "sentry.segment.id": {"type": "string", "value": seg}}},
    ]
    before = time.time()
    post(splat, envelope([("span", {"items": items},
                           {"item_count": 2, "content_type": "application/vnd.sentry.items.span.v2+json"})]))
    [row] = splat.wait_for("SELECT id, start_time, end_time FROM transactions")
    spans = splat.wait_for("SELECT span_id, start_time, end_time FROM spans ORDER BY span_id", count=2)
    after = time.time()
    assert before - 5 <= row["start_time"] / 1e6 <= row["end_time"] / 1e6 <= after + 5, row
    for span in spans:
        assert before - 5 <= span["start_time"] / 1e6 <= span["end_time"] / 1e6 <= after + 5, span
    assert lake_files(splat)["spans"] <= 2
    status, html = page(splat, f"/projects/default/transactions/{row['id']}")
    assert status == 200
    assert "Processing notes" in html and "older than the retention horizon" in html
    assert "1970-01-01 00:00:00 UTC" in html
