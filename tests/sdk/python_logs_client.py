#!/usr/bin/env python3
"""A real sentry-sdk client sending structured logs: `python_logs_client.py DSN`.

Inside one transaction it logs an info line with typed attributes and a warning, then captures an
exception next to an error line, so the logs, the transaction and the error share one trace; one more
line is logged outside any transaction. Prints one JSON line: the trace id, the span id and the ids the
SDK reported.
"""

import json
import sys

import sentry_sdk
from sentry_sdk import logger as sentry_logger


def main():
    sentry_sdk.init(
        dsn=sys.argv[1],
        release="splat-sdk-tests@1.0.0",
        environment="sdk-test",
        traces_sample_rate=1.0,
        enable_logs=True,
        send_client_reports=False,
        auto_session_tracking=False,
        default_integrations=False,
    )
    with sentry_sdk.start_transaction(op="task", name="sdk-test/logs") as tx:
        sentry_logger.info(
            "User {user_id} checked out {items} items",
            user_id=42,
            items=3,
            attributes={"cart.total": 19.5, "cart.express": True, "shop": "north"},
        )
        sentry_logger.warning("Stock low for {sku}", sku="A-17")
        try:
            {}["order 17"]
        except KeyError:
            sentry_logger.error("Order {order} failed", order=17)
            error_id = sentry_sdk.capture_exception()
        event_id = tx.finish()
    sentry_logger.debug("after the transaction")
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"trace_id": tx.trace_id, "span_id": tx.span_id, "error": error_id, "transaction": event_id}))


if __name__ == "__main__":
    main()
