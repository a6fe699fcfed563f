"""Creates Splat's AWS resources in an emulator: the bucket, the queue and its dead-letter queue, with the
same settings as infra/template.yaml (tests/infra checks that they agree). Idempotent: run it any number of
times.

Where it runs:
- LocalStack (profile `localstack`): as a ready.d init hook, inside LocalStack's own Python process (which
  `exec`s the file: there is no `__main__`, hence the check at the bottom). With DEPLOY_LAMBDAS=1 it also
  deploys the functions from their cargo-lambda zips: ingest, the UI and MCP behind function URLs (the free
  edition has no API Gateway v2, and no CloudFront), the processor behind an SQS event source mapping, and
  retention behind two EventBridge rules (the free edition's Scheduler stores schedules but never fires
  them).
- moto (profile `moto`): a one-shot container from the moto image runs it with AWS_ENDPOINT_URL set.
- tests/infra: against the moto server the test suite starts.

Only boto3 is needed (all three places have it).
"""

import json
import os
import platform
import secrets
import time

import boto3

BUCKET = os.environ.get("SPLAT_BUCKET_NAME", "splat-local")
QUEUE = os.environ.get("SPLAT_QUEUE_NAME", "splat-queue")
DLQ = os.environ.get("SPLAT_DLQ_NAME", "splat-dlq")

# Keep these equal to infra/template.yaml (tests/infra/test_template.py compares them).
QUEUE_VISIBILITY_TIMEOUT = 420  # >= 6 x the processor's 60 s timeout + the largest batching window
QUEUE_RETENTION_SECONDS = 345600  # 4 days
DLQ_RETENTION_SECONDS = 1209600  # 14 days
MAX_RECEIVE_COUNT = 10
CLAIM_CHECK_EXPIRY_DAYS = 18  # outlives the queue's 4 days plus the DLQ's 14
PROCESSOR_TIMEOUT = 60
PROCESSOR_BATCH_SIZE = 1000
PROCESSOR_BATCH_WINDOW = 20
PROCESSOR_MAX_CONCURRENCY = 2
INGEST_TIMEOUT = 15
UI_TIMEOUT = 30
MCP_TIMEOUT = 30
RETENTION_TIMEOUT = 900
RETENTION_SCHEDULE = "cron(17 3 * * ? *)"
MONITORS_SCHEDULE = "rate(1 minute)"
MIGRATE_SCHEDULE = "rate(5 minutes)"

# What DEPLOY_LAMBDAS=1 deploys: cargo-lambda package name -> (timeout s, memory MB).
FUNCTIONS = {
    "splat-ingest": (INGEST_TIMEOUT, 128),
    "splat-processor": (PROCESSOR_TIMEOUT, 512),
    "splat-ui": (UI_TIMEOUT, 512),
    "splat-mcp": (MCP_TIMEOUT, 512),
    "splat-retention": (RETENTION_TIMEOUT, 1024),
}
# Each EventBridge rule: the function it invokes, its schedule, the constant input naming the job, and
# whether it is on: the same as the template's schedules (the monitor tick runs in the processor, the
# migrate job in the retention function).
SCHEDULED_RULES = {
    "splat-retention": ("splat-retention", RETENTION_SCHEDULE, {"job": "retention"}, "ENABLED"),
    "splat-monitors": ("splat-processor", MONITORS_SCHEDULE, {"job": "monitors"}, "ENABLED"),
    "splat-migrate": ("splat-retention", MIGRATE_SCHEDULE, {"job": "migrate"}, "ENABLED"),
}

# Lambda deployment (LocalStack only).
LAMBDA_DIR = os.environ.get("SPLAT_LAMBDA_DIR", "/opt/splat-lambda")
# The address the functions (in their own containers on the compose network) use to reach LocalStack.
LAMBDA_AWS_ENDPOINT = os.environ.get("SPLAT_LAMBDA_AWS_ENDPOINT", "http://localstack:4566")
# The database every function opens: a named volume that LAMBDA_DOCKER_FLAGS mounts into each Lambda
# container, standing in for EFS (and shared with the `app` service).
LAMBDA_DATABASE_PATH = os.environ.get("SPLAT_LAMBDA_DATABASE_PATH", "/data/splat.db")


def log(message):
    print(f"splat-init: {message}", flush=True)


def client(service):
    # Inside LocalStack's process nothing points boto3 at LocalStack: default to its edge port.
    return boto3.client(
        service,
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566"),
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
    )


def create_bucket(s3):
    if BUCKET in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        log(f"bucket {BUCKET} exists")
    else:
        s3.create_bucket(Bucket=BUCKET)
        log(f"created bucket {BUCKET}")
    s3.put_bucket_lifecycle_configuration(
        Bucket=BUCKET,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "ExpireClaimChecks",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "ingest/"},
                    "Expiration": {"Days": CLAIM_CHECK_EXPIRY_DAYS},
                }
            ]
        },
    )


def create_queues(sqs):
    """Returns (queue_url, queue_arn, dlq_url). create_queue is idempotent when the attributes match; the
    attributes are set again afterwards so that a queue from an older version is brought in line."""
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": str(QUEUE_VISIBILITY_TIMEOUT),
        "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}),
    }
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=attributes)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    log(f"queue {queue_url} (dead letters: {dlq_url})")
    return queue_url, queue_arn, dlq_url


def lambda_architecture():
    arch = os.environ.get("SPLAT_LAMBDA_ARCH") or platform.machine()
    return "arm64" if arch in ("arm64", "aarch64") else "x86_64"


def deploy_function(lam, role_arn, name, zip_path, timeout, memory, env):
    with open(zip_path, "rb") as f:
        code = f.read()
    config = dict(
        Runtime="provided.al2023",
        Handler="bootstrap",
        Role=role_arn,
        Timeout=timeout,
        MemorySize=memory,
        Environment={"Variables": env},
    )
    try:
        lam.get_function(FunctionName=name)
        lam.update_function_code(FunctionName=name, ZipFile=code, Architectures=[lambda_architecture()])
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        lam.update_function_configuration(FunctionName=name, **config)
        log(f"updated function {name}")
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(FunctionName=name, Code={"ZipFile": code}, Architectures=[lambda_architecture()], **config)
        log(f"created function {name}")
    lam.get_waiter("function_active_v2").wait(FunctionName=name)


def function_url(lam, name):
    """The function's public URL, created on the first run."""
    try:
        return lam.get_function_url_config(FunctionName=name)["FunctionUrl"]
    except lam.exceptions.ResourceNotFoundException:
        return lam.create_function_url_config(FunctionName=name, AuthType="NONE")["FunctionUrl"]


def mcp_token(lam):
    """MCP_AUTH_TOKEN from the environment, else the one the function already has (so a rerun keeps it),
    else a new random one. Logged: this is a local emulator, and the token is what an MCP client needs."""
    token = os.environ.get("MCP_AUTH_TOKEN")
    if not token:
        try:
            env = lam.get_function_configuration(FunctionName="splat-mcp").get("Environment", {})
            token = env.get("Variables", {}).get("MCP_AUTH_TOKEN")
        except lam.exceptions.ResourceNotFoundException:
            pass
    return token or secrets.token_hex(16)


def schedule_jobs(lam):
    """EventBridge rules with a schedule expression, each invoking its function with its job as the input."""
    events = client("events")
    for rule, (function, expression, job, state) in SCHEDULED_RULES.items():
        function_arn = lam.get_function(FunctionName=function)["Configuration"]["FunctionArn"]
        try:
            granted = {s["Sid"] for s in json.loads(lam.get_policy(FunctionName=function)["Policy"])["Statement"]}
        except lam.exceptions.ResourceNotFoundException:
            granted = set()  # no resource policy yet
        rule_arn = events.put_rule(Name=rule, ScheduleExpression=expression, State=state)["RuleArn"]
        events.put_targets(Rule=rule, Targets=[{"Id": function, "Arn": function_arn, "Input": json.dumps(job)}])
        if f"{rule}-rule" not in granted:
            lam.add_permission(
                FunctionName=function,
                StatementId=f"{rule}-rule",
                Action="lambda:InvokeFunction",
                Principal="events.amazonaws.com",
                SourceArn=rule_arn,
            )
        log(f"rule {rule} ({expression}, {state}) -> {function} {json.dumps(job)}")


def deploy_lambdas(queue_url, queue_arn):
    zips = {name: os.path.join(LAMBDA_DIR, name, "bootstrap.zip") for name in FUNCTIONS}
    missing = [path for path in zips.values() if not os.path.exists(path)]
    if missing:
        packages = " ".join(f"-p {name}" for name in FUNCTIONS)
        raise FileNotFoundError(
            f"DEPLOY_LAMBDAS=1 but {', '.join(missing)} missing: run `cargo lambda build --release --output-format zip "
            f"--lambda-dir target/lambda {packages}` first (see infra/docker-compose.yml)"
        )
    iam, lam = client("iam"), client("lambda")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    try:
        role_arn = iam.create_role(RoleName="splat-lambda", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role_arn = iam.get_role(RoleName="splat-lambda")["Role"]["Arn"]
    common = {
        "AWS_ENDPOINT_URL": LAMBDA_AWS_ENDPOINT,
        "SPLAT_S3_FORCE_PATH_STYLE": "true",
        "SPLAT_BUCKET": BUCKET,
        "SPLAT_QUEUE_URL": queue_url,
        "SPLAT_DATABASE_PATH": LAMBDA_DATABASE_PATH,
        "RUST_LOG": "info",
        "NO_COLOR": "1",
    }
    token = mcp_token(lam)
    urls = {}
    for name, (timeout, memory) in FUNCTIONS.items():
        env = dict(common)
        if name == "splat-ingest":
            # As in the template: no database; keys come from the snapshot the UI publishes to the bucket.
            del env["SPLAT_DATABASE_PATH"]
        if name == "splat-ui":
            # The DSNs the UI prints name ingest's URL (ingest is deployed first), as in the template.
            env["SPLAT_PUBLIC_URL"] = urls["splat-ingest"].rstrip("/")
        if name == "splat-mcp":
            env["MCP_AUTH_TOKEN"] = token
        deploy_function(lam, role_arn, name, zips[name], timeout, memory, env)
        if name in ("splat-ingest", "splat-ui", "splat-mcp"):
            urls[name] = function_url(lam, name)
    # As the template reserves: the trigger's maximum plus the monitor tick for the processor, one retention run.
    lam.put_function_concurrency(FunctionName="splat-processor", ReservedConcurrentExecutions=PROCESSOR_MAX_CONCURRENCY + 1)
    lam.put_function_concurrency(FunctionName="splat-retention", ReservedConcurrentExecutions=1)

    log(f"ingest function URL: {urls['splat-ingest']}  (DSN host: {urls['splat-ingest'].split('/')[2]})")
    log(f"UI: {urls['splat-ui']}")
    log(f"MCP: {urls['splat-mcp'].rstrip('/')}/mcp  (Authorization: Bearer {token})")

    if not lam.list_event_source_mappings(FunctionName="splat-processor", EventSourceArn=queue_arn)["EventSourceMappings"]:
        lam.create_event_source_mapping(
            FunctionName="splat-processor",
            EventSourceArn=queue_arn,
            BatchSize=PROCESSOR_BATCH_SIZE,
            MaximumBatchingWindowInSeconds=PROCESSOR_BATCH_WINDOW,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": PROCESSOR_MAX_CONCURRENCY},
        )
        log("created the SQS event source mapping for splat-processor")
    schedule_jobs(lam)
    return urls


def main():
    started = time.time()
    create_bucket(client("s3"))
    queue_url, queue_arn, _ = create_queues(client("sqs"))
    if os.environ.get("DEPLOY_LAMBDAS") == "1":
        deploy_lambdas(queue_url, queue_arn)
    log(f"done in {time.time() - started:.1f}s")
    return queue_url


# `python splat_init.py` (moto's init container), or LocalStack's exec (where __name__ is the builtins
# module's); not when a test imports it.
if __name__ in ("__main__", "builtins"):
    main()
