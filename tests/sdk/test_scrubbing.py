"""Data scrubbing, on by default: the real Python SDK with `send_default_pii=True` and local variables sends
passwords, cookies, an Authorization header, card numbers, a local variable named `token` and a breadcrumb
with a secret; none of them reaches the database file (its bytes, its WAL, the decompressed payloads), the
lake (stock DuckDB, and the parquet files' bytes) or a page, and the event page says what was scrubbed.

The same client against a project whose default scrubbers are turned off (`splat project scrub --defaults
off`) stores every one of those values: the SDK really sends them, and the checks below really find them.

The Python SDK has a deny list of its own (`EventScrubber`); the client replaces it with an empty one, as
most SDKs (JavaScript, Go, Ruby, …) send what they collect as it is."""

import http.client
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import zstandard

from harness import start_splat, stop
from test_attack_keys import cli

RUN = uuid.uuid4().hex[:10]
# Each value is unique to this run, so finding it anywhere can only mean it was stored.
SECRETS = {
    "query string password": f"hunter2q{RUN}",
    "Authorization header": f"authsecret{RUN}",
    "session cookie": f"sessval{RUN}",
    "csrf cookie": f"csrfval{RUN}",
    "local variable token": f"tokval{RUN}",
    "breadcrumb secret": f"crumbval{RUN}",
    "extra password": f"extrapw{RUN}",
    "card number": "4111 1111 1111 1111",
}

CLIENT = r'''
import os
import sys
import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
from sentry_sdk.scrubber import EventScrubber
from wsgiref.util import setup_testing_defaults



def arg(name):
    """A value from the environment (the SDK sends the command line as an extra), never held in a variable
    of its own: only the places the test puts it may show it."""
    return os.environ["SCRUB_TEST_" + name.upper()]


sentry_sdk.init(
    dsn=sys.argv[1],
    send_default_pii=True,
    include_local_variables=True,
    traces_sample_rate=1.0,
    event_scrubber=EventScrubber(denylist=[], send_default_pii=True),
)


def checkout(environ, start_response):
    token = arg("token")
    sentry_sdk.add_breadcrumb(category="auth", message="signed in", data={"api_secret": arg("crumb"), "user": "bob"})
    sentry_sdk.set_extra("login", {"password": arg("extrapw"), "remember": True})
    sentry_sdk.set_extra("payment", {"card_number": arg("card"), "amount": 12})
    with sentry_sdk.start_span(op="task", name="charge " + arg("card")):
        pass
    raise ValueError("checkout failed for " + environ["PATH_INFO"] + " " + token[:0])


environ = {
    "PATH_INFO": "/checkout",
    "QUERY_STRING": "page=2&password=" + arg("password"),
    "HTTP_AUTHORIZATION": "Bearer " + arg("auth"),
    "HTTP_COOKIE": "sessionid=" + arg("session") + "; csrftoken=" + arg("csrf") + "; theme=dark",
    "HTTP_USER_AGENT": "scrub-test/1.0",
    "REMOTE_ADDR": "203.0.113.7",
}
setup_testing_defaults(environ)
try:
    SentryWsgiMiddleware(checkout)(environ, lambda *a: None)
except ValueError:
    pass
sentry_sdk.capture_message("paid with " + arg("card"))
sentry_sdk.flush(timeout=10)
'''


def send(dsn):
    env = {f"SCRUB_TEST_{k.upper()}": v for k, v in {
        "password": SECRETS["query string password"], "auth": SECRETS["Authorization header"],
        "session": SECRETS["session cookie"], "csrf": SECRETS["csrf cookie"],
        "token": SECRETS["local variable token"], "crumb": SECRETS["breadcrumb secret"],
        "extrapw": SECRETS["extra password"], "card": SECRETS["card number"],
    }.items()}
    done = subprocess.run([sys.executable, "-c", CLIENT, dsn], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def get(splat, path):
    parts = urlsplit(splat.base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, (path, response.status, body[:500])
        return body
    finally:
        conn.close()


def send_and_wait(splat):
    send(splat.dsn)
    # The error and the message, and the checkout transaction.
    splat.wait_for("SELECT 1 FROM events", count=2)
    splat.wait_for("SELECT 1 FROM transactions", count=1)


def pages(splat):
    """Every page showing this data: issue list, each issue, each event, each transaction."""
    html = [get(splat, path) for path in ("/projects/default", "/projects/default/issues",
                                          "/projects/default/performance")]
    for row in splat.query("SELECT issue_id, event_id FROM events"):
        html.append(get(splat, f"/projects/default/issues/{row['issue_id']}"))
        html.append(get(splat, f"/projects/default/events/{row['event_id']}"))
    transactions = set(re.findall(r'/projects/default/transactions/[^"?#]+', html[2]))
    assert transactions, "the performance page links the checkout transaction"
    html += [get(splat, path) for path in transactions]
    return html


def variants(value):
    """A value as it may be stored: as sent, and a card number also without its spaces."""
    return {value, value.replace(" ", "")}


def found_in(texts, secrets):
    return {name for name, value in secrets.items() if any(v in t for t in texts for v in variants(value))}


def stored_texts(db_path):
    """What the stopped server left: the database file's and WAL's bytes, every payload decompressed, and
    the lake's parquet files' bytes (as latin-1 text, so byte strings can be searched)."""
    import sqlite3

    texts = []
    for path in (db_path, Path(f"{db_path}-wal")):
        if path.exists():
            texts.append(path.read_bytes().decode("latin-1"))
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        for table in ("events", "transactions"):
            for (payload,) in db.execute(f"SELECT payload FROM {table} WHERE payload IS NOT NULL"):
                texts.append(zstandard.ZstdDecompressor().decompress(payload, max_output_size=1 << 26).decode())
    for parquet in db_path.parent.rglob("*.parquet"):
        texts.append(parquet.read_bytes().decode("latin-1"))
    return texts


def lake_texts(splat):
    """Every row of every lake table, as stock DuckDB reads it."""
    rows = []
    for table in ("events", "transactions", "spans"):
        rows += [r["row"] for r in splat.lake(f"SELECT CAST(t AS VARCHAR) AS row FROM lake.{table} t")]
    assert rows, "the lake holds the rows"
    return rows


def test_no_secret_the_sdk_sends_is_stored_or_shown(splat):
    send_and_wait(splat)
    html = pages(splat)
    assert found_in(html, SECRETS) == set()

    [error] = splat.query("SELECT event_id FROM events WHERE title LIKE 'ValueError%'")
    page = get(splat, f"/projects/default/events/{error['event_id']}")
    # The note names the rules and fields, never the values.
    assert "Scrubbed" in page and "@password:filter" in page, page
    for field in ("request.headers.Authorization", "request.headers.Cookie", "request.query_string",
                  "vars.token", "data.api_secret", "extra.login.password"):
        assert field in page, field
    assert "@creditcard:filter" in page and "extra.payment.card_number" in page
    # What was not secret is still there: the request's URL, the harmless extra, the breadcrumb's user.
    assert "/checkout" in page and "scrub-test/1.0" in page

    lake = lake_texts(splat)
    stop(splat.proc)
    assert found_in(lake, SECRETS) == set()
    assert found_in(stored_texts(splat.db_path), SECRETS) == set()


def test_without_the_default_scrubbers_every_value_is_stored(tmp_path):
    """The control: the same client, the project's default scrubbers off. Every value the first test looks
    for is found, so its finding nothing means something."""
    with start_splat(tmp_path) as splat:
        out = cli(splat, "project", "scrub", "default", "--defaults", "off")
        assert "default rules: off" in out
        send_and_wait(splat)
        assert found_in(pages(splat), SECRETS) >= {"Authorization header", "card number"}
        lake = lake_texts(splat)
        stop(splat.proc)
        assert found_in(stored_texts(splat.db_path), SECRETS) == set(SECRETS)
        assert found_in(lake, SECRETS) == {"card number"}, "the lake keeps span descriptions"


def test_project_settings_add_sensitive_and_safe_fields(tmp_path):
    """Per project: an extra sensitive key is scrubbed, a safe field is kept, IP addresses go on request."""
    with start_splat(tmp_path) as splat:
        out = cli(splat, "project", "scrub", "default", "--sensitive-fields", "theme,amount",
                  "--safe-fields", "extra.payment.card_number", "--ip-addresses", "on")
        assert "safe fields: extra.payment.card_number" in out and "ip addresses: on" in out
        send_and_wait(splat)
        [error] = splat.query("SELECT event_id FROM events WHERE title LIKE 'ValueError%'")
        payload = stored_payload(splat, error["event_id"])
        assert payload["extra"]["payment"]["card_number"] == SECRETS["card number"], "a safe field"
        assert payload["extra"]["payment"]["amount"] == "[Filtered]", "an extra sensitive field"
        assert payload["extra"]["login"]["remember"] is True, "booleans are never scrubbed" 
        assert payload["request"]["env"]["REMOTE_ADDR"] is None, "IP addresses removed"
        assert "203.0.113.7" not in json.dumps(payload), "in the frame's variables too"
        rules = {n["rule"] for n in payload["splat"]["processing_notes"]}
        assert {"strip-fields", "@anything:remove", "@password:filter"} <= rules


def stored_payload(splat, event_id):
    [row] = splat.query("SELECT payload FROM events WHERE event_id = ?", event_id)
    return json.loads(zstandard.ZstdDecompressor().decompress(row["payload"], max_output_size=1 << 26))
