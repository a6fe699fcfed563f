"""The committed SDK fixtures (tests/fixtures/sdk, made by tests/fixtures/capture.py) stay usable: each matches
its sidecar, and Splat stores it when its auth is pointed at this server's key (the body stays byte-exact)."""

import json

import pytest

from harness import FIXTURE_KEY, ROOT, decode, parse_envelope, replay

FIXTURES = ROOT / "tests" / "fixtures" / "sdk"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.envelope"))


def load(name):
    sidecar = json.loads((FIXTURES / f"{name}.json").read_text())
    return sidecar, {**sidecar, "body": (FIXTURES / f"{name}.envelope").read_bytes()}


def test_the_documented_fixtures_exist():
    assert NAMES == ["node-error", "node-spans", "python-error-br", "python-error-gzip", "python-transaction-gzip"]


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_stored(splat, name):
    sidecar, request = load(name)
    assert len(request["body"]) == sidecar["body_bytes"]
    _, items = parse_envelope(decode(request))
    assert [header for header, _ in items] == sidecar["items"]

    # The key authenticates from X-Sentry-Auth (Python) or the query string (Node), never from the body.
    request["path"] = request["path"].replace(FIXTURE_KEY, splat.key)
    request["headers"] = [(k, v.replace(FIXTURE_KEY, splat.key)) for k, v in request["headers"]]
    status, body = replay(splat.base_url, request)
    assert status == 200, body

    header, data = items[0]
    if header["type"] == "event":
        [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", sidecar["event_id"])
        assert row["title"] == ("Error: node sdk boom" if name == "node-error" else "ZeroDivisionError: division by zero")
    elif header["type"] == "transaction":
        splat.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", sidecar["event_id"])
        # A classic transaction's spans live in the lake only: the root and its 8 children.
        trace_id = json.loads(data)["contexts"]["trace"]["trace_id"]
        assert splat.lake("SELECT count(*) AS n FROM lake.spans WHERE trace_id = ?", trace_id) == [{"n": 9}]
    else:
        trace_id = json.loads(data)["items"][0]["trace_id"]
        splat.wait_for("SELECT 1 FROM spans WHERE trace_id = ?", trace_id, count=header["item_count"])
        splat.wait_for("SELECT 1 FROM transactions WHERE trace_id = ? AND source = 'span'", trace_id)
