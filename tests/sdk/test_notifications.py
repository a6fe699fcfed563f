"""Notifications end to end: `splat serve` configured with a real SMTP server (aiosmtpd, in this process),
a webhook receiver and an ntfy stand-in (an HTTP server thread); the real Python SDK sends an error, then,
once the issue is resolved in the UI, the same error again. Each alert must arrive on every channel, naming
the issue and linking to its page."""

import contextlib
import json
import secrets
import socket
import threading
import time
import urllib.request
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from aiosmtpd.controller import Controller

from harness import run_client, start_splat, until

TITLE = "ZeroDivisionError: division by zero"


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "message": message_from_bytes(envelope.content)}
        )
        return "250 Message accepted for delivery"


class Receiver(BaseHTTPRequestHandler):
    posts = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Receiver.posts.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()})
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def smtp_server():
    mailbox = Mailbox()
    # aiosmtpd's controller checks the server by connecting to the port it was given: it needs a real one.
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@contextlib.contextmanager
def http_receiver():
    Receiver.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_until(what, check, splat):
    return until(check, what, context=lambda: f"--- splat log ---\n{splat.log_path.read_text()[-3000:]}")


def resolve(splat, slug, issue_id):
    """Resolves the issue the way the UI's form does (double-submit CSRF token in cookie and field)."""
    token = secrets.token_urlsafe(32)  # the shape the server's own tokens have (43 URL-safe characters)
    request = urllib.request.Request(
        f"{splat.base_url}/projects/{slug}/issues/{issue_id}/status",
        data=urlencode({"csrf": token, "status": "resolved"}).encode(),
        headers={"Cookie": f"splat_csrf={token}", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with contextlib.suppress(urllib.error.HTTPError):
        opener.open(request, timeout=10)
    assert splat.scalar("SELECT status FROM issues WHERE id = ?", issue_id) == "resolved"


@pytest.fixture
def setup(tmp_path):
    with smtp_server() as (mailbox, smtp_port), http_receiver() as receiver:
        env = {
            "SMTP_ADDRESS": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "SPLAT_ADMIN_EMAILS": "ops@example.com, dev@example.com",
            "SPLAT_EMAIL_FROM": "Splat <splat@example.com>",
            "SPLAT_WEBHOOK_URL": f"{receiver}/hook",
            "SPLAT_NTFY_URL": f"{receiver}/splat-alerts",
            "SPLAT_NTFY_TOKEN": "tk_test",
        }
        with start_splat(tmp_path, env) as splat:
            yield splat, mailbox


def subject(mail):
    return str(make_header(decode_header(mail["message"]["Subject"])))


def test_new_and_reopened_issues_are_emailed_posted_and_pushed(setup):
    splat, mailbox = setup
    wait_until("channel list", lambda: "Notifications: email, webhook, ntfy" in splat.log_path.read_text(), splat)

    report = run_client("python", splat.dsn, "error")
    [event] = splat.wait_for("SELECT issue_id FROM events WHERE event_id = ?", report["ids"]["error"])
    issue_id = event["issue_id"]
    slug = splat.scalar("SELECT slug FROM projects")
    url = f"{splat.base_url}/projects/{slug}/issues/{issue_id}"

    [mail] = wait_until("email", lambda: mailbox.messages[:], splat)
    assert mail["from"] == "splat@example.com"
    assert sorted(mail["to"]) == ["dev@example.com", "ops@example.com"]
    assert subject(mail) == f"[Splat] New Issue: {TITLE}"
    body = mail["message"].get_payload(decode=True).decode()
    assert f"Issue: {TITLE}" in body and "Exception: ZeroDivisionError" in body and url in body

    hooks = wait_until("webhook", lambda: [p for p in Receiver.posts if p["path"] == "/hook"], splat)
    created = json.loads(hooks[0]["body"])
    assert created["event"] == "issue.created"
    assert (created["issue"]["id"], created["issue"]["title"], created["url"]) == (issue_id, TITLE, url)
    assert created["project"]["slug"] == slug

    pushes = wait_until("ntfy post", lambda: [p for p in Receiver.posts if p["path"] == "/splat-alerts"], splat)
    headers = pushes[0]["headers"]
    assert headers["title"] == f"[Splat] New Issue: {TITLE}"
    assert (headers["tags"], headers["click"], headers["authorization"]) == ("boom", url, "Bearer tk_test")
    assert TITLE in pushes[0]["body"]

    # Resolved in the UI, then the same error again: a regression on every channel.
    resolve(splat, slug, issue_id)
    run_client("python", splat.dsn, "error")
    wait_until("second email", lambda: len(mailbox.messages) >= 2, splat)
    assert subject(mailbox.messages[1]) == f"[Splat] Issue Reopened: {TITLE}"
    regressed = wait_until(
        "regression webhook",
        lambda: [json.loads(p["body"]) for p in Receiver.posts if p["path"] == "/hook"][1:],
        splat,
    )
    assert regressed[0]["event"] == "issue.regressed"
    assert (regressed[0]["issue"]["id"], regressed[0]["issue"]["count"]) == (issue_id, 2)
    pushes = wait_until("second ntfy post", lambda: [p for p in Receiver.posts if p["path"] == "/splat-alerts"][1:], splat)
    assert pushes[0]["headers"]["tags"] == "recycle"
    # Exactly one alert per change: nothing was sent twice.
    time.sleep(0.5)
    assert len(mailbox.messages) == 2
    assert len(Receiver.posts) == 4


def test_health_is_open_and_reports_the_queue(tmp_path):
    with start_splat(tmp_path, {"QUEUE_WARNING_THRESHOLD": "5", "QUEUE_CRITICAL_THRESHOLD": "9"}) as splat:
        with urllib.request.urlopen(f"{splat.base_url}/_health", timeout=10) as response:
            assert response.status == 200
            health = json.load(response)
        assert health["status"] == "ok"
        assert (health["queue_depth"], health["queue_status"]) == (0, "healthy")
        assert (health["queue_warning_threshold"], health["queue_critical_threshold"]) == (5, 9)
        assert health["event_count_window"] == "24h"
