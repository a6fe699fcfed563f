"""The serverless stack on loopback for the end-to-end tests: the real Lambda bootstraps (debug builds in
$CARGO_TARGET_DIR/debug) each under its own Runtime API, with the environment infra/template.yaml gives them,
S3 and SQS from moto (SPLAT_TEST_AWS_ENDPOINT, started by tests/run), the database as one file they share
(EFS in the stack) with the rollback journal, a front for the public doors, the SQS trigger, the bucket's
notification of new alert objects, a webhook receiver for alerts and an OpenID provider for sign-in.
With SPLAT_TEST_DATABASE=sqld, the template's remote mode instead: the database on a libSQL server (sqld.py)
reached over https (a test CA), its token from the "secret" the template names."""

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "sdk"))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from aws_lambda import REGION, Front, Function, S3Notifications, SqsTrigger  # noqa: E402
from browser import CLIENT_ID, CLIENT_SECRET, Browser, Provider  # noqa: E402
from harness import Splat  # noqa: E402
from test_notifications import Receiver, http_receiver  # noqa: E402

ENDPOINT = os.environ.get("SPLAT_TEST_AWS_ENDPOINT")
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/splat-target") / "debug"
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": ENDPOINT or ""}
MCP_TOKEN = "mcp-lambda-token-5b1e"
ORIGIN_SECRET = "origin-7c0ffee-not-for-viewers"
SESSION_SECRET = "session-secret-for-the-lambda-e2e-stack-0123"
USER = "oncall@example.com"  # on the allowlist (AllowedDomains)
# Short, so the poison test needs seconds: a failed message is back after this and in the DLQ after 2 receives.
VISIBILITY_SECS, MAX_RECEIVES = 2, 2
# How long ingest trusts the key snapshot it read (SPLAT_KEY_CACHE_SECS).
KEY_CACHE_SECS = 2


@dataclass
class Stack(Splat):
    """The stack's parts; the database is read with `harness.Splat`'s helpers (its log is the processor's,
    where the rows come from)."""

    bucket: str = ""
    queue_url: str = ""
    dlq_url: str = ""
    s3: object = None
    sqs: object = None
    front: Front = None
    trigger: SqsTrigger = None
    functions: dict = field(default_factory=dict)
    task_roots: dict = field(default_factory=dict)
    envs: dict = field(default_factory=dict)  # each function's environment, to start another instance
    notifications: S3Notifications = None
    provider: Provider = None

    @property
    def webhook_posts(self):
        """What the alert webhook received, in order."""
        return Receiver.posts

    def logs(self):
        return "\n".join(f"--- {name} (tail) ---\n{f.log_tail(1500)}" for name, f in self.functions.items())


def _binary(name):
    path = TARGET / name
    if not path.exists():
        pytest.fail(f"{path} is missing: cargo build -p {name}")
    return str(path)


def _queues(sqs, name):
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(VISIBILITY_SECS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
    })["QueueUrl"]
    return queue_url, dlq_url


def _create_project(env, front_url):
    """The README's first step on EFS: `splat project create` with the rollback journal. It publishes the key
    snapshot to the bucket, which is all ingest (outside the VPC, no database) knows of keys."""
    done = subprocess.run([_binary("splat"), "project", "create", "lambda-e2e"], capture_output=True, text=True,
                          env={**os.environ, **env, "SPLAT_PUBLIC_URL": front_url}, timeout=60)
    assert done.returncode == 0, done.stderr
    return re.search(r"^DSN: (\S+)$", done.stdout, re.MULTILINE).group(1)


FUNCTIONS = {"splat-ingest": "IngestFunction", "splat-processor": "ProcessorFunction", "splat-ui": "UiFunction",
             "splat-mcp": "McpFunction", "splat-retention": "RetentionFunction", "splat-notify": "NotifyFunction",
             "splat-signin": "SignInFunction"}
# The template's parameters for this stack: the UI (behind sign-in, as rule UiNeedsSignIn wants), MCP, and
# alerts to a webhook; everything else at its default. The provider's address comes once it has started.
PARAMETERS = {"EnableUi": "true", "McpTokenSecretId": "splat/mcp-token", "WebhookUrlSecretId": "splat/webhook-url",
              "OidcClientId": CLIENT_ID, "OidcClientSecretId": "splat/oidc-client-secret",
              "AllowedDomains": "example.com", "SessionSecretId": "splat/session-secret"}
REMOTE = os.environ.get("SPLAT_TEST_DATABASE") == "sqld"


@dataclass
class Database:
    """Where the functions' database is, and what each side needs to reach it."""

    cli: dict  # the CLI's variables (`splat project create`)
    parameters: dict = field(default_factory=dict)  # the template's, for the remote mode
    secrets: dict = field(default_factory=dict)  # Secrets Manager, as the template's dynamic references read it
    deployed: dict = field(default_factory=dict)  # what the template leaves to the deployment (the EFS path)
    trust: dict = field(default_factory=dict)  # the test CA of the server's certificate
    sqld: object = None


@contextlib.contextmanager
def _database(work):
    """A file as on EFS, or with SPLAT_TEST_DATABASE=sqld a libSQL server behind TLS as the template's remote
    mode wants it (DatabaseUrl is https:// or libsql://), its token in a "secret"."""
    efs = work / "efs"
    efs.mkdir()
    if not REMOTE:
        path = str(efs / "splat.db")
        yield Database(cli={"SPLAT_DATABASE_PATH": path, "SPLAT_SQLITE_JOURNAL": "delete"},
                       deployed={"SPLAT_DATABASE_PATH": path})
        return
    from sqld import CountingProxy, start_sqld, tls_server

    with start_sqld(work) as sqld:
        ca_file, context = tls_server(work)
        proxy = CountingProxy(sqld.url, tls=context)
        try:
            trust = {"SSL_CERT_FILE": str(ca_file)}
            yield Database(
                cli={"SPLAT_DATABASE_URL": proxy.url, "SPLAT_DATABASE_TOKEN": sqld.token, **trust},
                parameters={"DatabaseUrl": proxy.url, "DatabaseTokenSecretId": "splat/database-token"},
                secrets={"splat/database-token": sqld.token}, trust=trust, sqld=sqld)
        finally:
            proxy.stop()


def _template_environments(deployed, parameters, secrets):
    """Each function's environment as infra/template.yaml gives it (resolved by tests/infra's own resolver
    with PARAMETERS), what is only known once deployed (resource ids, URLs, the EFS path) taken from
    `deployed`: the functions run with the template's variables, not a copy of them."""
    infra = ROOT / "tests" / "infra"
    ours = sys.modules.get("conftest")
    try:
        # test_function_env imports its helpers from tests/infra's conftest, not from this one.
        sys.modules["conftest"] = _load(infra / "conftest.py", "infra_conftest")
        resolver_module = _load(infra / "test_function_env.py", "infra_function_env")
        template = sys.modules["conftest"].load_cfn()
    finally:
        sys.modules["conftest"] = ours
    resolver = resolver_module.Resolver(template, parameters, secrets)
    envs = {}
    for binary, resource in FUNCTIONS.items():
        env = resolver.environment(resource)
        for variable, value in env.items():
            if "resolved" in value or value.startswith("/mnt/"):
                assert variable in deployed, f"{resource}: {variable}={value} needs a value for this stack"
                env[variable] = deployed[variable]
        envs[binary] = env
    return envs


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if not ENDPOINT:
        pytest.skip("needs SPLAT_TEST_AWS_ENDPOINT (tests/run starts moto)")
    work = tmp_path_factory.mktemp("lambda")
    name = f"splat-{uuid.uuid4().hex[:10]}"
    clients = {svc: boto3.client(svc, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id="test",
                                 aws_secret_access_key="test") for svc in ("s3", "sqs")}
    clients["s3"].create_bucket(Bucket=name)
    queue_url, dlq_url = _queues(clients["sqs"], name)
    database = contextlib.ExitStack()
    db = database.enter_context(_database(work))
    # The CLI as the README runs it against EFS: the rollback journal, the stack's bucket for the lake and the
    # key snapshot it publishes.
    cli = {**AWS, "AWS_REGION": REGION, **db.cli, "SPLAT_BUCKET": name, "SPLAT_S3_FORCE_PATH_STYLE": "true"}
    started = []
    front = None
    trigger = None
    outside = contextlib.ExitStack()  # what the stack reaches on the internet, and the alert notifications
    try:
        # The front's port names ingest in the DSNs the CLI and the UI print, so it starts first; it routes
        # to functions that exist once they have started.
        front = Front(ORIGIN_SECRET)
        dsn = _create_project(cli, front.url)
        # On the internet, reached from the notify and sign-in functions only.
        webhook = outside.enter_context(http_receiver())
        provider = Provider(f"{front.url}/auth/callback", work / "oidc-provider.log")
        outside.callback(provider.stop)
        parameters = {**PARAMETERS, "OidcDiscoveryUrl": provider.issuer, "OidcRedirectUri": f"{front.url}/auth/callback"}
        secrets = {"splat/mcp-token": MCP_TOKEN, "splat/webhook-url": f"{webhook}/alerts",
                   "splat/oidc-client-secret": CLIENT_SECRET, "splat/session-secret": SESSION_SECRET}
        envs = _template_environments({
            "SPLAT_QUEUE_URL": queue_url, "SPLAT_BUCKET": name, "SPLAT_PUBLIC_URL": front.url,
            "SPLAT_ORIGIN_SECRET": ORIGIN_SECRET, **db.deployed,
        }, {**parameters, **db.parameters}, {**secrets, **db.secrets})
        # What only the emulator needs (and the test CA of the database server's certificate).
        emulator = {**AWS, "SPLAT_S3_FORCE_PATH_STYLE": "true", **db.trust}
        envs = {binary: {**env, **emulator} for binary, env in envs.items()}
        # The template leaves the key cache at its 30 s default; the tests that wait it out wait 2 s.
        envs["splat-ingest"]["SPLAT_KEY_CACHE_SECS"] = str(KEY_CACHE_SECS)
        # The trigger's MaximumConcurrency is 2 (infra/template.yaml): two processor instances, one file.
        envs["splat-processor#2"] = envs["splat-processor"]
        functions, roots = {}, {}
        for key, env in envs.items():
            binary = key.partition("#")[0]
            # The code's directory, as /var/task: read-only in Lambda, so nothing may be written there.
            roots[key] = work / f"task-{key}"
            roots[key].mkdir()
            functions[key] = Function(binary, _binary(binary), env, work, cwd=roots[key], log_name=f"{key}.log")
            started.append(functions[key])
        for function in started:
            function.wait_ready()
        front.routes.update(ingest=functions["splat-ingest"], ui=functions["splat-ui"], mcp=functions["splat-mcp"],
                            signin=functions["splat-signin"])
        notifications = S3Notifications(clients["s3"], name, "alerts/", functions["splat-notify"])
        outside.callback(notifications.stop)
        # Batches past ReceiveMessage's 10, gathered over several receives as the trigger does for BatchSize > 10.
        processors = [functions["splat-processor"], functions["splat-processor#2"]]
        trigger = SqsTrigger(clients["sqs"], queue_url, processors, batch_size=25, window=0.5)
        yield Stack(dsn, work / "efs" / "splat.db", front.url, functions["splat-processor"].log_path,
                    remote=db.sqld, remote_env=db.cli if db.sqld else None, bucket=name, queue_url=queue_url,
                    dlq_url=dlq_url, s3=clients["s3"], sqs=clients["sqs"], front=front, trigger=trigger,
                    functions=functions, task_roots=roots, notifications=notifications, provider=provider, envs=envs)
    finally:
        outside.close()
        if trigger:
            trigger.stop()
        if front:
            front.stop()
        for function in started:
            function.stop()
        database.close()


@pytest.fixture(scope="session")
def ui_session(stack):
    """The headers of a signed-in browser: the session cookie the sign-in function set, after the real
    provider's login, for the UI function to check."""
    browser = Browser()
    status, _, page, _ = browser.sign_in(f"{stack.front.url}/", USER)
    assert status == 200 and "lambda-e2e" in page, (status, page[:500], stack.logs())
    return {"Cookie": f"__Host-splat_session={browser.cookie('__Host-splat_session')}"}

