"""What lets the stack idle at $0 an hour (see conftest.py and aws_lambda.py for the stack): ingest runs with
the template's environment, which names no database, and looks keys up in the key snapshot the writers of
keys publish to the bucket; the UI and `/_health` show the processor's recorded queue lag instead of asking
SQS; the monitor tick repairs a snapshot that went missing."""

import http.client
import json
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aws_lambda import Function, http_api_route, http_event, http_response, scheduled
from conftest import KEY_CACHE_SECS, _binary
from harness import until
from test_lambda_e2e import SLUG, _get

SNAPSHOT = "keys/snapshot.json"
INGEST_DOOR = http_api_route("ANY /api/{proxy+}")


def _envelope(function, key, project):
    """An SDK's error envelope to an ingest function, as the HTTP API hands it over: (status, headers, body)."""
    event_id = uuid.uuid4().hex
    body = b"\n".join([json.dumps({"event_id": event_id}).encode(), b'{"type":"event"}',
                       json.dumps({"message": "outside the vpc"}).encode()])
    headers = [("host", INGEST_DOOR.domain), ("content-type", "application/x-sentry-envelope"),
               ("x-sentry-auth", f"Sentry sentry_version=7, sentry_key={key}, sentry_client=splat-test/1")]
    event = http_event("POST", f"/api/{project}/envelope/", headers, body, "203.0.113.7", INGEST_DOOR)
    status, out_headers, out_body = http_response(function.invoke(event))
    return status, {k.lower(): v for k, v in out_headers}, out_body


def _dsn_parts(stack):
    return stack.dsn.split("//")[1].split("@")[0], stack.dsn.rsplit("/", 1)[1]


def _snapshot(stack, bucket=None):
    return json.loads(stack.s3.get_object(Bucket=bucket or stack.bucket, Key=SNAPSHOT)["Body"].read())


def test_ingest_runs_without_a_database(stack):
    """The ingest process has the template's environment: no database path, nothing mounted, and it works."""
    environ = Path(f"/proc/{stack.functions['splat-ingest'].proc.pid}/environ").read_bytes().split(b"\0")
    names = {v.partition(b"=")[0].decode() for v in environ if v}
    assert not {"SPLAT_DATABASE_PATH", "SPLAT_DATABASE_URL", "SPLAT_SQLITE_JOURNAL"} & names
    assert {"SPLAT_QUEUE_URL", "SPLAT_BUCKET"} <= names
    key, project = _dsn_parts(stack)
    assert _envelope(stack.functions["splat-ingest"], key, project)[0] == 200
    # The CLI's `project create` published what ingest read.
    snapshot = _snapshot(stack)
    # (With the project's slug, for DSNs that name the project by it.)
    assert snapshot["keys"][key] == {"project": int(project), "slug": "lambda-e2e", "enabled": True}


def test_a_new_stack_answers_503_until_keys_are_published(stack, tmp_path):
    """A fresh ingest instance on a bucket with no snapshot (a new stack before `splat project create`):
    503 with Retry-After and the reason, for any key; once the snapshot appears it accepts the project's key
    and refuses an unknown one, the key still checked before the body."""
    bucket = f"{stack.bucket}-fresh"
    stack.s3.create_bucket(Bucket=bucket)
    env = {**stack.envs["splat-ingest"], "SPLAT_BUCKET": bucket}
    fresh = Function("splat-ingest", _binary("splat-ingest"), env, tmp_path, cwd=tmp_path, log_name="fresh.log")
    try:
        fresh.wait_ready()
        key, project = _dsn_parts(stack)
        status, headers, body = _envelope(fresh, key, project)
        assert status == 503, body
        assert headers["retry-after"] == "60"
        assert "splat project create" in json.loads(body)["detail"]
        assert _envelope(fresh, uuid.uuid4().hex, project)[0] == 503

        stack.s3.copy_object(Bucket=bucket, Key=SNAPSHOT, CopySource={"Bucket": stack.bucket, "Key": SNAPSHOT})
        deadline = time.monotonic() + 10
        while (status := _envelope(fresh, key, project)[0]) == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200, fresh.log_tail()
        assert _envelope(fresh, uuid.uuid4().hex, project)[0] == 403
    finally:
        fresh.stop()


def _form(stack, session, page, action, fields):
    """A UI form posted through the front as a signed-in browser does it: the page first (its CSRF cookie and
    token), then the POST with the same-origin header. Returns the POST's status."""
    status, headers, _ = _get(f"{stack.front.url}{page}", session)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    form = urllib.parse.urlencode({"csrf": cookie.split("=", 1)[1], **fields}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", stack.front.server_address[1], timeout=30)
    try:
        conn.request("POST", action, body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": stack.front.url,
            "Cookie": f"{cookie}; {session['Cookie']}"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_key_disabled_in_the_ui_is_refused_by_ingest_within_the_cache_ttl(stack, ui_session):
    """A key added on the settings page reaches ingest through the snapshot the UI publishes; disabled there,
    ingest refuses it once its cached snapshot expires (SPLAT_KEY_CACHE_SECS)."""
    settings = f"/projects/{SLUG}/settings"
    ingest = stack.functions["splat-ingest"]
    _, project = _dsn_parts(stack)
    assert _form(stack, ui_session, settings, f"/projects/{SLUG}/keys", {"label": "ci-outside"}) == 303
    [row] = stack.query("SELECT public_key FROM project_keys WHERE label = 'ci-outside'")
    key = row["public_key"]
    assert _snapshot(stack)["keys"][key]["enabled"] is True, "published by the UI with its commit"
    until(lambda: _envelope(ingest, key, project)[0] == 200, "the new key accepted", KEY_CACHE_SECS + 5,
          ingest.log_tail)

    assert _form(stack, ui_session, settings, f"/projects/{SLUG}/keys/{key}/disable", {"confirm": "yes"}) == 303
    assert _snapshot(stack)["keys"][key]["enabled"] is False
    until(lambda: _envelope(ingest, key, project)[0] == 403, "the disabled key refused", KEY_CACHE_SECS + 5,
          ingest.log_tail)
    status, headers, _ = _envelope(ingest, key, project)
    assert status == 403 and "disabled" in headers["x-sentry-error"]


def test_the_monitor_tick_repairs_a_missing_snapshot(stack):
    """A publish lost after its commit (here: the object deleted) is put back by the next monitor tick, and a
    tick with nothing to repair writes nothing."""
    before = _snapshot(stack)
    stack.s3.delete_object(Bucket=stack.bucket, Key=SNAPSHOT)
    tick = scheduled(stack.functions["splat-processor"], "monitors")
    assert tick["keys_republished"] is True
    after = _snapshot(stack)
    assert after["keys"] == before["keys"] and after["version"] == before["version"]
    modified = stack.s3.head_object(Bucket=stack.bucket, Key=SNAPSHOT)["LastModified"]
    assert scheduled(stack.functions["splat-processor"], "monitors")["keys_republished"] is False
    assert stack.s3.head_object(Bucket=stack.bucket, Key=SNAPSHOT)["LastModified"] == modified


def test_health_and_the_queue_pill_show_the_processors_lag_not_sqs(stack, ui_session):
    """On SQS the UI never asks for the queue's depth: `/_health` and `/live.json` report what the processor
    recorded of its last batch (from SQS's SentTimestamp of the batch's oldest message)."""
    key, project = _dsn_parts(stack)
    time.sleep(1.1)  # a processor records the lag at most once a second
    sent_at = time.time()
    assert _envelope(stack.functions["splat-ingest"], key, project)[0] == 200
    [batch] = stack.wait_for("SELECT batch_at, lag_ms FROM queue_batches WHERE batch_at >= ?", int(sent_at * 1e6))
    assert 0 <= batch["lag_ms"] < 60_000
    status, _, body = _get(f"{stack.front.url}/_health")
    health = json.loads(body)
    assert status == 200 and health["queue_status"] == "healthy", health
    assert health["queue_depth"] is None
    # The row it read: this batch's, or one recorded since.
    [latest] = stack.query("SELECT batch_at, lag_ms FROM queue_batches")
    assert health["queue_lag_seconds"] in (batch["lag_ms"] / 1000, latest["lag_ms"] / 1000)
    last = datetime.fromisoformat(health["queue_last_batch_at"].replace("Z", "+00:00")).timestamp()
    assert int(sent_at) <= last <= datetime.now(timezone.utc).timestamp()
    status, _, body = _get(f"{stack.front.url}/live.json", ui_session)
    live = json.loads(body)
    assert status == 200 and live["queue_depth"] is None and live["queue_class"] == "ok", live
    assert live["queue_label"].endswith("s") and "last batch" in live["queue_caption"], live
