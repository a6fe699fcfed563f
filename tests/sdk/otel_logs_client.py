#!/usr/bin/env python3
"""A real OpenTelemetry SDK client sending logs to Splat over OTLP/HTTP (protobuf, gzip):
`otel_logs_client.py DSN`.

Python's `logging` goes through the SDK's LoggingHandler to the OTLP/HTTP exporter
(opentelemetry-exporter-otlp-proto-http), posted to Sentry's OTLP logs path with the DSN key in
`x-sentry-auth`. One line is logged inside a span (so it carries its trace), one outside. Prints one JSON
line: the span's trace id and the exporter's result for every export.
"""

import json
import logging
import sys
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

results = []


class RecordingExporter(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        results.append(result.name)
        return result


def main():
    dsn = urlsplit(sys.argv[1])
    endpoint = f"{dsn.scheme}://{dsn.hostname}:{dsn.port}/api{dsn.path}/integration/otlp/v1/logs"
    resource = Resource.create({"service.name": "otel-shop", "service.version": "3.2.1",
                                "deployment.environment.name": "otel-test"})
    trace.set_tracer_provider(TracerProvider(resource=resource))
    provider = LoggerProvider(resource=resource)
    exporter = RecordingExporter(endpoint=endpoint, headers={"x-sentry-auth": f"sentry sentry_key={dsn.username}"},
                                 compression=Compression.Gzip)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    log = logging.getLogger("otel.shop")
    log.setLevel(logging.DEBUG)
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=provider))
    with trace.get_tracer("otel.shop").start_as_current_span("checkout") as span:
        log.warning("payment for order %s declined", 17, extra={"order.id": 17, "card.expired": True})
        trace_id = format(span.get_span_context().trace_id, "032x")
    log.info("otel line outside any span")
    provider.shutdown()
    print(json.dumps({"trace_id": trace_id, "results": results}))


if __name__ == "__main__":
    main()
