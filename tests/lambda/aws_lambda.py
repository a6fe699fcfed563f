"""What AWS does around Splat's Lambda functions, on loopback and without Docker, so the real bootstraps run as
they do in the stack: the Lambda Runtime API each function process polls (one instance per function), a front
that turns HTTP requests into function URL / API Gateway v2 events (payload 2.0, CloudFront's shape for the
UI and the sign-in function), the SQS trigger (event source mapping), the bucket's event notification for the
alert outbox, and EventBridge Scheduler. S3 and SQS are moto's."""

import base64
import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from capture import read_body
from harness import stop

REGION, ACCOUNT = "us-east-1", "123456789012"
RUNTIME = "/2018-06-01/runtime"
INVOKE_TIMEOUT = 60.0


class InvokeError(Exception):
    """The function answered the invocation with an error (what Lambda reports as a function error)."""


class RuntimeApi(ThreadingHTTPServer):
    """The Lambda Runtime API of one function instance: invocations wait in a queue until the bootstrap asks
    for the next, so the instance handles one at a time, as a Lambda instance does. Between invocations the
    process is frozen (SIGSTOP) as Lambda freezes an idle instance: no timer fires, no background task runs,
    and whatever it left open (connections, file locks) waits with it."""

    daemon_threads = True

    def __init__(self, arn):
        self.arn = arn
        self.pending = queue.Queue()
        self.answers = {}  # request id -> [threading.Event, (ok, body)]
        self.polled = threading.Event()  # the bootstrap's first `next`: its init is done
        self.init_error = None
        self.closing = False
        self.pid = None  # the bootstrap's, once started
        self.frozen = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RuntimeHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=INVOKE_TIMEOUT):
        request_id = str(uuid.uuid4())
        done = threading.Event()
        self.answers[request_id] = [done, None]
        with self.lock:
            self.pending.put((request_id, json.dumps(event).encode(), time.time() + timeout))
            self._thaw()
        if not done.wait(timeout):
            raise InvokeError(f"invocation {request_id} timed out after {timeout:.0f} s")
        ok, body = self.answers.pop(request_id)[1]
        if not ok:
            raise InvokeError(body.decode(errors="replace"))
        return json.loads(body) if body else None

    def answer(self, request_id, ok, body):
        slot = self.answers.get(request_id)
        if slot:
            slot[1] = (ok, body)
            slot[0].set()

    def freeze_if_idle(self):
        """The bootstrap asked for the next invocation and none is waiting: Lambda freezes it until one is."""
        with self.lock:
            if self.pid and self.pending.empty() and not self.frozen and not self.closing:
                os.kill(self.pid, signal.SIGSTOP)
                self.frozen = True

    def _thaw(self):
        if self.frozen:
            os.kill(self.pid, signal.SIGCONT)
            self.frozen = False

    def stop(self):
        with self.lock:
            self.closing = True
            self._thaw()
        self.shutdown()
        self.server_close()


class _RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != f"{RUNTIME}/invocation/next":
            return self._reply(404)
        self.server.polled.set()
        self.server.freeze_if_idle()
        while not self.server.closing:
            try:
                request_id, event, deadline = self.server.pending.get(timeout=0.5)
            except queue.Empty:
                continue
            return self._reply(200, event, {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": str(int(deadline * 1000)),
                "Lambda-Runtime-Invoked-Function-Arn": self.server.arn,
                "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            })

    def do_POST(self):
        body = read_body(self)
        parts = self.path.removeprefix(f"{RUNTIME}/").split("/")
        if parts == ["init", "error"]:
            self.server.init_error = body.decode(errors="replace")
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            self.server.answer(parts[1], parts[2] == "response", body)
        else:
            return self._reply(404)
        self._reply(202, b'{"status":"OK"}')

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Function:
    """One function's bootstrap running as a process under its own Runtime API, with the environment Lambda
    gives it (and nothing of the test's own)."""

    def __init__(self, name, binary, env, log_dir, cwd=None, log_name=None):
        self.name = name
        self.binary, self.env = binary, env  # what the template gave it
        self.api = RuntimeApi(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
        self.log_path = Path(log_dir) / (log_name or f"{name}.log")
        lambda_env = {
            "PATH": os.environ["PATH"],
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TZ": ":UTC",
            **env,
        }
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([binary], env=lambda_env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        self.api.pid = self.proc.pid

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not self.api.polled.wait(0.05):
            if self.api.init_error or self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not start (exit {self.proc.poll()}, init error {self.api.init_error}):\n"
                    f"{self.log_tail()}")

    def invoke(self, event, timeout=INVOKE_TIMEOUT):
        return self.api.invoke(event, timeout)

    def log_tail(self, chars=3000):
        return self.log_path.read_text()[-chars:]

    def stop(self):
        self.api.stop()  # thawed first: a stopped process would not act on SIGTERM
        stop(self.proc)


# Headers that frame one hop, which API Gateway and function URLs do not pass on.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml",
               "application/javascript")


@dataclass(frozen=True)
class Door:
    """How requests reach a function, each way with payload format 2.0: its function URL, or a route of the
    stack's HTTP API (`$default` stage)."""

    domain: str
    route_key: str = "$default"
    account: str = "anonymous"


def function_url(name):
    return Door(f"{uuid.uuid5(uuid.NAMESPACE_DNS, name).hex}.lambda-url.{REGION}.on.aws")


def http_api_route(route_key):
    return Door(f"k3vq7hzc2x.execute-api.{REGION}.amazonaws.com", route_key, ACCOUNT)


def http_event(method, target, headers, body, source_ip, door):
    """A payload format 2.0 event as AWS builds it: lower-case headers with repeats comma-joined, cookies in
    their own array, the x-forwarded-* of AWS's TLS front, a body in base64 unless it is text, and for an
    HTTP API route its key and path parameters."""
    path, _, query = target.partition("?")
    joined, cookies = {}, []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
        elif name not in _HOP_BY_HOP:
            joined[name] = f"{joined[name]},{value}" if name in joined else value
    forwarded_for = joined.get("x-forwarded-for")
    joined.update({
        "x-forwarded-for": f"{forwarded_for}, {source_ip}" if forwarded_for else source_ip,
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "x-amzn-trace-id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
    })
    if body:
        joined["content-length"] = str(len(body))
    content_type = joined.get("content-type", "")
    text = content_type.startswith(_TEXT_TYPES) and "content-encoding" not in joined and _is_utf8(body)
    now = datetime.now(timezone.utc)
    prefix = door.domain.split(".")[0]
    event = {
        "version": "2.0",
        "routeKey": door.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": {
            "accountId": door.account,
            "apiId": prefix,
            "domainName": door.domain,
            "domainPrefix": prefix,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": joined.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": door.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not text and bool(body),
    }
    route_path = door.route_key.partition(" ")[2]
    if route_path.endswith("{proxy+}"):
        event["pathParameters"] = {"proxy": path.removeprefix(route_path.removesuffix("{proxy+}"))}
    if query:
        # AWS's parsed copy; repeated keys comma-joined. The functions read rawQueryString.
        params = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if cookies:
        event["cookies"] = cookies
    if body:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
    return event


def _is_utf8(data):
    try:
        data.decode()
        return True
    except UnicodeDecodeError:
        return False


def http_response(answer):
    """(status, [(name, value)], body) from a function's payload 2.0 response."""
    body = answer.get("body") or ""
    body = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    headers = []
    multi = answer.get("multiValueHeaders") or {}
    for name, value in (answer.get("headers") or {}).items():
        if name.lower() not in multi and name.lower() not in ("content-length", "transfer-encoding"):
            headers.append((name, value))
    for name, values in multi.items():
        if name.lower() not in ("content-length", "transfer-encoding"):
            headers += [(name, v) for v in values]
    headers += [("set-cookie", c) for c in answer.get("cookies") or []]
    return answer.get("statusCode", 200), headers, body


class Front(ThreadingHTTPServer):
    """The stack's public doors in one loopback server: `/api/*` goes to ingest (its HTTP API or function
    URL), `/mcp` to the MCP function, `/login/*` and `/auth/*` to the sign-in function and everything else
    to the UI, those two the way CloudFront forwards to its origins (the function URL's own Host, the
    viewer's host in x-forwarded-host, the origin secret header)."""

    daemon_threads = True
    # The distribution's origins: its cache behaviors send these paths to the sign-in function.
    CLOUDFRONT = ("ui", "signin")

    def __init__(self, origin_secret):
        self.routes = {}  # "ingest", "ui", "mcp", "signin" -> Function, set once they have started
        # The template's default shape: ingest and MCP on the HTTP API, the UI and sign-in on function URLs.
        self.doors = {"ingest": http_api_route("ANY /api/{proxy+}"), "mcp": http_api_route("ANY /mcp"),
                      "ui": function_url("splat-ui"), "signin": function_url("splat-signin")}
        self.served = []  # (path, route) of every request, in order
        self.origin_secret = origin_secret
        super().__init__(("127.0.0.1", 0), _FrontHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, path):
        if path.startswith("/api/"):
            return "ingest"
        if path == "/mcp" or path.startswith("/mcp/"):
            return "mcp"
        if path.startswith(("/login/", "/auth/")):
            return "signin"
        return "ui"

    def stop(self):
        self.shutdown()
        self.server_close()


class UiDistribution(Front):
    """The UI's CloudFront distribution on a host of its own, as a deployed stack has it (the address people
    and sentry-cli's SENTRY_URL use): every path goes to the UI function, `/api/0/` included, but sign-in's.
    On the ingest host ([`Front`]'s `/api/*`, the HTTP API) those paths reach ingest instead."""

    def route(self, path):
        return "signin" if path.startswith(("/login/", "/auth/")) else "ui"


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self):
        body = read_body(self)
        name = self.server.route(self.path.partition("?")[0])
        self.server.served.append((self.path.partition("?")[0], name))
        function = self.server.routes[name]
        headers = list(self.headers.items())
        door = self.server.doors[name]
        if name in Front.CLOUDFRONT:
            # CloudFront's viewer-request function copies the viewer's Host; the origin request carries the
            # function URL's Host and the secret only CloudFront knows.
            viewer = self.headers.get("Host", "")
            headers = [(k, v) for k, v in headers
                       if k.lower() not in ("host", "x-forwarded-host", "x-splat-origin-secret")]
            headers += [("host", door.domain), ("x-forwarded-host", viewer),
                        ("via", "2.0 0123456789abcdef.cloudfront.net (CloudFront)"),
                        ("x-splat-origin-secret", self.server.origin_secret)]
        else:
            headers = [(k, door.domain if k.lower() == "host" else v) for k, v in headers]
        event = http_event(self.command, self.path, headers, body, self.client_address[0], door)
        try:
            status, out_headers, out_body = http_response(function.invoke(event))
        except InvokeError as e:
            # What a function URL answers when the function fails.
            status, out_headers, out_body = 502, [("content-type", "application/json")], json.dumps(
                {"Message": f"function error: {e}"}).encode()
        self.send_response(status)
        for k, v in out_headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out_body)))
        self.end_headers()
        self.wfile.write(out_body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _handle

    def log_message(self, *args):
        pass


class SqsTrigger:
    """What the SQS event source mapping does for the processor: long-poll the queue, gather up to
    `batch_size` messages for at most `window` seconds, invoke the function with an SQS event, delete what it
    did not report in `batchItemFailures` (all of them stay when the invocation fails). The rest come back
    after the visibility timeout; the queue's RedrivePolicy moves them to the dead-letter queue. One poller
    per instance given: the mapping's MaximumConcurrency, each batch to an instance of its own."""

    def __init__(self, sqs, queue_url, instances, batch_size=10, window=0.5):
        self.sqs, self.queue_url = sqs, queue_url
        self.batch_size, self.window = batch_size, window
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"]
        self.events = []  # every SQS event the function was invoked with, for redelivery tests
        self.errors = []  # invocation errors (function errors), for the tests to show
        self.stopped = threading.Event()
        self.active = len(instances)  # pollers at work: the first `active`
        self.busy = [False] * len(instances)
        self.threads = [threading.Thread(target=self._run, args=(n, f), daemon=True) for n, f in enumerate(instances)]
        for thread in self.threads:
            thread.start()

    def _run(self, n, function):
        while not self.stopped.is_set():
            if n >= self.active:
                time.sleep(0.05)
                continue
            self.busy[n] = True
            messages = self._gather()
            if messages:
                self._deliver(function, messages)
            self.busy[n] = False

    @contextlib.contextmanager
    def scaled_to(self, pollers):
        """Fewer pollers for a while, as the mapping scales them with the backlog: with one, a burst is
        gathered into one batch rather than shared out. Waits until the others are idle."""
        before, self.active = self.active, pollers
        deadline = time.monotonic() + INVOKE_TIMEOUT
        while any(self.busy[pollers:]):
            if time.monotonic() > deadline:
                raise TimeoutError("a poller never came back from its batch")
            time.sleep(0.05)
        try:
            yield
        finally:
            self.active = before

    def _gather(self):
        messages, deadline = [], None
        while len(messages) < self.batch_size and not self.stopped.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=1 if left is None else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got and deadline is None:
                return []  # an empty long poll: back to the poller's loop, which may have been scaled down
            if deadline is None:
                deadline = time.monotonic() + self.window
            messages += got
            if not got and deadline is not None:
                time.sleep(min(0.05, max(0, deadline - time.monotonic())))
        return messages

    def event(self, messages):
        return {"Records": [{
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {k: {"stringValue": v.get("StringValue"), "dataType": v["DataType"]}
                                  for k, v in m.get("MessageAttributes", {}).items()},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": REGION,
        } for m in messages]}

    def _deliver(self, function, messages):
        event = self.event(messages)
        self.events.append(event)
        try:
            answer = function.invoke(event)
        except InvokeError as e:
            self.errors.append(str(e))
            return
        failed = {f["itemIdentifier"] for f in (answer or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])

    def stop(self):
        self.stopped.set()
        for thread in self.threads:
            thread.join(timeout=10)


def scheduled(function, job):
    """One EventBridge Scheduler run of a schedule whose target input is `{"job": JOB}` (the template's
    retention and monitor schedules): the function receives the input as it is."""
    return function.invoke({"job": job})


class S3Notifications:
    """What the bucket's event notification does for the alert outbox (infra/template.yaml, Bucket): each new
    object under `prefix` becomes an S3 event (`ObjectCreated:Put`, key URL-encoded, with its size) and an
    asynchronous invocation of `function`; a function error is retried twice, as Lambda's asynchronous
    invocation does (here `retry_delays` apart rather than minutes). moto cannot invoke the harness's
    functions, so new objects are found by listing the prefix every `every` seconds; an object written
    again (a new ETag) is announced again, as a new ObjectCreated event would be."""

    def __init__(self, s3, bucket, prefix, function, every=0.2, retry_delays=(1.0, 2.0)):
        self.s3, self.bucket, self.prefix, self.function = s3, bucket, prefix, function
        self.every, self.retry_delays = every, retry_delays
        self.seen = set()  # (key, ETag) announced
        self.events = []  # every event the function was invoked with
        self.answers = []  # (event, answer) of the invocations that succeeded
        self.errors = []  # (event, error) of those that failed
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopped.wait(self.every):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for obj in (o for page in pages for o in page.get("Contents", [])):
                if (obj["Key"], obj["ETag"]) not in self.seen:
                    self.seen.add((obj["Key"], obj["ETag"]))
                    threading.Thread(target=self._deliver, args=(self.event(obj),), daemon=True).start()

    def event(self, obj):
        now = datetime.now(timezone.utc)
        return {"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "AWS:AROAEXAMPLE:splat-processor"},
            "requestParameters": {"sourceIPAddress": "10.0.1.23"},
            "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "alert-outbox",
                "bucket": {"name": self.bucket, "ownerIdentity": {"principalId": "A3EXAMPLE"},
                           "arn": f"arn:aws:s3:::{self.bucket}"},
                "object": {"key": urllib.parse.quote_plus(obj["Key"], safe="/"), "size": obj["Size"],
                           "eTag": obj["ETag"].strip('"'), "sequencer": f"{time.time_ns():X}"},
            },
        }]}

    def _deliver(self, event):
        self.events.append(event)
        for delay in (0.0, *self.retry_delays):
            if self.stopped.wait(delay):
                return
            try:
                self.answers.append((event, self.function.invoke(event)))
                return
            except InvokeError as e:
                self.errors.append((event, str(e)))

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=10)
