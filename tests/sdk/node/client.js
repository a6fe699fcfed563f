"use strict";
// A real @sentry/node client: `node client.js DSN SCENARIO`, SCENARIO one of error, spans, large,
// feedback.
// Prints one JSON line: the ids the SDK reported and, for every HTTP request it made, the path, the
// headers it set (Content-Encoding among them) and the status the server answered.
const http = require("node:http");
const Sentry = require("@sentry/node");

const [dsn, scenario] = process.argv.slice(2);
const requests = [];

// Handed to the SDK's own transport (its documented `httpModule` option) so we see what it sent.
const recordingHttp = {
  request(options, callback) {
    const record = { path: options.path, headers: { ...options.headers } };
    requests.push(record);
    return http.request(options, (res) => {
      record.status = res.statusCode;
      callback(res);
    });
  },
};

Sentry.init({
  dsn,
  release: "splat-sdk-tests@1.0.0",
  environment: "sdk-test",
  tracesSampleRate: 1.0,
  sendClientReports: false,
  transportOptions: { httpModule: recordingHttp },
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const scenarios = {
  async error() {
    return { event_id: Sentry.captureException(new Error("node sdk boom")) };
  },
  // Bigger than the SDK's 32 KiB gzip threshold, so the body goes out gzip-compressed.
  async large() {
    const rows = Array.from({ length: 500 }, (_, i) => `row ${i} `.padEnd(100, "x"));
    return { event_id: Sentry.captureException(new Error("node sdk large"), { extra: { rows } }) };
  },
  // An error, then the user's feedback about it (SCENARIO feedback; the message comes from argv[4]).
  async feedback() {
    const event_id = Sentry.captureException(new Error("node sdk feedback boom"));
    const feedback_id = Sentry.captureFeedback({
      message: process.argv[4] || "node feedback",
      name: "Node User",
      email: "node@example.com",
      associatedEventId: event_id,
    });
    return { event_id, feedback_id };
  },
  // A root span and six identical db queries under it: the N+1 shape.
  async spans() {
    return Sentry.startSpan({ name: "sdk-test/node-checkout", op: "task" }, async (root) => {
      // An N+1 as Sentry's detector sees one: a query, then the same query once per row it returned,
      // 6 × 10 ms under one parent (≥ 5 repeats, ≥ 50 ms in all).
      await Sentry.startSpan({ name: "SELECT id FROM users WHERE team_id = $1", op: "db" }, () => sleep(2));
      for (let i = 0; i < 6; i++) {
        await Sentry.startSpan({ name: "SELECT * FROM orders WHERE user_id = $1", op: "db" }, () => sleep(10));
      }
      const { traceId, spanId } = root.spanContext();
      return { trace_id: traceId, span_id: spanId };
    });
  },
};

(async () => {
  const ids = await scenarios[scenario]();
  await Sentry.flush(10000);
  console.log(JSON.stringify({ ids, requests }));
})();
