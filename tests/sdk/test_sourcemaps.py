"""The real sentry-cli (npm @sentry/cli, tests/sdk/maps) against `splat serve`: API tokens, releases,
deploys and source map uploads (issue 18), with SENTRY_URL, SENTRY_AUTH_TOKEN, SENTRY_ORG and
SENTRY_PROJECT as CI sets them."""

import gzip
import hashlib
import http.client
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import ROOT, SPLAT_BIN, start_splat

MAPS = ROOT / "tests" / "sdk" / "maps"
BIN = MAPS / "node_modules" / ".bin"
APP = MAPS / "app"


def splat_cli(splat, *args):
    done = subprocess.run(
        [SPLAT_BIN, "--data-dir", str(splat.db_path.parent), *args],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def create_token(splat, scope="project:releases"):
    out = splat_cli(splat, "token", "create", "CI", "--scope", scope)
    token = re.search(r"sntryu_[0-9a-f]{64}", out).group(0)
    token_id = int(out.split()[0])
    return token, token_id


def sentry_cli(splat, token, *args, cwd=None, check=True):
    env = {
        **os.environ,
        "SENTRY_URL": splat.base_url,
        "SENTRY_AUTH_TOKEN": token,
        "SENTRY_ORG": "splat",
        "SENTRY_PROJECT": "default",
        "SENTRY_LOG_LEVEL": "warn",
    }
    done = subprocess.run([str(BIN / "sentry-cli"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done


def build_app(out_dir, entry="app.js"):
    """The test app bundled and minified by esbuild, with a source map (names and sources content)."""
    # Built from a copy beside the output, so the map names the sources `../app/…` as a project's would.
    import shutil

    sources = out_dir.parent / "app"
    shutil.copytree(APP, sources, dirs_exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(BIN / "esbuild"), str(sources / entry), "--bundle", "--minify", "--sourcemap", "--platform=node",
         "--external:@sentry/node", f"--outfile={out_dir / 'app.js'}"],
        check=True, capture_output=True, timeout=60,
    )
    return out_dir


@pytest.fixture
def splat(tmp_path):
    with start_splat(tmp_path) as server:
        yield server


def test_releases_and_deploys_from_sentry_cli(splat):
    token, _ = create_token(splat)
    assert "Created release 1.0" in sentry_cli(splat, token, "releases", "new", "1.0").stdout
    assert "Finalized release 1.0" in sentry_cli(splat, token, "releases", "finalize", "1.0").stdout
    assert "production" in sentry_cli(splat, token, "deploys", "new", "-r", "1.0", "-e", "production").stdout
    [release] = splat.query("SELECT * FROM release_marks")
    assert release["version"] == "1.0" and release["finalized_at"] is not None
    [deploy] = splat.query("SELECT * FROM deploys")
    assert (deploy["version"], deploy["environment"]) == ("1.0", "production")
    assert "Archived release 1.0" in sentry_cli(splat, token, "releases", "archive", "1.0").stdout
    assert "Method: Auth Token" in sentry_cli(splat, token, "info").stdout
    listed = sentry_cli(splat, token, "releases", "list").stdout
    assert "1.0" in listed
    assert "production" in sentry_cli(splat, token, "deploys", "list", "-r", "1.0").stdout
    # Commits are not tracked: refused with the reason, not a crash.
    refused = sentry_cli(splat, token, "releases", "set-commits", "1.0", "--commit", "repo@abc", check=False)
    assert refused.returncode != 0
    assert "does not track commits" in refused.stdout + refused.stderr


def test_unknown_read_only_and_revoked_tokens_are_refused(splat):
    unknown = sentry_cli(splat, "sntryu_" + "0" * 64, "releases", "new", "2.0", check=False)
    assert unknown.returncode != 0 and "Invalid token" in unknown.stderr
    read, _ = create_token(splat, "read")
    refused = sentry_cli(splat, read, "releases", "new", "2.0", check=False)
    assert refused.returncode != 0 and "permission" in refused.stderr
    token, token_id = create_token(splat)
    sentry_cli(splat, token, "releases", "new", "2.0")
    assert "revoked" in splat_cli(splat, "token", "revoke", str(token_id))
    revoked = sentry_cli(splat, token, "releases", "new", "3.0", check=False)
    assert revoked.returncode != 0 and "Invalid token" in revoked.stderr
    # Sentry's error shape, at the HTTP level too.
    status, body = request(splat, "GET", "/api/0/organizations/splat/releases/", token=token)
    assert (status, body) == (401, {"detail": "Invalid token"})
    status, body = request(splat, "GET", "/api/0/organizations/splat/releases/")
    assert status == 401 and "detail" in body
    assert splat.scalar("SELECT count(*) FROM release_marks") == 1


def test_sourcemaps_inject_and_upload_index_the_bundle(splat, tmp_path):
    token, _ = create_token(splat)
    dist = build_app(tmp_path / "dist")
    sentry_cli(splat, token, "sourcemaps", "inject", str(dist))
    debug_id = re.search(r"debugId=([0-9a-f-]{36})", (dist / "app.js").read_text()).group(1)
    out = sentry_cli(splat, token, "sourcemaps", "upload", str(dist)).stdout
    assert "File processing complete" in out
    files = {r["kind"]: r for r in splat.query("SELECT * FROM artifact_files")}
    assert files["minified_source"]["url"] == "~/app.js"
    assert files["source_map"]["debug_id"] == debug_id
    [bundle] = splat.query("SELECT * FROM artifact_bundles")
    assert (splat.db_path.parent / bundle["blob_key"]).exists()
    # Uploading the same bundle again stores nothing twice.
    sentry_cli(splat, token, "sourcemaps", "upload", str(dist))
    assert splat.scalar("SELECT count(*) FROM artifact_bundles") == 1


def test_a_chunk_whose_sha1_is_not_its_name_is_refused(splat):
    token, _ = create_token(splat)
    data = b"chunk bytes"
    wrong = hashlib.sha1(b"other bytes").hexdigest()
    status, body = post_chunk(splat, token, wrong, gzip.compress(data))
    assert status == 400 and "its SHA-1 is " + hashlib.sha1(data).hexdigest() in body["detail"], body
    status, _ = post_chunk(splat, token, hashlib.sha1(data).hexdigest(), gzip.compress(data))
    assert status == 200
    # The options sentry-cli reads first.
    status, options = request(splat, "GET", "/api/0/organizations/splat/chunk-upload/", token=token)
    assert status == 200 and options["hashAlgorithm"] == "sha1" and options["compression"] == ["gzip"]
    assert "artifact_bundles" in options["accept"] and options["url"] == "/api/0/organizations/splat/chunk-upload/"


def test_a_50_mb_map_is_refused_at_upload_with_its_reason(splat, tmp_path):
    token, _ = create_token(splat)
    dist = tmp_path / "big"
    dist.mkdir()
    (dist / "big.js").write_text("function a(){throw new Error('x')}\n//# sourceMappingURL=big.js.map\n")
    padding = "a" * (50 * 1000 * 1000)
    (dist / "big.js.map").write_text(json.dumps({
        "version": 3, "sources": ["big.ts"], "names": [], "mappings": "AAAA", "sourcesContent": [padding],
    }))
    done = sentry_cli(splat, token, "sourcemaps", "upload", "--release", "1.0", str(dist), check=False)
    assert done.returncode != 0
    assert "~/big.js.map is" in done.stderr and "SPLAT_MAX_ARTIFACT_FILE_BYTES" in done.stderr, done.stderr
    assert splat.scalar("SELECT count(*) FROM artifact_bundles") == 0


def request(splat, method, path, body=None, token=None, headers=None):
    url = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, json.loads(raw or b"null")


def post_chunk(splat, token, name, data):
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file_gzip\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return request(
        splat, "POST", "/api/0/organizations/splat/chunk-upload/", body=body, token=token,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def page(splat, method, path, headers=None, body=None):
    url = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    out = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    conn.close()
    return out


def test_tokens_from_the_settings_page_are_shown_once_and_revoked_there(splat):
    from urllib.parse import urlencode

    _, headers, _ = page(splat, "GET", "/settings")
    csrf = re.search(r"splat_csrf=([A-Za-z0-9_-]{43})", headers["set-cookie"]).group(1)
    form_headers = {"Cookie": f"splat_csrf={csrf}", "Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = page(splat, "POST", "/settings/tokens", form_headers,
                           urlencode({"csrf": csrf, "label": "deploy bot", "scope": "project:releases"}))
    assert status == 200, body
    token = re.search(r"sntryu_[0-9a-f]{64}", body).group(0)
    # The list shows its first characters only, and the next view of the page not the token.
    _, _, again = page(splat, "GET", "/settings", {"Cookie": f"splat_csrf={csrf}"})
    assert "deploy bot" in again and token[:15] in again and token not in again
    sentry_cli(splat, token, "releases", "new", "4.0")
    token_id = splat.scalar("SELECT id FROM api_tokens WHERE label = 'deploy bot'")
    status, _, _ = page(splat, "POST", f"/settings/tokens/{token_id}/revoke", form_headers, urlencode({"csrf": csrf}))
    assert status == 303
    assert sentry_cli(splat, token, "releases", "new", "5.0", check=False).returncode != 0


NODE_MODULES = ROOT / "tests" / "sdk" / "node" / "node_modules"


def run_app(splat, dist, release=None):
    """The bundled app under the real @sentry/node (resolved from the Node SDK client's packages)."""
    done = subprocess.run(
        ["node", str(dist / "app.js"), splat.dsn, release or ""],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])["event_id"]


def stored_event(splat, event_id):
    from harness import payload

    [row] = splat.wait_for("SELECT * FROM events WHERE event_id = ?", event_id.replace("-", ""))
    return row, payload(row)


def frames_of(event, key="stacktrace"):
    return event["exception"]["values"][0][key]["frames"]


def test_node_errors_are_symbolicated_by_debug_id(splat, tmp_path):
    token, _ = create_token(splat)
    dist = build_app(tmp_path / "dist")
    sentry_cli(splat, token, "sourcemaps", "inject", str(dist))
    sentry_cli(splat, token, "sourcemaps", "upload", str(dist))
    row, event = stored_event(splat, run_app(splat, dist))
    frames = frames_of(event)
    top = frames[-3:]
    assert [f["function"] for f in top] == ["checkout", "applyQuantity", "priceOf"], top
    assert [f["filename"] for f in top] == ["app/checkout.js", "app/checkout.js", "app/pricing.js"], top
    assert top[-1]["lineno"] == 7 and top[-1]["context_line"].strip() == "throw new Error(`no price for ${sku}`);"
    assert top[-1]["pre_context"][-1].strip() == "if (price === undefined) {"
    assert all(f["in_app"] for f in top)
    # The minified frames are kept beside them.
    raw = frames_of(event, "raw_stacktrace")[-1]
    assert raw["filename"].endswith("dist/app.js") and raw["function"] != "priceOf"
    # Full-text search and grouping see the original names.
    assert splat.scalar("SELECT count(*) FROM issues_fts WHERE issues_fts MATCH 'priceOf'") == 1
    assert "splat" not in event or not event["splat"].get("processing_notes")


def test_node_errors_are_symbolicated_by_release_without_debug_ids(splat, tmp_path):
    token, _ = create_token(splat)
    dist = build_app(tmp_path / "dist")
    sentry_cli(splat, token, "releases", "new", "shop@2")
    sentry_cli(splat, token, "sourcemaps", "upload", "--release", "shop@2", "--url-prefix", "~/dist", str(dist))
    _, event = stored_event(splat, run_app(splat, dist, release="shop@2"))
    top = frames_of(event)[-1]
    assert (top["function"], top["filename"], top["lineno"]) == ("priceOf", "app/pricing.js", 7), top


def test_a_missing_or_corrupt_map_leaves_the_frames_with_a_note(splat, tmp_path):
    token, _ = create_token(splat)
    dist = build_app(tmp_path / "dist")
    sentry_cli(splat, token, "sourcemaps", "inject", str(dist))
    # Missing: nothing uploaded.
    _, event = stored_event(splat, run_app(splat, dist))
    assert frames_of(event)[-1]["filename"].endswith("dist/app.js")
    [note] = event["splat"]["processing_notes"]
    assert note["kind"] == "source_map" and note["message"].startswith("source map not found for ")
    # Corrupt: sentry-cli will not upload a map that is not JSON, so the bundle is sent as it would
    # send one (chunk, then assemble), for the release the app reports, found by release and URL.
    broken = build_app(tmp_path / "broken")
    upload_bundle(splat, token, "shop@3", {
        "~/broken/app.js": ("minified_source", (broken / "app.js").read_bytes(), {"sourcemap": "app.js.map"}),
        "~/broken/app.js.map": ("source_map", b"{" + (broken / "app.js.map").read_bytes()[:100], {}),
    })
    _, event = stored_event(splat, run_app(splat, broken, release="shop@3"))
    assert frames_of(event)[-1]["filename"].endswith("broken/app.js")
    message = event["splat"]["processing_notes"][0]["message"]
    assert "~/broken/app.js.map" in message and "could not be read" in message, message


def upload_bundle(splat, token, release, files):
    """A source bundle as sentry-cli builds one (SYSB header, zip, manifest), uploaded the way it does."""
    import io
    import zipfile

    buffer = io.BytesIO()
    manifest = {"files": {}, "attributes": {"release": release}}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, (url, (kind, content, headers)) in enumerate(files.items()):
            path = f"files/_/_/{i}"
            archive.writestr(path, content)
            manifest["files"][path] = {"type": kind, "url": url, "headers": headers}
        archive.writestr("manifest.json", json.dumps(manifest))
    data = b"SYSB\x02\x00\x00\x00" + buffer.getvalue()
    checksum = hashlib.sha1(data).hexdigest()
    status, _ = post_chunk(splat, token, checksum, gzip.compress(data))
    assert status == 200
    status, answer = request(
        splat, "POST", "/api/0/organizations/splat/artifactbundle/assemble/",
        body=json.dumps({"checksum": checksum, "chunks": [checksum], "projects": ["default"], "version": release}),
        token=token, headers={"Content-Type": "application/json"},
    )
    assert (status, answer["state"]) == (200, "ok"), answer


MCP_TOKEN = "maps-mcp-token-5d1e"


def test_pages_and_mcp_show_the_resolved_stack_the_minified_one_and_deploys(tmp_path):
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    with start_splat(tmp_path, {"MCP_AUTH_TOKEN": MCP_TOKEN}) as splat:
        token, _ = create_token(splat)
        dist = build_app(tmp_path / "dist")
        sentry_cli(splat, token, "sourcemaps", "inject", str(dist))
        sentry_cli(splat, token, "sourcemaps", "upload", str(dist))
        sentry_cli(splat, token, "releases", "new", "7.0")
        sentry_cli(splat, token, "deploys", "new", "-r", "7.0", "-e", "production")
        event_id = run_app(splat, dist).replace("-", "")
        row, _ = stored_event(splat, event_id)

        status, _, html = page(splat, "GET", f"/projects/default/events/{event_id}")
        assert status == 200
        assert "priceOf" in html and "app/pricing.js:7:" in html
        assert "throw new Error(`no price for ${sku}`);" in html.replace("&#96;", "`").replace("&#x60;", "`")
        toggle = html[html.index('class="raw-frames"'):]
        assert "<details" in html[: html.index('class="raw-frames"') + 30] and "dist/app.js:" in toggle
        status, _, issue_page = page(splat, "GET", f"/projects/default/issues/{row['issue_id']}")
        assert status == 200 and "data-deploys" in issue_page
        deploys = issue_page[issue_page.index("data-deploys"):]
        assert "7.0" in deploys[:400] and "production" in deploys[:400]
        # and on the issue's sparkline, as a marker of its own.
        assert '<title>Deploy 7.0 to production, ' in issue_page

        async def go():
            headers = {"Authorization": f"Bearer {MCP_TOKEN}"}
            async with create_mcp_http_client(headers=headers) as http:
                async with streamable_http_client(f"{splat.base_url}/mcp", http_client=http) as (read, write):
                    async with ClientSession(read, write) as session:
                        await session.initialize()
                        event = await session.call_tool("get_event", {"event_id": event_id})
                        context = await session.call_tool("get_investigation_context", {"issue_id": row["issue_id"]})
                        return event.structured_content, context.structured_content

        event, context = asyncio.run(go())
        top = event["event"]["exceptions"][0]["frames"][-1] if "event" in event else event["exceptions"][0]["frames"][-1]
        assert (top["function"], top["filename"], top["lineno"]) == ("priceOf", "app/pricing.js", 7), top
        assert "no price for" in top["post_context"][0] or top["context_line"].strip().startswith("throw")
        assert "priceOf" in json.dumps(context)
