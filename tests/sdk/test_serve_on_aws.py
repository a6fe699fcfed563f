"""`splat serve` pointed at SQS and S3 (the moto emulator that tests/run starts) instead of its local queue:
a real SDK's event goes ingest → SQS → the polling processor → libSQL, and an envelope too large for an SQS
message travels through S3 (claim check) and is deleted there once stored."""

import json
import os
import time
import urllib.request
import uuid

import boto3
import pytest

from harness import run_client, start_splat

ENDPOINT = os.environ.get("SPLAT_TEST_AWS_ENDPOINT")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="needs SPLAT_TEST_AWS_ENDPOINT (tests/run starts moto)")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


@pytest.fixture
def aws_splat(tmp_path):
    name = f"serve-{uuid.uuid4().hex[:12]}"
    clients = {svc: boto3.client(svc, endpoint_url=ENDPOINT, **{
        "aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}) for svc in ("s3", "sqs")}
    clients["s3"].create_bucket(Bucket=name)
    queue_url = clients["sqs"].create_queue(QueueName=name)["QueueUrl"]
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": ENDPOINT, "SPLAT_QUEUE_URL": queue_url, "SPLAT_BUCKET": name,
           "SPLAT_S3_FORCE_PATH_STYLE": "true"}
    with start_splat(tmp_path, env) as splat:
        yield splat, clients, name, queue_url


def test_sdk_event_goes_through_sqs(aws_splat):
    splat, clients, _, queue_url = aws_splat
    report = run_client("python", splat.dsn, "error")
    [row] = splat.wait_for("SELECT title FROM events WHERE event_id = ?", report["ids"]["error"])
    assert row["title"] == "ZeroDivisionError: division by zero"
    # Nothing went through the local queue file: the message was on SQS and is gone from it now.
    assert not (splat.db_path.parent / "queue.db").exists()
    attrs = clients["sqs"].get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"]) == 0
    # On SQS, /_health reports the processor's last batch (SentTimestamp of its oldest message), not a depth.
    for _ in range(50):  # recorded just after the batch's commit
        with urllib.request.urlopen(f"{splat.base_url}/_health", timeout=10) as response:
            health = json.loads(response.read())
        if health["queue_last_batch_at"]:
            break
        time.sleep(0.1)
    assert health["queue_depth"] is None and health["queue_status"] == "healthy", health
    assert 0 <= health["queue_lag_seconds"] < 60 and health["queue_last_batch_at"], health


def test_large_envelope_is_claim_checked_through_s3(aws_splat):
    splat, clients, bucket, _ = aws_splat
    event_id = uuid.uuid4().hex
    attachment = b"z" * 400_000  # over SQS's 256 KiB message limit
    body = (b'{"event_id":"%s"}\n{"type":"event"}\n{"message":"big one"}\n' % event_id.encode()
            + b'{"type":"attachment","length":%d,"filename":"a.txt"}\n' % len(attachment) + attachment + b"\n")
    key = splat.dsn.split("//")[1].split("@")[0]
    project = splat.dsn.rsplit("/", 1)[1]
    request = urllib.request.Request(f"{splat.base_url}/api/{project}/envelope/?sentry_key={key}", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    [row] = splat.wait_for("SELECT title FROM events WHERE event_id = ?", event_id)
    assert row["title"] == "big one"
    splat.wait_for("SELECT 1 FROM item_counts WHERE item_type = 'attachment'")
    listed = clients["s3"].list_objects_v2(Bucket=bucket, Prefix="ingest/")
    assert listed.get("KeyCount", 0) == 0, "the claim-checked body is deleted after the commit"
