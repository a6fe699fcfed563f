"""What one million error events cost on AWS, from measured figures: the ingest and processor bootstraps run
under a local Runtime API (infra/bench/lambda_init.py) against a real S3/SQS emulator (moto), with real
SDK envelopes, and this script turns their billed milliseconds, the requests they make and the bytes they
write into the bill of each AWS service, for both ingest routes (HTTP API, function URL).

    python infra/bench/lambda_cost.py --ingest BOOTSTRAP --processor BOOTSTRAP --splat SPLAT_BIN \\
        --endpoint http://127.0.0.1:4599 [--events 2000] [--batch-size 100]

Each event is the Python SDK's captured error envelope (tests/fixtures/sdk/python-error-gzip), gzip as the
SDK sends it, with a fresh event id, in an API Gateway HTTP API v2 request (a function URL hands the
function the same payload shape, so the function's work is the same for both routes). Ingest puts each on
the emulator's queue; the messages are then received exactly as the SQS trigger would and handed to the
processor in batches of --batch-size (the template's ProcessorBatchSize). The first invocation of each
function is a warm-up and not counted. Prints one JSON document: the measurements, then the cost table.
"""

import argparse
import base64
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
import lambda_init  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "sdk" / "python-error-gzip"
EVENT_TEMPLATE = ROOT / "infra" / "events" / "ingest-apigw-v2.json"

# AWS list prices, us-east-1, in USD (the pricing pages of Lambda, API Gateway, SQS, S3 and EFS).
PRICE = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s_arm64": 0.0000133334,
    "lambda_gb_s_x86_64": 0.0000166667,
    "http_api_request": 1.00 / 1e6,  # first 300 million a month; requests are metered per 512 KB
    "sqs_request": 0.40 / 1e6,  # standard queue; each 64 KB chunk of a payload is one request
    "s3_put": 0.005 / 1000,
    "efs_elastic_write_gb": 0.06,
    "efs_standard_gb_month": 0.30,
    "s3_standard_gb_month": 0.023,
}
SQS_BATCH = 10  # messages per ReceiveMessage / DeleteMessageBatch call, the SQS maximum


def init_module():
    spec = importlib.util.spec_from_file_location("splat_init", ROOT / "infra" / "localstack" / "ready.d" / "splat_init.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ingest_events(count, project_id, key):
    """API Gateway v2 requests, each carrying the captured envelope with its own event id."""
    fixture = json.loads(FIXTURE.with_suffix(".json").read_text())
    envelope = gzip.decompress(FIXTURE.with_suffix(".envelope").read_bytes())
    template = json.loads(EVENT_TEMPLATE.read_text())
    events = []
    for _ in range(count):
        body = gzip.compress(envelope.replace(fixture["event_id"].encode(), uuid.uuid4().hex.encode()))
        event = dict(template)
        event["rawPath"] = f"/api/{project_id}/envelope/"
        event["rawQueryString"] = ""
        event.pop("queryStringParameters", None)
        event["headers"] = dict(
            template["headers"],
            **{
                "content-encoding": "gzip",
                "content-length": str(len(body)),
                "x-sentry-auth": f"Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0",
            },
        )
        event["requestContext"] = dict(template["requestContext"], http=dict(template["requestContext"]["http"], path=event["rawPath"]))
        event["body"] = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
        events.append(json.dumps(event).encode())
    return events, len(body)


def sqs_batches(sqs, queue_url, queue_arn, count, batch_size):
    """Receives every message as the SQS trigger does and wraps them into Lambda SQS events."""
    records = []
    while len(records) < count:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=1, AttributeNames=["All"])
        for m in got.get("Messages", []):
            records.append({
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        if not got.get("Messages"):
            raise RuntimeError(f"the queue ran dry after {len(records)} of {count} messages")
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    return [json.dumps({"Records": b}).encode() for b in batches], max(len(r["body"]) for r in records)


def database_size(path):
    """The database file and its WAL, if any (the processor uses a rollback journal, as on EFS)."""
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--processor", required=True)
    parser.add_argument("--splat", required=True, help="the splat CLI, to create the project")
    parser.add_argument("--endpoint", required=True, help="the S3/SQS emulator (moto)")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--ingest-memory", type=int, default=512)
    parser.add_argument("--processor-memory", type=int, default=1024)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    scratch = Path(tempfile.mkdtemp(prefix="splat-cost-"))
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        SPLAT_BUCKET_NAME=f"splat-cost-{suffix}", SPLAT_QUEUE_NAME=f"splat-cost-{suffix}", SPLAT_DLQ_NAME=f"splat-cost-dlq-{suffix}",
    )
    init = init_module()
    queue_url = init.main()
    aws = dict(endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    sqs, s3 = boto3.client("sqs", **aws), boto3.client("s3", **aws)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    db = scratch / "splat.db"
    env = dict(
        lambda_init.lambda_env(), SPLAT_DATABASE_PATH=str(db), SPLAT_SQLITE_JOURNAL="delete", SPLAT_QUEUE_URL=queue_url,
        SPLAT_BUCKET=init.BUCKET, NO_COLOR="1", RUST_LOG="warn",
    )
    out = subprocess.run([args.splat, "project", "create", "cost-bench"], env=env, capture_output=True, text=True, check=True).stdout
    project_id = int(out.split()[0])
    key = out.split("DSN: ")[1].split("://")[1].split("@")[0]

    # The first invocation of each function is the uncounted warm-up: one extra event, one extra batch.
    total = args.events + args.batch_size
    events, body_bytes = ingest_events(total, project_id, key)
    ingest = lambda_init.warm(args.ingest, events, dict(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(args.ingest_memory)))
    response = json.loads(ingest.pop("last_response"))
    assert response["statusCode"] == 200 and "id" in json.loads(response["body"]), response

    batches, message_bytes = sqs_batches(sqs, queue_url, queue_arn, total, args.batch_size)
    db_before = database_size(db)
    processor = lambda_init.warm(args.processor, batches, dict(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(args.processor_memory)))
    assert json.loads(processor.pop("last_response")) == {"batchItemFailures": []}, processor
    lake = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=init.BUCKET, Prefix="lake/") for o in page.get("Contents", [])]
    counted_batches = len(batches) - 1

    measured = {
        "events": args.events,
        "batch_size": args.batch_size,
        "request_body_bytes": body_bytes,
        "sqs_message_bytes": message_bytes,
        "ingest": ingest,
        "processor": processor,
        "lake_files_per_batch": round(len(lake) / len(batches), 2),
        "lake_bytes_per_event": round(sum(o["Size"] for o in lake) / total, 1),
        "database_bytes_per_event": round((database_size(db) - db_before) / total, 1),
        # Database and journal writes (SPLAT_SQLITE_JOURNAL=delete, as on EFS), all invocations counted.
        "database_written_bytes_per_event": round(processor["written_bytes_per_invocation"] * len(batches) / total, 1),
    }
    print(json.dumps({"measured": measured, "per_million_error_events": cost(measured, args)}, indent=1))


def cost(m, args):
    """USD per million error events, per service, for both ingest routes and both architectures."""
    n = 1e6
    batches = n / args.batch_size
    ingest_gb_s = m["ingest"]["billed_ms_mean"] / 1000 * args.ingest_memory / 1024 * n
    processor_gb_s = m["processor"]["billed_ms_mean"] / 1000 * args.processor_memory / 1024 * batches
    sqs_requests = n + 2 * n / SQS_BATCH  # SendMessage per event; ReceiveMessage and DeleteMessageBatch per 10
    lines = {
        "lambda_requests": (n + batches) * PRICE["lambda_request"],
        "lambda_gb_s": {"ingest": round(ingest_gb_s, 1), "processor": round(processor_gb_s, 1)},
        "lambda_compute_arm64": (ingest_gb_s + processor_gb_s) * PRICE["lambda_gb_s_arm64"],
        "lambda_compute_x86_64": (ingest_gb_s + processor_gb_s) * PRICE["lambda_gb_s_x86_64"],
        "sqs_requests": sqs_requests * PRICE["sqs_request"],
        "s3_lake_puts": m["lake_files_per_batch"] * batches * PRICE["s3_put"],
        "efs_writes": m["database_written_bytes_per_event"] * n / 1e9 * PRICE["efs_elastic_write_gb"],
        "http_api_requests": n * PRICE["http_api_request"],
    }
    base = sum(lines[k] for k in ("lambda_requests", "lambda_compute_arm64", "sqs_requests", "s3_lake_puts", "efs_writes"))
    rounded = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in lines.items()}
    rounded["total_function_url_arm64"] = round(base, 3)
    rounded["total_http_api_arm64"] = round(base + lines["http_api_requests"], 3)
    rounded["storage_per_month_kept"] = {
        "efs_database_gb": round(m["database_bytes_per_event"] * n / 1e9, 3),
        "efs_usd": round(m["database_bytes_per_event"] * n / 1e9 * PRICE["efs_standard_gb_month"], 4),
        "s3_lake_gb": round(m["lake_bytes_per_event"] * n / 1e9, 3),
        "s3_usd": round(m["lake_bytes_per_event"] * n / 1e9 * PRICE["s3_standard_gb_month"], 4),
    }
    return rounded


if __name__ == "__main__":
    sys.exit(main())
