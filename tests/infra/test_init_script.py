"""infra/localstack/ready.d/splat_init.py, the resource script LocalStack runs as its init hook and moto's
init container runs, against the moto server of the test suite: it creates what the template creates, with
the same settings, deploys the functions with their triggers, and can run twice."""

import importlib.util
import json
import uuid
import zipfile

import boto3
import pytest

from conftest import INIT_SCRIPT


@pytest.fixture
def init(aws_endpoint, monkeypatch, tmp_path):
    """The script as a module, with unique resource names and fake function zips."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("SPLAT_BUCKET_NAME", f"splat-test-{suffix}")
    monkeypatch.setenv("SPLAT_QUEUE_NAME", f"splat-queue-{suffix}")
    monkeypatch.setenv("SPLAT_DLQ_NAME", f"splat-dlq-{suffix}")
    monkeypatch.setenv("SPLAT_LAMBDA_DIR", str(tmp_path))
    monkeypatch.delenv("MCP_AUTH_TOKEN", raising=False)
    spec = importlib.util.spec_from_file_location(f"splat_init_{suffix}", INIT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing runs nothing
    for name in module.FUNCTIONS:
        (tmp_path / name).mkdir()
        with zipfile.ZipFile(tmp_path / name / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
    return module


def aws(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_creates_bucket_and_queues_idempotently(init, aws_endpoint):
    url = init.main()
    assert init.main() == url  # a second run changes nothing and does not fail
    sqs, s3 = aws("sqs", aws_endpoint), aws("s3", aws_endpoint)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["VisibilityTimeout"]) == init.QUEUE_VISIBILITY_TIMEOUT
    redrive = json.loads(attrs["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == init.MAX_RECEIVE_COUNT
    assert redrive["deadLetterTargetArn"].endswith(":" + init.DLQ)
    rules = s3.get_bucket_lifecycle_configuration(Bucket=init.BUCKET)["Rules"]
    assert rules[0]["Filter"]["Prefix"] == "ingest/" and rules[0]["Expiration"]["Days"] == init.CLAIM_CHECK_EXPIRY_DAYS


def test_deploys_the_functions_with_their_triggers(init, aws_endpoint, monkeypatch):
    monkeypatch.setenv("DEPLOY_LAMBDAS", "1")
    init.main()
    init.main()  # updates in place
    lam = aws("lambda", aws_endpoint)
    ingest = lam.get_function(FunctionName="splat-ingest")["Configuration"]
    assert ingest["Runtime"] == "provided.al2023" and ingest["Handler"] == "bootstrap"
    env = ingest["Environment"]["Variables"]
    assert env["SPLAT_BUCKET"] == init.BUCKET and env["SPLAT_QUEUE_URL"].endswith("/" + init.QUEUE)
    assert env["SPLAT_S3_FORCE_PATH_STYLE"] == "true"
    assert "SPLAT_DATABASE_PATH" not in env  # keys from the snapshot in the bucket, as in the template
    assert lam.get_function_url_config(FunctionName="splat-ingest")["AuthType"] == "NONE"
    assert lam.get_function_concurrency(FunctionName="splat-processor")["ReservedConcurrentExecutions"] == 3
    mappings = lam.list_event_source_mappings(FunctionName="splat-processor")["EventSourceMappings"]
    mine = [m for m in mappings if m["EventSourceArn"].endswith(":" + init.QUEUE)]
    assert len(mine) == 1
    assert mine[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mine[0]["BatchSize"] == init.PROCESSOR_BATCH_SIZE


def test_ui_and_mcp_behind_function_urls(init, aws_endpoint, monkeypatch):
    """The free edition has neither API Gateway v2 nor CloudFront: each HTTP function gets a public URL;
    the UI prints DSNs for ingest's URL; MCP gets a token, kept across reruns."""
    monkeypatch.setenv("DEPLOY_LAMBDAS", "1")
    init.main()
    lam = aws("lambda", aws_endpoint)
    ingest_url = lam.get_function_url_config(FunctionName="splat-ingest")["FunctionUrl"]
    for name in ("splat-ui", "splat-mcp"):
        assert lam.get_function_url_config(FunctionName=name)["AuthType"] == "NONE", name
    ui = lam.get_function(FunctionName="splat-ui")["Configuration"]
    assert ui["Environment"]["Variables"]["SPLAT_PUBLIC_URL"] == ingest_url.rstrip("/")
    assert ui["Timeout"] == init.UI_TIMEOUT
    token = lam.get_function(FunctionName="splat-mcp")["Configuration"]["Environment"]["Variables"]["MCP_AUTH_TOKEN"]
    assert len(token) == 32
    init.main()
    again = lam.get_function(FunctionName="splat-mcp")["Configuration"]["Environment"]["Variables"]["MCP_AUTH_TOKEN"]
    assert again == token  # a rerun does not lock clients out
    monkeypatch.setenv("MCP_AUTH_TOKEN", "chosen-token")
    init.main()
    chosen = lam.get_function(FunctionName="splat-mcp")["Configuration"]["Environment"]["Variables"]["MCP_AUTH_TOKEN"]
    assert chosen == "chosen-token"


def test_scheduled_jobs_on_eventbridge_rules(init, aws_endpoint, monkeypatch):
    """Retention runs one at a time on its daily rule, and the migrate job in the same function every five
    minutes; the monitor tick runs in the processor every minute. The rules' constant inputs name the job."""
    monkeypatch.setenv("DEPLOY_LAMBDAS", "1")
    init.main()
    init.main()  # rules, targets and permissions are not duplicated
    lam, events = aws("lambda", aws_endpoint), aws("events", aws_endpoint)
    function = lam.get_function(FunctionName="splat-retention")["Configuration"]
    assert function["Timeout"] == init.RETENTION_TIMEOUT
    assert lam.get_function_concurrency(FunctionName="splat-retention")["ReservedConcurrentExecutions"] == 1
    inputs = {}
    rules = (("splat-retention", "splat-retention"), ("splat-monitors", "splat-processor"),
             ("splat-migrate", "splat-retention"))
    for rule, target_function in rules:
        described = events.describe_rule(Name=rule)
        assert described["State"] == init.SCHEDULED_RULES[rule][3]
        [target] = events.list_targets_by_rule(Rule=rule)["Targets"]
        assert target["Arn"] == lam.get_function(FunctionName=target_function)["Configuration"]["FunctionArn"]
        inputs[described["ScheduleExpression"]] = json.loads(target["Input"])
        policy = json.loads(lam.get_policy(FunctionName=target_function)["Policy"])
        grants = [s["Sid"] for s in policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}]
        assert grants.count(f"{rule}-rule") == 1, (rule, grants)
    assert inputs == {init.RETENTION_SCHEDULE: {"job": "retention"}, init.MONITORS_SCHEDULE: {"job": "monitors"},
                      init.MIGRATE_SCHEDULE: {"job": "migrate"}}


def test_deploy_without_zips_says_how_to_build_them(init, monkeypatch, tmp_path):
    monkeypatch.setenv("DEPLOY_LAMBDAS", "1")
    monkeypatch.setattr(init, "LAMBDA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="cargo lambda build"):
        init.main()
