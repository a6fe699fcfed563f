"""Issue 15, item 7: nothing acknowledged is lost.

User feedback sent by real SDKs (the Node SDK's `captureFeedback`; the Python SDK, which has no feedback
API in 2.75, sends the same `feedback` item and a legacy `user_report` through its own transport) is stored
and shown, escaped, on the issue and event pages. A processor panic (the compiled-in test hook
SPLAT_TEST_PANIC_ON_MARKER) is survived: the loop restarts, /_health says so, the next events are processed,
the poisoned message ends in the dead letters, and `splat queue dead-letters redrive` stores it once the
cause is gone."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from harness import SPLAT_BIN, TIMEOUT, run_client, start_splat

# What a hostile user types into a feedback form.
HOSTILE = '<script>alert("feedback")</script> & \'quoted\''
MARKER = "POISON-7f3a9c"

# The real Python SDK: an error, then (through the SDK's own transport, authenticated and compressed as it
# does everything) a `feedback` item about it shaped as Sentry's SDKs build one, and a legacy user report.
PYTHON_FEEDBACK = r"""
import json, sys, uuid
import sentry_sdk
from sentry_sdk.envelope import Envelope, Item, PayloadRef

dsn, message = sys.argv[1], sys.argv[2]
sentry_sdk.init(dsn=dsn, default_integrations=False)
try:
    1 / 0
except ZeroDivisionError:
    event_id = sentry_sdk.capture_exception()
feedback_id = uuid.uuid4().hex
transport = sentry_sdk.get_client().transport
feedback = Envelope(headers={"event_id": feedback_id})
feedback.add_item(Item(type="feedback", payload=PayloadRef(json={
    "event_id": feedback_id, "platform": "python", "level": "info",
    "contexts": {"feedback": {"message": message, "name": "Py <User>", "contact_email": "py@example.com",
                              "associated_event_id": event_id, "url": "https://shop.example/cart"}}})))
transport.capture_envelope(feedback)
report = Envelope()
report.add_item(Item(type="user_report", payload=PayloadRef(json={
    "event_id": event_id, "name": "Legacy Reporter", "email": "legacy@example.com", "comments": "legacy " + message})))
transport.capture_envelope(report)
orphan = Envelope(headers={"event_id": uuid.uuid4().hex})
orphan.add_item(Item(type="feedback", payload=PayloadRef(json={
    "contexts": {"feedback": {"message": "no event: " + message, "name": "Orphan"}}})))
transport.capture_envelope(orphan)
sentry_sdk.flush(10)
print(json.dumps({"event_id": event_id, "feedback_id": feedback_id}))
"""

# The real Python SDK sending errors and messages; each argument is a message to capture.
PYTHON_MESSAGES = r"""
import json, sys
import sentry_sdk
sentry_sdk.init(dsn=sys.argv[1], default_integrations=False)
ids = [sentry_sdk.capture_message(m, level="error") for m in sys.argv[2:]]
sentry_sdk.flush(10)
print(json.dumps(ids))
"""


def python_sdk(script, *args):
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def escaped(text):
    """As askama escapes text: & < > " ' become numeric entities."""
    for raw, entity in [("&", "&#38;"), ("<", "&#60;"), (">", "&#62;"), ('"', "&#34;"), ("'", "&#39;")]:
        text = text.replace(raw, entity)
    return text


def get(splat, path):
    try:
        with urllib.request.urlopen(splat.base_url + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def slug(splat):
    return splat.scalar("SELECT slug FROM projects ORDER BY id LIMIT 1")


def test_feedback_from_real_sdks_is_stored_and_shown_escaped(splat):
    py = python_sdk(PYTHON_FEEDBACK, splat.dsn, "py " + HOSTILE)
    node = run_client("node", splat.dsn, "feedback", "node " + HOSTILE)["ids"]
    rows = splat.wait_for("SELECT kind, feedback_id, event_id, name, email, message FROM feedback", count=4)
    splat.wait_for("SELECT 1 FROM events", count=2)
    by_id = {r["feedback_id"]: r for r in rows}
    assert by_id[py["feedback_id"]]["event_id"] == py["event_id"]
    assert by_id[py["feedback_id"]]["message"] == "py " + HOSTILE
    assert by_id[py["event_id"]]["kind"] == "user_report"
    assert by_id[node["feedback_id"]]["event_id"] == node["event_id"]
    assert by_id[node["feedback_id"]]["email"] == "node@example.com"

    project = slug(splat)
    for event_id, texts in [
        (py["event_id"], ["py " + HOSTILE, "Py <User>", "py@example.com", "legacy py " + HOSTILE, "Legacy Reporter"]),
        (node["event_id"], ["node " + HOSTILE, "Node User", "node@example.com"]),
    ]:
        issue = splat.scalar("SELECT issue_id FROM events WHERE event_id = ?", event_id)
        for path in [f"/projects/{project}/issues/{issue}", f"/projects/{project}/events/{event_id}"]:
            status, page = get(splat, path)
            assert status == 200, page
            assert "User feedback" in page, path
            for text in texts:
                assert escaped(text) in page, (path, text)
            assert "<script>alert" not in page, path
    # The issue page counts the feedback about its events: a feedback and a user report for the Python error.
    issue = splat.scalar("SELECT issue_id FROM events WHERE event_id = ?", py["event_id"])
    _, page = get(splat, f"/projects/{project}/issues/{issue}")
    assert 'User feedback <span class="muted small">2' in page

    # Feedback about no event is on the project's feedback page, with the rest.
    status, page = get(splat, f"/projects/{project}/feedback")
    assert status == 200
    assert escaped("no event: py " + HOSTILE) in page and "Orphan" in page
    assert escaped("node " + HOSTILE) in page
    assert "<script>alert" not in page


def dead_letters(data_dir, *args):
    done = subprocess.run(
        [SPLAT_BIN, "queue", "dead-letters", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def health(splat):
    status, body = get(splat, "/_health")
    return status, json.loads(body)


def eventually(what, check):
    deadline = time.monotonic() + 3 * TIMEOUT
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_a_processor_panic_is_survived_and_the_poisoned_message_redriven(tmp_path):
    data_dir = tmp_path / "data"
    hook = {
        "SPLAT_TEST_PANIC_ON_MARKER": MARKER,
        "SPLAT_QUEUE_VISIBILITY_SECS": "1",
        "SPLAT_QUEUE_MAX_RECEIVES": "2",
    }
    with start_splat(tmp_path, hook) as splat:
        # The poison and two good events, in one batch: it panics, the loop restarts, and the redelivered
        # messages are processed one at a time, so the good ones are stored.
        poison, *good = python_sdk(PYTHON_MESSAGES, splat.dsn, f"poisoned {MARKER}", "good one", "good two")
        splat.wait_for("SELECT 1 FROM events WHERE event_id IN (?, ?)", *good, count=2)
        eventually("a restart", lambda: (health(splat)[1]["processor"] or {}).get("restarts", 0) >= 1)

        # Processing goes on: the next events are stored at once.
        later = python_sdk(PYTHON_MESSAGES, splat.dsn, "after the panic")
        splat.wait_for("SELECT 1 FROM events WHERE event_id = ?", later[0])

        # The poison panics every time; past the receive limit it is a dead letter, listed with its reason.
        eventually("the dead letter", lambda: "panicked" in dead_letters(data_dir, "list"))
        listed = dead_letters(data_dir, "list").splitlines()
        assert len(listed) == 2, listed
        letter_id = listed[1].split()[0]
        assert "SPLAT_TEST_PANIC_ON_MARKER" in listed[1]
        shown = dead_letters(data_dir, "show", letter_id)
        assert "type=event" in shown and poison in shown and MARKER not in shown, shown
        assert splat.query("SELECT 1 FROM events WHERE event_id = ?", poison) == []

        status, report = health(splat)
        assert status == 200, report
        processor = report["processor"]
        assert processor["state"] == "running" and processor["restarts"] >= 1, processor
        assert processor["panics"] >= 2 and "SPLAT_TEST_PANIC_ON_MARKER" in processor["last_panic"], processor
        assert processor["last_batch_at"], processor
        log = splat.log_path.read_text()
        assert "restarting it" in log and "tests only" in log

    # Without the hook, the redriven message is stored: acknowledged, never lost.
    with start_splat(tmp_path, log_name="splat-2.log") as splat:
        assert "1 message(s) back on the queue" in dead_letters(data_dir, "redrive", "--all")
        splat.wait_for("SELECT 1 FROM events WHERE event_id = ?", poison)
        assert dead_letters(data_dir, "list").splitlines()[1:] == []
        assert health(splat)[1]["processor"]["restarts"] == 0
