"""Stored payloads compressed with a dictionary trained per project: the Python SDK's captured error
(tests/fixtures/sdk/python-error-gzip) sent again with fresh ids past the training threshold (store::dictionaries,
TRAIN_ON = 200); the later payloads name the dictionary, are much smaller, and the event pages show the early
(plain) and late (dictionary) events alike."""

import gzip
import json
import urllib.request
import uuid
from pathlib import Path

import zstandard

from harness import start_splat

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "sdk" / "python-error-gzip"
TRAIN_ON = 200


def send(splat, envelope, event_id):
    fixture_id = json.loads(FIXTURE.with_suffix(".json").read_text())["event_id"]
    body = gzip.compress(envelope.replace(fixture_id.encode(), event_id.encode()))
    project = splat.dsn.rsplit("/", 1)[1]
    url = f"{splat.base_url}/api/{project}/envelope/?sentry_key={splat.key}"
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def dict_id(frame):
    return zstandard.get_frame_parameters(frame).dict_id


def test_payloads_after_training_use_the_projects_dictionary(tmp_path):
    envelope = gzip.decompress(FIXTURE.with_suffix(".envelope").read_bytes())
    with start_splat(tmp_path) as splat:
        ids = [uuid.uuid4().hex for _ in range(TRAIN_ON + 60)]
        for event_id in ids[:TRAIN_ON]:
            send(splat, envelope, event_id)
        splat.wait_for("SELECT 1 FROM events", count=TRAIN_ON)
        [dictionary] = splat.wait_for("SELECT * FROM payload_dictionaries")
        assert dictionary["kind"] == "events"
        for event_id in ids[TRAIN_ON:]:
            send(splat, envelope, event_id)
        splat.wait_for("SELECT 1 FROM events", count=len(ids))

        frames = {r["event_id"]: r["payload"] for r in splat.query("SELECT event_id, payload FROM events")}
        first, last = frames[ids[0]], frames[ids[-1]]
        assert (dict_id(first), dict_id(last)) == (0, dictionary["dict_id"])
        assert len(last) * 3 < len(first), (len(last), len(first))
        decoder = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(dictionary["dictionary"]))
        assert json.loads(decoder.decompress(last))["event_id"] == ids[-1]

        # The pages decode both: the raw JSON and the event page.
        for event_id in (ids[0], ids[-1]):
            url = f"{splat.base_url}/projects/default/events/{event_id}/json"
            shown = json.loads(urllib.request.urlopen(url, timeout=10).read())
            assert shown["event_id"] == event_id
            assert shown["exception"]["values"][0]["type"] == "ZeroDivisionError"
            page = urllib.request.urlopen(f"{splat.base_url}/projects/default/events/{event_id}", timeout=10)
            assert page.status == 200 and b"ZeroDivisionError" in page.read()
