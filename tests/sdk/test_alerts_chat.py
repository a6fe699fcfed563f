"""Chat alerts end to end: `splat serve` with several webhook destinations (Slack, Discord, Microsoft Teams,
Google Chat and Splat's own JSON), each a local HTTP server that answers as its platform does: 400 for a
body its documentation refuses. The real Python SDK sends the events."""

import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest

from harness import start_splat, until

TITLE = "KeyError: 'cart_id'"


def slack_problem(body):
    """What Slack's incoming webhook would refuse: neither `text` nor `blocks`, or a block with no type."""
    if not body.get("text") and not body.get("blocks"):
        return "no_text"
    if any("type" not in block for block in body.get("blocks", [])):
        return "invalid_blocks"
    for block in body.get("blocks", []):
        if block["type"] == "section" and len(block.get("fields", [])) > 10:
            return "too many fields"
        if len(block.get("text", {}).get("text", "")) > 3000:
            return "section text over 3000"


def discord_problem(body):
    """Discord's execute-webhook checks: `content` or `embeds`, and their documented lengths."""
    if not body.get("content") and not body.get("embeds"):
        return "Cannot send an empty message"
    if len(body.get("content", "")) > 2000 or len(body.get("embeds", [])) > 10:
        return "too long"
    for embed in body.get("embeds", []):
        if len(embed.get("title", "")) > 256 or len(embed.get("fields", [])) > 25:
            return "embed too long"
        if any(not f.get("name") or not f.get("value") for f in embed.get("fields", [])):
            return "empty embed field"


def teams_problem(body):
    """A Teams Workflows webhook takes a message whose attachments are Adaptive Cards."""
    if body.get("type") != "message" or not body.get("attachments"):
        return "not a message with attachments"
    for attachment in body["attachments"]:
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            return "not an adaptive card"
        card = attachment.get("content", {})
        if card.get("type") != "AdaptiveCard" or not card.get("version") or not card.get("body"):
            return "not an AdaptiveCard"


def google_chat_problem(body):
    """Google Chat wants `text` and/or `cardsV2` (each with a cardId and a card)."""
    if not body.get("text") and not body.get("cardsV2"):
        return "message has no text or cards"
    for card in body.get("cardsV2", []):
        if not card.get("cardId") or not card.get("card", {}).get("sections"):
            return "cardsV2 item without cardId or sections"


CHECKS = {
    "/slack": slack_problem,
    "/api/webhooks/1/discord": discord_problem,
    "/teams": teams_problem,
    "/gchat": google_chat_problem,
    "/json": lambda body: None if body.get("event") else "no event",
}


class Platforms(BaseHTTPRequestHandler):
    """Every platform at once: the path says which one is asked."""

    posts = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            body = json.loads(raw)
            problem = CHECKS[self.path.split("?")[0]](body)
        except (ValueError, KeyError) as e:
            body, problem = None, f"unreadable: {e!r}"
        Platforms.posts.append({"path": self.path, "body": body, "problem": problem})
        self.send_response(400 if problem else 200)
        answer = (problem or "ok").encode()
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def platforms():
    Platforms.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Platforms)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def destinations(base):
    """SPLAT_WEBHOOK_URLS naming each format (local URLs have no platform host to tell it from)."""
    return ", ".join(
        [
            f"slack:{base}/slack",
            f"discord:{base}/api/webhooks/1/discord",
            f"teams:{base}/teams",
            f"google_chat:{base}/gchat",
            f"{base}/json",
        ]
    )


SEND = """
import sys, sentry_sdk
dsn, env, release, level, title = sys.argv[1:6]
sentry_sdk.init(dsn=dsn, environment=env, release=release, default_integrations=False)
if level == "exception":
    try:
        {}["cart_id"]
    except KeyError:
        sentry_sdk.capture_exception()
else:
    sentry_sdk.capture_message(title, level=level)
sentry_sdk.flush(10)
"""


def send(splat, level="exception", env="production", release="shop@1.4.2", title=TITLE):
    """One event from the real Python SDK, in its own process as an application's would be."""
    subprocess.run([sys.executable, "-c", SEND, splat.dsn, env, release, level, title], check=True, timeout=60)


def log_tail(splat):
    return f"--- splat log ---\n{splat.log_path.read_text()[-3000:]}"


def posts_to(path):
    return [p for p in Platforms.posts if p["path"] == path]


def test_each_chat_gets_its_documented_shape_with_what_happened(tmp_path, platforms):
    with start_splat(tmp_path, {"SPLAT_WEBHOOK_URLS": destinations(platforms)}) as splat:
        until(lambda: "Notifications: slack, discord, teams, google_chat, webhook" in splat.log_path.read_text(),
              "channel list", context=lambda: log_tail(splat))
        send(splat)
        until(lambda: len(Platforms.posts) >= 5, "a post to every platform", context=lambda: log_tail(splat))
        issue_id = splat.scalar("SELECT id FROM issues")
        slug = splat.scalar("SELECT slug FROM projects")
        url = f"{splat.base_url}/projects/{slug}/issues/{issue_id}"
        project = splat.scalar("SELECT name FROM projects")
        for post in Platforms.posts:
            assert post["problem"] is None, post
        assert sorted(p["path"] for p in Platforms.posts) == sorted(CHECKS)

        [slack] = [p["body"] for p in posts_to("/slack")]
        assert slack["text"].startswith(f"New issue in {project}: KeyError")
        [discord] = [p["body"] for p in posts_to("/api/webhooks/1/discord")]
        assert discord["embeds"][0]["url"] == url and discord["allowed_mentions"] == {"parse": []}
        [teams] = [p["body"] for p in posts_to("/teams")]
        assert teams["attachments"][0]["content"]["actions"][0]["url"] == url
        [chat] = [p["body"] for p in posts_to("/gchat")]
        assert chat["text"].endswith(url)
        [generic] = [p["body"] for p in posts_to("/json")]
        assert (generic["event"], generic["url"], generic["environment"]) == ("issue.created", url, "production")
        # Each says what happened, links the issue, and names project, level, environment, release, count.
        for body in (slack, discord, teams, chat):
            text = json.dumps(body)
            for part in (url, "New issue", project, "error", "production", "shop@1.4.2", "Events"):
                assert part in text, (part, text)


def test_a_platform_refusing_the_alert_is_retried_and_logged_without_its_url(tmp_path, platforms):
    secret = "T000/B000/sekrit"
    env = {"SPLAT_WEBHOOK_URL": f"{platforms}/json-broken/{secret}", "SPLAT_WEBHOOK_FORMAT": "slack"}
    CHECKS[f"/json-broken/{secret}"] = lambda body: "refused on purpose"
    try:
        with start_splat(tmp_path, env) as splat:
            send(splat)
            until(lambda: "giving up" in splat.log_path.read_text(), "the last retry", context=lambda: log_tail(splat))
            log = splat.log_path.read_text()
            assert "refused on purpose" in log and secret not in log
            assert len(Platforms.posts) == 3, "three tries"
    finally:
        del CHECKS[f"/json-broken/{secret}"]


def post_form(splat, path, pairs):
    """Posts a UI form as a browser does (double-submit CSRF token in cookie and field); returns the
    redirect's Location."""
    token = secrets.token_urlsafe(32)
    request = urllib.request.Request(
        f"{splat.base_url}{path}",
        data=urlencode([("csrf", token), *pairs]).encode(),
        headers={"Cookie": f"splat_csrf={token}", "Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 303, (e.code, e.read())
        return e.headers["Location"]
    raise AssertionError("no redirect")


def settle():
    """Alerts go out one after another in the order of the changes: once a later one arrived, the
    earlier ones were decided. A moment more catches anything sent twice."""
    time.sleep(0.5)


def test_rules_filter_by_kind_level_and_environment_and_pick_destinations(tmp_path, platforms):
    env = {"SPLAT_WEBHOOK_URLS": f"slack:{platforms}/slack, {platforms}/json"}
    with start_splat(tmp_path, env) as splat:
        slug = splat.scalar("SELECT slug FROM projects")
        location = post_form(splat, f"/projects/{slug}/alerts", [
            ("kind_new", "on"), ("min_level", "error"), ("environments", "production"), ("destination", "slack"),
        ])
        assert location == f"/projects/{slug}/settings#alerts"
        page = urllib.request.urlopen(f"{splat.base_url}/projects/{slug}/settings", timeout=10).read().decode()
        assert 'value="production"' in page and '<option value="error" selected>' in page

        send(splat, level="warning", title="a warning in production")
        send(splat, level="error", env="staging", title="an error in staging")
        splat.wait_for("SELECT id FROM issues", count=2)
        send(splat)  # an exception (level error) in production
        until(lambda: posts_to("/slack"), "the one alert the rule lets through", context=lambda: log_tail(splat))
        settle()
        assert [p["path"] for p in Platforms.posts] == ["/slack"], Platforms.posts
        assert TITLE in Platforms.posts[0]["body"]["text"]
        log = splat.log_path.read_text()
        assert "below the project's minimum level" in log
        assert "not in one of the project's alerting environments" in log


def test_a_muted_issue_sends_nothing_until_unmuted(tmp_path, platforms):
    with start_splat(tmp_path, {"SPLAT_WEBHOOK_URLS": f"{platforms}/json"}) as splat:
        send(splat)
        until(lambda: posts_to("/json"), "the first alert", context=lambda: log_tail(splat))
        slug = splat.scalar("SELECT slug FROM projects")
        issue_id = splat.scalar("SELECT id FROM issues")
        issue = f"/projects/{slug}/issues/{issue_id}"
        assert post_form(splat, f"{issue}/mute", [("action", "mute"), ("until", "")]) == issue
        assert "alerts muted" in urllib.request.urlopen(f"{splat.base_url}{issue}", timeout=10).read().decode()

        # Resolved, then seen again: a regression, muted.
        post_form(splat, f"{issue}/status", [("status", "resolved")])
        send(splat)
        until(lambda: "the issue's alerts are muted" in splat.log_path.read_text(), "the muted regression",
              context=lambda: log_tail(splat))
        settle()
        assert len(posts_to("/json")) == 1

        # Unmuted, the next regression is alerted again.
        post_form(splat, f"{issue}/mute", [("action", "unmute")])
        post_form(splat, f"{issue}/status", [("status", "resolved")])
        send(splat)
        until(lambda: len(posts_to("/json")) == 2, "the regression after unmuting", context=lambda: log_tail(splat))
        assert posts_to("/json")[1]["body"]["event"] == "issue.regressed"


def test_the_test_button_reaches_the_rules_destinations(tmp_path, platforms):
    env = {"SPLAT_WEBHOOK_URLS": f"discord:{platforms}/api/webhooks/1/discord, teams:{platforms}/teams"}
    with start_splat(tmp_path, env) as splat:
        slug = splat.scalar("SELECT slug FROM projects")
        post_form(splat, f"/projects/{slug}/alerts", [
            ("kind_new", "on"), ("min_level", "fatal"), ("destination", "teams"),
        ])
        location = post_form(splat, f"/projects/{slug}/alerts/test", [])
        assert location == f"/projects/{slug}/settings?alert_test=1#alerts"
        [post] = Platforms.posts
        assert post["path"] == "/teams" and post["problem"] is None
        assert "Test alert from Splat" in json.dumps(post["body"])
        page = urllib.request.urlopen(f"{splat.base_url}{location}", timeout=10).read().decode()
        assert "The test alert was taken by 1 destination." in page


def test_a_destination_saved_on_the_settings_page_gets_alerts_without_its_url_shown(tmp_path, platforms):
    secret = "AAAA/messages?key=k&token=sekrit-token"
    with start_splat(tmp_path) as splat:
        assert "Notifications: none set in the environment" in splat.log_path.read_text()
        location = post_form(splat, "/settings/alert-destinations", [
            ("action", "add"), ("format", "google_chat"), ("url", f"{platforms}/gchat?{secret}"), ("name", ""),
        ])
        assert location == "/settings#alert-destinations"
        page = urllib.request.urlopen(f"{splat.base_url}/settings", timeout=10).read().decode()
        assert 'data-destination="google_chat"' in page and "127.0.0.1" in page and "sekrit" not in page
        # A name already in use is refused.
        with pytest.raises(AssertionError, match="400"):
            post_form(splat, "/settings/alert-destinations", [
                ("action", "add"), ("url", f"{platforms}/json"), ("name", "google_chat"),
            ])

        send(splat)
        [post] = until(lambda: Platforms.posts[:], "the alert", context=lambda: log_tail(splat))
        assert post["path"].startswith("/gchat") and post["problem"] is None
        assert post["body"]["text"].startswith("New issue in")
        settings = urllib.request.urlopen(f"{splat.base_url}/projects/{splat.scalar('SELECT slug FROM projects')}/settings",
                                          timeout=10).read().decode()
        assert 'value="google_chat"' in settings, "the project's rule can pick it"

        post_form(splat, "/settings/alert-destinations", [("action", "remove"), ("name", "google_chat")])
        send(splat, level="error", title="a second issue")
        until(lambda: splat.query("SELECT id FROM issues WHERE title = 'a second issue'"), "the second issue")
        settle()
        assert len(Platforms.posts) == 1, "a removed destination gets nothing"
        assert "sekrit" not in splat.log_path.read_text()
