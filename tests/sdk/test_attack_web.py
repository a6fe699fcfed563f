"""Attacks on a real `splat serve` through its web surface: DNS rebinding, files other users could read,
and credentials leaking into the log."""

import http.client
import http.server
import re
import stat
import threading
import time
from urllib.parse import urlencode, urlsplit

from harness import start_splat


def request(splat, method, path, headers=None, body=None):
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        # skip_host: the Host header is the attacker's to choose.
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        data = body.encode() if body is not None else b""
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def csrf_token(headers):
    match = re.search(r"splat_csrf=([A-Za-z0-9_-]{43})", headers.get("set-cookie", ""))
    assert match, headers
    return match.group(1)


def test_a_rebound_name_cannot_read_or_delete_a_project(splat):
    port = urlsplit(splat.base_url).port
    evil = f"evil.example:{port}"
    status, headers, body = request(splat, "GET", "/projects/default/settings", {"Host": evil})
    assert status == 421, body
    assert "set-cookie" not in headers and "csrf" not in body and splat.key not in body

    # The attacker's page cannot read a token, but even one taken from a real page does not help.
    status, headers, _ = request(splat, "GET", "/projects/default/settings", {"Host": f"127.0.0.1:{port}"})
    assert status == 200
    token = csrf_token(headers)
    delete = {
        "Host": evil,
        "Origin": f"http://{evil}",
        "Sec-Fetch-Site": "same-origin",
        "Cookie": f"splat_csrf={token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    form = urlencode({"confirm": "default", "csrf": token})
    status, _, _ = request(splat, "POST", "/projects/default/delete", delete, form)
    assert status == 421
    assert splat.scalar("SELECT count(*) FROM projects WHERE slug = 'default'") == 1

    # Ingest stays host-agnostic: SDKs may use any name.
    envelope = '{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event"}\n{"message":"hi"}\n'
    auth = f"Sentry sentry_key={splat.key}, sentry_version=7"
    status, _, body = request(
        splat, "POST", "/api/1/envelope/", {"Host": evil, "X-Sentry-Auth": auth}, envelope
    )
    assert status == 200, body


def test_allowed_hosts_are_served(tmp_path):
    with start_splat(tmp_path, env={"SPLAT_ALLOWED_HOSTS": "tracker.internal, splat.example.com"}) as splat:
        for host in ("tracker.internal", "splat.example.com:443", "localhost"):
            status, _, body = request(splat, "GET", "/", {"Host": host})
            assert status == 200, (host, body[:300])
        assert request(splat, "GET", "/", {"Host": "tracker.internal.evil.example"})[0] == 421


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_data_files_are_the_owners_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # an older version's directory, made with the shell's umask
    with start_splat(tmp_path) as splat:
        envelope = '{}\n{"type":"event"}\n{"message":"private"}\n'
        auth = f"Sentry sentry_key={splat.key}, sentry_version=7"
        assert request(splat, "POST", "/api/1/envelope/", {"Host": "localhost", "X-Sentry-Auth": auth}, envelope)[0] == 200
        splat.wait_for("SELECT 1 FROM events")
        deadline = time.monotonic() + 15
        while not list(data.glob("lake/**/*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mode(data) == 0o700
        files = [p for p in data.rglob("*") if p.is_file()]
        assert {"splat.db", "queue.db"} <= {p.name for p in files}
        assert any(p.suffix == ".parquet" for p in files)
        for path in files:
            assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"
        for path in (p for p in data.rglob("*") if p.is_dir()):
            assert mode(path) == 0o700, f"{path} is {oct(mode(path))}"
    assert "was readable by other users" in splat.log_path.read_text()


class Refusing(http.server.BaseHTTPRequestHandler):
    """A webhook or ntfy server that answers every alert with 500, so each one is logged as failed."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(500)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"down")

    def log_message(self, *args):
        pass


def test_credentials_never_reach_the_log(tmp_path):
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = receiver.server_address[1]
    planted = {
        "SPLAT_WEBHOOK_URL": f"http://127.0.0.1:{port}/services/T000/B000/PLANTED-WEBHOOK-PATH",
        "SPLAT_NTFY_URL": f"http://127.0.0.1:{port}/PLANTED-NTFY-TOPIC",
        "SPLAT_NTFY_TOKEN": "PLANTED-NTFY-TOKEN",
        "MCP_AUTH_TOKEN": "PLANTED-MCP-TOKEN",
        "RUST_LOG": "debug",
    }
    try:
        with start_splat(tmp_path, env=planted) as splat:
            envelope = '{}\n{"type":"event"}\n{"message":"a new issue raises an alert"}\n'
            auth = f"Sentry sentry_key={splat.key}, sentry_version=7"
            headers = {"Host": "localhost", "X-Sentry-Auth": auth}
            assert request(splat, "POST", "/api/1/envelope/", headers, envelope)[0] == 200
            deadline = time.monotonic() + 30
            log = ""
            while time.monotonic() < deadline:
                log = splat.log_path.read_text()
                if log.count("answered 500") >= 2:  # the webhook's and ntfy's
                    break
                time.sleep(0.2)
            assert log.count("answered 500") >= 2, log[-3000:]
            assert f"http://127.0.0.1:{port}/…" in log  # the failing service is still named
    finally:
        receiver.shutdown()
    log = splat.log_path.read_text()
    assert "PLANTED" not in log, [line for line in log.splitlines() if "PLANTED" in line][:5]
