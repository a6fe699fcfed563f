#!/usr/bin/env python3
"""A real sentry-sdk client sending cron check-ins: `python_monitor_client.py DSN`.

Sends, through the SDK's own API: a job wrapped in the `@monitor` decorator that succeeds (crontab schedule
in a timezone), one that raises (interval schedule), and a run opened and closed by hand with
`capture_checkin`. Prints one JSON line: the check-in id of the manual run and the status of every request.
"""

import json
import sys
import time

import sentry_sdk
from sentry_sdk.crons import MonitorStatus, capture_checkin, monitor
from sentry_sdk.transport import HttpTransport

requests = []


class RecordingTransport(HttpTransport):
    def _request(self, method, endpoint_type, body, headers):
        response = super()._request(method, endpoint_type, body, headers)
        requests.append(response.status)
        return response


NIGHTLY = {
    "schedule": {"type": "crontab", "value": "0 3 * * *"},
    "timezone": "Europe/Berlin",
    "checkin_margin": 5,
    "max_runtime": 30,
}
EVERY_10_MIN = {"schedule": {"type": "interval", "value": 10, "unit": "minute"}, "checkin_margin": 2}


@monitor(monitor_slug="nightly-backup", monitor_config=NIGHTLY)
def nightly_backup():
    time.sleep(0.05)


@monitor(monitor_slug="sync-invoices", monitor_config=EVERY_10_MIN)
def sync_invoices():
    raise RuntimeError("the invoice API is down")


def main():
    sentry_sdk.init(
        dsn=sys.argv[1],
        environment="production",
        transport=RecordingTransport,
        send_client_reports=False,
        auto_session_tracking=False,
        default_integrations=False,
    )
    nightly_backup()
    try:
        sync_invoices()
    except RuntimeError:
        pass
    manual = capture_checkin(monitor_slug="manual-report", status=MonitorStatus.IN_PROGRESS)
    capture_checkin(monitor_slug="manual-report", check_in_id=manual, status=MonitorStatus.OK, duration=2.5)
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"manual": manual, "requests": requests}))


if __name__ == "__main__":
    main()
