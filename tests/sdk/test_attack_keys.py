"""Keys and quotas against a leaked DSN, on a real `splat serve`: quotas per data category answered as Relay
does (429, Retry-After, X-Sentry-Rate-Limits naming the categories, the rest of an envelope accepted), the
real Python SDK holding back exactly the limited category, a leaked key disabled with `splat key disable`
and refused within the key cache time while a new key works, 1,000 monitor slugs capped at the default of
100 monitors per project, and a flood of new issues alerting the cap and then one digest."""

import http.client
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import SPLAT_BIN, start_splat
from test_notifications import http_receiver, Receiver, wait_until

HERE = Path(__file__).parent
RATELIMIT_CLIENT = HERE / "python_ratelimit_client.py"
RATE_LIMITS = re.compile(r"^(\d+):([a-z_;]+):(key|project):(key|project)_quota$")


def cli(splat, *args):
    """Runs `splat <args>` on the server's data directory (as an operator would, while it serves)."""
    done = subprocess.run([SPLAT_BIN, *args, "--data-dir", str(splat.db_path.parent)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"splat {' '.join(args)}: {done.stderr}"
    return done.stdout


def dsn_with(splat, key):
    parts = urlsplit(splat.dsn)
    return f"{parts.scheme}://{key}@{parts.hostname}:{parts.port}{parts.path}"


def envelope(*items, event_id=None):
    """An envelope of (type, payload) items; payloads are dicts (JSON) or bytes."""
    lines = [json.dumps({"event_id": event_id} if event_id else {}).encode()]
    for ty, payload in items:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        lines += [json.dumps({"type": ty, "length": len(body)}).encode(), body]
    return b"\n".join(lines) + b"\n"


def error_event(title="boom"):
    return {"level": "error", "platform": "python", "timestamp": time.time(),
            "exception": {"values": [{"type": title, "value": "went wrong"}]}}


def transaction_event():
    now = time.time()
    return {"type": "transaction", "transaction": "GET /leak", "start_timestamp": now - 0.1, "timestamp": now,
            "contexts": {"trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16], "op": "http.server"}},
            "spans": []}


def check_in(slug, status="ok"):
    return {"check_in_id": uuid.uuid4().hex, "monitor_slug": slug, "status": status}


def post(splat, key, body):
    """(status, headers, JSON body) of an envelope posted with `key` in X-Sentry-Auth."""
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        project = urlsplit(splat.dsn).path.strip("/")
        conn.request("POST", f"/api/{project}/envelope/", body=body, headers={
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=attack/1.0",
            "Content-Type": "application/x-sentry-envelope",
        })
        response = conn.getresponse()
        raw = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(raw or b"{}")
    finally:
        conn.close()


def limits_of(headers):
    """X-Sentry-Rate-Limits as {category: (scope, retry_after)}, checked against Relay's format."""
    out = {}
    for entry in headers["x-sentry-rate-limits"].split(", "):
        match = RATE_LIMITS.match(entry)
        assert match, f"not Relay's format: {entry!r}"
        retry, categories, scope, reason = match.groups()
        assert scope == reason and 1 <= int(retry) <= 60
        for category in categories.split(";"):
            out[category] = (scope, int(retry))
    return out


@pytest.fixture
def splat(tmp_path):
    # A one-second key cache, so quota and key changes apply fast.
    with start_splat(tmp_path, {"SPLAT_KEY_CACHE_SECS": "1"}) as server:
        yield server


def test_quotas_per_category_answer_429_and_drop_only_what_is_over(splat):
    key = splat.key
    cli(splat, "key", "limit", key, "transaction,attachment", "1")
    cli(splat, "project", "limit", "default", "span,monitor", "0")
    listed = cli(splat, "key", "list", "default")
    assert "limit span 0/min (project)" in listed and "limit transaction 1/min (key)" in listed

    status, _, _ = post(splat, key, envelope(("transaction", transaction_event())))
    assert status == 200, "the first transaction of the minute is within the quota"
    status, headers, _ = post(splat, key, envelope(("transaction", transaction_event())))
    assert status == 429
    assert limits_of(headers) == {"transaction": ("key", int(headers["retry-after"]))}

    status, headers, _ = post(splat, key, envelope(("span", {"trace_id": uuid.uuid4().hex, "span_id": "a" * 16})))
    assert (status, list(limits_of(headers))) == (429, ["span"])
    assert limits_of(headers)["span"][0] == "project"
    status, headers, _ = post(splat, key, envelope(("check_in", check_in("nightly"))))
    assert (status, list(limits_of(headers))) == (429, ["monitor"])
    # The HTTP check-in endpoint counts against the same quota.
    project = urlsplit(splat.dsn).path.strip("/")
    conn = http.client.HTTPConnection(urlsplit(splat.base_url).hostname, urlsplit(splat.base_url).port, timeout=10)
    conn.request("GET", f"/api/{project}/cron/nightly/{key}/?status=ok")
    response = conn.getresponse()
    assert (response.status, response.getheader("x-sentry-rate-limits").split(":")[1]) == (429, "monitor")
    conn.close()

    # An error with an over-quota span and check-in: the error is accepted, the rest dropped and named.
    event_id = uuid.uuid4().hex
    status, headers, body = post(splat, key, envelope(
        ("event", error_event("MixedEnvelope")), ("check_in", check_in("nightly")),
        ("span", {"trace_id": uuid.uuid4().hex, "span_id": "b" * 16}), event_id=event_id))
    assert (status, body) == (200, {"id": event_id})
    assert limits_of(headers) == {"span": ("project", int(headers["x-sentry-rate-limits"].split(":")[0])),
                                  "monitor": ("project", int(headers["x-sentry-rate-limits"].split(":")[0]))}
    # An attachment: the first is within its quota, the second is dropped while its event is kept.
    for n, expected in ((1, None), (2, {"attachment"})):
        status, headers, _ = post(splat, key, envelope(
            ("event", error_event(f"WithAttachment{n}")), ("attachment", b"log line\n")))
        assert status == 200
        assert (set(limits_of(headers)) if "x-sentry-rate-limits" in headers else None) == expected

    splat.wait_for("SELECT 1 FROM events WHERE title LIKE 'WithAttachment2%'")
    assert splat.scalar("SELECT count(*) FROM transactions") == 1, "only the first transaction was stored"
    assert splat.scalar("SELECT count(*) FROM events WHERE event_id = ?", event_id) == 1
    assert splat.scalar("SELECT count(*) FROM monitors") == 0
    counts = {r["item_type"]: r["n"] for r in splat.query(
        "SELECT item_type, sum(count) AS n FROM item_counts GROUP BY item_type")}
    assert counts.get("attachment") == 1 and "span" not in counts


def test_the_python_sdk_stops_sending_a_limited_category_and_keeps_sending_the_others(splat):
    # A key of its own, whose transactions are over quota from the start.
    key = re.search(r"^(\w+)\s+enabled\s+sdk\s+DSN: ", cli(splat, "key", "add", "default", "--label", "sdk"), re.M).group(1)
    dsn = dsn_with(splat, key)
    cli(splat, "key", "limit", key, "transaction", "0")
    steps = ["transaction", "error", "transaction", "error", "transaction"]
    done = subprocess.run([sys.executable, str(RATELIMIT_CLIENT), dsn, *steps],
                          capture_output=True, text=True, timeout=60, cwd=HERE)
    assert done.returncode == 0, done.stderr
    requests = json.loads(done.stdout.strip().splitlines()[-1])["requests"]
    # The first transaction is refused with a 429 naming `transaction`; after it the SDK sends only errors.
    assert [r["types"] for r in requests] == [["transaction"], ["event"], ["event"]], requests
    assert requests[0]["status"] == 429
    assert requests[0]["rate_limits"].split(":")[1:3] == ["transaction", "key"]
    assert [r["status"] for r in requests[1:]] == [200, 200]
    splat.wait_for("SELECT 1 FROM events", count=2)
    assert splat.scalar("SELECT count(*) FROM transactions") == 0


def test_a_leaked_key_is_cut_off_within_the_cache_time_while_a_new_key_works(splat):
    leaked = splat.key
    assert post(splat, leaked, envelope(("event", error_event("BeforeLeak"))))[0] == 200  # cached as enabled now
    added = cli(splat, "key", "add", "default", "--label", "replacement")
    fresh = re.search(r"^(\w+)\s+enabled\s+replacement", added, re.M).group(1)
    disabled = cli(splat, "key", "disable", leaked)
    assert re.search(rf"^{leaked}\s+disabled", disabled, re.M)

    started = time.monotonic()
    while post(splat, leaked, envelope(("event", error_event("Leaked"))))[0] == 200:
        assert time.monotonic() - started < 1 + 2, "the disabled key still works past the 1 s key cache"
        time.sleep(0.1)
    status, headers, _ = post(splat, leaked, envelope(("event", error_event("Leaked"))))
    assert (status, headers["x-sentry-error"]) == (403, "this key is disabled")
    print(f"disabled key refused after {time.monotonic() - started:.2f} s (key cache 1 s)")
    assert post(splat, fresh, envelope(("event", error_event("AfterLeak"))))[0] == 200

    # Rotating replaces a key in one step: the old one is refused, the new one (printed) accepted.
    rotated = cli(splat, "key", "rotate", fresh)
    old_line, new_line = rotated.strip().splitlines()
    assert old_line.startswith(fresh) and " disabled " in old_line
    newest = new_line.split()[0]
    assert "replacement" in new_line and f"{newest}@" in new_line
    deadline = time.monotonic() + 3
    while post(splat, fresh, envelope(("event", error_event("Rotated"))))[0] == 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert post(splat, newest, envelope(("event", error_event("Rotated"))))[0] == 200
    splat.wait_for("SELECT 1 FROM events WHERE title LIKE 'Rotated%'")


def test_a_thousand_monitor_slugs_make_at_most_the_default_hundred_monitors(splat):
    key = splat.key
    for batch in range(10):
        items = [("check_in", check_in(f"slug-{batch * 100 + n}")) for n in range(100)]
        assert post(splat, key, envelope(*items))[0] == 200
    splat.wait_for("SELECT 1 FROM item_counts WHERE item_type = 'check_in' GROUP BY item_type HAVING sum(count) >= 1000")
    assert splat.scalar("SELECT count(*) FROM monitors") == 100
    assert splat.scalar("SELECT count(*) FROM monitors WHERE slug = 'slug-0'") == 1
    assert splat.scalar("SELECT count(*) FROM monitors WHERE slug = 'slug-999'") == 0
    # Existing monitors keep working past the cap; new ones stay out.
    assert post(splat, key, envelope(("check_in", check_in("slug-0", "error")), ("check_in", check_in("brand-new"))))[0] == 200
    splat.wait_for("SELECT 1 FROM monitor_checkins c JOIN monitors m ON m.id = c.monitor_id WHERE m.slug = 'slug-0' AND c.status = 'error'")
    assert splat.scalar("SELECT count(*) FROM monitors") == 100
    assert "monitor cap reached" in splat.log_path.read_text()


def test_past_the_alert_cap_one_digest_replaces_the_rest(tmp_path):
    with http_receiver() as receiver:
        env = {"SPLAT_WEBHOOK_URL": f"{receiver}/hook", "SPLAT_MAX_ALERTS_PER_PROJECT_HOUR": "3"}
        with start_splat(tmp_path, env) as splat:
            for n in range(10):
                assert post(splat, splat.key, envelope(("event", error_event(f"FloodError{n}"))))[0] == 200
            splat.wait_for("SELECT 1 FROM issues", count=10)

            def hooks():
                return [json.loads(p["body"]) for p in Receiver.posts if p["path"] == "/hook"]

            digest = wait_until("the digest", lambda: [h for h in hooks() if h["event"] == "project.alerts_suppressed"], splat)
            time.sleep(1)  # nothing else may follow it
            events = [h["event"] for h in hooks()]
            assert events == ["issue.created"] * 3 + ["project.alerts_suppressed"], events
            [digest] = digest
            assert digest["digest"]["suppressed"] == 7
            assert digest["digest"]["text"] == "7 more alerts suppressed this hour"
            assert digest["url"].endswith("/projects/default/issues")
