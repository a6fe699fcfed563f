"use strict";
// A real @sentry/node client sending structured logs: `node logs_client.js DSN`. Inside one span it logs
// a warning with attributes and an error next to a captured exception, so they share one trace.
// Prints one JSON line: the trace id and the error's event id.
const Sentry = require("@sentry/node");

const [dsn] = process.argv.slice(2);

Sentry.init({
  dsn,
  release: "splat-sdk-tests@1.0.0",
  environment: "sdk-test",
  tracesSampleRate: 1.0,
  enableLogs: true,
  sendClientReports: false,
});

(async () => {
  const ids = await Sentry.startSpan({ name: "sdk-test/node-logs", op: "task" }, async (root) => {
    Sentry.logger.warn(Sentry.logger.fmt`Queue ${"billing"} is slow`, { "queue.depth": 12, retry: false });
    Sentry.logger.error("node payment failed", { "payment.amount": 12.5 });
    const error = Sentry.captureException(new Error("node logs boom"));
    return { trace_id: root.spanContext().traceId, error };
  });
  await Sentry.flush(10000);
  console.log(JSON.stringify(ids));
})();
