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
    for name in ("splat-ingest", "splat-processor"):
        (tmp_path / name).mkdir()
        with zipfile.ZipFile(tmp_path / name / "bootstrap.zip", "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
    spec = importlib.util.spec_from_file_location(f"splat_init_{suffix}", INIT_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # importing runs nothing
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
    assert lam.get_function_url_config(FunctionName="splat-ingest")["AuthType"] == "NONE"
    assert lam.get_function_concurrency(FunctionName="splat-processor")["ReservedConcurrentExecutions"] == 1
    mappings = lam.list_event_source_mappings(FunctionName="splat-processor")["EventSourceMappings"]
    mine = [m for m in mappings if m["EventSourceArn"].endswith(":" + init.QUEUE)]
    assert len(mine) == 1
    assert mine[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mine[0]["BatchSize"] == init.PROCESSOR_BATCH_SIZE


def test_deploy_without_zips_says_how_to_build_them(init, monkeypatch, tmp_path):
    monkeypatch.setenv("DEPLOY_LAMBDAS", "1")
    monkeypatch.setattr(init, "LAMBDA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="cargo lambda build"):
        init.main()
