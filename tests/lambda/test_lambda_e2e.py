"""The five real Lambda bootstraps end to end, without Docker (see conftest.py and aws_lambda.py): the real
Python and Node SDKs send to the front, ingest queues on SQS (claim-checking through S3 what is too big),
the trigger hands batches to the processor, the rows reach the shared database file and the lake's parquet
files the bucket; the UI and MCP answer through the front; the scheduler runs retention and the monitor
tick; a poison message ends in the dead-letter queue and a redelivered batch writes nothing twice."""

import base64
import contextlib
import http.client
import json
import re
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from aws_lambda import Function, InvokeError, function_url, http_event, http_response, scheduled
from conftest import MAX_RECEIVES, MCP_TOKEN, ORIGIN_SECRET, VISIBILITY_SECS
from harness import duckdb_with_ducklake, payload, run_client
from test_mcp import session_run

SLUG = "lambda-e2e"


@pytest.fixture(scope="module")
def sent(stack):
    """What the SDKs sent, once: Python an error and a transaction, then a claim-checked error; Node an error
    and a streamed span tree. Waits until the processor stored all of it."""
    reports = {
        "python": run_client("python", stack.dsn, "error", "transaction"),
        "large": run_client("python", stack.dsn, "large"),
        "node_error": run_client("node", stack.dsn, "error"),
        "node_spans": run_client("node", stack.dsn, "spans"),
    }
    ids = {
        "error": reports["python"]["ids"]["error"],
        "transaction": reports["python"]["ids"]["transaction"],
        "large": reports["large"]["ids"]["large"],
        "node_error": reports["node_error"]["ids"]["event_id"],
        "node_trace": reports["node_spans"]["ids"]["trace_id"],
    }
    stack.wait_for("SELECT 1 FROM events WHERE event_id IN (?, ?, ?)", ids["error"], ids["large"], ids["node_error"],
                   count=3)
    stack.wait_for("SELECT 1 FROM transactions WHERE event_id = ?", ids["transaction"]["event_id"])
    stack.wait_for("SELECT 1 FROM spans WHERE trace_id = ?", ids["node_trace"], count=8)
    return reports, ids


def test_every_sdk_request_was_accepted_through_the_front(sent):
    reports, _ = sent
    assert {r["status"] for r in reports["python"]["requests"] + reports["large"]["requests"]} == {200}
    node = [r for key in ("node_error", "node_spans") for r in reports[key]["requests"]]
    assert node and {r["status"] for r in node} == {200}


def test_ingest_through_its_function_url(stack, sent):
    """The template's other ingest door (IngestEndpoint=FunctionUrl): `$default` route, no path parameters."""
    doors = stack.front.doors
    doors["ingest"], http_api = function_url("splat-ingest"), doors["ingest"]
    try:
        report = run_client("python", stack.dsn, "message")
    finally:
        doors["ingest"] = http_api
    assert {r["status"] for r in report["requests"]} == {200}
    [row] = stack.wait_for("SELECT title, level FROM events WHERE event_id = ?", report["ids"]["message"])
    assert row == {"title": "splat sdk test message", "level": "warning"}


def test_errors_and_transactions_reach_the_database_file(stack, sent):
    _, ids = sent
    [python] = stack.query("SELECT title, platform FROM events WHERE event_id = ?", ids["error"])
    assert python == {"title": "ZeroDivisionError: division by zero", "platform": "python"}
    [node] = stack.query("SELECT title, platform FROM events WHERE event_id = ?", ids["node_error"])
    assert node == {"title": "Error: node sdk boom", "platform": "node"}
    [tx] = stack.query("SELECT name, has_n_plus_one FROM transactions WHERE event_id = ?",
                       ids["transaction"]["event_id"])
    assert tx == {"name": "sdk-test/checkout", "has_n_plus_one": 1}
    # The Node SDK's span stream became a transaction and its eight spans.
    [segment] = stack.query("SELECT name, source, span_count FROM transactions WHERE trace_id = ?", ids["node_trace"])
    assert segment == {"name": "sdk-test/node-checkout", "source": "span", "span_count": 8}
    assert stack.scalar("SELECT count(*) FROM spans WHERE trace_id = ?", ids["node_trace"]) == 8
    # SQLite's rollback journal, as on EFS: the file is not in WAL mode and no -wal file sits beside it.
    assert stack.scalar("PRAGMA journal_mode") == "delete"
    assert not stack.db_path.with_name("splat.db-wal").exists()


def test_a_large_envelope_is_claim_checked_through_s3(stack, sent):
    _, ids = sent
    [row] = stack.query("SELECT * FROM events WHERE event_id = ?", ids["large"])
    assert row["title"] == "MemoryError: a large one"
    assert payload(row)["exception"]["values"][0]["type"] == "MemoryError"
    assert stack.query("SELECT count FROM item_counts WHERE item_type = 'attachment'")
    # The SQS message the processor got carried an S3 key, not the envelope (over SQS's 256 KiB)...
    headers = [json.loads(base64.b64decode(r["body"]).partition(b"\n")[0])
               for e in stack.trigger.events for r in e["Records"] if not r["body"].startswith("not a splat")]
    [claim] = [h for h in headers if h.get("event_id") == ids["large"]]
    assert claim["blob"].startswith("ingest/")
    assert max(len(r["body"]) for e in stack.trigger.events for r in e["Records"]) < 256 * 1024
    # ...and, stored, the body is gone from the bucket again.
    assert stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="ingest/").get("KeyCount", 0) == 0


def test_lake_files_reach_the_bucket_and_stock_duckdb_reads_them(stack, sent, tmp_path):
    _, ids = sent
    keys = []
    for page in stack.s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix="lake/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys and all(k.endswith(".parquet") for k in keys)
    assert {k.split("/")[2] for k in keys} >= {"events", "transactions", "spans"}
    # A reader with the catalog (the database file) and the files fetched from the bucket, as `aws s3 sync`
    # would: stock DuckDB with its ducklake and sqlite extensions, the lake's DATA_PATH pointed at the copy.
    for key in keys:
        target = tmp_path / key
        target.parent.mkdir(parents=True, exist_ok=True)
        stack.s3.download_file(stack.bucket, key, str(target))
    con = duckdb_with_ducklake()
    try:
        con.execute(f"ATTACH 'ducklake:sqlite:{stack.db_path}' AS lake "
                    f"(READ_ONLY, DATA_PATH '{tmp_path}/lake/', OVERRIDE_DATA_PATH true)")
        events = con.execute("SELECT count(*) FROM lake.events WHERE event_id IN (?, ?, ?)",
                             [ids["error"], ids["large"], ids["node_error"]]).fetchone()[0]
        spans = con.execute("SELECT count(*) FROM lake.spans WHERE trace_id = ?", [ids["node_trace"]]).fetchone()[0]
        transactions = con.execute("SELECT count(*) FROM lake.transactions").fetchone()[0]
    finally:
        con.close()
    assert (events, spans) == (3, 8)
    assert transactions == stack.scalar("SELECT count(*) FROM transactions")


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def test_ui_pages_answer_through_the_front(stack, sent, ui_session):
    status, _, home = _get(f"{stack.front.url}/", ui_session)
    assert status == 200 and SLUG in home
    status, _, issues = _get(f"{stack.front.url}/projects/{SLUG}/issues", ui_session)
    assert status == 200
    assert "ZeroDivisionError" in issues and "node sdk boom" in issues
    issue_id = stack.scalar("SELECT issue_id FROM events WHERE event_id = ?", sent[1]["error"])
    status, _, detail = _get(f"{stack.front.url}/projects/{SLUG}/issues/{issue_id}", ui_session)
    assert status == 200 and "division by zero" in detail
    # The DSN the UI shows names the public ingest address, not the UI function's.
    status, _, settings = _get(f"{stack.front.url}/projects/{SLUG}/settings", ui_session)
    assert status == 200 and stack.front.url.split("//")[1] in settings
    status, _, health = _get(f"{stack.front.url}/_health")
    assert status == 200, health
    status, _, raw = _get(f"{stack.front.url}/projects/{SLUG}/events/{sent[1]['error']}/json", ui_session)
    assert status == 200 and json.loads(raw)["exception"]["values"][0]["type"] == "ZeroDivisionError"
    css = re.search(r'href="(/static/splat\.css\?v=[^"]+)"', home).group(1)
    status, headers, sheet = _get(f"{stack.front.url}{css}")
    assert status == 200 and headers["Content-Type"].startswith("text/css") and len(sheet) > 1000


def test_the_ui_function_url_itself_is_refused_without_the_origin_secret(stack):
    """A viewer who found the function URL reaches the UI function without CloudFront's header: 403."""
    door = function_url("splat-ui")
    event = http_event("GET", f"/projects/{SLUG}/issues", [("host", door.domain), ("user-agent", "curl/8")], b"",
                       "198.51.100.9", door)
    status, _, body = http_response(stack.functions["splat-ui"].invoke(event))
    assert status == 403
    assert b"ZeroDivisionError" not in body


def test_the_official_mcp_client_calls_tools_through_the_front(stack, sent):
    _, ids = sent

    async def body(session):
        tools = await session.list_tools()
        recent = await session.call_tool("list_recent_issues", {"limit": 100})
        status = await session.call_tool("get_status", {})
        error = next(i for i in recent.structured_content["issues"] if i["exception_type"] == "ZeroDivisionError")
        issue = await session.call_tool("get_issue", {"issue_id": error["id"]})
        # Span trees are read back from the lake's parquet files in the bucket.
        spans = await session.call_tool("get_transaction_spans", {"trace_id": ids["node_trace"]})
        return tools, recent, status, issue, spans

    _, (tools, recent, status, issue, spans) = session_run(stack, body, MCP_TOKEN)
    assert {"list_recent_issues", "get_issue", "get_transaction_spans"} <= {t.name for t in tools.tools}
    titles = {i["title"] for i in recent.structured_content["issues"]}
    assert {"ZeroDivisionError: division by zero", "Error: node sdk boom", "MemoryError: a large one"} <= titles
    assert not status.is_error and status.structured_content["events"] >= 3
    assert not issue.is_error and "division by zero" in json.dumps(issue.structured_content)
    assert not spans.is_error, spans.content
    assert "SELECT * FROM orders WHERE user_id = %s" in json.dumps(spans.structured_content)


def test_mcp_without_the_token_is_refused(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.front.server_address[1], timeout=30)
    try:
        conn.request("POST", "/mcp", body=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
                     headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
        assert conn.getresponse().status == 401
    finally:
        conn.close()


def test_a_ui_form_post_through_the_front(stack, sent, ui_session):
    """A status change as the browser makes it: the CSRF cookie comes back from the function in the response's
    `cookies`, goes to it in the event's `cookies`, and the urlencoded form travels as a text body."""
    issue_id = stack.scalar("SELECT issue_id FROM events WHERE event_id = ?", sent[1]["node_error"])
    page = f"/projects/{SLUG}/issues/{issue_id}"
    status, headers, html = _get(f"{stack.front.url}{page}", ui_session)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert cookie.startswith("splat_csrf=") and "Secure" in headers["Set-Cookie"]  # CloudFront's https
    token = cookie.split("=", 1)[1]
    assert f'value="{token}"' in html
    form = urllib.parse.urlencode({"csrf": token, "status": "resolved", "next": page}).encode()

    def post(headers):
        conn = http.client.HTTPConnection("127.0.0.1", stack.front.server_address[1], timeout=30)
        try:
            conn.request("POST", f"{page}/status", body=form, headers={
                "Content-Type": "application/x-www-form-urlencoded", "Origin": stack.front.url, **headers})
            return conn.getresponse().status
        finally:
            conn.close()

    session = ui_session["Cookie"]
    assert post({}) == 401  # not signed in
    assert post({"Cookie": session}) == 403  # no CSRF cookie, no change
    assert stack.scalar("SELECT status FROM issues WHERE id = ?", issue_id) == "open"
    assert post({"Cookie": f"theme=dark; {cookie}; {session}"}) == 303
    assert stack.scalar("SELECT status FROM issues WHERE id = ?", issue_id) == "resolved"


def _queue_body(stack, title):
    """A queue message as ingest writes it (its header copied from one the processor got), holding a new
    event: base64 of the header line and the envelope."""
    record = next(r for e in stack.trigger.events for r in e["Records"] if not r["body"].startswith("not a"))
    header = json.loads(base64.b64decode(record["body"]).partition(b"\n")[0])
    event_id = uuid.uuid4().hex
    header.update(event_id=event_id, received_at_us=int(time.time() * 1_000_000))
    for flag in ("blob", "zstd"):  # the envelope travels inline and as it is
        header.pop(flag, None)
    envelope = b'{"event_id":"%s"}\n{"type":"event"}\n{"message":"%s"}\n' % (event_id.encode(), title.encode())
    return event_id, base64.b64encode(json.dumps(header).encode() + b"\n" + envelope).decode()


def test_a_poison_message_ends_in_the_dead_letter_queue(stack, sent):
    """A message Splat cannot read, in one batch with a good one: the good one is stored and deleted, the
    poison is reported in batchItemFailures every time, comes back after the visibility timeout and, after
    MaxReceiveCount receives, is moved to the dead-letter queue by SQS (the queue's RedrivePolicy)."""
    event_id, good = _queue_body(stack, "beside the poison")
    entries = [{"Id": "poison", "MessageBody": "not a splat message {"}, {"Id": "good", "MessageBody": good}]
    ids = {e["Id"]: e["MessageId"] for e in stack.sqs.send_message_batch(
        QueueUrl=stack.queue_url, Entries=entries)["Successful"]}
    deadline = time.monotonic() + (MAX_RECEIVES + 2) * (VISIBILITY_SECS + 2) + 10
    moved = []
    while not moved and time.monotonic() < deadline:
        got = stack.sqs.receive_message(QueueUrl=stack.dlq_url, WaitTimeSeconds=1, AttributeNames=["All"])
        moved = [m for m in got.get("Messages", []) if m["MessageId"] == ids["poison"]]
    assert moved, f"not in the dead-letter queue; trigger errors {stack.trigger.errors}\n{stack.logs()}"
    assert moved[0]["Body"] == "not a splat message {"

    def deliveries(message_id):
        return [(n, r) for n, e in enumerate(stack.trigger.events) for r in e["Records"]
                if r["messageId"] == message_id]

    poison, good = deliveries(ids["poison"]), deliveries(ids["good"])
    assert [r["attributes"]["ApproximateReceiveCount"] for _, r in poison] == [
        str(n + 1) for n in range(MAX_RECEIVES)]
    assert len(good) == 1 and good[0][0] == poison[0][0], "one batch held both; the good one came once"
    assert stack.scalar("SELECT count(*) FROM events WHERE event_id = ?", event_id) == 1


def test_one_invocation_takes_a_batch_of_more_than_ten(stack, sent):
    """With BatchSize above ReceiveMessage's 10, the trigger gathers several receives within its window into
    one invocation; the processor commits all of them together."""
    bodies = [_queue_body(stack, f"batched {n}") for n in range(15)]
    ids = [event_id for event_id, _ in bodies]
    with stack.trigger.scaled_to(1):
        for start in (0, 10):
            stack.sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=[
                {"Id": str(n), "MessageBody": body} for n, (_, body) in enumerate(bodies[start:start + 10])])
        stack.wait_for(f"SELECT 1 FROM events WHERE event_id IN ({','.join('?' * 15)})", *ids, count=15)
    sizes = [len(e["Records"]) for e in stack.trigger.events]
    assert max(sizes) > 10, sizes


def test_two_processor_instances_at_once(stack, sent):
    """The trigger's two concurrent batches, each to its own processor instance: both commit to the one
    database file (they take turns on its lock, the rollback journal's as on EFS) and nothing is lost."""
    batches = [[_queue_body(stack, f"instance {i} message {n}") for n in range(20)] for i in (1, 2)]
    events = [stack.trigger.event([{"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex,
                                    "Body": body, "MD5OfBody": "", "Attributes": {"ApproximateReceiveCount": "1"}}
                                   for _, body in batch]) for batch in batches]
    instances = [stack.functions["splat-processor"], stack.functions["splat-processor#2"]]
    answers = [None, None]

    def invoke(n):
        answers[n] = instances[n].invoke(events[n])

    threads = [threading.Thread(target=invoke, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [{"batchItemFailures": []}] * 2
    ids = [event_id for batch in batches for event_id, _ in batch]
    assert stack.scalar(f"SELECT count(*) FROM events WHERE event_id IN ({','.join('?' * 40)})", *ids) == 40


def test_a_redelivered_batch_writes_nothing_twice(stack, sent):
    """SQS delivers at least once: every batch the processor was given, delivered again with the same message
    ids (a claim-checked one among them, whose body is gone from S3), changes nothing; only the poison fails."""
    tables = ("events", "issues", "transactions", "spans", "processed_messages")
    before = {t: stack.scalar(f"SELECT count(*) FROM {t}") for t in tables}
    lake_before = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="lake/").get("KeyCount", 0)
    assert len(stack.trigger.events) >= 4
    for event in list(stack.trigger.events):
        answer = stack.functions["splat-processor"].invoke(event)
        poison = [r["messageId"] for r in event["Records"] if r["body"].startswith("not a splat")]
        assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == poison, answer
    assert {t: stack.scalar(f"SELECT count(*) FROM {t}") for t in tables} == before
    assert stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix="lake/").get("KeyCount", 0) == lake_before


def test_the_scheduler_runs_retention_and_the_monitor_tick(stack, sent):
    # A cron job checks in over plain HTTP (a GET with a query string, no body) to the HTTP API's ingest route.
    key, project = stack.dsn.split("//")[1].split("@")[0], stack.dsn.rsplit("/", 1)[1]
    status, _, body = _get(f"{stack.front.url}/api/{project}/cron/nightly/{key}/?status=ok&environment=prod")
    assert status == 202, body
    [monitor] = stack.wait_for("SELECT slug, last_checkin_at FROM monitors WHERE slug = 'nightly'")
    assert monitor["last_checkin_at"]
    retention = scheduled(stack.functions["splat-retention"], "retention")
    assert retention["job"] == "retention" and "report" in retention
    # The monitor tick runs in the processor (the writer), as the template schedules it.
    monitors = scheduled(stack.functions["splat-processor"], "monitors")
    assert monitors == {"job": "monitors", "missed": 0, "failed": 0, "overrun": 0, "recovered": 0,
                        "keys_republished": False}
    # Each function refuses the other's job rather than running it with the wrong timeout or concurrency.
    with pytest.raises(InvokeError, match="runs in the processor"):
        scheduled(stack.functions["splat-retention"], "monitors")
    for job in ("retention", "migrate"):
        with pytest.raises(InvokeError, match="runs in the retention function"):
            scheduled(stack.functions["splat-processor"], job)
    assert stack.scalar("SELECT count(*) FROM retention_runs") >= 1
    # Within its horizons nothing of today's data goes.
    assert stack.scalar("SELECT count(*) FROM events WHERE event_id = ?", sent[1]["error"]) == 1


def test_only_the_processor_migrates_and_the_others_wait_for_it(stack, sent, tmp_path):
    """On a fresh file system (or during a deploy whose new code starts before the processor's), the UI,
    MCP and retention start without a database and wait: 503 with Retry-After, skipped runs, and no file
    created. The processor creates and migrates it at init; then they serve. The retention function's
    migrate job (for the long migrations the processor leaves to it) then catches up a database a release
    behind."""
    if stack.remote:
        pytest.skip("the database file's life on EFS; a libSQL server's database is there before any function")
    db = tmp_path / "efs" / "splat.db"
    db.parent.mkdir()
    started = {}

    def start(name):
        template = stack.functions[name]
        function = Function(name, template.binary, {**template.env, "SPLAT_DATABASE_PATH": str(db)}, tmp_path,
                            log_name=f"fresh-{name}.log")
        started[name] = function
        function.wait_ready()  # init does not need the database
        return function

    def ui_health():
        door = function_url("splat-ui")
        event = http_event("GET", "/_health", [("host", door.domain), ("x-splat-origin-secret", ORIGIN_SECRET)],
                           b"", "198.51.100.9", door)
        return http_response(started["splat-ui"].invoke(event))

    def mcp_list():
        door = function_url("splat-mcp")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
        headers = [("host", door.domain), ("authorization", f"Bearer {MCP_TOKEN}"),
                   ("content-type", "application/json"), ("accept", "application/json, text/event-stream")]
        return http_response(started["splat-mcp"].invoke(http_event("POST", "/mcp", headers, body, "198.51.100.9", door)))

    try:
        for name in ("splat-ui", "splat-mcp", "splat-retention"):
            start(name)
        for status, headers, body in (ui_health(), mcp_list()):
            assert status == 503 and dict(headers)["retry-after"] == "10", (status, body)
            assert b"not ready" in body and str(db).encode() not in body  # the reason is logged, not shown
        assert "skipped" in scheduled(started["splat-retention"], "retention")
        assert "skipped" in scheduled(started["splat-retention"], "migrate")
        assert not db.exists(), "only the processor creates the database"

        start("splat-processor")
        assert db.exists()
        status, _, body = ui_health()
        assert status == 200, body
        status, _, body = mcp_list()
        assert status == 200 and b"search_issues" in body, body
        assert scheduled(started["splat-retention"], "retention")["job"] == "retention"

        # A release behind: migration 35 not yet applied.
        newest = _sqlite(db, "SELECT max(version) FROM schema_migrations")
        _sqlite(db, "DELETE FROM schema_migrations WHERE version = 35",
                "DROP INDEX transaction_rollups_daily_environment")
        assert scheduled(started["splat-retention"], "migrate") == {"job": "migrate", "schema_version": newest, "pending": 0}
        assert _sqlite(db, "SELECT count(*) FROM sqlite_master WHERE name = 'transaction_rollups_daily_environment'") == 1

        # A release behind a long migration (36 rebuilds two indexes over every transaction) on a database too
        # large for the processor to run it (SMALL_DATABASE_BYTES, 64 MiB: here a filler): a new processor
        # leaves it to the migrate job and, until the job has run, hands its batches back and skips its tick.
        _sqlite(db, "CREATE TABLE filler AS WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    "WHERE i < 65) SELECT zeroblob(1 << 20) AS b FROM n",
                "DELETE FROM schema_migrations WHERE version = 36",
                "DROP INDEX transactions_hour_duration", "DROP INDEX transactions_endpoint_hour_duration",
                "CREATE INDEX transactions_project_duration ON transactions (project_id, duration_us)",
                "CREATE INDEX transactions_endpoint_duration ON transactions (project_id, name, duration_us)")
        for name in ("splat-processor", "splat-ui"):  # the deploy's new instances
            started.pop(name).stop()
        processor, _ = start("splat-processor"), start("splat-ui")
        _, body = _queue_body(stack, "held while the schema is behind")
        event = stack.trigger.event([{"MessageId": "held-1", "ReceiptHandle": uuid.uuid4().hex, "Body": body,
                                      "MD5OfBody": "", "Attributes": {"ApproximateReceiveCount": "1"}}])
        assert processor.invoke(event) == {"batchItemFailures": [{"itemIdentifier": "held-1"}]}
        assert scheduled(processor, "monitors") == {"job": "monitors", "held": 1}
        assert _sqlite(db, "SELECT count(*) FROM schema_migrations WHERE version = 36") == 0
        assert ui_health()[0] == 503
        assert scheduled(started["splat-retention"], "migrate") == {"job": "migrate", "schema_version": newest, "pending": 0}
        # (The message's project is not in this database: stored or dropped, it is no longer handed back.)
        assert processor.invoke(event) == {"batchItemFailures": []}
        assert "held" not in scheduled(processor, "monitors")
        assert ui_health()[0] == 200
    finally:
        for function in started.values():
            function.stop()


def test_no_function_writes_to_its_code_directory(stack, sent):
    """Lambda's /var/task is read-only: every file goes to the database's directory (EFS), S3 or /tmp."""
    assert {name: sorted(p.name for p in root.iterdir()) for name, root in stack.task_roots.items()} == {
        name: [] for name in stack.task_roots}


def test_idle_functions_are_frozen(stack, sent):
    """Between invocations each bootstrap is stopped, as Lambda freezes an idle instance; the tests above ran
    against functions frozen and thawed around every invocation."""
    for name, function in stack.functions.items():
        deadline = time.monotonic() + 10
        while not function.api.frozen and time.monotonic() < deadline:
            time.sleep(0.05)
        state = Path(f"/proc/{function.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state == "T", (name, state)
    # A frozen instance may hold its database connection but no lock: a lock it kept would stall the writer
    # (and every reader, with the rollback journal) until that instance happens to be invoked again.
    with contextlib.closing(sqlite3.connect(stack.db_path, timeout=0, isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")
        db.execute("ROLLBACK")


def _sqlite(path, *statements):
    """Runs statements on the database file as another process would (the functions are frozen between
    invocations and hold no lock); the first column of the last one's first row."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for sql in statements:
            row = conn.execute(sql).fetchone()
        conn.commit()
    return row[0] if row else None
