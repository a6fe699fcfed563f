#!/usr/bin/env python3
"""The real sentry-sdk against rate limits: `python_ratelimit_client.py DSN STEP...`, each step `error` or
`transaction`, sent and flushed one after the other (so the SDK has read each answer before the next
capture). Prints one JSON line: for every HTTP request the SDK made, the item types it carried, the status
and the X-Sentry-Rate-Limits it got back. A step the SDK held back because of a rate limit made no request.
"""

import gzip
import json
import sys
from pathlib import Path

import sentry_sdk
from sentry_sdk.transport import HttpTransport

from python_client import send_error, send_transaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from capture import parse_envelope  # noqa: E402

requests = []


class RecordingTransport(HttpTransport):
    def _request(self, method, endpoint_type, body, headers):
        data = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else bytes(body)
        types = [header["type"] for header, _ in parse_envelope(data)[1]]
        response = super()._request(method, endpoint_type, body, headers)
        requests.append({"types": types, "status": response.status,
                         "rate_limits": response.headers.get("x-sentry-rate-limits")})
        return response


def main():
    dsn, steps = sys.argv[1], sys.argv[2:]
    sentry_sdk.init(
        dsn=dsn,
        traces_sample_rate=1.0,
        transport=RecordingTransport,
        send_client_reports=False,
        auto_session_tracking=False,
        default_integrations=False,
        _experiments={"transport_compression_algo": "gzip"},
    )
    senders = {"error": send_error, "transaction": send_transaction}
    for step in steps:
        senders[step]()
        sentry_sdk.flush(timeout=10)
    print(json.dumps({"requests": requests}))


if __name__ == "__main__":
    main()
