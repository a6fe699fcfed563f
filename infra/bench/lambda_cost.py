"""What a million error events or a million transactions cost on AWS, from measured figures: the ingest and
processor bootstraps run under a local Runtime API (infra/bench/lambda_init.py) against a real S3/SQS
emulator (moto), with real SDK envelopes, and this script turns their CPU time, memory, requests and bytes
written into the bill of each AWS service, for both ingest routes (HTTP API, function URL).

    python infra/bench/lambda_cost.py --ingest BOOTSTRAP --processor BOOTSTRAP --splat SPLAT_BIN \\
        --endpoint http://127.0.0.1:4599 --kind error|transaction [--events 2000] [--batch-sizes 10,100,1000]

Each event is a real SDK's captured envelope (the Python SDK's error, or its transaction with spans:
tests/fixtures/sdk/python-{error,transaction}-gzip), gzip as the SDK sends it, with a fresh event id, in an
API Gateway HTTP API v2 request (a function URL hands the function the same payload shape, so the
function's work is the same for both routes). Ingest puts each on the emulator's queue while a thread
drains it as the SQS trigger would (moto slows down as a queue grows); the processor then takes the
messages in batches of each --batch-sizes value, each size on a fresh copy of the database. The first
invocation of each function run is a warm-up and not counted.

Billed time in AWS is modeled, not copied from this machine: Lambda gives a function CPU in proportion to
its memory (one full vCPU at 1,769 MB), so the measured CPU time stretches by 1,769 / memory below that; the
wait for other services is an input (--sqs-send-ms for ingest's SendMessage; the processor's measured
wall time minus its CPU time, against moto on loopback, for its S3 PUTs and database writes). Prints one
JSON document: the measurements, then the cost per million for each batch size at volume (full batches)
and at a low rate (--rate events/s), where the trigger's batching window (--window) sets the batch.
"""

import argparse
import base64
import gzip
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
import lambda_init  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = {kind: ROOT / "tests" / "fixtures" / "sdk" / f"python-{kind}-gzip" for kind in ("error", "transaction")}
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
FULL_CPU_MB = 1769  # Lambda: one vCPU's worth of CPU at this memory size, proportionally less below it


def init_module():
    spec = importlib.util.spec_from_file_location("splat_init", ROOT / "infra" / "localstack" / "ready.d" / "splat_init.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ingest_events(kind, count, project_id, key):
    """API Gateway v2 requests, each carrying the captured envelope with its own event id."""
    fixture = json.loads(FIXTURES[kind].with_suffix(".json").read_text())
    envelope = gzip.decompress(FIXTURES[kind].with_suffix(".envelope").read_bytes())
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


class Drain(threading.Thread):
    """Receives every message as the SQS trigger does, while ingest is still sending, into Lambda SQS
    records."""

    def __init__(self, sqs, queue_url, queue_arn, count):
        super().__init__(daemon=True)
        self.sqs, self.queue_url, self.queue_arn, self.count = sqs, queue_url, queue_arn, count
        self.records, self.error = [], None

    def run(self):
        idle = 0
        try:
            while len(self.records) < self.count and idle < 60:
                got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=SQS_BATCH, WaitTimeSeconds=1,
                                               AttributeNames=["All"]).get("Messages", [])
                idle = 0 if got else idle + 1
                self.records += [self.record(m) for m in got]
                if got:
                    self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        except Exception as e:  # reported by the main thread
            self.error = e

    def record(self, m):
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": m.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": "us-east-1",
        }


def database_size(path):
    """The database file and its WAL, if any (the processor uses a rollback journal, as on EFS)."""
    return sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if os.path.exists(p))


def lake_objects(s3, bucket):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="lake/")
    return [o for page in pages for o in page.get("Contents", [])]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ingest", required=True)
    parser.add_argument("--processor", required=True)
    parser.add_argument("--splat", required=True, help="the splat CLI, to create the project")
    parser.add_argument("--endpoint", required=True, help="the S3/SQS emulator (moto)")
    parser.add_argument("--kind", choices=sorted(FIXTURES), default="error")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="10,100,1000")
    parser.add_argument("--ingest-memory", type=int, default=128)
    parser.add_argument("--processor-memory", type=int, default=256)
    parser.add_argument("--sqs-send-ms", type=float, default=10.0,
                        help="assumed SendMessage round trip in AWS (not measurable here)")
    parser.add_argument("--rate", type=float, default=1e6 / (30 * 86400), help="events/s of the low-rate case")
    parser.add_argument("--window", type=float, default=20.0, help="the trigger's batching window, seconds")
    args = parser.parse_args()
    sizes = [int(b) for b in args.batch_sizes.split(",")]

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

    fresh = scratch / "fresh.db"
    env = dict(
        lambda_init.lambda_env(), SPLAT_DATABASE_PATH=str(fresh), SPLAT_SQLITE_JOURNAL="delete", SPLAT_QUEUE_URL=queue_url,
        SPLAT_BUCKET=init.BUCKET, NO_COLOR="1", RUST_LOG="warn",
    )
    out = subprocess.run([args.splat, "project", "create", "cost-bench"], env=env, capture_output=True, text=True, check=True).stdout
    project_id = int(out.split()[0])
    key = out.split("DSN: ")[1].split("://")[1].split("@")[0]

    # The first invocation of each function run is the uncounted warm-up.
    total = args.events + 1
    events, body_bytes = ingest_events(args.kind, total, project_id, key)
    drain = Drain(sqs, queue_url, queue_arn, total)
    drain.start()
    ingest = lambda_init.warm(args.ingest, events, dict(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(args.ingest_memory)))
    response = json.loads(ingest.pop("last_response"))
    assert response["statusCode"] == 200 and "id" in json.loads(response["body"]), response
    drain.join()
    if drain.error or len(drain.records) < total:
        raise RuntimeError(f"drained {len(drain.records)} of {total} messages: {drain.error}")
    records = drain.records

    processed = {}
    for size in sizes:
        db = scratch / f"batch-{size}.db"
        shutil.copyfile(fresh, db)
        # A warm-up batch of one, then full batches: the counted invocations are all of the measured size.
        full = [b for b in (records[i:i + size] for i in range(1, len(records), size)) if len(b) == size]
        batches = [json.dumps({"Records": b}).encode() for b in [records[:1], *full]]
        lake_before, db_before = len(lake_objects(s3, init.BUCKET)), database_size(db)
        run = lambda_init.warm(args.processor, batches, dict(env, SPLAT_DATABASE_PATH=str(db),
                                                               AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(args.processor_memory)))
        assert json.loads(run.pop("last_response")) == {"batchItemFailures": []}, run
        counted = len(batches) - 1
        processed[size] = {
            "batches": counted,
            "processor": run,
            "lake_files_per_batch": round((len(lake_objects(s3, init.BUCKET)) - lake_before) / len(batches), 2),
            "database_bytes_per_event": round((database_size(db) - db_before) / (counted * size + 1), 1),
            # Database and journal writes (SPLAT_SQLITE_JOURNAL=delete, as on EFS), all invocations counted.
            "database_written_bytes_per_event": round(run["written_bytes_per_invocation"] * len(batches) / (counted * size + 1), 1),
        }

    lake = lake_objects(s3, init.BUCKET)
    measured = {
        "kind": args.kind,
        "events": args.events,
        "request_body_bytes": body_bytes,
        "sqs_message_bytes": max(len(r["body"]) for r in records),
        "ingest": ingest,
        "by_batch_size": processed,
        "lake_bytes_per_event": round(sum(o["Size"] for o in lake) / (total * len(sizes)), 1),
    }
    inputs = {k: getattr(args, k) for k in ("ingest_memory", "processor_memory", "sqs_send_ms", "rate", "window")}
    print(json.dumps({"measured": measured, "inputs": inputs, "per_million": {
        "at_volume": {size: cost(measured, processed[size], size, args) for size in sizes},
        "at_low_rate": low_rate(measured, processed, args),
    }}, indent=1))


def modeled_ms(cpu_ms, wait_ms, memory_mb):
    """Billed ms in AWS: the CPU time stretched by the function's CPU share, plus the waits, rounded up."""
    return math.ceil(wait_ms + cpu_ms * max(1.0, FULL_CPU_MB / memory_mb))


def cost(m, p, batch, args):
    """USD per million events, per service, for both ingest routes, arm64, with batches of `batch`."""
    n = 1e6
    batches = n / batch
    run = p["processor"]
    ingest_ms = modeled_ms(m["ingest"]["cpu_ms_per_invocation"], args.sqs_send_ms, args.ingest_memory)
    processor_wait = max(0.0, run["duration_ms_mean"] - run["cpu_ms_per_invocation"])
    processor_ms = modeled_ms(run["cpu_ms_per_invocation"], processor_wait, args.processor_memory)
    ingest_gb_s = ingest_ms / 1000 * args.ingest_memory / 1024 * n
    processor_gb_s = processor_ms / 1000 * args.processor_memory / 1024 * batches
    # SendMessage per event (one 64 KB unit each while the message is under 64 KB); the trigger's
    # ReceiveMessage and DeleteMessageBatch per 10.
    units = math.ceil(m["sqs_message_bytes"] / 65536)
    sqs_requests = n * units + 2 * n / SQS_BATCH
    lines = {
        "modeled_billed_ms": {"ingest": ingest_ms, "processor_per_batch": processor_ms},
        "lambda_requests": (n + batches) * PRICE["lambda_request"],
        "lambda_compute": (ingest_gb_s + processor_gb_s) * PRICE["lambda_gb_s_arm64"],
        "sqs_requests": sqs_requests * PRICE["sqs_request"],
        "s3_lake_puts": p["lake_files_per_batch"] * batches * PRICE["s3_put"],
        "efs_writes": p["database_written_bytes_per_event"] * n / 1e9 * PRICE["efs_elastic_write_gb"],
    }
    base = sum(v for k, v in lines.items() if k != "modeled_billed_ms")
    rounded = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in lines.items()}
    rounded["total_function_url"] = round(base, 3)
    rounded["total_http_api"] = round(base + n * PRICE["http_api_request"], 3)
    rounded["kept_per_month"] = {
        "efs_database_gb": round(p["database_bytes_per_event"] * n / 1e9, 3),
        "efs_usd": round(p["database_bytes_per_event"] * n / 1e9 * PRICE["efs_standard_gb_month"], 4),
        "s3_lake_gb": round(m["lake_bytes_per_event"] * n / 1e9, 3),
        "s3_usd": round(m["lake_bytes_per_event"] * n / 1e9 * PRICE["s3_standard_gb_month"], 4),
    }
    return rounded


def low_rate(m, processed, args):
    """At --rate events/s the trigger hands over what arrived within its --window: costed with the measured
    batch size nearest to that, never larger than measured."""
    arriving = max(1.0, args.rate * args.window)
    nearest = min(processed, key=lambda size: abs(math.log(size / arriving)))
    priced = cost(m, processed[nearest], arriving, args)
    return {"events_per_batch": round(arriving, 1), "measured_batch_size_used": nearest, **priced}


if __name__ == "__main__":
    sys.exit(main())
