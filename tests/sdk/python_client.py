#!/usr/bin/env python3
"""A real sentry-sdk client: `python_client.py DSN SCENARIO... [--compression gzip|br]`.

Scenarios: error, message, transaction (a tree with repeated db spans), web_transaction (a tagged POST
answered 502 with an error captured inside it, so both share one trace), large (an error with a 600 KB
attachment that does not compress: bigger than an SQS message, so ingest claim-checks it through S3).
Prints one JSON line: the ids the SDK reported, and for every HTTP request it made, the Content-Encoding
it set, whether the body really is in that encoding, and the status the server answered.
"""

import argparse
import base64
import gzip
import json
import os
import time

import brotli
import sentry_sdk
from sentry_sdk.transport import HttpTransport

RELEASE = "splat-sdk-tests@1.0.0"
ENVIRONMENT = "sdk-test"
TRANSACTION = "sdk-test/checkout"
# Literals on purpose: Splat must store these only normalized. The list query, then one query per order
# (10 ms each, 6 of them: past Sentry's N+1 thresholds of 5 repeats and 50 ms).
USERS_QUERY = "SELECT * FROM users WHERE id = 42 AND email = 'bob@example.com'"
ORDERS_QUERY = "SELECT id FROM orders WHERE user_id = 42"
ITEMS_QUERY = "SELECT * FROM order_items WHERE order_id = {}"
N_REPEATED = 6
WEB_TRANSACTION = "sdk-test/orders"

requests = []


class RecordingTransport(HttpTransport):
    """The SDK's own transport, noting what went on the wire: the option alone would not prove br was used."""

    def _request(self, method, endpoint_type, body, headers):
        encoding = headers.get("Content-Encoding")
        decode = {"gzip": gzip.decompress, "br": brotli.decompress, None: bytes}[encoding]
        decoded = decode(body)
        response = super()._request(method, endpoint_type, body, headers)
        requests.append({"encoding": encoding, "decodes": decoded.startswith(b"{"), "status": response.status})
        return response


def send_error():
    try:
        1 / 0
    except ZeroDivisionError:
        return sentry_sdk.capture_exception()


def send_large():
    attachment = base64.b64encode(os.urandom(450_000))
    sentry_sdk.get_current_scope().add_attachment(bytes=attachment, filename="core.txt")
    try:
        raise MemoryError("a large one")
    except MemoryError:
        return sentry_sdk.capture_exception()


def send_message():
    return sentry_sdk.capture_message("splat sdk test message", level="warning")


def send_transaction():
    with sentry_sdk.start_transaction(op="task", name=TRANSACTION) as tx:
        with sentry_sdk.start_span(op="db", name=USERS_QUERY):
            time.sleep(0.002)  # durations are asserted > 0, so spans must take measurable time
        with sentry_sdk.start_span(op="function", name="load_orders"):
            with sentry_sdk.start_span(op="db", name=ORDERS_QUERY):
                time.sleep(0.001)
            for order_id in range(1001, 1001 + N_REPEATED):
                with sentry_sdk.start_span(op="db", name=ITEMS_QUERY.format(order_id)):
                    time.sleep(0.01)
        # Finishing here (leaving the block is then a no-op) is the one way to get the id the SDK sent.
        event_id = tx.finish()
    return {"event_id": event_id, "trace_id": tx.trace_id, "span_id": tx.span_id}


def send_web_transaction():
    with sentry_sdk.start_transaction(op="http.server", name=WEB_TRANSACTION) as tx:
        tx.set_tag("region", "eu-west")
        tx.set_data("http.request.method", "POST")
        with sentry_sdk.start_span(op="db", name="SELECT id FROM orders WHERE id = 17"):
            time.sleep(0.002)
        try:
            {}["order 17"]
        except KeyError:
            error_id = sentry_sdk.capture_exception()
        tx.set_http_status(502)
        event_id = tx.finish()
    return {"event_id": event_id, "trace_id": tx.trace_id, "span_id": tx.span_id, "error": error_id}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("scenarios", nargs="+", choices=["error", "message", "transaction", "web_transaction", "large"])
    parser.add_argument("--compression", choices=["gzip", "br"], default="gzip")
    args = parser.parse_args()

    sentry_sdk.init(
        dsn=args.dsn,
        release=RELEASE,
        environment=ENVIRONMENT,
        traces_sample_rate=1.0,
        transport=RecordingTransport,
        # One envelope per capture and nothing else (no client reports, no sessions), so row counts are exact;
        # without default integrations the event also carries no list of installed modules: small fixtures.
        send_client_reports=False,
        auto_session_tracking=False,
        default_integrations=False,
        _experiments={"transport_compression_algo": args.compression},
    )
    senders = {"error": send_error, "message": send_message, "transaction": send_transaction,
               "web_transaction": send_web_transaction, "large": send_large}
    ids = {name: senders[name]() for name in args.scenarios}
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"ids": ids, "requests": requests}))


if __name__ == "__main__":
    main()
