"""DSNs that name the project by its slug, as the seed printed them (`http://KEY@HOST/my-project`), next to
the numeric ones Splat prints: clients that build the URL themselves post to `/api/<slug>/envelope/` (an
envelope `dsn` header with the slug too) and `/api/<slug>/store/`, and a slug or DSN of another project is
refused. Today's Python and Node SDKs refuse a DSN whose project is not a number before sending."""

import http.client
import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import sentry_sdk.utils

from harness import run_client, start_splat


@pytest.fixture(scope="module")
def splat(tmp_path_factory):
    with start_splat(tmp_path_factory.mktemp("splat-slug")) as splat:
        yield splat


def slug_dsn(splat, slug="default"):
    parts = urlsplit(splat.dsn)
    return f"{parts.scheme}://{parts.username}@{parts.hostname}:{parts.port}/{slug}"


def post(splat, path, body, headers):
    parts = urlsplit(splat.dsn)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read().decode(), dict(response.getheaders())


def auth(splat):
    return {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={splat.key}, sentry_client=curl/8"}


def test_envelope_and_store_endpoints_take_the_slug(splat):
    envelope_id, store_id = uuid.uuid4().hex, uuid.uuid4().hex
    event = {"event_id": envelope_id, "level": "error", "timestamp": time.time(), "message": "slug envelope"}
    payload = json.dumps(event)
    body = f'{{"event_id":"{envelope_id}","dsn":"{slug_dsn(splat)}"}}\n{{"type":"event","length":{len(payload)}}}\n{payload}\n'
    status, text, _ = post(splat, "/api/default/envelope/", body, auth(splat))
    assert status == 200, text
    stored = {**event, "event_id": store_id, "message": "slug store"}
    status, text, _ = post(splat, "/api/default/store/", json.dumps(stored),
                           {**auth(splat), "Content-Type": "application/json"})
    assert status == 200, text
    for event_id in (envelope_id, store_id):
        assert splat.wait_for("SELECT project_id FROM events WHERE event_id = ?", event_id)[0]["project_id"] == 1


def test_a_slug_or_dsn_of_another_project_is_refused(splat):
    event = json.dumps({"level": "error", "message": "nope"})
    body = f'{{}}\n{{"type":"event","length":{len(event)}}}\n{event}\n'
    status, _, headers = post(splat, "/api/someone-else/envelope/", body, auth(splat))
    assert status == 403 and "someone-else" in headers.get("x-sentry-error", ""), headers
    wrong_dsn = body.replace("{}", json.dumps({"dsn": slug_dsn(splat, "other")}), 1)
    status, _, headers = post(splat, "/api/default/envelope/", wrong_dsn, auth(splat))
    assert status == 403, headers
    status, _, headers = post(splat, "/api/not%20a%20slug/envelope/", body, auth(splat))
    assert status == 400, headers


def test_the_sdks_themselves_refuse_a_slug_dsn(splat):
    """Today's SDKs want a numeric project (the seed's slug DSNs served clients that build the URL
    themselves): the Python SDK raises BadDsn, the Node SDK (an npm build, with its DSN checks) sends
    nothing. Both send through the numeric DSN Splat prints."""
    with pytest.raises(sentry_sdk.utils.BadDsn):
        sentry_sdk.utils.Dsn(slug_dsn(splat))
    assert run_client("node", slug_dsn(splat), "error")["requests"] == []
    report = run_client("node", splat.dsn, "error")
    assert report["requests"] and all(r["status"] == 200 for r in report["requests"]), report
