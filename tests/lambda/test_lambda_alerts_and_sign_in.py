"""Alerts and sign-in with no function in the VPC reaching the internet (see conftest.py and aws_lambda.py).

Alerts: the processor, with no channel in its environment, puts each alert in the bucket's alerts/ outbox;
the bucket's notification invokes the notify function, which delivers it to the webhook and deletes it. The
UI function puts the settings page's test alert in the same outbox.
Sign-in: the front sends /login/* and /auth/* to the sign-in function (CloudFront's cache behaviors), which
talks to a real OpenID provider and sets the session cookie; the UI function accepts it.

Runs before test_lambda_e2e.py (file order), so its alert is among the project's first of the hour, within
the alert budget."""

import http.client
import json
import time
import urllib.parse
import uuid

from aws_lambda import function_url, http_event, http_response
from browser import Browser
from conftest import USER, Receiver
from harness import run_client, until

SLUG = "lambda-e2e"
CHANNEL_VARIABLES = {"SPLAT_ADMIN_EMAILS", "SPLAT_EMAIL_FROM", "SMTP_ADDRESS", "SMTP_PORT", "SMTP_USER_NAME",
                     "SMTP_PASSWORD", "SMTP_AUTHENTICATION", "SMTP_STARTTLS_AUTO", "SPLAT_WEBHOOK_URL",
                     "SPLAT_NTFY_URL", "SPLAT_NTFY_TOKEN"}


def _wait(what, check, stack, timeout=60.0):
    return until(check, what, timeout, lambda: f"notify errors {stack.notifications.errors}\n{stack.logs()}")


def _outbox(stack):
    return [o["Key"] for o in stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="alerts/").get("Contents", [])]


def test_the_functions_in_the_vpc_hold_no_channel_and_the_notify_function_does(stack):
    """The template's environments: channels and their secrets only where the internet is reachable."""
    for name in ("splat-processor", "splat-retention", "splat-ui"):
        assert not CHANNEL_VARIABLES & set(stack.functions[name].env), name
    # The processor decides alerts, after each batch and each monitor tick, and the UI sends test alerts;
    # retention alerts nobody.
    for name in ("splat-processor", "splat-ui"):
        assert stack.functions[name].env["SPLAT_ALERT_OUTBOX"] == "true", name
    notify = stack.functions["splat-notify"].env
    assert notify["SPLAT_WEBHOOK_URL"].endswith("/alerts")
    assert "SPLAT_DATABASE_PATH" not in notify and "SPLAT_BUCKET" not in notify


def test_a_new_issue_reaches_the_webhook_through_the_outbox(stack):
    report = run_client("python", stack.dsn, "error")
    assert {r["status"] for r in report["requests"]} == {200}
    [row] = stack.wait_for("SELECT issue_id FROM events WHERE event_id = ?", report["ids"]["error"])
    issue_id = row["issue_id"]

    def posted():
        bodies = [json.loads(p["body"]) for p in stack.webhook_posts]
        return [b for b in bodies if b["event"] == "issue.created" and b["issue"]["id"] == issue_id]

    [alert] = _wait("webhook post", posted, stack)
    assert alert["issue"]["title"] == "ZeroDivisionError: division by zero"
    assert alert["project"]["slug"] == SLUG
    # The link the processor wrote (its SPLAT_PUBLIC_URL: the UI's address) travelled in the object.
    assert alert["url"] == f"{stack.front.url}/projects/{SLUG}/issues/{issue_id}"
    assert [p["path"] for p in stack.webhook_posts][-1] == "/alerts"
    # It went through an S3 event about an outbox object, which the notify function deleted.
    keys = [_key(e) for e in stack.notifications.events]
    assert keys and all(k.startswith("alerts/") and k.endswith(".json") for k in keys)
    _wait("empty outbox", lambda: not _outbox(stack), stack)
    assert any(answer.get("delivered") == 1 for _, answer in stack.notifications.answers)
    # Either of the trigger's two processor instances may have had the batch.
    assert any("alert put in the outbox" in stack.functions[name].log_tail(20000)
               for name in ("splat-processor", "splat-processor#2"))


def test_a_second_event_for_a_delivered_alert_sends_nothing(stack):
    """S3 delivers events at least once: the object is gone, so the duplicate does nothing."""
    delivered = next(e for e, answer in stack.notifications.answers if answer.get("delivered") == 1)
    posts = len(stack.webhook_posts)
    assert stack.functions["splat-notify"].invoke(delivered) == {"delivered": 0, "gone": 1, "refused": 0}
    time.sleep(0.5)
    assert len(stack.webhook_posts) == posts


def test_malformed_and_oversized_outbox_objects_are_refused_and_left(stack):
    bad = {f"alerts/{uuid.uuid4().hex}-malformed.json": b'{"kind": {"type": "created"}, "issue": ',
           f"alerts/{uuid.uuid4().hex}-oversized.json": b"{" + b" " * (80 * 1024) + b"}",
           f"alerts/{uuid.uuid4().hex}-not-an-alert.json": json.dumps([1, 2, 3]).encode()}
    for key, body in bad.items():
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=body)

    def answered():
        done = [a for e, a in stack.notifications.answers if _key(e) in bad]
        return done if len(done) == len(bad) else None

    answers = _wait("answers about the bad objects", answered, stack)
    assert all(a == {"delivered": 0, "gone": 0, "refused": 1} for a in answers), answers
    # Refused, not failed: no retry (it would not help), the function lives on, the objects wait for the
    # lifecycle rule (or a person).
    assert not [e for e, _ in stack.notifications.errors if _key(e) in bad]
    assert stack.functions["splat-notify"].proc.poll() is None
    assert set(bad) <= set(_outbox(stack))
    log = stack.functions["splat-notify"].log_tail(20000)
    assert "outbox object refused" in log and "panicked" not in log
    for key in bad:
        stack.s3.delete_object(Bucket=stack.bucket, Key=key)


def _alert_object(title):
    """An outbox object as the processor writes it (shared/src/notify/mod.rs, Alert as JSON)."""
    now_us = int(time.time() * 1_000_000)
    issue = {"id": 987654, "project_id": 1, "status": "open", "title": title, "culprit": None, "level": "error",
             "platform": "python", "exception_type": "RuntimeError", "first_seen": now_us, "last_seen": now_us,
             "times_seen": 1, "users_seen": 0, "first_release": None, "last_release": None,
             "grouping_config": "newstyle:2023-01-11", "resolved_at": None, "regressed_at": None,
             "last_event_id": None}
    return json.dumps({"kind": {"type": "created"}, "issue": issue,
                       "project": {"id": 1, "name": SLUG, "slug": SLUG},
                       "url": f"https://splat.example.com/projects/{SLUG}/issues/987654"}).encode()


def test_an_undeliverable_alert_is_retried_and_stays_in_the_outbox(stack, monkeypatch):
    """The channel is down: each invocation fails after its own tries, Lambda retries the event twice, and
    the object waits in the outbox (for the lifecycle rule, or to be sent again once the channel is back)."""
    title = f"webhook down {uuid.uuid4().hex[:8]}"

    def unavailable(handler):
        handler.rfile.read(int(handler.headers.get("content-length", 0)))
        handler.send_response(503)
        handler.send_header("content-length", "0")
        handler.end_headers()

    key = f"alerts/{uuid.uuid4().hex}.json"
    with monkeypatch.context() as down:
        down.setattr(Receiver, "do_POST", unavailable)
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=_alert_object(title))

        def failed():
            return [e for e, _ in stack.notifications.errors if _key(e) == key]

        events = _wait("three failed invocations", lambda: len(failed()) == 3 and failed(), stack)
    assert len({json.dumps(e) for e in events}) == 1  # the same event each time
    assert key in _outbox(stack)
    assert "alert not delivered; the event will be retried" in stack.functions["splat-notify"].log_tail(50000)
    assert not [p for p in stack.webhook_posts if title in p["body"]]
    # The channel is back: the same event again (an operator's resend) delivers it and empties the outbox.
    assert stack.functions["splat-notify"].invoke(events[0]) == {"delivered": 1, "gone": 0, "refused": 0}
    [post] = [json.loads(p["body"]) for p in stack.webhook_posts if title in p["body"]]
    assert post["event"] == "issue.created" and post["issue"]["exception_type"] == "RuntimeError"
    assert key not in _outbox(stack)


def _front(stack, method, path, headers, body=None):
    """One request to the front, redirects not followed: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.front.server_address[1], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read().decode()
    finally:
        conn.close()


def test_the_settings_page_test_alert_reaches_the_webhook_through_the_outbox(stack, ui_session):
    """The button as a browser presses it: the settings page (the button enabled), its form posted with the
    CSRF token; the UI function, with no channel and no way to the internet, puts the test alert in the
    outbox and the notify function delivers it."""
    settings = f"/projects/{SLUG}/settings"
    status, headers, page = _front(stack, "GET", settings, ui_session)
    assert status == 200, page[:500]
    button = page.split('id="alert-test"', 1)[1].split("</form>", 1)[0]
    assert "Send a test alert" in button and "disabled" not in button
    cookie = headers["Set-Cookie"].split(";")[0]
    form = urllib.parse.urlencode({"csrf": cookie.split("=", 1)[1]}).encode()
    status, headers, _ = _front(stack, "POST", f"/projects/{SLUG}/alerts/test", {
        "Content-Type": "application/x-www-form-urlencoded", "Origin": stack.front.url,
        "Cookie": f"{cookie}; {ui_session['Cookie']}"}, form)
    assert status == 303 and headers["Location"] == f"{settings}?alert_test=1#alerts", (status, stack.logs())

    def posted():
        return [b for b in (json.loads(p["body"]) for p in stack.webhook_posts) if b["event"] == "splat.test"]

    [alert] = _wait("test alert at the webhook", posted, stack)
    # Its link is the page the button was pressed on: the viewer's host (CloudFront's function copies it to
    # x-forwarded-host) over https (what the function URL says; this loopback front is plain http), not the
    # UI function's SPLAT_PUBLIC_URL, which is ingest's, for the DSNs it prints.
    viewer = urllib.parse.urlsplit(stack.front.url).netloc
    assert alert["project"]["slug"] == SLUG and alert["url"] == f"https://{viewer}{settings}#alerts"
    assert "alert put in the outbox" in stack.functions["splat-ui"].log_tail(50000)
    _wait("empty outbox", lambda: not _outbox(stack), stack)
    status, _, page = _front(stack, "GET", f"{settings}?alert_test=1", ui_session)
    assert "The test alert was taken by 1 destination." in page


def _key(event):
    return urllib.parse.unquote_plus(event["Records"][0]["s3"]["object"]["key"])


def _front_get(browser, stack, path, headers=None):
    """One request to the front, redirects not followed: (status, headers, body, URL)."""
    return browser.open(f"{stack.front.url}{path}", follow=False, headers=headers)


def test_sign_in_through_the_front_with_a_real_provider(stack):
    """The whole flow as a browser follows it: the UI sends an anonymous visitor to /login/start, which the
    front routes to the sign-in function; it sends them to the provider; the provider back to
    /auth/callback, the sign-in function again, which sets the session and returns them to the page, which
    the UI function now serves."""
    page = f"/projects/{SLUG}/issues"
    browser = Browser()
    status, headers, _, _ = _front_get(browser, stack, page)
    assert status == 303 and headers["Location"] == f"/login/start?next={urllib.parse.quote(page, safe='')}"
    served = len(stack.front.served)
    status, _, body, landed = browser.sign_in(f"{stack.front.url}{page}", USER)
    assert status == 200, body[:1000]
    assert landed == f"{stack.front.url}{page}" and "ZeroDivisionError" in body
    hops = stack.front.served[served:]
    assert [route for path, route in hops if path.startswith(("/login/", "/auth/"))] == ["signin", "signin"]
    assert [path for path, route in hops if route == "signin"] == ["/login/start", "/auth/callback"]
    assert [route for path, route in hops if path == page] == ["ui", "ui"]  # sent away, then served
    # The session is the sign-in function's, __Host- and Secure as over CloudFront's https; the UI takes it.
    session = next(c for c in browser.jar if c.name == "__Host-splat_session")
    assert session.secure and session.path == "/"
    assert _front_get(browser, stack, "/settings")[0] == 200
    # The sign-in function signed them in; the UI function only checked the cookie.
    assert USER in stack.functions["splat-signin"].log_tail(20000)
    assert "signed in" not in stack.functions["splat-ui"].log_tail(200000)


def test_without_a_session_the_ui_sends_to_sign_in(stack):
    status, headers, _, _ = _front_get(Browser(), stack, "/")
    assert status == 303 and headers["Location"] == "/login/start?next=%2F"
    # A session sealed with another secret is no session (and is dropped).
    forged = "eyJleHAiOjk5OTk5OTk5OTksInYiOnsiZW1haWwiOiJ4QGV4YW1wbGUuY29tIn19.AAAA"
    status, headers, _, _ = _front_get(Browser(), stack, "/", {"Cookie": f"__Host-splat_session={forged}"})
    assert status == 303 and headers["Location"] == "/login/start?next=%2F"
    assert "__Host-splat_session=;" in headers["Set-Cookie"]


def test_the_sign_in_function_url_itself_is_refused_without_the_origin_secret(stack):
    door = function_url("splat-signin")
    event = http_event("GET", "/login/start?next=%2F", [("host", door.domain), ("user-agent", "curl/8")], b"",
                       "198.51.100.9", door)
    status, headers, body = http_response(stack.functions["splat-signin"].invoke(event))
    assert status == 403 and not [v for k, v in headers if k.lower() == "set-cookie"]
    assert b"CloudFront" in body
