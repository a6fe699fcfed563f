"""EFS bytes written per event once the database has grown: one batch into a young database (the processor
bootstrap under a local Runtime API, as lambda_cost.py runs it), then grown by GROW rows as weeks of traffic
would grow it (the message ledger, in time order as its keys come; for errors, events with random event and
trace ids over the two weeks before), then
the next batch measured: bytes written per event and which tables' pages it changed.

    python infra/bench/efs_growth.py --ingest BOOTSTRAP --processor BOOTSTRAP --splat SPLAT_BIN \\
        --endpoint http://127.0.0.1:4599 [--kind error] [--batch 1000] [--grow 500000]
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
import lambda_cost  # noqa: E402
import lambda_init  # noqa: E402

PAGE = 4096


def grow(db, kind, rows):
    """Adds `rows` entries to the ledger (earlier times, random ids, as SQS's messages come) and, for errors,
    copies of an event with random ids: the indexes then have as many leaf pages as weeks of traffic give
    them."""
    con = sqlite3.connect(db)
    series = f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})"
    con.execute(f"{series} INSERT INTO processed_messages (sent_ms, message_id, processed_at) "
                "SELECT i, lower(hex(randomblob(16))), 1 FROM n")
    if kind == "error":
        cols = [r[1] for r in con.execute("PRAGMA table_info(events)")]
        made = {"id": "NULL", "event_id": "lower(hex(randomblob(16)))", "trace_id": "lower(hex(randomblob(16)))",
                # two weeks of traffic before the event copied
                "timestamp": "timestamp - abs(random()) % 1209600000000", "received_at": "received_at - i"}
        select = ", ".join(made.get(c, c) for c in cols)
        con.execute(f"{series} INSERT INTO events ({', '.join(cols)}) SELECT {select} "
                    "FROM n, (SELECT * FROM events LIMIT 1)")
    con.commit()
    con.close()


def main():
    parser = argparse.ArgumentParser()
    for arg in ("--ingest", "--processor", "--splat", "--endpoint"):
        parser.add_argument(arg, required=True)
    parser.add_argument("--kind", choices=sorted(lambda_cost.FIXTURES), default="error")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--grow", type=int, default=500_000)
    args = parser.parse_args()

    suffix = uuid.uuid4().hex[:8]
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        SPLAT_BUCKET_NAME=f"splat-growth-{suffix}", SPLAT_QUEUE_NAME=f"splat-growth-{suffix}",
        SPLAT_DLQ_NAME=f"splat-growth-dlq-{suffix}",
    )
    init = lambda_cost.init_module()
    queue_url = init.main()
    sqs = boto3.client("sqs", endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="test",
                       aws_secret_access_key="test")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    scratch = Path(tempfile.mkdtemp(prefix="splat-growth-"))
    db = scratch / "splat.db"
    env = dict(lambda_init.lambda_env(), SPLAT_DATABASE_PATH=str(db), SPLAT_SQLITE_JOURNAL="delete",
               SPLAT_QUEUE_URL=queue_url, SPLAT_BUCKET=init.BUCKET, NO_COLOR="1", RUST_LOG="warn")
    out = subprocess.run([args.splat, "project", "create", "growth"], env=env, capture_output=True, text=True,
                         check=True).stdout
    project_id = int(out.split()[0])
    key = out.split("DSN: ")[1].split("://")[1].split("@")[0]

    total = 2 * args.batch + 1
    events, _ = lambda_cost.ingest_events(args.kind, total, project_id, key)
    drain = lambda_cost.Drain(sqs, queue_url, queue_arn, total)
    drain.start()
    lambda_init.warm(args.ingest, events, env)
    drain.join()
    records = drain.records
    batch = lambda records: json.dumps({"Records": records}).encode()
    # A warm-up of one, then the first batch: a young database.
    lambda_init.warm(args.processor, [batch(records[:1]), batch(records[1:args.batch + 1])], env)
    grow(db, args.kind, args.grow)
    shutil.copyfile(db, scratch / "before.db")
    run = lambda_init.run(args.processor, [batch(records[args.batch + 1:])], env)

    before, after = (scratch / "before.db").read_bytes(), db.read_bytes()
    changed = [p for p in range(len(after) // PAGE)
               if p * PAGE >= len(before) or before[p * PAGE:(p + 1) * PAGE] != after[p * PAGE:(p + 1) * PAGE]]
    con = sqlite3.connect(db)
    tables = dict(con.execute("SELECT pageno, name FROM dbstat"))
    print(json.dumps({
        "kind": args.kind, "batch": args.batch, "grown_rows": args.grow,
        "database_mib": round(len(before) / 2**20),
        "written_bytes_per_event": round(run["invoke_written_bytes"] / args.batch),
        "pages_changed": len(changed),
        "pages_by_table": dict(Counter(tables.get(p + 1, "(free list or pointer map)") for p in changed).most_common(10)),
    }, indent=1))


if __name__ == "__main__":
    sys.exit(main())
