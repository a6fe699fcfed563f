"""Source maps through the real Lambda stack (see conftest.py and aws_lambda.py): an API token made on the
UI's settings page, the real sentry-cli uploading a bundle to the UI function behind its CloudFront host,
the bundle in the bucket, and an error of the bundled app through ingest and the processor coming out with
its original files, functions and lines."""

import os
import re
import subprocess
import urllib.parse
import urllib.request

import pytest

from aws_lambda import UiDistribution
from conftest import ORIGIN_SECRET
from test_lambda_e2e import SLUG, _get
from test_sourcemaps import BIN, build_app, frames_of, run_app, stored_event


@pytest.fixture
def ui(stack):
    """The UI's own host, the one SENTRY_URL names (the stack's front is the ingest host)."""
    distribution = UiDistribution(ORIGIN_SECRET)
    distribution.routes.update(stack.front.routes)
    yield distribution
    distribution.stop()


def _token_from_the_settings_page(ui, ui_session):
    status, headers, _ = _get(f"{ui.url}/settings", ui_session)
    assert status == 200
    csrf = re.search(r"splat_csrf=([A-Za-z0-9_-]{43})", headers["Set-Cookie"]).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "label": "CI", "scope": "project:releases"}).encode()
    request = urllib.request.Request(f"{ui.url}/settings/tokens", data=form, headers={
        "Cookie": f"splat_csrf={csrf}; {ui_session['Cookie']}", "Origin": ui.url,
        "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return re.search(r"sntryu_[0-9a-f]{64}", response.read().decode()).group(0)


def test_sentry_cli_uploads_through_the_ui_function_and_errors_come_out_symbolicated(stack, ui, ui_session,
                                                                                       tmp_path):
    token = _token_from_the_settings_page(ui, ui_session)
    dist = build_app(tmp_path / "dist")
    env = {**os.environ, "SENTRY_URL": ui.url, "SENTRY_AUTH_TOKEN": token, "SENTRY_ORG": "splat",
           "SENTRY_PROJECT": SLUG, "SENTRY_LOG_LEVEL": "warn"}
    for args in (["sourcemaps", "inject", str(dist)], ["sourcemaps", "upload", str(dist)]):
        done = subprocess.run([str(BIN / "sentry-cli"), *args], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}\n{stack.logs()}"
    # Every request of the upload went to the UI function, none to ingest; the bundle is in the bucket and
    # its chunks are gone.
    uploads = [path for path, _ in ui.served if path.startswith("/api/0/")]
    assert any(p.endswith("/chunk-upload/") for p in uploads) and {r for _, r in ui.served} == {"ui"}
    assert not [p for p, _ in stack.front.served if p.startswith("/api/0/")]

    def keys(prefix):
        return [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])]

    [bundle] = keys("artifacts/bundles/")
    assert stack.scalar("SELECT blob_key FROM artifact_bundles") == bundle
    assert keys("artifacts/chunks/") == []

    # The app's error, sent by @sentry/node to the ingest host, read back from the processor's row.
    _, event = stored_event(stack, run_app(stack, dist))
    top = frames_of(event)[-3:]
    assert [(f["function"], f["filename"]) for f in top] == [
        ("checkout", "app/checkout.js"), ("applyQuantity", "app/checkout.js"), ("priceOf", "app/pricing.js")], top
    assert top[-1]["lineno"] == 7 and "no price for" in top[-1]["context_line"]
    assert frames_of(event, "raw_stacktrace")[-1]["filename"].endswith("dist/app.js")
