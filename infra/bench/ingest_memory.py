"""Peak memory of the ingest bootstrap for one envelope whose attachment inflates to each of --sizes MiB (gzip
on the wire, well under Lambda's 6 MB payload limit), at a given function memory: what decides the smallest
ingest that holds. Prints one line per size: the answer and the peak RSS.

    python infra/bench/ingest_memory.py --ingest BOOTSTRAP --splat SPLAT_BIN --endpoint http://127.0.0.1:4599 \\
        [--memory 128] [--sizes 20,40,60,90]
"""

import argparse
import base64
import gzip
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import lambda_cost  # noqa: E402
import lambda_init  # noqa: E402


def request(project_id, key, inflated_mib):
    """An API Gateway v2 request carrying an event and an attachment of `inflated_mib` MiB that gzip shrinks
    to a few hundred KB (4 KiB of noise, repeated)."""
    attachment = os.urandom(4096) * (256 * inflated_mib)
    envelope = b"\n".join([
        json.dumps({"event_id": uuid.uuid4().hex}).encode(), b'{"type":"event"}', b'{"message":"big"}',
        json.dumps({"type": "attachment", "length": len(attachment), "filename": "big.bin"}).encode(), attachment])
    body = gzip.compress(envelope, 1)
    template = json.loads(lambda_cost.EVENT_TEMPLATE.read_text())
    event = dict(template, rawPath=f"/api/{project_id}/envelope/", rawQueryString="")
    event.pop("queryStringParameters", None)
    event["headers"] = dict(template["headers"], **{
        "content-encoding": "gzip", "content-length": str(len(body)),
        "x-sentry-auth": f"Sentry sentry_key={key}, sentry_version=7"})
    event["requestContext"] = dict(template["requestContext"],
                                   http=dict(template["requestContext"]["http"], path=event["rawPath"]))
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    return json.dumps(event).encode(), len(body)


def main():
    parser = argparse.ArgumentParser()
    for arg in ("--ingest", "--splat", "--endpoint"):
        parser.add_argument(arg, required=True)
    parser.add_argument("--memory", type=int, default=128, help="the function's memory, MB")
    parser.add_argument("--sizes", default="20,40,60,90")
    args = parser.parse_args()
    suffix = uuid.uuid4().hex[:8]
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
        SPLAT_BUCKET_NAME=f"splat-mem-{suffix}", SPLAT_QUEUE_NAME=f"splat-mem-{suffix}", SPLAT_DLQ_NAME=f"splat-mem-dlq-{suffix}")
    init = lambda_cost.init_module()
    queue_url = init.main()
    env = dict(lambda_init.lambda_env(args.memory), SPLAT_DATABASE_PATH=str(Path(tempfile.mkdtemp()) / "splat.db"),
               SPLAT_SQLITE_JOURNAL="delete", SPLAT_QUEUE_URL=queue_url, SPLAT_BUCKET=init.BUCKET, NO_COLOR="1",
               RUST_LOG="warn")
    out = subprocess.run([args.splat, "project", "create", "memory"], env=env, capture_output=True, text=True,
                         check=True).stdout
    project_id, key = int(out.split()[0]), out.split("DSN: ")[1].split("://")[1].split("@")[0]
    for size in (int(s) for s in args.sizes.split(",")):
        event, wire = request(project_id, key, size)
        run = lambda_init.run(args.ingest, [event], env)
        answer = json.loads(run["responses"][-1])
        print(f"{size} MiB inflated ({wire / 2**20:.1f} MiB on the wire), {args.memory} MB function: "
              f"{answer['statusCode']} {answer.get('body', '')[:90]}, peak RSS {run['peak_rss_mb']:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
